//! Any text, read as a buildspec, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipedeck::model::buildspec;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = buildspec::parse_str(text);
    }
});
