//! Read requests: pipelines, their state and executions.

use std::borrow::Cow;

use super::state::{ExecRec, PState};
use super::{Engine, api};
use crate::api::types::ActionStatus;
use crate::api::{
    ActionExecutionDetail, ActionState, ApiError, InboundExecution, PipelineState, PipelineSummary,
    StageExecution, StageState,
};

impl Engine {
    pub(super) fn pipeline(&self, name: &str) -> Result<&PState, ApiError> {
        self.pipelines.get(name).ok_or_else(|| {
            api(
                "PipelineNotFound",
                format!(
                    "no pipeline `{name}` in workspace {} (pipelines: {})",
                    self.ws.name,
                    self.pipelines
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// Execution `id` of `pipeline`: the one in memory, else the store's
    /// record (an older, finished execution).
    pub(super) fn exec_of(&self, pipeline: &str, id: &str) -> Result<Cow<'_, ExecRec>, ApiError> {
        self.pipeline(pipeline)?;
        let found = match self.execs.get(id) {
            Some(e) => Some(Cow::Borrowed(e)),
            None => self.stored_exec(id)?.map(Cow::Owned),
        };
        found
            .filter(|e| e.summary.pipeline_name == pipeline)
            .ok_or_else(|| {
                api(
                    "PipelineExecutionNotFound",
                    format!("pipeline {pipeline} has no execution {id}"),
                )
            })
    }

    /// The store's record of execution `id`, decoded.
    pub(super) fn stored_exec(&self, id: &str) -> Result<Option<ExecRec>, ApiError> {
        let internal = |e: crate::store::StoreError| api("InternalError", e.to_string());
        match self.store.execution(id).map_err(internal)? {
            Some(row) => self
                .decode_exec(id, &row.record)
                .map(Some)
                .map_err(internal),
            None => Ok(None),
        }
    }

    /// Execution `id`'s stored row, decoded, with its entered stages from
    /// their own rows when it was written apart from them
    /// ([`ExecRec::stored`]).
    pub(super) fn decode_exec(
        &self,
        id: &str,
        record: &str,
    ) -> Result<ExecRec, crate::store::StoreError> {
        let mut rec: ExecRec = self.store.decode(record)?;
        if rec.stages_apart {
            for (stage, text) in self.store.stage_records(id)? {
                // A stage not entered (any more) keeps what the row says.
                if let Some(s) = rec
                    .stages
                    .iter_mut()
                    .find(|s| s.name == stage && s.status.is_some())
                {
                    *s = self.store.decode(&text)?;
                }
            }
            rec.stages_apart = false;
        }
        Ok(rec)
    }

    pub(super) fn list_pipelines(&self) -> Vec<PipelineSummary> {
        self.pipelines
            .iter()
            .map(|(name, ps)| PipelineSummary {
                name: name.clone(),
                version: ps.version,
                pipeline_type: format!("{:?}", ps.def.pipeline.effective_type()),
                execution_mode: ps.mode().as_str().to_owned(),
                latest_execution: ps
                    .order
                    .last()
                    .and_then(|id| self.execs.get(id))
                    .map(|e| e.summary.clone()),
                pending_approvals: ps
                    .order
                    .iter()
                    .filter_map(|id| self.execs.get(id))
                    .flat_map(|e| e.stages.iter().flat_map(|s| s.actions.iter().flatten()))
                    .filter(|a| a.token.is_some() && a.status == ActionStatus::InProgress)
                    .count() as u32,
            })
            .collect()
    }

    pub(super) fn state(&self, pipeline: &str) -> Result<PipelineState, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let stage_states = ps
            .def
            .pipeline
            .stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let latest = ps.latest[i].as_ref().and_then(|id| self.execs.get(id));
                let rec = latest.map(|e| &e.stages[i]);
                StageState {
                    stage_name: stage.name.clone(),
                    inbound_executions: ps.inbound[i]
                        .iter()
                        .filter_map(|id| self.execs.get(id))
                        .map(|e| InboundExecution {
                            pipeline_execution_id: e.summary.pipeline_execution_id.clone(),
                            status: e.summary.status,
                            execution_type: e.summary.execution_type,
                        })
                        .collect(),
                    inbound_transition_state: ps.transitions[i].clone(),
                    latest_execution: latest.and_then(|e| {
                        Some(StageExecution {
                            pipeline_execution_id: e.summary.pipeline_execution_id.clone(),
                            status: e.stages[i].status?,
                            execution_type: e.summary.execution_type,
                        })
                    }),
                    action_states: stage
                        .actions
                        .iter()
                        .enumerate()
                        .map(|(j, a)| ActionState {
                            action_name: a.name.clone(),
                            latest_execution: rec.and_then(|r| r.actions.get(j).cloned().flatten()),
                        })
                        .collect(),
                    retry_stage_metadata: rec.map(|r| r.retry.clone()).unwrap_or_default(),
                    condition: rec.and_then(|r| r.condition.clone()),
                }
            })
            .collect();
        Ok(PipelineState {
            pipeline_name: pipeline.to_owned(),
            pipeline_version: ps.version,
            stage_states,
        })
    }

    /// The latest attempt of every action of an execution, newest first:
    /// the store's record, with the in-memory one for what still runs.
    pub(super) fn action_executions(
        &self,
        pipeline: &str,
        id: &str,
    ) -> Result<Vec<ActionExecutionDetail>, ApiError> {
        self.exec_of(pipeline, id)?;
        let mut actions = self
            .store
            .action_executions(id)
            .map_err(|e| api("InternalError", e.to_string()))?;
        // The in-memory record is newer for running actions.
        if let Some(rec) = self.execs.get(id) {
            for a in rec.stages.iter().flat_map(|s| s.actions.iter().flatten()) {
                if let Some(slot) = actions
                    .iter_mut()
                    .find(|x| x.action_execution_id == a.action_execution_id)
                {
                    *slot = a.clone();
                }
            }
        }
        actions.reverse();
        Ok(actions)
    }
}
