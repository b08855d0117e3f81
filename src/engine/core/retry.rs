//! Stage retry and rollback.

use std::collections::BTreeMap;

use super::state::{ExecRec, Position, StageRec};
use super::{Engine, api, short, store_error};
use crate::api::types::{
    ActionStatus, ExecutionStatus, ExecutionTrigger, ExecutionType, RetryMetadata, StageStatus,
    TriggerType,
};
use crate::api::{ApiError, ExecutionSummary, Reply};
use crate::model::pipeline::ExecutionMode;
use crate::store::now_rfc3339;

impl Engine {
    pub(super) fn retry(
        &mut self,
        pipeline: &str,
        stage: &str,
        id: Option<&str>,
        mode: &str,
        automatic: bool,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let i = ps.stage_index(stage)?;
        if !matches!(mode, "FAILED_ACTIONS" | "ALL_ACTIONS") {
            return Err(api(
                "ValidationException",
                format!("retryMode must be FAILED_ACTIONS or ALL_ACTIONS, not `{mode}`"),
            ));
        }
        let latest = ps.latest[i].clone();
        let id = match id {
            Some(id) => self
                .exec_of(pipeline, id)?
                .summary
                .pipeline_execution_id
                .clone(),
            None => latest.clone().ok_or_else(|| {
                api(
                    "StageNotRetryable",
                    format!("no execution has run in stage {stage} yet"),
                )
            })?,
        };
        if latest.as_deref() != Some(id.as_str()) {
            return Err(api(
                "NotLatestPipelineExecution",
                format!(
                    "execution {} is not the latest in stage {stage}: {} entered it since",
                    short(&id),
                    latest.as_deref().map_or("another", short)
                ),
            ));
        }
        let version = ps.version;
        let e = &self.execs[&id];
        if e.summary.pipeline_version != version {
            return Err(api(
                "StageNotRetryable",
                format!(
                    "the pipeline changed (version {} → {version}) since execution {} ran; start a new execution",
                    e.summary.pipeline_version,
                    short(&id)
                ),
            ));
        }
        let st = &e.stages[i];
        let failed: Vec<usize> = st
            .actions
            .iter()
            .enumerate()
            .filter(|(_, a)| {
                a.as_ref().is_some_and(|a| {
                    matches!(a.status, ActionStatus::Failed | ActionStatus::Abandoned)
                })
            })
            .map(|(j, _)| j)
            .collect();
        let running = st
            .actions
            .iter()
            .flatten()
            .any(|a| a.status == ActionStatus::InProgress);
        match st.status {
            Some(StageStatus::Skipped) => {
                return Err(api(
                    "StageNotRetryable",
                    format!("stage {stage} was skipped"),
                ));
            }
            Some(StageStatus::Failed | StageStatus::Stopped) => {}
            Some(StageStatus::InProgress) if mode == "FAILED_ACTIONS" && !failed.is_empty() => {}
            Some(StageStatus::InProgress | StageStatus::Stopping) => {
                return Err(api(
                    "StageNotRetryable",
                    format!(
                        "stage {stage} is in progress{}",
                        if failed.is_empty() {
                            " and no action in it has failed"
                        } else {
                            "; ALL_ACTIONS needs nothing in progress"
                        }
                    ),
                ));
            }
            _ => {
                return Err(api(
                    "StageNotRetryable",
                    format!(
                        "stage {stage} of execution {} has not failed (it is {})",
                        short(&id),
                        st.status.map_or("not started", |s| s.as_str())
                    ),
                ));
            }
        }
        if failed.is_empty() && mode == "FAILED_ACTIONS" {
            return Err(api(
                "StageNotRetryable",
                format!("no action failed in stage {stage}"),
            ));
        }
        if running && mode == "ALL_ACTIONS" {
            return Err(api(
                "StageNotRetryable",
                "ALL_ACTIONS needs nothing in progress in the stage",
            ));
        }
        if e.stop.is_some() && !e.terminal() {
            return Err(api("ConflictException", "the execution is stopping"));
        }
        let lock = &self.pipelines[pipeline].locks[i];
        let parallel = self.pipelines[pipeline].mode() == ExecutionMode::Parallel;
        if !parallel && lock.as_deref().is_some_and(|l| l != id) {
            return Err(api(
                "ConflictException",
                format!("stage {stage} is held by another execution"),
            ));
        }
        if let Some(ps) = self.pipelines.get_mut(pipeline)
            && !parallel
        {
            ps.locks[i] = Some(id.clone());
            for q in ps.inbound.iter_mut() {
                q.retain(|x| x != &id);
            }
        }
        if let Some(e) = self.execs.get_mut(&id) {
            e.summary.status = ExecutionStatus::InProgress;
            e.summary.status_summary = None;
            e.summary.stop_reason = None;
            e.stop = None;
            e.position = Position::InStage(i);
            let st = &mut e.stages[i];
            st.status = Some(StageStatus::InProgress);
            st.condition = None;
            if automatic {
                st.auto_retried = true;
                st.retry.auto_stage_retry_attempt += 1;
                st.retry.latest_retry_trigger = Some("AutomatedStageRetry".into());
            } else {
                st.auto_retried = false;
                st.retry.manual_stage_retry_attempt += 1;
                st.retry.latest_retry_trigger = Some("ManualStageRetry".into());
            }
            if mode == "ALL_ACTIONS" {
                for a in st.actions.iter_mut() {
                    *a = None;
                }
            } else {
                for j in &failed {
                    st.actions[*j] = None;
                }
            }
        }
        self.stage_changed(&id, i).map_err(store_error)?;
        self.publish_exec(&id);
        if mode == "FAILED_ACTIONS" {
            // The failed actions re-run now, even while siblings still run.
            for j in failed {
                self.start_action(&id, i, j);
            }
            let _ = self.persist(&id);
        } else {
            self.progress_stage(&id, i);
        }
        Ok(Reply::Retried {
            pipeline_execution_id: id,
        })
    }

    pub(super) fn rollback(
        &mut self,
        pipeline: &str,
        stage: &str,
        target: Option<&str>,
        trigger: TriggerType,
        by: &str,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let i = ps.stage_index(stage)?;
        let unable = |m: String| api("UnableToRollbackStage", m);
        if ps.mode() == ExecutionMode::Parallel {
            return Err(unable("rollback is not available in PARALLEL mode".into()));
        }
        if i == 0 {
            return Err(unable(format!(
                "{stage} is the source stage, which cannot roll back"
            )));
        }
        if let Some(l) = &ps.locks[i] {
            return Err(unable(format!(
                "stage {stage} is in progress (execution {}); roll back when it ends",
                short(l)
            )));
        }
        if let Some(latest) = ps.latest[i].as_ref().and_then(|id| self.execs.get(id))
            && latest.stages[i].status == Some(StageStatus::Skipped)
        {
            return Err(unable(format!(
                "stage {stage} was skipped in its latest execution"
            )));
        }
        let succeeded_here = |e: &ExecRec| {
            e.stages
                .get(i)
                .is_some_and(|s| s.status == Some(StageStatus::Succeeded))
                && e.summary.execution_type == ExecutionType::Standard
        };
        let target_rec = match target {
            Some(t) => {
                let e = self.exec_of(pipeline, t)?;
                if e.summary.execution_type == ExecutionType::Rollback {
                    return Err(unable(format!(
                        "execution {} is itself a rollback",
                        short(t)
                    )));
                }
                if !succeeded_here(&e) {
                    return Err(unable(format!(
                        "execution {} did not succeed in stage {stage}",
                        short(t)
                    )));
                }
                if e.summary.pipeline_version != ps.version {
                    return Err(api(
                        "PipelineExecutionOutdated",
                        format!(
                            "execution {} ran pipeline version {}, the pipeline is now version {}",
                            short(t),
                            e.summary.pipeline_version,
                            ps.version
                        ),
                    ));
                }
                e.into_owned()
            }
            None => {
                // The latest execution in the stage is the one to undo: the
                // target is the most recent success before it, in memory or
                // (older) in the store.
                let current = ps.latest[i].clone();
                let fits = |e: &ExecRec| {
                    Some(&e.summary.pipeline_execution_id) != current.as_ref()
                        && e.summary.pipeline_version == ps.version
                        && succeeded_here(e)
                };
                let in_memory = ps
                    .order
                    .iter()
                    .rev()
                    .filter_map(|id| self.execs.get(id))
                    .find(|e| fits(e));
                let newer_than = in_memory.map_or(i64::MIN, |e| e.seq);
                let stored = self
                    .store
                    .find_succeeded_in_stage(pipeline, stage, |row| {
                        if row.seq <= newer_than {
                            return Some(None);
                        }
                        if self.execs.contains_key(&row.id) {
                            return None;
                        }
                        let e: ExecRec = self.decode_exec(&row.id, &row.record).ok()?;
                        fits(&e).then_some(Some(e))
                    })
                    .map_err(|e| api("InternalError", e.to_string()))?
                    .flatten();
                stored.or_else(|| in_memory.cloned()).ok_or_else(|| {
                    unable(format!(
                        "no earlier execution succeeded in stage {stage} under pipeline version {}",
                        ps.version
                    ))
                })?
            }
        };
        let t = &target_rec;
        let target = t.summary.pipeline_execution_id.clone();
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_rfc3339();
        let seq = ps
            .order
            .last()
            .and_then(|l| self.execs.get(l))
            .map_or(1, |e| e.seq + 1);
        let mut rec = ExecRec {
            summary: ExecutionSummary {
                pipeline_execution_id: id.clone(),
                status: ExecutionStatus::InProgress,
                status_summary: Some(format!("rollback of stage {stage} to execution {target}")),
                start_time: now.clone(),
                last_update_time: now,
                trigger: ExecutionTrigger {
                    trigger_type: trigger,
                    trigger_detail: by.to_owned(),
                },
                execution_type: ExecutionType::Rollback,
                rollback_target: Some(target.clone()),
                stop_reason: None,
                current_stage: None,
                ..t.summary.clone()
            },
            seq,
            stages: t
                .stages
                .iter()
                .map(|s| StageRec {
                    status: None,
                    retry: RetryMetadata::default(),
                    auto_retried: false,
                    entry_seq: 0,
                    actions: vec![None; s.actions.len()],
                    condition: None,
                    name: s.name.clone(),
                })
                .collect(),
            artifacts: t.artifacts.clone(),
            namespaces: t.namespaces.clone(),
            position: Position::Waiting(i),
            stop: None,
            source_overrides: BTreeMap::new(),
            attempts: BTreeMap::new(),
            stages_apart: false,
        };
        rec.summary.pipeline_version = ps.version;
        self.execs.insert(id.clone(), rec);
        if let Some(ps) = self.pipelines.get_mut(pipeline) {
            ps.order.push(id.clone());
        }
        self.save_new(&id)?;
        self.publish_exec(&id);
        // The stage is free (checked above): the rollback enters ahead of
        // any waiter.
        self.enter_stage(&id, i);
        Ok(Reply::RolledBack {
            pipeline_execution_id: id,
        })
    }
}
