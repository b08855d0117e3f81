//! Any YAML or JSON tree, read as a CloudFormation template (intrinsics
//! resolved, pipelines read and validated), never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipedeck::model::cfn::{CfnOptions, resolve};
use pipedeck::model::{json, yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for root in [yaml::parse(text), json::parse(text)].into_iter().flatten() {
        let _ = resolve(&root, &CfnOptions::default());
    }
    // The whole path, as `pipedeck validate` takes it.
    let _ = pipedeck::model::load::load_bytes(
        "template.yaml",
        data,
        &pipedeck::model::load::LoadOptions::default(),
    );
});
