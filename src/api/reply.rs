//! What the backend answers: replies and the shapes they carry, as
//! CodePipeline's API names them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::env::EnvironmentSummary;
use super::event::AuditEvent;
use super::types::{
    ActionStatus, ApprovalResult, ErrorDetails, ExecutionStatus, ExecutionTrigger, ExecutionType,
    PhaseState, RetryMetadata, SourceRevision, StageStatus, TestReport,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reply {
    #[serde(rename_all = "camelCase")]
    Started {
        pipeline_execution_id: String,
    },
    #[serde(rename_all = "camelCase")]
    Stopped {
        pipeline_execution_id: String,
    },
    #[serde(rename_all = "camelCase")]
    Retried {
        pipeline_execution_id: String,
    },
    #[serde(rename_all = "camelCase")]
    ApprovalRecorded {
        approved_at: String,
    },
    #[serde(rename_all = "camelCase")]
    RolledBack {
        pipeline_execution_id: String,
    },
    Done,
    #[serde(rename_all = "camelCase")]
    Pipelines {
        pipelines: Vec<PipelineSummary>,
        /// More remain: pass it back for the next page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
    Pipeline {
        pipeline: Box<crate::model::pipeline::Pipeline>,
        metadata: PipelineMetadata,
    },
    LogEvents {
        page: super::LogPage,
    },
    #[serde(rename_all = "camelCase")]
    LogMatches {
        lines: Vec<u64>,
        /// The matches were cut at the request's limit.
        truncated: bool,
    },
    State {
        state: PipelineState,
    },
    #[serde(rename_all = "camelCase")]
    Executions {
        executions: Vec<ExecutionSummary>,
        /// More remain: pass it back for the next page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
    Execution {
        execution: ExecutionSummary,
    },
    #[serde(rename_all = "camelCase")]
    ActionExecutions {
        actions: Vec<ActionExecutionDetail>,
        /// More remain: pass it back for the next page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
    Info {
        info: EngineInfo,
    },
    #[serde(rename_all = "camelCase")]
    Events {
        events: Vec<AuditEvent>,
        /// More remain: pass it back for the next page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
    Environments {
        environments: Vec<EnvironmentSummary>,
    },
    SourceCommits {
        commits: super::types::SourceCommits,
    },
    /// An operation's outcome in words.
    Message {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineInfo {
    pub workspace: String,
    pub workspace_root: String,
    pub pid: u32,
    pub started: String,
    pub version: String,
    pub running_executions: u32,
    /// Why the store refuses writes (`disk full: …`) while it does; the
    /// engine keeps writing what it refused until the store takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSummary {
    pub name: String,
    pub version: u32,
    pub pipeline_type: String,
    pub execution_mode: String,
    pub latest_execution: Option<ExecutionSummary>,
    pub pending_approvals: u32,
}

/// `GetPipelineState`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineState {
    pub pipeline_name: String,
    pub pipeline_version: u32,
    pub stage_states: Vec<StageState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageState {
    pub stage_name: String,
    /// Waiting in front of this stage (one in SUPERSEDED, a queue in QUEUED).
    pub inbound_executions: Vec<InboundExecution>,
    pub inbound_transition_state: TransitionState,
    pub latest_execution: Option<StageExecution>,
    pub action_states: Vec<ActionState>,
    pub retry_stage_metadata: RetryMetadata,
    /// The latest condition evaluated for the latest execution here.
    pub condition: Option<ConditionState>,
}

/// A `beforeEntry` / `onSuccess` / `onFailure` evaluation and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionState {
    /// `BEFORE_ENTRY`, `ON_SUCCESS` or `ON_FAILURE`.
    pub condition_type: String,
    /// `InProgress`, `Succeeded` or `Failed`.
    pub status: String,
    /// The condition's result when it failed (`FAIL`, `SKIP`, `ROLLBACK`).
    pub result: Option<String>,
    pub rules: Vec<RuleState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleState {
    pub rule_name: String,
    pub passed: bool,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundExecution {
    pub pipeline_execution_id: String,
    pub status: ExecutionStatus,
    #[serde(rename = "type")]
    pub execution_type: ExecutionType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitionState {
    pub enabled: bool,
    pub last_changed_by: Option<String>,
    pub last_changed_at: Option<String>,
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageExecution {
    pub pipeline_execution_id: String,
    pub status: StageStatus,
    #[serde(rename = "type")]
    pub execution_type: ExecutionType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionState {
    pub action_name: String,
    pub latest_execution: Option<ActionExecutionDetail>,
}

/// One action execution: `ListActionExecutions` and
/// `actionStates[].latestExecution` in one shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionExecutionDetail {
    pub action_execution_id: String,
    pub pipeline_execution_id: String,
    pub stage_name: String,
    pub action_name: String,
    /// 1 for the first run in this execution, +1 per retry.
    pub attempt: u32,
    pub status: ActionStatus,
    pub summary: Option<String>,
    pub start_time: String,
    pub last_status_change: String,
    /// Present while an approval waits.
    pub token: Option<String>,
    pub external_execution_id: Option<String>,
    pub error_details: Option<ErrorDetails>,
    pub resolved_configuration: BTreeMap<String, String>,
    pub input_artifacts: Vec<ArtifactRef>,
    pub output_artifacts: Vec<ArtifactRef>,
    pub output_variables: BTreeMap<String, String>,
    pub test_report: Option<TestReport>,
    pub approval: Option<ApprovalInfo>,
    /// Lines in the action's log so far.
    pub log_lines: u64,
    /// Build actions: each buildspec phase's status and duration.
    #[serde(default)]
    pub phases: Vec<PhaseState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRef {
    pub name: String,
    /// The content address in the workspace's artifact store.
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalInfo {
    pub custom_data: Option<String>,
    pub external_entity_link: Option<String>,
    /// RFC 3339: when the approval times out.
    pub expires: String,
    pub result: Option<ApprovalResult>,
}

/// `PipelineExecutionSummary` / `GetPipelineExecution`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    pub pipeline_execution_id: String,
    pub pipeline_name: String,
    pub pipeline_version: u32,
    pub status: ExecutionStatus,
    pub status_summary: Option<String>,
    pub start_time: String,
    pub last_update_time: String,
    pub trigger: ExecutionTrigger,
    pub execution_mode: String,
    pub execution_type: ExecutionType,
    pub rollback_target: Option<String>,
    pub source_revisions: Vec<SourceRevision>,
    pub variables: BTreeMap<String, String>,
    pub stop_reason: Option<String>,
    /// Where it is: the stage it runs in or waits in front of.
    pub current_stage: Option<String>,
}

/// GetPipeline's `metadata`: which version this is and when it was
/// stored (`updated`), and when the pipeline's first version was
/// (`created`), RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineMetadata {
    pub pipeline_name: String,
    pub pipeline_version: u32,
    /// The version the engine runs new executions with.
    pub current_version: u32,
    pub created: String,
    pub updated: String,
}
