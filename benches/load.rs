//! Loading + validating the largest CloudFormation template of the shared
//! corpus (read from disk once; the loop decodes, parses, resolves the
//! intrinsics, reads the pipelines and validates them).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use pipedeck::model::load::{LoadOptions, load_bytes};

fn largest_template() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/cfn");
    std::fs::read_dir(&dir)
        .expect("the shared corpus must be beside the project")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("the corpus has CloudFormation templates")
}

fn bench(c: &mut Criterion) {
    let path = largest_template();
    let bytes = std::fs::read(&path).expect("readable template");
    let name = path.display().to_string();
    let report = load_bytes(&name, &bytes, &LoadOptions::default());
    assert!(
        !report.pipelines.is_empty(),
        "the benchmark template must load a pipeline: {:?}",
        report.diagnostics
    );
    let label = format!(
        "load+validate {} ({} bytes)",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        bytes.len()
    );
    c.bench_function(&label, |b| {
        b.iter(|| load_bytes(&name, black_box(&bytes), &LoadOptions::default()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
