//! What a backend publishes; nothing polls it.

use serde::{Deserialize, Serialize};

use super::reply::{ActionExecutionDetail, ExecutionSummary, TransitionState};
use super::types::StageStatus;

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
    /// A pipeline's declaration changed (UpdatePipeline): read it again.
    #[serde(rename_all = "camelCase")]
    PipelineUpdated {
        pipeline_name: String,
        pipeline_version: u32,
    },
    /// The backend's own condition changed (AWS: an account throttled,
    /// unreachable, or back to normal). `description` replaces what
    /// `Backend::describe` said; `note` is what the footer says while
    /// updates are slow or stale, `None` once they are back to normal.
    #[serde(rename_all = "camelCase")]
    BackendStatus {
        description: String,
        note: Option<String>,
    },
    /// The subscriber fell behind and `missed` events were dropped: read
    /// everything again.
    #[serde(rename_all = "camelCase")]
    Resync { missed: u64 },
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
