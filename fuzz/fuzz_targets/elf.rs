//! The ELF reader: headers, section table, dynamic section, symbol
//! versions, build id, and the room for the payload section.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyferry::format::elf::Image;

fuzz_target!(|data: &[u8]| {
    let Ok(image) = Image::parse(data) else {
        return;
    };
    let _ = image.has_payload_section();
    let _ = image.build_id(data);
    let _ = image.dynamic(data);
    let _ = image.symbol_versions(data);
    let len = data.len() as u64;
    let _ = image.tables_after(len / 2, len / 4, len);
    let mut copy = data.to_vec();
    let _ = image.rewrite_search_path(&mut copy, "$ORIGIN");
});
