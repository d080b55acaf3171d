//! The native archive's zstd stream: its table of frames, frame
//! boundaries, content sizes and the frames themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyferry::format::solid;

fuzz_target!(|data: &[u8]| {
    // Within libFuzzer's malloc limit: larger claims must fail cleanly.
    let _ = solid::decompress(data, 0, 64 << 20);
    let _ = solid::read_table(&mut &data[..], data.len() as u64);
});
