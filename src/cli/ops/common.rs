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

/// A source revision of an execution whose repository has moved on: the
/// source action, the execution's commit and the branch's newer head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewerCommit {
    pub action: String,
    pub revision: String,
    pub head: String,
}

/// The execution's source revisions whose mapped repository has a newer
/// commit on its branch. A retry re-runs the execution's own revisions
/// (as on AWS); these are what a new execution would release instead.
pub fn newer_commits(
    ws: &Workspace,
    revisions: &[crate::api::types::SourceRevision],
) -> Vec<NewerCommit> {
    let git = |repo: &Path, args: &[&str]| -> Option<String> {
        let o = std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let mut out = Vec::new();
    for rev in revisions {
        for repo in ws.repositories.values() {
            let dir = ws.root.join(&repo.path);
            let wanted = format!("{}^{{commit}}", rev.revision_id);
            let Some(full) = git(&dir, &["rev-parse", "--verify", "--quiet", &wanted]) else {
                continue;
            };
            let branch = repo.branch.as_deref().unwrap_or("HEAD");
            if let Some(head) = git(&dir, &["rev-parse", "--verify", "--quiet", branch])
                && head != full
            {
                out.push(NewerCommit {
                    action: rev.action_name.clone(),
                    revision: full,
                    head,
                });
            }
            break;
        }
    }
    out
}

/// An execution id as typed: the whole id, or any prefix of one that only
/// one of the pipeline's executions has (the TUI shows 8 characters).
/// Unknown or ambiguous prefixes are returned as typed, so the engine's own
/// error (`PipelineExecutionNotFoundException`) names them.
pub async fn resolve_execution(
    s: &dyn crate::backend::Backend,
    pipeline: &str,
    id: &str,
) -> String {
    let Ok(crate::api::Reply::Executions { executions, .. }) = s
        .call(crate::api::Request::ListPipelineExecutions {
            pipeline_name: pipeline.to_owned(),
            max_results: Some(1000),
            next_token: None,
        })
        .await
    else {
        return id.to_owned();
    };
    if executions.iter().any(|e| e.pipeline_execution_id == id) {
        return id.to_owned();
    }
    let mut hits = executions
        .iter()
        .filter(|e| e.pipeline_execution_id.starts_with(id));
    match (hits.next(), hits.next()) {
        (Some(e), None) if !id.is_empty() => e.pipeline_execution_id.clone(),
        (Some(_), Some(_)) => {
            eprintln!(
                "pipedeck: execution id prefix {id} is ambiguous in {pipeline}; type more of it"
            );
            id.to_owned()
        }
        _ => id.to_owned(),
    }
}

/// "did you mean …" for a pipeline, stage or action name the engine did not
/// find (`Build UnitTest` → UnitTests), from the names it has.
pub async fn did_you_mean(
    s: &dyn crate::backend::Backend,
    code: &str,
    pipeline: &str,
    stage: Option<&str>,
    action: Option<&str>,
) -> Option<String> {
    use crate::api::{Reply, Request};
    use crate::model::diag::suggest;
    if !code.ends_with("NotFound") || code == "PipelineExecutionNotFound" {
        return None;
    }
    let names = match s.call(Request::list_pipelines()).await {
        Ok(Reply::Pipelines { pipelines, .. }) => {
            pipelines.into_iter().map(|p| p.name).collect::<Vec<_>>()
        }
        _ => return None,
    };
    if !names.iter().any(|n| n == pipeline) {
        let c: Vec<&str> = names.iter().map(String::as_str).collect();
        return suggest(pipeline, &c).map(|m| format!("did you mean pipeline {m}?"));
    }
    let Ok(Reply::State { state }) = s
        .call(Request::GetPipelineState {
            pipeline_name: pipeline.to_owned(),
        })
        .await
    else {
        return None;
    };
    let stage = stage?;
    let Some(st) = state.stage_states.iter().find(|x| x.stage_name == stage) else {
        let c: Vec<&str> = state
            .stage_states
            .iter()
            .map(|x| x.stage_name.as_str())
            .collect();
        return suggest(stage, &c).map(|m| format!("did you mean stage {m}?"));
    };
    let action = action?;
    let c: Vec<&str> = st
        .action_states
        .iter()
        .map(|x| x.action_name.as_str())
        .collect();
    if c.contains(&action) {
        return None;
    }
    suggest(action, &c).map(|m| format!("did you mean action {m} (in {stage})?"))
}
