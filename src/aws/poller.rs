//! AWS pushes nothing to a terminal: the poller reads GetPipelineState on
//! a schedule (pipelines with a running execution every `running`, idle
//! ones every `idle`, the list every `list`), compares it with what it read
//! before, and publishes the same events the local engine sends. Every
//! read goes through the account's budget.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::account::Account;
use crate::api::types::ActionStatus;
use crate::api::{EngineEvent, PipelineState};

/// What changed between two reads of a pipeline's state, as events.
/// `name` is the pipeline's name as the screens know it.
pub fn diff(name: &str, old: Option<&PipelineState>, new: &PipelineState) -> Vec<EngineEvent> {
    let mut out = Vec::new();
    for s in &new.stage_states {
        let before = old.and_then(|o| o.stage_states.iter().find(|x| x.stage_name == s.stage_name));
        if let Some(l) = &s.latest_execution {
            let was = before.and_then(|b| b.latest_execution.as_ref());
            if was.is_none_or(|w| {
                w.pipeline_execution_id != l.pipeline_execution_id || w.status != l.status
            }) {
                out.push(EngineEvent::StageChanged {
                    pipeline_name: name.to_owned(),
                    pipeline_execution_id: l.pipeline_execution_id.clone(),
                    stage_name: s.stage_name.clone(),
                    status: l.status,
                });
            }
        }
        if before.is_some_and(|b| b.inbound_transition_state != s.inbound_transition_state)
            || (before.is_none() && old.is_some())
        {
            out.push(EngineEvent::TransitionChanged {
                pipeline_name: name.to_owned(),
                stage_name: s.stage_name.clone(),
                state: s.inbound_transition_state.clone(),
            });
        }
        for a in &s.action_states {
            let Some(x) = &a.latest_execution else {
                continue;
            };
            let was = before
                .and_then(|b| {
                    b.action_states
                        .iter()
                        .find(|y| y.action_name == a.action_name)
                })
                .and_then(|y| y.latest_execution.as_ref());
            let changed = was.is_none_or(|w| {
                w.action_execution_id != x.action_execution_id
                    || w.status != x.status
                    || w.token != x.token
                    || w.summary != x.summary
            });
            if !changed {
                continue;
            }
            out.push(EngineEvent::ActionChanged { action: x.clone() });
            if x.token.is_some()
                && x.status == ActionStatus::InProgress
                && was.is_none_or(|w| w.token != x.token)
            {
                out.push(EngineEvent::ApprovalPending { action: x.clone() });
            }
        }
    }
    out
}

/// The poller of one account. `prefix` goes before pipeline names in the
/// events (`label/` with several accounts, else empty).
pub async fn run(account: Arc<Account>, prefix: String, tx: broadcast::Sender<EngineEvent>) {
    let tick = Duration::from_millis(500);
    loop {
        poll_once(&account, &prefix, &tx).await;
        tokio::time::sleep(tick).await;
    }
}

/// One pass: the list if due, then every pipeline whose state is due.
pub async fn poll_once(account: &Account, prefix: &str, tx: &broadcast::Sender<EngineEvent>) {
    let iv = account.intervals;
    if account.list_age().is_none_or(|a| a >= iv.list) {
        let before = account.cached_names();
        match account.fetch_pipelines().await {
            Ok(list) => {
                account.set_error(None);
                let names: Vec<String> = list.into_iter().map(|p| p.name).collect();
                if !before.is_empty() && names != before {
                    let _ = tx.send(EngineEvent::Resync { missed: 0 });
                }
            }
            Err(e) => {
                tracing::warn!(%e, "ListPipelines");
                account.set_error(Some(e));
                return;
            }
        }
    }
    for name in account.cached_names() {
        let due = match account.state_age(&name) {
            None => true,
            Some(age) => {
                let every = if account.is_running(&name) {
                    iv.running
                } else {
                    iv.idle
                };
                age >= every
            }
        };
        if !due {
            continue;
        }
        let old = account.cached_state(&name);
        match account.fetch_state(&name).await {
            Ok(new) => {
                account.set_error(None);
                // The first read is the baseline, not a change.
                let Some(old) = old else {
                    continue;
                };
                let shown = format!("{prefix}{name}");
                let events = diff(&shown, Some(&old), &new);
                if events.is_empty() {
                    continue;
                }
                account.changed(&name);
                let ids: Vec<String> = events
                    .iter()
                    .filter_map(|e| match e {
                        EngineEvent::StageChanged {
                            pipeline_execution_id,
                            ..
                        } => Some(pipeline_execution_id.clone()),
                        _ => None,
                    })
                    .collect();
                for e in events {
                    let _ = tx.send(e);
                }
                if !ids.is_empty()
                    && let Ok(list) = account.executions(&name).await
                {
                    for mut x in list
                        .into_iter()
                        .filter(|x| ids.contains(&x.pipeline_execution_id))
                    {
                        x.pipeline_name = shown.clone();
                        let _ = tx.send(EngineEvent::ExecutionChanged { execution: x });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(pipeline = %name, %e, "GetPipelineState");
                account.set_error(Some(e));
            }
        }
    }
}
