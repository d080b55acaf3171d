//! The runtime stamp: decoded from its bytes, and searched for in an image.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyferry::format::stamp::{self, Stamp};

fuzz_target!(|data: &[u8]| {
    let _ = Stamp::decode(data);
    let _ = stamp::find_unpacked(data);
});
