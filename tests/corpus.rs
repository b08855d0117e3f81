//! Every real pipeline file in `../shared/corpus/` either loads, or is
//! refused with errors that name a line and column; none panics. The
//! per-file outcome is a snapshot, so a change in behaviour shows in review.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pipedeck::model::load::{LoadOptions, load_path};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

fn files(kind: &str) -> Vec<PathBuf> {
    let dir = corpus_dir().join(kind);
    assert!(
        dir.is_dir(),
        "the shared corpus is missing at {}; it must be beside the project",
        dir.display()
    );
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no files in {}", dir.display());
    v
}

/// One block per file: format, verdict, pipelines, and every diagnostic
/// with its position.
fn outcome(kind: &str) -> String {
    let mut out = String::new();
    for path in files(kind) {
        let r = load_path(&path, &LoadOptions::default());
        let name = path.file_name().unwrap().to_string_lossy();
        let names: Vec<&str> = r
            .pipelines
            .iter()
            .map(|p| p.pipeline.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "{name}: {} {} pipelines={names:?}",
            r.format.as_str(),
            if r.ok() { "ok" } else { "REFUSED" },
        );
        for d in &r.diagnostics {
            if d.is_error() {
                assert!(
                    d.pos.is_some(),
                    "{name}: an error without line and column: {d:?}"
                );
            }
            let pos = d.pos.map_or("-".to_owned(), |p| p.to_string());
            let sev = if d.is_error() { "error" } else { "warning" };
            let _ = writeln!(out, "  {pos} {sev}: {} [{}]", d.message, d.path);
        }
    }
    out
}

#[test]
fn corpus_pipeline_json_loads_or_is_refused_with_positions() {
    insta::assert_snapshot!(outcome("pipeline-json"));
}

#[test]
fn corpus_buildspecs_load_or_are_refused_with_positions() {
    insta::assert_snapshot!(outcome("buildspec"));
}

#[test]
fn corpus_cloudformation_loads_or_is_refused_with_positions() {
    insta::assert_snapshot!(outcome("cfn"));
}
