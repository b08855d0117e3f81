//! Loading arbitrary bytes as a .yaml file never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipedeck::model::load::{LoadOptions, load_bytes};

fuzz_target!(|data: &[u8]| {
    let _ = load_bytes("fuzz.yml", data, &LoadOptions::default());
});
