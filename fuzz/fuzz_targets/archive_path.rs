//! Archive entry names: what may become a path below the cache.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyferry::format::archive_path;
use pyferry::format::manifest::EntryPoint;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = archive_path::to_relative_path(name) {
        // What is accepted stays below the destination.
        assert!(path.is_relative());
        assert!(
            path.components()
                .all(|part| matches!(part, std::path::Component::Normal(_)))
        );
    }
    let _ = archive_path::top_level(name);
    let _ = EntryPoint::parse(name);
});
