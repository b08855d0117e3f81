//! `pipedeck validate`: check definition files and report per file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::model::diag::{Diagnostic, JsonDiagnostic, Severity};
use crate::model::load::{FileReport, LoadOptions, load_path};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print a JSON array, one object per file
    #[arg(long)]
    pub json: bool,
    /// A CloudFormation parameter value (repeatable)
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = super::key_value)]
    pub params: Vec<(String, String)>,
    /// A Terraform variable value (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = super::key_value)]
    pub vars: Vec<(String, String)>,
    /// A Terraform .tfvars file (repeatable)
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Definition files: CodePipeline JSON, pipedeck TOML, CloudFormation, Terraform (.tf or a folder), buildspec
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: &Args) -> color_eyre::Result<ExitCode> {
    let opts = LoadOptions {
        params: super::params(&args.params),
        terraform: crate::model::terraform::TfOptions::new(&args.vars, &args.var_files),
    };
    let files: Vec<PathBuf> = args.files.iter().flat_map(|f| expand(f)).collect();
    if files.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    let reports: Vec<FileReport> = files.iter().map(|f| load_path(f, &opts)).collect();
    let out = if args.json {
        serde_json::to_string_pretty(&json_reports(&reports))? + "\n"
    } else {
        human(&reports)
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(out.as_bytes());
    Ok(if reports.iter().all(FileReport::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A workspace file (`pipedeck.toml`) is not a pipeline: it stands for the
/// pipeline files it names (said on stderr, so `--json` stays one array).
fn expand(f: &std::path::Path) -> Vec<PathBuf> {
    use crate::config::workspace::WORKSPACE_FILE;
    if f.file_name().and_then(|n| n.to_str()) != Some(WORKSPACE_FILE) {
        return vec![f.to_path_buf()];
    }
    let Some(table) = std::fs::read_to_string(f)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
    else {
        return vec![f.to_path_buf()];
    };
    let dir = f.parent().unwrap_or(std::path::Path::new(""));
    let mut named: Vec<PathBuf> = table
        .get("workspace")
        .and_then(|w| w.get("pipelines"))
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(|p| dir.join(p))
                .collect()
        })
        .unwrap_or_default();
    if named.is_empty() {
        named.extend(
            ["pipeline.json", "pipeline.toml"]
                .iter()
                .map(|c| dir.join(c))
                .find(|p| p.is_file()),
        );
    }
    eprintln!(
        "pipedeck: {} is a workspace file; validating the pipelines it names: {}",
        f.display(),
        if named.is_empty() {
            "none".to_owned()
        } else {
            named
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    named
}

#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub file: &'a str,
    pub format: &'static str,
    pub ok: bool,
    pub pipelines: Vec<&'a str>,
    pub errors: Vec<JsonDiagnostic<'a>>,
    pub warnings: Vec<JsonDiagnostic<'a>>,
}

pub fn json_reports(reports: &[FileReport]) -> Vec<JsonReport<'_>> {
    reports
        .iter()
        .map(|r| JsonReport {
            file: &r.file,
            format: r.format.as_str(),
            ok: r.ok(),
            pipelines: r
                .pipelines
                .iter()
                .map(|p| p.pipeline.name.as_str())
                .collect(),
            errors: r.errors().map(JsonDiagnostic::from).collect(),
            warnings: r.warnings().map(JsonDiagnostic::from).collect(),
        })
        .collect()
}

fn line(out: &mut String, file: &str, d: &Diagnostic) {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let at = d
        .pos
        .map(|p| format!("{}:{p}", d.file.as_deref().unwrap_or(file)))
        .unwrap_or_else(|| d.file.as_deref().unwrap_or(file).to_owned());
    let _ = write!(out, "  {at}: {sev}: {}", d.message);
    if !d.path.is_empty() {
        let _ = write!(out, " [{}]", d.path);
    }
    out.push('\n');
    if let Some(fix) = &d.fix {
        let _ = writeln!(out, "      fix: {fix}");
    }
}

/// The human-readable report: a heading per file, its diagnostics with
/// `file:line:col`, and a summary line.
pub fn human(reports: &[FileReport]) -> String {
    let mut out = String::new();
    let (mut ok, mut warnings) = (0, 0);
    for r in reports {
        let e = r.errors().count();
        let w = r.warnings().count();
        warnings += w;
        let what = if r.pipelines.is_empty() {
            r.format.as_str().to_owned()
        } else {
            let names: Vec<String> = r
                .pipelines
                .iter()
                .map(|p| format!("`{}`", p.pipeline.name))
                .collect();
            format!("{}, pipeline {}", r.format.as_str(), names.join(", "))
        };
        let verdict = if e == 0 {
            ok += 1;
            "ok".to_owned()
        } else {
            format!("{e} error{}", if e == 1 { "" } else { "s" })
        };
        let warn = if w > 0 {
            format!(", {w} warning{}", if w == 1 { "" } else { "s" })
        } else {
            String::new()
        };
        let _ = writeln!(out, "{}: {verdict}{warn} ({what})", r.file);
        for d in &r.diagnostics {
            line(&mut out, &r.file, d);
        }
    }
    let failed = reports.len() - ok;
    let _ = writeln!(
        out,
        "{} file{} checked: {ok} ok, {failed} with errors, {warnings} warning{}",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" },
    );
    out
}
