//! The tail of an executable: end record, zip comment, manifest JSON and
//! its validation, and the zip64 end record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyferry::format::end_record;

fuzz_target!(|data: &[u8]| {
    // As if `data` were the end of a file of any length from its own.
    for extra in [0u64, 1 << 20, u64::MAX - data.len() as u64] {
        let _ = end_record::parse(data, data.len() as u64 + extra);
    }
    let _ = end_record::end_record_entries(data);
    let _ = end_record::zip64_entries(data);
});
