//! Following an execution to its end, as `run --wait`, `retry` and
//! `rollback` do while they host the engine.

use std::time::Duration;

use color_eyre::eyre::{Result, eyre};

use super::common::{glyph_action, glyph_exec, short};
use crate::api::types::{ActionStatus, StageStatus};
use crate::api::{EngineEvent, ExecutionSummary};
use crate::backend::Backend;

/// Follows an execution to its end, printing what happens (unless quiet).
/// Ctrl-C while this process hosts the engine stops it cleanly.
pub async fn follow(
    s: &dyn Backend,
    pipeline: &str,
    id: &str,
    quiet: bool,
) -> Result<ExecutionSummary> {
    // SIGTERM, like Ctrl-C, stops a hosted engine cleanly (builds killed,
    // executions recorded as interrupted) instead of orphaning builds.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut events = s.subscribe().await.map_err(|e| eyre!("{e}"))?;
    let done = |e: ExecutionSummary| {
        if !quiet {
            say!(
                "{} execution {} {}{}",
                glyph_exec(e.status),
                short(id),
                e.status.as_str(),
                e.status_summary
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
        e
    };
    // Events say what happens, in order, up to the execution's own end;
    // the execution is read at the start, after a quiet second and after
    // a resync (events may have been missed).
    let mut check = true;
    loop {
        if check {
            let e = s.execution(pipeline, id).await.map_err(|e| eyre!("{e}"))?;
            if e.status.is_terminal() {
                return Ok(done(e));
            }
            check = false;
        }
        let next = tokio::select! {
            ev = tokio::time::timeout(Duration::from_secs(1), events.next()) => ev,
            _ = tokio::signal::ctrl_c() => {
                return Err(eyre!("interrupted"));
            }
            _ = term.recv() => {
                return Err(eyre!("terminated"));
            }
        };
        let ev = match next {
            Err(_) => {
                check = true;
                continue;
            }
            Ok(None) => {
                return Err(eyre!(
                    "the engine went away while execution {id} ran: a next engine records it \
                     as interrupted (Failed), and `pipedeck retry {pipeline} STAGE` runs its \
                     failed stage again"
                ));
            }
            Ok(Some(ev)) => ev,
        };
        match &ev {
            EngineEvent::ExecutionChanged { execution }
                if execution.pipeline_execution_id == id && execution.status.is_terminal() =>
            {
                return Ok(done(execution.clone()));
            }
            EngineEvent::Resync { .. } => check = true,
            _ => {}
        }
        if quiet {
            continue;
        }
        match ev {
            EngineEvent::StageChanged {
                pipeline_execution_id,
                stage_name,
                status,
                ..
            } if pipeline_execution_id == id => {
                if status != StageStatus::InProgress {
                    say!("  stage {stage_name}: {}", status.as_str());
                } else {
                    say!("  stage {stage_name}: entered");
                }
            }
            EngineEvent::ActionChanged { action }
                if action.pipeline_execution_id == id && action.token.is_none() =>
            {
                say!(
                    "    {} {}/{}{}",
                    glyph_action(action.status),
                    action.stage_name,
                    action.action_name,
                    match (&action.status, &action.summary) {
                        (ActionStatus::InProgress, _) => " started".to_owned(),
                        (_, Some(sum)) => format!(": {sum}"),
                        _ => String::new(),
                    }
                );
            }
            EngineEvent::ApprovalPending { action } if action.pipeline_execution_id == id => {
                say!(
                    "    ⏸ {}/{} waits for approval{}: run `pipedeck approve {pipeline} {} {}` (or reject)",
                    action.stage_name,
                    action.action_name,
                    action
                        .approval
                        .as_ref()
                        .and_then(|a| a.custom_data.as_deref())
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    action.stage_name,
                    action.action_name
                );
            }
            _ => {}
        }
    }
}
