//! A Terraform file or module folder as a [`FileReport`]: pipelines read
//! and validated, the CodeBuild projects' inline buildspecs checked with
//! messages at their own lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{TfOptions, TfSource, read};
use crate::model::buildspec;
use crate::model::codepipeline::{self, Dialect};
use crate::model::diag::{Diagnostic, Pos};
use crate::model::load::{FileReport, Format};
use crate::model::validate;

/// The stack Terraform evaluation runs on.
const STACK: usize = 64 << 20;

/// True for a path pipedeck reads as Terraform: a `.tf` file or a folder.
pub fn is_terraform(path: &Path) -> bool {
    path.is_dir() || is_tf_name(&path.to_string_lossy())
}

pub fn is_tf_name(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".tf")
}

/// Moves a diagnostic of an embedded buildspec whose first line is at `at`.
fn shift(mut d: Diagnostic, at: Pos, file: &str, prefix: &str) -> Diagnostic {
    if let Some(p) = d.pos {
        d.pos = Some(Pos::new(
            (at.line + p.line.saturating_sub(1)) as usize,
            (p.column + at.column.saturating_sub(1)) as usize,
        ));
    }
    d.path = if d.path.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{}", d.path)
    };
    d.in_file(file)
}

/// Loads Terraform sources as one document named `display`. `folder`: the
/// display is a folder, so every message names its file.
pub fn load(
    display: &str,
    sources: &[TfSource],
    dir: &Path,
    auto_tfvars: &[PathBuf],
    folder: bool,
    opts: &TfOptions,
) -> FileReport {
    // Evaluation recurses (bounded, see `eval`); a thread of its own gives
    // it a known stack whatever thread the caller runs on.
    let doc = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("terraform".into())
            .stack_size(STACK)
            .spawn_scoped(s, || read(sources, dir, auto_tfvars, opts))
            .ok()
            .and_then(|h| h.join().ok())
    })
    .unwrap_or_else(|| read(sources, dir, auto_tfvars, opts));
    let mut diags = doc.diagnostics;
    let mut pipelines = Vec::new();
    for p in &doc.pipelines {
        let mut d = Vec::new();
        let Some(lp) = codepipeline::read(
            &p.node,
            Dialect::Terraform,
            &p.address,
            Some(&p.label),
            &mut d,
        ) else {
            continue;
        };
        d.extend(validate::validate(&lp));
        let file = &doc.files[p.file];
        diags.extend(d.into_iter().map(|x| x.in_file(file.clone())));
        pipelines.push(lp);
    }
    let wanted: Vec<String> = pipelines
        .iter()
        .flat_map(|p| p.pipeline.stages.iter())
        .flat_map(|s| s.actions.iter())
        .filter_map(|a| a.configuration.get("ProjectName").cloned())
        .collect();
    let mut project_buildspecs = BTreeMap::new();
    for project in &doc.projects {
        let Some(spec) = &project.buildspec else {
            continue;
        };
        // Actions name a project by its name, or by a reference Terraform
        // resolves only at apply (`aws_codebuild_project.build.id`).
        let refs: Vec<&String> = wanted
            .iter()
            .filter(|w| {
                **w == project.name
                    || super::value::placeholders_in(w).iter().any(|p| {
                        p.strip_prefix(project.address.as_str())
                            .is_some_and(|r| r.starts_with('.'))
                    })
            })
            .collect();
        if refs.is_empty() {
            continue;
        }
        let prefix = format!("{}.source.buildspec", project.address);
        match buildspec::parse_str(&spec.text) {
            Ok(lb) => {
                diags.extend(
                    lb.diagnostics
                        .into_iter()
                        .map(|d| shift(d, spec.at, &spec.file, &prefix)),
                );
                for r in refs {
                    project_buildspecs.insert(r.clone(), lb.buildspec.clone());
                }
                project_buildspecs.insert(project.name.clone(), lb.buildspec);
            }
            Err(errs) => diags.extend(
                errs.into_iter()
                    .map(|d| shift(d, spec.at, &spec.file, &prefix)),
            ),
        }
    }
    if !folder {
        for d in &mut diags {
            if d.file.as_deref() == Some(display) {
                d.file = None;
            }
        }
    }
    diags.sort_by(|a, b| (&a.file, a.pos, a.severity).cmp(&(&b.file, b.pos, b.severity)));
    diags.dedup();
    FileReport {
        file: display.to_owned(),
        format: Format::Terraform,
        pipelines,
        buildspec: None,
        project_buildspecs,
        diagnostics: diags,
    }
}

/// The `.tf` files of a folder (sorted), and its `terraform.tfvars` and
/// `*.auto.tfvars`.
pub fn folder_files(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut tf = Vec::new();
    let mut auto = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if !p.is_file() {
            continue;
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.ends_with(".tf") {
            tf.push(p);
        } else if name == "terraform.tfvars" || name.ends_with(".auto.tfvars") {
            auto.push(p);
        }
    }
    tf.sort();
    auto.sort_by_key(|p| {
        (
            p.file_name().is_some_and(|n| n != "terraform.tfvars"),
            p.clone(),
        )
    });
    Ok((tf, auto))
}

/// Loads a folder as a module.
pub fn load_dir(dir: &Path, opts: &TfOptions) -> FileReport {
    let display = dir.display().to_string();
    let failed = |msg: String| FileReport {
        file: display.clone(),
        format: Format::Terraform,
        pipelines: Vec::new(),
        buildspec: None,
        project_buildspecs: BTreeMap::new(),
        diagnostics: vec![Diagnostic::error(None, "", msg)],
    };
    let (tf, auto) = match folder_files(dir) {
        Ok(x) => x,
        Err(e) => return failed(format!("cannot read the folder: {e}")),
    };
    if tf.is_empty() {
        return failed("the folder has no .tf file".into());
    }
    let mut sources = Vec::new();
    let mut diags = Vec::new();
    for p in &tf {
        let name = p.display().to_string();
        match crate::model::source::read_file(p) {
            Ok(t) => sources.push(TfSource { name, text: t.text }),
            Err(e) => diags.push(Diagnostic::error(e.pos(), "", e.to_string()).in_file(name)),
        }
    }
    let mut r = load(&display, &sources, dir, &auto, true, opts);
    r.diagnostics.extend(diags);
    r
}
