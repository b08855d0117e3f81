//! Actions: starting an action as a task, recording its detail and its end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::jobs::{CtxBase, Job, action_timeout, run_job};
use super::state::{Running, scope_of};
use super::{ActionDone, Engine, Msg};
use crate::api::types::{ActionStatus, ErrorDetails};
use crate::api::{ActionExecutionDetail, ApprovalInfo, ArtifactRef, EngineEvent};
use crate::engine::vars::{self};
use crate::providers::{self, ActionOutcome, OutcomeStatus};
use crate::store::now_rfc3339;

impl Engine {
    pub(super) fn start_action(&mut self, id: &str, i: usize, j: usize) {
        let Some(e) = self.execs.get(id) else {
            return;
        };
        if e.terminal() {
            // Failed under the step that would start it (the store refused a write).
            return;
        }
        let Some(ps) = self.pipelines.get(&e.summary.pipeline_name) else {
            return;
        };
        let def = ps.def.clone();
        let action = def.pipeline.stages[i].actions[j].clone();
        let key = format!("{}/{}", def.pipeline.stages[i].name, action.name);
        let attempt = e.attempts.get(&key).copied().unwrap_or(0) + 1;
        let aeid = uuid::Uuid::new_v4().to_string();
        let now = now_rfc3339();
        let scope = scope_of(e);
        let resolved = vars::resolve_map(&action.configuration, &scope);
        let inputs: Vec<(String, Option<String>)> = action
            .input_artifacts
            .iter()
            .map(|n| (n.clone(), e.artifacts.get(n).cloned()))
            .collect();
        let mut detail = ActionExecutionDetail {
            action_execution_id: aeid.clone(),
            pipeline_execution_id: id.to_owned(),
            stage_name: def.pipeline.stages[i].name.clone(),
            action_name: action.name.clone(),
            attempt,
            status: ActionStatus::InProgress,
            summary: None,
            start_time: now.clone(),
            last_status_change: now.clone(),
            token: None,
            external_execution_id: None,
            error_details: None,
            resolved_configuration: resolved.clone().unwrap_or_default(),
            input_artifacts: inputs
                .iter()
                .map(|(n, a)| ArtifactRef {
                    name: n.clone(),
                    id: a.clone().unwrap_or_default(),
                })
                .collect(),
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            test_report: None,
            phases: Vec::new(),
            approval: None,
            log_lines: 0,
        };
        let source_override = e.source_overrides.get(&action.name).cloned();
        let fail_now = |detail: &ActionExecutionDetail, code: &str, msg: String| ActionDone {
            exec: id.to_owned(),
            stage: i,
            action: j,
            action_execution_id: detail.action_execution_id.clone(),
            outcome: ActionOutcome::failed(code, msg),
            artifacts: Vec::new(),
            lines: 0,
        };
        let early_failure = match (&resolved, inputs.iter().find(|(_, a)| a.is_none())) {
            (Err(msg), _) => Some(fail_now(&detail, "ConfigurationError", msg.clone())),
            (_, Some((name, _))) => Some(fail_now(
                &detail,
                "ConfigurationError",
                format!("input artifact `{name}` was not produced earlier in this execution"),
            )),
            _ => None,
        };
        if let Some(done) = early_failure {
            if self.set_action(id, i, j, detail).is_ok() {
                let _ = self.tx.send(Msg::ActionDone(Box::new(done)));
            }
            return;
        }
        let mut action_resolved = action.clone();
        action_resolved.configuration = resolved.unwrap_or_default();
        if action.action_type_id.category == "Approval" {
            let timeout = action
                .timeout_in_minutes
                .map_or(self.ws.approval_timeout, |m| {
                    Duration::from_secs(u64::from(m) * 60)
                });
            let expires = humantime::format_rfc3339_millis(SystemTime::now() + timeout).to_string();
            detail.token = Some(uuid::Uuid::new_v4().to_string());
            detail.approval = Some(ApprovalInfo {
                custom_data: action_resolved.configuration.get("CustomData").cloned(),
                external_entity_link: action_resolved
                    .configuration
                    .get("ExternalEntityLink")
                    .cloned(),
                expires,
                result: None,
            });
            if self.set_action(id, i, j, detail.clone()).is_err() {
                return;
            }
            let tx = self.tx.clone();
            let aeid2 = aeid.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                let _ = tx.send(Msg::ApprovalTimeout {
                    action_execution_id: aeid2,
                });
            });
            self.publish(EngineEvent::ApprovalPending { action: detail });
            return;
        }
        let provider = match providers::for_action(&action, &self.ws, &self.envs) {
            Ok(p) => p,
            Err(msg) => {
                let done = fail_now(&detail, "ConfigurationError", msg);
                if self.set_action(id, i, j, detail).is_ok() {
                    let _ = self.tx.send(Msg::ActionDone(Box::new(done)));
                }
                return;
            }
        };
        let timeout = action_timeout(&self.ws, &action_resolved);
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let job = Job {
            exec: id.to_owned(),
            stage: i,
            action_index: j,
            ctx_base: CtxBase {
                pipeline: def.pipeline.name.clone(),
                execution_id: id.to_owned(),
                stage: def.pipeline.stages[i].name.clone(),
                aeid: aeid.clone(),
                action: action_resolved,
                source_revision: source_override,
                timeout,
            },
            inputs: inputs
                .into_iter()
                .map(|(n, a)| (n, a.unwrap_or_default()))
                .collect(),
            revisions: e
                .summary
                .source_revisions
                .iter()
                .map(|r| r.revision_id.clone())
                .collect(),
        };
        if self.set_action(id, i, j, detail).is_err() {
            return;
        }
        self.running.insert(
            aeid.clone(),
            Running {
                stop: stop_tx.clone(),
            },
        );
        let ws = self.ws.clone();
        let artifacts = self.artifacts.clone();
        let scratch = self.scratch.clone();
        let events = self.events.clone();
        let tx = self.tx.clone();
        // Started once the store has the action InProgress (within a step,
        // at its end): nothing runs that the next engine would not know of.
        self.launch(Box::pin(async move {
            let done = run_job(
                job, provider, ws, artifacts, scratch, events, stop_tx, stop_rx,
            )
            .await;
            let _ = tx.send(Msg::ActionDone(Box::new(done)));
        }));
    }

    /// Records an action's detail as the latest in its stage and publishes
    /// it, once the store has it. When the store refuses it, nothing is
    /// announced and the execution fails with the cause (`store_failed`).
    ///
    /// The action's row and its stage's row go in one transaction (within
    /// a step, the step's): the next engine reads an interrupted
    /// execution's actions back from its stage rows, so an end written to
    /// the action's row alone would be taken back (as interrupted) by a
    /// crash before the stage's write.
    pub(super) fn set_action(
        &mut self,
        id: &str,
        i: usize,
        j: usize,
        detail: ActionExecutionDetail,
    ) -> Result<(), String> {
        let Some(e) = self.execs.get_mut(id) else {
            return Ok(());
        };
        let key = format!("{}/{}", detail.stage_name, detail.action_name);
        let a = e.attempts.entry(key).or_insert(0);
        *a = (*a).max(detail.attempt);
        let before = e.stages[i].actions[j].replace(detail.clone());
        e.summary.last_update_time = detail.last_status_change.clone();
        if let Some(step) = &mut self.step {
            // Written at the step's end, with the rest of the step.
            step.touch(id);
            step.actions.push(detail.clone());
            if let Some(b) = before.filter(|b| {
                b.status == ActionStatus::InProgress
                    && b.action_execution_id == detail.action_execution_id
                    && detail.status != ActionStatus::InProgress
            }) {
                step.ended.push((id.to_owned(), i, j, b));
            }
        } else if let Err(cause) = self.save_many(&[id], false, std::slice::from_ref(&detail)) {
            // As it was, for `store_failed` (which also sets the update
            // time).
            if let Some(e) = self.execs.get_mut(id) {
                e.stages[i].actions[j] = before;
            }
            self.store_failed(id, &cause);
            return Err(cause);
        }
        self.publish(EngineEvent::ActionChanged { action: detail });
        Ok(())
    }

    pub(super) fn action_done(&mut self, done: ActionDone) {
        self.running.remove(&done.action_execution_id);
        let ActionDone {
            exec: id,
            stage: i,
            action: j,
            action_execution_id,
            mut outcome,
            artifacts,
            lines,
        } = done;
        let Some(e) = self.execs.get(&id) else {
            return;
        };
        let Some(Some(current)) = e.stages[i].actions.get(j) else {
            return;
        };
        if current.action_execution_id != action_execution_id {
            return;
        }
        let mut detail = current.clone();
        detail.log_lines = lines;
        if detail.status != ActionStatus::InProgress {
            // Abandoned (or ended at shutdown): keep the verdict, note the log.
            let _ = self.set_action(&id, i, j, detail);
            return;
        }
        // The outputs are indexed first: outputs the store does not know
        // fail the action rather than pass on unrecorded.
        let now = now_rfc3339();
        let indexed = if artifacts.is_empty() {
            Ok(())
        } else {
            self.store.batch(|b| {
                for (name, art) in &artifacts {
                    b.artifact(&art.id, art.files, art.bytes, &now)?;
                    if outcome.status == OutcomeStatus::Succeeded {
                        b.execution_artifact(&id, name, &art.id, &action_execution_id)?;
                    }
                }
                Ok(())
            })
        };
        if let Err(err) = indexed {
            tracing::error!(error = %err, "cannot index artifacts");
            outcome = ActionOutcome::failed(
                "JobFailed",
                format!("cannot record the output artifacts: {err}"),
            );
        }
        let Some(e) = self.execs.get_mut(&id) else {
            return;
        };
        detail.last_status_change = now_rfc3339();
        detail.summary = outcome.summary.clone();
        detail.error_details = outcome.error.clone();
        detail.external_execution_id = outcome.external_execution_id.clone();
        detail.test_report = outcome.test_report.clone();
        detail.phases = outcome.phases.clone();
        if outcome.status == OutcomeStatus::Succeeded {
            detail.status = ActionStatus::Succeeded;
            detail.output_variables = outcome.output_variables.clone();
            let ns = self
                .pipelines
                .get(&e.summary.pipeline_name)
                .and_then(|p| p.def.pipeline.stages[i].actions[j].namespace.clone());
            if let Some(ns) = ns {
                e.namespaces.insert(ns, outcome.output_variables.clone());
            }
            for (name, art) in &artifacts {
                e.artifacts.insert(name.clone(), art.id.clone());
                detail.output_artifacts.push(ArtifactRef {
                    name: name.clone(),
                    id: art.id.clone(),
                });
            }
            if let Some(rev) = &outcome.source_revision {
                e.summary
                    .source_revisions
                    .retain(|r| r.action_name != rev.action_name);
                e.summary.source_revisions.push(rev.clone());
            }
        } else {
            detail.status = ActionStatus::Failed;
        }
        if self.set_action(&id, i, j, detail).is_err() {
            return;
        }
        self.progress_stage(&id, i);
        if self.persist(&id).is_ok() {
            self.publish_exec(&id);
        }
    }

    pub(super) fn approval_timeout(&mut self, aeid: &str) {
        let found = self.execs.iter().find_map(|(id, e)| {
            e.stages.iter().enumerate().find_map(|(i, s)| {
                s.actions.iter().enumerate().find_map(|(j, a)| {
                    a.as_ref()
                        .filter(|a| {
                            a.action_execution_id == aeid && a.status == ActionStatus::InProgress
                        })
                        .map(|a| (id.clone(), i, j, a.clone()))
                })
            })
        });
        let Some((id, i, j, mut detail)) = found else {
            return;
        };
        detail.status = ActionStatus::Failed;
        detail.token = None;
        detail.last_status_change = now_rfc3339();
        let msg = "the approval timed out: nobody approved or rejected it in time".to_owned();
        detail.summary = Some(msg.clone());
        detail.error_details = Some(ErrorDetails {
            code: "ApprovalTimedOut".into(),
            message: msg,
        });
        if self.set_action(&id, i, j, detail).is_ok() {
            self.progress_stage(&id, i);
        }
    }
}
