//! The native archive's zstd stream: frame boundaries, content sizes and
//! the frames themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyferry::format::solid;

fuzz_target!(|data: &[u8]| {
    // Within libFuzzer's malloc limit: larger claims must fail cleanly.
    let _ = solid::decompress(data, 64 << 20);
});
