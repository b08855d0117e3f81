//! The engine's API: requests in, replies or AWS-named errors out, events
//! published. The same types travel in-process (TUI, `pipedeck run`) and as
//! JSON over the workspace's socket (other terminals), so every client sees
//! one contract. Names follow CodePipeline's API (reference §2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::{
    ActionStatus, ApprovalResult, ErrorDetails, ExecutionStatus, ExecutionTrigger, ExecutionType,
    RetryMetadata, SourceRevision, SourceRevisionOverride, StageStatus, TestReport,
};

/// What a client asks. `identity` is who asks (the OS user or the
/// workspace's `identity`); the audit trail records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    #[serde(rename_all = "camelCase")]
    StartPipelineExecution {
        pipeline_name: String,
        #[serde(default)]
        variables: BTreeMap<String, String>,
        #[serde(default)]
        source_revisions: Vec<SourceRevisionOverride>,
    },
    #[serde(rename_all = "camelCase")]
    StopPipelineExecution {
        pipeline_name: String,
        /// `None`: the latest execution that can be stopped.
        pipeline_execution_id: Option<String>,
        #[serde(default)]
        abandon: bool,
        reason: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    RetryStageExecution {
        pipeline_name: String,
        stage_name: String,
        /// `None`: the latest execution in that stage.
        pipeline_execution_id: Option<String>,
        /// `FAILED_ACTIONS` or `ALL_ACTIONS`.
        retry_mode: String,
    },
    #[serde(rename_all = "camelCase")]
    PutApprovalResult {
        pipeline_name: String,
        stage_name: String,
        action_name: String,
        /// `None`: the token of the pending approval, looked up for the
        /// caller (what the CLI and TUI do; AWS requires it).
        token: Option<String>,
        /// `Approved` or `Rejected`.
        status: String,
        #[serde(default)]
        summary: String,
    },
    #[serde(rename_all = "camelCase")]
    RollbackStage {
        pipeline_name: String,
        stage_name: String,
        /// `None`: the most recent execution that succeeded in the stage.
        target_pipeline_execution_id: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    DisableStageTransition {
        pipeline_name: String,
        stage_name: String,
        reason: String,
    },
    #[serde(rename_all = "camelCase")]
    EnableStageTransition {
        pipeline_name: String,
        stage_name: String,
    },
    ListPipelines,
    #[serde(rename_all = "camelCase")]
    GetPipelineState {
        pipeline_name: String,
    },
    #[serde(rename_all = "camelCase")]
    ListPipelineExecutions {
        pipeline_name: String,
        max_results: Option<u32>,
    },
    #[serde(rename_all = "camelCase")]
    GetPipelineExecution {
        pipeline_name: String,
        pipeline_execution_id: String,
    },
    #[serde(rename_all = "camelCase")]
    ListActionExecutions {
        pipeline_name: String,
        pipeline_execution_id: String,
    },
    /// The audit trail, newest first (CloudTrail's LookupEvents).
    #[serde(rename_all = "camelCase")]
    LookupEvents {
        max_results: Option<u32>,
    },
    /// Engine facts: workspace, pid, since when, what runs.
    EngineInfo,
    /// The workspace's environments: live version, traffic, health.
    ListEnvironments,
    /// A traffic flip during a deployment, else a redeploy of the previous
    /// release (CodeDeploy's meaning of rollback).
    #[serde(rename_all = "camelCase")]
    RollbackEnvironment {
        environment_name: String,
    },
}

impl Request {
    /// The CloudTrail `eventName` of this request.
    pub fn event_name(&self) -> &'static str {
        match self {
            Request::StartPipelineExecution { .. } => "StartPipelineExecution",
            Request::StopPipelineExecution { .. } => "StopPipelineExecution",
            Request::RetryStageExecution { .. } => "RetryStageExecution",
            Request::PutApprovalResult { .. } => "PutApprovalResult",
            Request::RollbackStage { .. } => "RollbackStage",
            Request::DisableStageTransition { .. } => "DisableStageTransition",
            Request::EnableStageTransition { .. } => "EnableStageTransition",
            Request::ListPipelines => "ListPipelines",
            Request::GetPipelineState { .. } => "GetPipelineState",
            Request::ListPipelineExecutions { .. } => "ListPipelineExecutions",
            Request::GetPipelineExecution { .. } => "GetPipelineExecution",
            Request::ListActionExecutions { .. } => "ListActionExecutions",
            Request::LookupEvents { .. } => "LookupEvents",
            Request::EngineInfo => "EngineInfo",
            Request::ListEnvironments => "ListEnvironments",
            Request::RollbackEnvironment { .. } => "RollbackEnvironment",
        }
    }

    /// Reads are not audited (CloudTrail omits them by default too).
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Request::StartPipelineExecution { .. }
                | Request::StopPipelineExecution { .. }
                | Request::RetryStageExecution { .. }
                | Request::PutApprovalResult { .. }
                | Request::RollbackStage { .. }
                | Request::DisableStageTransition { .. }
                | Request::EnableStageTransition { .. }
                | Request::RollbackEnvironment { .. }
        )
    }
}

/// A request with who sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub identity: String,
    /// `pipedeck-cli`, `pipedeck-tui`, `engine` (the engine's own acts).
    pub user_agent: String,
    pub request: Request,
}

/// An AWS-named error: `code` is the exception name without the suffix
/// (`ApprovalAlreadyCompleted`, `StageNotRetryable`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

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
    Pipelines {
        pipelines: Vec<PipelineSummary>,
    },
    State {
        state: PipelineState,
    },
    Executions {
        executions: Vec<ExecutionSummary>,
    },
    Execution {
        execution: ExecutionSummary,
    },
    ActionExecutions {
        actions: Vec<ActionExecutionDetail>,
    },
    Info {
        info: EngineInfo,
    },
    Events {
        events: Vec<AuditEvent>,
    },
    Environments {
        environments: Vec<crate::env::manager::EnvironmentSummary>,
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
    pub phases: Vec<super::types::PhaseState>,
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

/// What the engine publishes; nothing polls it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EngineEvent {
    #[serde(rename_all = "camelCase")]
    ExecutionChanged { execution: ExecutionSummary },
    #[serde(rename_all = "camelCase")]
    StageChanged {
        pipeline_name: String,
        pipeline_execution_id: String,
        stage_name: String,
        status: StageStatus,
    },
    #[serde(rename_all = "camelCase")]
    ActionChanged { action: ActionExecutionDetail },
    /// New lines are on disk in an action's log, up to `lines` in all.
    #[serde(rename_all = "camelCase")]
    LogAppended {
        action_execution_id: String,
        lines: u64,
    },
    #[serde(rename_all = "camelCase")]
    TransitionChanged {
        pipeline_name: String,
        stage_name: String,
        state: TransitionState,
    },
    /// An approval waits for a human.
    #[serde(rename_all = "camelCase")]
    ApprovalPending { action: ActionExecutionDetail },
    #[serde(rename_all = "camelCase")]
    Audit { event: AuditEvent },
    /// An environment's deployment moved (step, traffic) or it logged an
    /// event (health, alarm, rollback): read it with ListEnvironments.
    #[serde(rename_all = "camelCase")]
    EnvironmentChanged { environment_name: String },
}

/// A CloudTrail-shaped record of one operation, whoever issued it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub event_version: String,
    pub event_id: String,
    pub event_time: String,
    /// `codepipeline.amazonaws.com` (for this engine's operations).
    pub event_source: String,
    pub event_name: String,
    pub aws_region: String,
    pub source_ip_address: String,
    pub user_agent: String,
    pub user_identity: UserIdentity,
    pub request_parameters: serde_json::Value,
    pub response_elements: Option<serde_json::Value>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub event_type: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `IAMUser` for a person, `AWSService` for the engine's own acts.
    #[serde(rename = "type")]
    pub identity_type: String,
    pub principal_id: String,
    pub arn: String,
    pub account_id: String,
    pub user_name: Option<String>,
    pub invoked_by: Option<String>,
}
