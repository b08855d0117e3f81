//! What the engine holds about each pipeline and execution, and how an
//! execution that was running when the engine stopped is recovered.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::INTERRUPTED;
use crate::api::types::{ActionStatus, ErrorDetails, ExecutionStatus, RetryMetadata, StageStatus};
use crate::api::{
    ActionExecutionDetail, ApiError, ConditionState, ExecutionSummary, TransitionState,
};
use crate::config::workspace::WorkspacePipeline;
use crate::engine::vars::Scope;
use crate::model::pipeline::ExecutionMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Position {
    /// Waiting in front of stage `i` (its inbound execution).
    Waiting(usize),
    /// Holds (or, in PARALLEL, runs in) stage `i`.
    InStage(usize),
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum StopMode {
    Wait,
    Abandon,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StageRec {
    pub(super) name: String,
    pub(super) status: Option<StageStatus>,
    pub(super) retry: RetryMetadata,
    /// The automatic retry was used for the current failure.
    pub(super) auto_retried: bool,
    /// Order in which executions entered this stage (for "latest").
    pub(super) entry_seq: u64,
    /// The latest attempt of each action in this stage run.
    pub(super) actions: Vec<Option<ActionExecutionDetail>>,
    pub(super) condition: Option<ConditionState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ExecRec {
    pub(super) summary: ExecutionSummary,
    pub(super) seq: i64,
    pub(super) stages: Vec<StageRec>,
    /// Artifact name → content id.
    pub(super) artifacts: BTreeMap<String, String>,
    /// Action namespace → its output variables.
    pub(super) namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub(super) position: Position,
    pub(super) stop: Option<StopMode>,
    /// Source action name → the commit to fetch.
    pub(super) source_overrides: BTreeMap<String, String>,
    /// Attempts so far per `stage/action` (retries count up).
    #[serde(default)]
    pub(super) attempts: BTreeMap<String, u32>,
    /// Only in the store: the entered stages are in rows of their own
    /// (`stage_executions`), so the execution's row does not repeat every
    /// action's detail each time it is written. Never set in memory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) stages_apart: bool,
}

impl ExecRec {
    pub(super) fn terminal(&self) -> bool {
        self.summary.status.is_terminal()
    }

    /// The execution's own row: every entered stage without its actions'
    /// details (their slots stay, empty), which its stage row holds.
    pub(super) fn stored(&self) -> ExecRec {
        ExecRec {
            summary: self.summary.clone(),
            seq: self.seq,
            stages: self
                .stages
                .iter()
                .map(|s| StageRec {
                    name: s.name.clone(),
                    status: s.status,
                    retry: s.retry.clone(),
                    auto_retried: s.auto_retried,
                    entry_seq: s.entry_seq,
                    actions: if s.status.is_some() {
                        vec![None; s.actions.len()]
                    } else {
                        s.actions.clone()
                    },
                    condition: s.condition.clone(),
                })
                .collect(),
            artifacts: self.artifacts.clone(),
            namespaces: self.namespaces.clone(),
            position: self.position,
            stop: self.stop,
            source_overrides: self.source_overrides.clone(),
            attempts: self.attempts.clone(),
            stages_apart: true,
        }
    }
}

pub(super) struct PState {
    pub(super) def: Arc<WorkspacePipeline>,
    pub(super) version: u32,
    pub(super) locks: Vec<Option<String>>,
    /// The execution that most recently entered each stage.
    pub(super) latest: Vec<Option<String>>,
    pub(super) inbound: Vec<VecDeque<String>>,
    pub(super) transitions: Vec<TransitionState>,
    /// Execution ids, oldest first.
    pub(super) order: Vec<String>,
}

impl PState {
    pub(super) fn mode(&self) -> ExecutionMode {
        self.def.pipeline.execution_mode
    }
    pub(super) fn stage_index(&self, name: &str) -> Result<usize, ApiError> {
        self.def
            .pipeline
            .stages
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| {
                ApiError::new(
                    "StageNotFound",
                    format!(
                        "pipeline {} has no stage `{name}` (stages: {})",
                        self.def.pipeline.name,
                        self.def
                            .pipeline
                            .stages
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }
}

/// A running action's handle.
pub(super) struct Running {
    pub(super) stop: Arc<watch::Sender<bool>>,
}

/// Marks whatever was running in `rec` as interrupted (Failed).
pub(super) fn recover_interrupted(rec: &mut ExecRec, now: &str) {
    for st in rec.stages.iter_mut() {
        let mut touched = false;
        for a in st.actions.iter_mut().flatten() {
            if a.status == ActionStatus::InProgress {
                a.status = ActionStatus::Failed;
                a.token = None;
                a.summary = Some(INTERRUPTED.into());
                a.error_details = Some(ErrorDetails {
                    code: "JobFailed".into(),
                    message: INTERRUPTED.into(),
                });
                a.last_status_change = now.to_owned();
                touched = true;
            }
        }
        if matches!(
            st.status,
            Some(StageStatus::InProgress | StageStatus::Stopping)
        ) || touched
        {
            st.status = Some(if st.status == Some(StageStatus::Stopping) {
                StageStatus::Stopped
            } else {
                StageStatus::Failed
            });
        }
    }
    rec.summary.status = if rec.summary.status == ExecutionStatus::Stopping {
        ExecutionStatus::Stopped
    } else {
        ExecutionStatus::Failed
    };
    rec.summary.status_summary = Some(INTERRUPTED.into());
    rec.summary.last_update_time = now.to_owned();
    rec.stop = None;
    if let Position::Waiting(_) = rec.position {
        rec.position = Position::Done;
    }
}

pub(super) fn scope_of(e: &ExecRec) -> Scope {
    let mut scope: Scope = e.namespaces.clone();
    scope.insert(
        "codepipeline".into(),
        BTreeMap::from([(
            "PipelineExecutionId".to_owned(),
            e.summary.pipeline_execution_id.clone(),
        )]),
    );
    scope.insert("variables".into(), e.summary.variables.clone());
    scope
}
