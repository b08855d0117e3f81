//! What a client asks: requests named after CodePipeline's operations,
//! with who asks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::{CommitRange, SourceRevisionOverride};

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
    #[serde(rename_all = "camelCase")]
    ListPipelines {
        #[serde(default)]
        max_results: Option<u32>,
        #[serde(default)]
        next_token: Option<String>,
    },
    /// The pipeline's declaration as the backend has it (the TUI draws
    /// from this, never from the workspace's file). `None`: the current
    /// version.
    #[serde(rename_all = "camelCase")]
    GetPipeline {
        pipeline_name: String,
        #[serde(default)]
        pipeline_version: Option<u32>,
    },
    /// Replaces a pipeline's declaration (a new version; the workspace's
    /// CodePipeline JSON file is rewritten). Refused while an execution of
    /// it runs, and for pipelines declared in CloudFormation, Terraform or
    /// TOML (change those through their own files).
    #[serde(rename_all = "camelCase")]
    UpdatePipeline {
        pipeline: Box<crate::model::pipeline::Pipeline>,
    },
    /// A window of a log: `start_line` `None` is the last `limit` lines.
    #[serde(rename_all = "camelCase")]
    GetLogEvents {
        log: super::LogRef,
        start_line: Option<u64>,
        limit: u32,
    },
    /// Lines of a log that match (0-based line numbers, at most `limit`).
    #[serde(rename_all = "camelCase")]
    FilterLogEvents {
        log: super::LogRef,
        pattern: String,
        #[serde(default)]
        regex: bool,
        limit: Option<u32>,
    },
    #[serde(rename_all = "camelCase")]
    GetPipelineState { pipeline_name: String },
    #[serde(rename_all = "camelCase")]
    ListPipelineExecutions {
        pipeline_name: String,
        max_results: Option<u32>,
        #[serde(default)]
        next_token: Option<String>,
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
        #[serde(default)]
        max_results: Option<u32>,
        #[serde(default)]
        next_token: Option<String>,
    },
    /// The audit trail, newest first (CloudTrail's LookupEvents).
    #[serde(rename_all = "camelCase")]
    LookupEvents {
        max_results: Option<u32>,
        #[serde(default)]
        next_token: Option<String>,
    },
    /// Engine facts: workspace, pid, since when, what runs.
    EngineInfo,
    /// The workspace's environments: live version, traffic, health.
    ListEnvironments,
    /// A traffic flip during a deployment, else a redeploy of the previous
    /// release (CodeDeploy's meaning of rollback).
    #[serde(rename_all = "camelCase")]
    RollbackEnvironment { environment_name: String },
    /// Commits of an execution's source repository over a range (`git log
    /// FROM..TO`): what an approval lets through, what a retry would not
    /// release. Not a CodePipeline operation: a backend that cannot read
    /// the repository refuses it with `UnsupportedOperation` (AWS).
    #[serde(rename_all = "camelCase")]
    ListSourceCommits {
        pipeline_name: String,
        pipeline_execution_id: String,
        range: CommitRange,
        #[serde(default)]
        max_results: Option<u32>,
    },
    /// `flux reconcile` / `suspend` / `resume` of a Flux object of a
    /// kubernetes environment: `Kustomization/NAME` (in the environment's
    /// namespace) or `HelmRelease/NAMESPACE/NAME`.
    #[serde(rename_all = "camelCase")]
    FluxObject {
        environment_name: String,
        object: String,
        operation: FluxOperation,
    },
}

/// What [`Request::FluxObject`] does, as the flux CLI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FluxOperation {
    /// Ask the controller to reconcile now and wait until it has (refused
    /// on a suspended object).
    Reconcile,
    /// `spec.suspend = true`: the controller stops reconciling it.
    Suspend,
    /// `spec.suspend = false`.
    Resume,
}

impl FluxOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            FluxOperation::Reconcile => "reconcile",
            FluxOperation::Suspend => "suspend",
            FluxOperation::Resume => "resume",
        }
    }
}

impl Request {
    /// The first page of every pipeline.
    pub fn list_pipelines() -> Request {
        Request::ListPipelines {
            max_results: None,
            next_token: None,
        }
    }

    /// The first page of the newest `max` executions of a pipeline.
    pub fn list_executions(pipeline: &str, max: u32) -> Request {
        Request::ListPipelineExecutions {
            pipeline_name: pipeline.to_owned(),
            max_results: Some(max),
            next_token: None,
        }
    }

    /// The newest `max` audit events.
    pub fn lookup_events(max: u32) -> Request {
        Request::LookupEvents {
            max_results: Some(max),
            next_token: None,
        }
    }

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
            Request::ListPipelines { .. } => "ListPipelines",
            Request::GetPipeline { .. } => "GetPipeline",
            Request::UpdatePipeline { .. } => "UpdatePipeline",
            Request::GetLogEvents { .. } => "GetLogEvents",
            Request::FilterLogEvents { .. } => "FilterLogEvents",
            Request::GetPipelineState { .. } => "GetPipelineState",
            Request::ListPipelineExecutions { .. } => "ListPipelineExecutions",
            Request::GetPipelineExecution { .. } => "GetPipelineExecution",
            Request::ListActionExecutions { .. } => "ListActionExecutions",
            Request::LookupEvents { .. } => "LookupEvents",
            Request::EngineInfo => "EngineInfo",
            Request::ListEnvironments => "ListEnvironments",
            Request::RollbackEnvironment { .. } => "RollbackEnvironment",
            Request::ListSourceCommits { .. } => "ListSourceCommits",
            Request::FluxObject { operation, .. } => match operation {
                FluxOperation::Reconcile => "ReconcileFluxObject",
                FluxOperation::Suspend => "SuspendFluxObject",
                FluxOperation::Resume => "ResumeFluxObject",
            },
        }
    }

    /// Log reads open files: a backend answers them off its main task.
    pub fn is_log_read(&self) -> bool {
        matches!(
            self,
            Request::GetLogEvents { .. } | Request::FilterLogEvents { .. }
        )
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
                | Request::FluxObject { .. }
                | Request::UpdatePipeline { .. }
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
