//! Any text, read as a Terraform file (HCL parsed, expressions evaluated,
//! pipelines read and validated, inline buildspecs checked), never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipedeck::model::load::{LoadOptions, load_bytes};
use pipedeck::model::terraform::TfOptions;

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions {
        terraform: TfOptions {
            env: Some(Default::default()),
            ..TfOptions::default()
        },
        ..LoadOptions::default()
    };
    // `file()` and `templatefile()` resolve against a folder that has none.
    let _ = load_bytes("/nonexistent-pipedeck-fuzz/main.tf", data, &opts);
});
