//! What every command shares: finding the workspace, reaching its
//! backend, printing results and errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use color_eyre::eyre::{Result, eyre};

use crate::api::ApiError;
use crate::api::types::{ActionStatus, ExecutionStatus};
use crate::backend::{self, OpenOptions, Shared};
use crate::config::workspace::Workspace;

/// Where the workspace is: `--workspace`, `PIPEDECK_WORKSPACE`, the current
/// directory if it is one, else the demo workspace in the data dir.
pub fn find_workspace(flag: Option<&Path>, data_dir: &Path) -> Result<Workspace> {
    let dir = match flag {
        Some(d) => d.to_path_buf(),
        None => {
            let cwd = std::env::current_dir()?;
            let is_ws = ["pipedeck.toml", "pipeline.json", "pipeline.toml"]
                .iter()
                .any(|f| cwd.join(f).is_file());
            let demo = data_dir.join("demo");
            if is_ws || !demo.is_dir() { cwd } else { demo }
        }
    };
    match Workspace::load(&dir, data_dir) {
        Ok(ws) => Ok(ws),
        // `--aws` needs no pipeline file: the pipelines are AWS's.
        Err(_) if backend::aws_selected() => Ok(backend::aws::workspace(data_dir)),
        Err(e) => Err(eyre!("{e}")),
    }
}

/// The workspace's engine: attached over its socket, or hosted here (with
/// triggers when `triggers`) for as long as the command needs it.
pub async fn open(ws: &Workspace, triggers: bool) -> Result<Shared> {
    backend::open(
        ws,
        OpenOptions {
            triggers,
            user_agent: "pipedeck-cli",
        },
    )
    .await
    .map_err(|e| eyre!("{e}"))
}

/// Prints an API error the way every command does and picks the exit code.
pub fn api_failure(e: &ApiError) -> ExitCode {
    eprintln!("pipedeck: {}: {}", e.code, e.message);
    ExitCode::FAILURE
}

pub fn glyph_exec(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Succeeded => "✓",
        ExecutionStatus::Failed => "✗",
        ExecutionStatus::InProgress => "▶",
        ExecutionStatus::Stopping | ExecutionStatus::Stopped => "■",
        ExecutionStatus::Superseded | ExecutionStatus::Cancelled => "⊘",
    }
}

pub fn glyph_action(s: ActionStatus) -> &'static str {
    match s {
        ActionStatus::Succeeded => "✓",
        ActionStatus::Failed => "✗",
        ActionStatus::InProgress => "▶",
        ActionStatus::Abandoned => "⊘",
    }
}

pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

pub fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => say!("{s}"),
        Err(e) => eprintln!("pipedeck: cannot encode JSON: {e}"),
    }
}

/// The pipeline a command is about: the one given, or the workspace's
/// only one.
pub fn pipeline_name(ws: &Workspace, given: Option<String>) -> Result<String> {
    if let Some(p) = given {
        return Ok(p);
    }
    let names: Vec<String> = ws
        .pipelines
        .iter()
        .map(|p| p.pipeline.name.clone())
        .collect();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(eyre!(
            "workspace {} has {} pipelines ({}); choose one with --pipeline",
            ws.name,
            names.len(),
            names.join(", ")
        )),
    }
}

/// The demo workspace's default place.
pub fn demo_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("demo")
}
