//! Operations on running executions: approvals, stop and transitions.

use super::state::{Position, StopMode};
use super::{Engine, api, store_error};
use crate::api::types::{ActionStatus, ApprovalResult, ErrorDetails, ExecutionStatus, StageStatus};
use crate::api::{ActionExecutionDetail, ApiError, EngineEvent, Reply, TransitionState};
use crate::store::now_rfc3339;

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn put_approval(
        &mut self,
        pipeline: &str,
        stage: &str,
        action: &str,
        token: Option<&str>,
        status: &str,
        summary: &str,
        by: &str,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let i = ps.stage_index(stage)?;
        let Some(j) = ps.def.pipeline.stages[i]
            .actions
            .iter()
            .position(|a| a.name == action)
        else {
            return Err(api(
                "ActionNotFound",
                format!("stage {stage} of {pipeline} has no action `{action}`"),
            ));
        };
        if ps.def.pipeline.stages[i].actions[j].action_type_id.category != "Approval" {
            return Err(api(
                "InvalidApprovalToken",
                format!("{stage}.{action} is not a manual approval"),
            ));
        }
        if !matches!(status, "Approved" | "Rejected") {
            return Err(api(
                "ValidationException",
                format!("status must be Approved or Rejected, not `{status}`"),
            ));
        }
        if summary.chars().count() > 512 {
            return Err(api(
                "ValidationException",
                "the summary is longer than 512 characters",
            ));
        }
        // The pending approval of this action, in any execution.
        let pending = ps.order.iter().rev().find_map(|id| {
            let a = self.execs.get(id)?.stages[i].actions[j].as_ref()?;
            (a.status == ActionStatus::InProgress && a.token.is_some())
                .then(|| (id.clone(), a.clone()))
        });
        let Some((id, mut detail)) = pending else {
            // Answered already, or never asked? The newest decision, in
            // memory or (an older execution's) in the store.
            let in_memory = ps.order.iter().rev().find_map(|id| {
                let e = self.execs.get(id)?;
                e.stages[i].actions[j]
                    .as_ref()
                    .and_then(|a| a.approval.as_ref()?.result.clone())
                    .map(|r| (e.seq, r))
            });
            let stored = self
                .store
                .latest_approval_result(pipeline, stage, action)
                .map_err(|e| api("InternalError", e.to_string()))?
                .map(|(seq, [status, summary, by, at])| {
                    (
                        seq,
                        ApprovalResult {
                            status,
                            summary,
                            by,
                            at,
                        },
                    )
                });
            let latest = match (in_memory, stored) {
                (Some(m), Some(s)) if s.0 > m.0 => Some(s.1),
                (Some(m), _) => Some(m.1),
                (None, s) => s.map(|s| s.1),
            };
            return Err(match latest {
                Some(r) if token.is_none() => api(
                    "ApprovalAlreadyCompleted",
                    format!(
                        "{stage}.{action} was already {} by {} at {}",
                        r.status.to_lowercase(),
                        r.by,
                        r.at
                    ),
                ),
                _ => api(
                    "InvalidApprovalToken",
                    format!("{stage}.{action} has no pending approval"),
                ),
            });
        };
        if let Some(t) = token
            && detail.token.as_deref() != Some(t)
        {
            return Err(api(
                "InvalidApprovalToken",
                format!("the token does not match the pending approval of {stage}.{action}"),
            ));
        }
        let now = now_rfc3339();
        detail.token = None;
        detail.last_status_change = now.clone();
        if let Some(ap) = detail.approval.as_mut() {
            ap.result = Some(ApprovalResult {
                status: status.to_owned(),
                summary: summary.to_owned(),
                by: by.to_owned(),
                at: now.clone(),
            });
        }
        if status == "Approved" {
            detail.status = ActionStatus::Succeeded;
            detail.summary = Some(if summary.is_empty() {
                format!("Approved by {by}")
            } else {
                format!("Approved by {by}: {summary}")
            });
        } else {
            detail.status = ActionStatus::Failed;
            let msg = if summary.is_empty() {
                format!("Rejected by {by}")
            } else {
                format!("Rejected by {by}: {summary}")
            };
            detail.summary = Some(msg.clone());
            detail.error_details = Some(ErrorDetails {
                code: "ApprovalRejected".into(),
                message: msg,
            });
        }
        self.set_action(&id, i, j, detail).map_err(store_error)?;
        self.progress_stage(&id, i);
        Ok(Reply::ApprovalRecorded { approved_at: now })
    }

    pub(super) fn stop(
        &mut self,
        pipeline: &str,
        id: Option<&str>,
        abandon: bool,
        reason: &Option<String>,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        if let Some(r) = reason
            && r.chars().count() > 200
        {
            return Err(api(
                "ValidationException",
                "the reason is longer than 200 characters",
            ));
        }
        let id = match id {
            Some(id) => self
                .exec_of(pipeline, id)?
                .summary
                .pipeline_execution_id
                .clone(),
            None => ps
                .order
                .iter()
                .rev()
                .find(|x| self.execs.get(*x).is_some_and(|e| !e.terminal()))
                .cloned()
                .ok_or_else(|| {
                    api(
                        "PipelineExecutionNotStoppable",
                        format!("pipeline {pipeline} has no execution in progress"),
                    )
                })?,
        };
        // Every unfinished execution is in memory; one read from the store
        // has finished.
        let (status, stop, position) = {
            let e = self.exec_of(pipeline, &id)?;
            (e.summary.status, e.stop, e.position)
        };
        if status.is_terminal() || !self.execs.contains_key(&id) {
            return Err(api(
                "PipelineExecutionNotStoppable",
                format!("execution {id} is already {}", status.as_str()),
            ));
        }
        match (stop, abandon) {
            (Some(StopMode::Abandon), _) | (Some(StopMode::Wait), false) => {
                return Err(api(
                    "DuplicatedStopRequest",
                    format!("execution {id} is already stopping"),
                ));
            }
            _ => {}
        }
        if let Some(e) = self.execs.get_mut(&id) {
            e.stop = Some(if abandon {
                StopMode::Abandon
            } else {
                StopMode::Wait
            });
            e.summary.stop_reason = reason.clone();
        }
        match position {
            Position::InStage(i) => {
                // Approvals wait for a person, not for work: they end now.
                // With abandon, so does everything else.
                let ids: Vec<(usize, ActionExecutionDetail)> = self.execs[&id].stages[i]
                    .actions
                    .iter()
                    .enumerate()
                    .filter_map(|(j, a)| Some((j, a.clone()?)))
                    .filter(|(_, a)| {
                        a.status == ActionStatus::InProgress && (abandon || a.token.is_some())
                    })
                    .collect();
                for (j, mut a) in ids {
                    if let Some(r) = self.running.get(&a.action_execution_id) {
                        let _ = r.stop.send(true);
                    }
                    a.status = ActionStatus::Abandoned;
                    a.token = None;
                    a.last_status_change = now_rfc3339();
                    a.summary = Some(format!(
                        "abandoned: the execution was stopped{}",
                        reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ));
                    self.set_action(&id, i, j, a).map_err(store_error)?;
                }
                let still = self.execs[&id].stages[i]
                    .actions
                    .iter()
                    .flatten()
                    .any(|a| a.status == ActionStatus::InProgress);
                if still {
                    if let Some(e) = self.execs.get_mut(&id) {
                        e.summary.status = ExecutionStatus::Stopping;
                        e.stages[i].status = Some(StageStatus::Stopping);
                    }
                    self.stage_changed(&id, i).map_err(store_error)?;
                    self.publish_exec(&id);
                } else {
                    self.progress_stage(&id, i);
                }
            }
            _ => self
                .finish_exec(&id, ExecutionStatus::Stopped, None)
                .map_err(store_error)?,
        }
        Ok(Reply::Stopped {
            pipeline_execution_id: id,
        })
    }

    pub(super) fn set_transition(
        &mut self,
        pipeline: &str,
        stage: &str,
        disable: Option<&String>,
        by: &str,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let i = ps.stage_index(stage)?;
        if i == 0 {
            return Err(api(
                "ValidationException",
                format!("{stage} is the first stage: it has no inbound transition"),
            ));
        }
        if let Some(reason) = disable {
            let ok = !reason.is_empty()
                && reason.chars().count() <= 300
                && reason
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!@ ().*?-".contains(c));
            if !ok {
                return Err(api(
                    "ValidationException",
                    "the reason must be 1 to 300 characters of letters, digits, spaces and !@().*?-",
                ));
            }
        }
        let state = TransitionState {
            enabled: disable.is_none(),
            last_changed_by: Some(by.to_owned()),
            last_changed_at: Some(now_rfc3339()),
            disabled_reason: disable.cloned(),
        };
        // Stored first: a change the store refused is neither made nor announced.
        if let Err(e) = self.store.batch(|b| b.transition(pipeline, stage, &state)) {
            return Err(api(
                "InternalError",
                format!("the transition change could not be recorded: {e}"),
            ));
        }
        if let Some(ps) = self.pipelines.get_mut(pipeline) {
            ps.transitions[i] = state.clone();
        }
        let _ = self.events.send(EngineEvent::TransitionChanged {
            pipeline_name: pipeline.to_owned(),
            stage_name: stage.to_owned(),
            state,
        });
        self.advance(pipeline);
        Ok(Reply::Done)
    }
}
