//! The layers stay layered: the contract (`src/api/`) imports nothing
//! above it, and only the TUI imports ratatui or crossterm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Code lines only: `//` comments and doc comments say what they like.
fn code(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

/// Paths of `crate::X` (and `super::` out of the folder) a file uses.
fn violations(
    root: &Path,
    allowed_crate_modules: &[&str],
    forbidden_crates: &[&str],
) -> Vec<String> {
    let mut files = Vec::new();
    sources(root, &mut files);
    let mut bad = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in code(&text) {
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + "crate::".len()..];
                let module: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !allowed_crate_modules.contains(&module.as_str()) {
                    bad.push(format!("{}:{n}: uses crate::{module}", f.display()));
                }
                rest = after;
            }
            for c in forbidden_crates {
                if line.contains(&format!("{c}::")) && !line.contains(&format!("crate::{c}")) {
                    bad.push(format!("{}:{n}: uses {c}", f.display()));
                }
            }
        }
    }
    bad
}

#[test]
fn the_contract_imports_nothing_above_it() {
    // The contract may use the pipeline model (GetPipeline) and itself.
    let bad = violations(
        &src().join("api"),
        &["api", "model"],
        &["ratatui", "crossterm", "tokio", "rusqlite"],
    );
    assert!(
        bad.is_empty(),
        "src/api/ reaches above itself:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_the_tui_imports_ratatui_or_crossterm() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let tui = src().join("tui");
    let mut bad = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(&tui)) {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in code(&text) {
            if line.contains("ratatui::") || line.contains("crossterm::") {
                bad.push(format!("{}:{n}: {}", f.display(), line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "outside src/tui/:\n{}", bad.join("\n"));
}

#[test]
fn the_check_finds_what_it_looks_for() {
    // The checks above would pass on an empty tree: show they can fail.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("x.rs"),
        "use crate::engine::EngineHandle;\n// crate::store is fine in a comment\nfn f() { ratatui::init(); }\n",
    )
    .unwrap();
    let bad = violations(d.path(), &["api"], &["ratatui"]);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("crate::engine"), "{bad:?}");
    assert!(bad[1].contains("ratatui"), "{bad:?}");
}

#[test]
fn neither_the_tui_nor_the_cli_opens_the_store_or_log_files() {
    let mut files = Vec::new();
    sources(&src().join("tui"), &mut files);
    sources(&src().join("cli").join("ops"), &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in code(&text) {
            for needle in ["store::", "state_dir", "LogReader"] {
                if line.contains(needle) && !line.contains("store::log_query::MAX_PAGE") {
                    bad.push(format!("{}:{n}: {}", f.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "reads the store directly:\n{}",
        bad.join("\n")
    );
}
