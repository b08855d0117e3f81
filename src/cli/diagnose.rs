//! `pipedeck diagnose`: why a stage failed, for people and scripts.
//!
//! - `pipedeck diagnose PIPELINE [--execution ID] [--json]`: every failed
//!   action of the execution (default: the latest that failed), with its
//!   log, the action record and the audit trail around it.
//! - `pipedeck diagnose --log FILE [--json]` (`-` for standard input): any
//!   build log at hand, without a workspace.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use color_eyre::eyre::{Result, eyre};
use serde::Serialize;

use crate::api::types::{ActionStatus, ExecutionStatus};
use crate::api::{ActionExecutionDetail, Reply, Request};
use crate::diagnose::{Catalogue, Evidence, Finding, Input, diagnose, diagnose_reader};

#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    /// The pipeline (not needed with --log)
    pub pipeline: Option<String>,
    /// The execution (default: the latest that failed)
    #[arg(long)]
    pub execution: Option<String>,
    /// A build log file to diagnose without a workspace (`-`: standard input)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// The catalogue with the user's rules (`<config dir>/rules/*.toml`).
pub fn catalogue(config_file: &Path) -> (Catalogue, Vec<String>) {
    Catalogue::with_user_dir(config_file.parent().map(|d| d.join("rules")).as_deref())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionReport<'a> {
    stage: &'a str,
    action: &'a str,
    action_execution_id: &'a str,
    summary: Option<&'a str>,
    findings: Vec<Finding>,
}

pub fn print_findings(findings: &[Finding], indent: &str) {
    if findings.is_empty() {
        say!("{indent}no finding: nothing in the log or the records matches a known failure");
        return;
    }
    for (i, f) in findings.iter().enumerate() {
        say!(
            "{indent}{}. {} [{} · {:.0}%]",
            i + 1,
            f.title,
            f.category,
            f.confidence * 100.0
        );
        for e in f.evidence.iter().take(6) {
            let line = match e {
                Evidence::LogLine { line, text } => format!("log line {line}: {text}"),
                Evidence::Audit {
                    event_time,
                    event_name,
                    who,
                    error_code,
                } => format!(
                    "audit {event_time} {event_name} by {who}{}",
                    error_code
                        .as_deref()
                        .map(|c| format!(" → {c}"))
                        .unwrap_or_default()
                ),
                Evidence::Health {
                    time, name, detail, ..
                } => format!("health {time} {name}: {detail}"),
                Evidence::TestCase { name } => format!("failing test {name}"),
                Evidence::Status { field, text } => format!("{field}: {text}"),
            };
            say!("{indent}   · {line}");
        }
        for (k, l) in f.fix.lines().enumerate() {
            say!("{indent}   {}{l}", if k == 0 { "fix: " } else { "     " });
        }
        if let Some(r) = &f.reference {
            say!("{indent}   see {r}");
        }
    }
}

/// `--log FILE`: no workspace needed.
pub fn run_log(a: &DiagnoseArgs, config_file: &Path) -> Result<ExitCode> {
    let Some(path) = &a.log else {
        return Err(eyre!("--log FILE is required here"));
    };
    let file = if path.as_os_str() == "-" {
        None
    } else {
        Some(std::fs::File::open(path).map_err(|e| eyre!("{}: {e}", path.display()))?)
    };
    let (cat, warnings) = catalogue(config_file);
    for w in warnings {
        eprintln!("pipedeck: {w}");
    }
    // Read a block at a time: only the lines the rules need are held.
    let input = Input::default();
    let read = match file {
        None => diagnose_reader(std::io::stdin().lock(), &input, &cat),
        Some(f) => diagnose_reader(std::io::BufReader::with_capacity(1 << 20, f), &input, &cat),
    }
    .map_err(|e| eyre!("{}: {e}", path.display()))?;
    if a.json {
        say!("{}", serde_json::to_string_pretty(&read.findings)?);
    } else {
        say!("{}: {} lines", path.display(), read.lines);
        print_findings(&read.findings, "  ");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(
    ws: crate::config::workspace::Workspace,
    a: DiagnoseArgs,
    config_file: &Path,
) -> Result<ExitCode> {
    let Some(pipeline) = a.pipeline.clone() else {
        return Err(eyre!("name a pipeline, or give --log FILE"));
    };
    let s = super::ops::open(&ws, false).await?;
    let execs = match s
        .call(Request::ListPipelineExecutions {
            pipeline_name: pipeline.clone(),
            max_results: Some(100),
            next_token: None,
        })
        .await
    {
        Ok(Reply::Executions { executions, .. }) => executions,
        Ok(_) => Vec::new(),
        Err(e) => {
            s.close().await;
            eprintln!("pipedeck: {}: {}", e.code, e.message);
            return Ok(ExitCode::FAILURE);
        }
    };
    let exec = match &a.execution {
        Some(id) => execs.iter().find(|e| &e.pipeline_execution_id == id),
        None => execs.iter().find(|e| {
            matches!(
                e.status,
                ExecutionStatus::Failed | ExecutionStatus::Stopped | ExecutionStatus::Superseded
            )
        }),
    }
    .cloned();
    let Some(exec) = exec else {
        s.close().await;
        say!(
            "{pipeline}: no {} to diagnose",
            a.execution
                .as_deref()
                .map_or("failed execution".to_owned(), |e| format!("execution {e}"))
        );
        return Ok(ExitCode::SUCCESS);
    };
    let actions: Vec<ActionExecutionDetail> = match s
        .call(Request::ListActionExecutions {
            pipeline_name: pipeline.clone(),
            pipeline_execution_id: exec.pipeline_execution_id.clone(),
            max_results: None,
            next_token: None,
        })
        .await
    {
        Ok(Reply::ActionExecutions { actions, .. }) => actions,
        _ => Vec::new(),
    };
    let audit = match s.call(Request::lookup_events(1000)).await {
        Ok(Reply::Events { events, .. }) => events,
        _ => Vec::new(),
    };
    // Flux failures in the environments the failed actions deploy to.
    let envs = match s.call(Request::ListEnvironments).await {
        Ok(Reply::Environments { environments }) => environments,
        _ => Vec::new(),
    };
    let (cat, warnings) = catalogue(config_file);
    for w in warnings {
        eprintln!("pipedeck: {w}");
    }
    // The latest attempt of each failed action.
    let mut seen = std::collections::BTreeSet::new();
    let failed: Vec<&ActionExecutionDetail> = actions
        .iter()
        .filter(|x| seen.insert((x.stage_name.clone(), x.action_name.clone())))
        .filter(|x| matches!(x.status, ActionStatus::Failed | ActionStatus::Abandoned))
        .collect();
    let mut reports = Vec::new();
    for act in &failed {
        let log = match s
            .read_whole_log(&crate::api::LogRef::action(&act.action_execution_id))
            .await
        {
            Ok(l) => l,
            // No log yet (an action that failed before it wrote one).
            Err(e) if e.code == "ResourceNotFoundException" => Vec::new(),
            Err(e) => {
                eprintln!(
                    "pipedeck: the log of {}/{} could not be read ({}: {}); diagnosing without it",
                    act.stage_name, act.action_name, e.code, e.message
                );
                Vec::new()
            }
        };
        let health = crate::diagnose::flux::health(&envs, &act.action_name);
        let findings = diagnose(
            &Input {
                log: &log,
                action: Some(act),
                execution: Some(&exec),
                audit: &audit,
                health: &health,
                ..Input::default()
            },
            &cat,
        );
        reports.push(ActionReport {
            stage: &act.stage_name,
            action: &act.action_name,
            action_execution_id: &act.action_execution_id,
            summary: act.summary.as_deref(),
            findings,
        });
    }
    s.close().await;
    if reports.is_empty() {
        // No failed action: the execution itself (superseded, stopped…).
        let findings = diagnose(
            &Input {
                execution: Some(&exec),
                audit: &audit,
                ..Input::default()
            },
            &cat,
        );
        if a.json {
            say!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "pipelineExecutionId": exec.pipeline_execution_id,
                    "status": exec.status,
                    "findings": findings,
                }))?
            );
        } else {
            say!(
                "execution {} {}",
                exec.pipeline_execution_id,
                exec.status.as_str()
            );
            print_findings(&findings, "  ");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "pipelineExecutionId": exec.pipeline_execution_id,
                "status": exec.status,
                "actions": reports,
            }))?
        );
    } else {
        say!(
            "execution {} {}{}",
            exec.pipeline_execution_id,
            exec.status.as_str(),
            exec.status_summary
                .as_deref()
                .map(|x| format!(": {x}"))
                .unwrap_or_default()
        );
        for r in &reports {
            say!("\n{}/{} — {}", r.stage, r.action, r.summary.unwrap_or(""));
            print_findings(&r.findings, "  ");
        }
    }
    Ok(ExitCode::SUCCESS)
}
