//! The engine's vocabulary, named as CodePipeline names it (reference §1
//! "Statuses" and §2): statuses, execution types, triggers and the records
//! the store keeps. Shared by the engine, the store, the socket protocol and
//! the CLI, so every client sees the same words AWS uses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Pipeline execution status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExecutionStatus {
    InProgress,
    Stopping,
    Stopped,
    Succeeded,
    Failed,
    Superseded,
    Cancelled,
}

impl ExecutionStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            ExecutionStatus::InProgress | ExecutionStatus::Stopping
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::InProgress => "InProgress",
            ExecutionStatus::Stopping => "Stopping",
            ExecutionStatus::Stopped => "Stopped",
            ExecutionStatus::Succeeded => "Succeeded",
            ExecutionStatus::Failed => "Failed",
            ExecutionStatus::Superseded => "Superseded",
            ExecutionStatus::Cancelled => "Cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "InProgress" => ExecutionStatus::InProgress,
            "Stopping" => ExecutionStatus::Stopping,
            "Stopped" => ExecutionStatus::Stopped,
            "Succeeded" => ExecutionStatus::Succeeded,
            "Failed" => ExecutionStatus::Failed,
            "Superseded" => ExecutionStatus::Superseded,
            "Cancelled" => ExecutionStatus::Cancelled,
            _ => return None,
        })
    }
}

/// Stage execution status: the execution set plus Skipped, minus Superseded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StageStatus {
    InProgress,
    Stopping,
    Stopped,
    Succeeded,
    Failed,
    Cancelled,
    Skipped,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::InProgress => "InProgress",
            StageStatus::Stopping => "Stopping",
            StageStatus::Stopped => "Stopped",
            StageStatus::Succeeded => "Succeeded",
            StageStatus::Failed => "Failed",
            StageStatus::Cancelled => "Cancelled",
            StageStatus::Skipped => "Skipped",
        }
    }
}

/// Action execution status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActionStatus {
    InProgress,
    Succeeded,
    Failed,
    Abandoned,
}

impl ActionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::InProgress => "InProgress",
            ActionStatus::Succeeded => "Succeeded",
            ActionStatus::Failed => "Failed",
            ActionStatus::Abandoned => "Abandoned",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionType {
    Standard,
    Rollback,
}

impl ExecutionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionType::Standard => "STANDARD",
            ExecutionType::Rollback => "ROLLBACK",
        }
    }
}

/// `trigger.triggerType` as AWS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerType {
    StartPipelineExecution,
    PollForSourceChanges,
    Webhook,
    CloudWatchEvent,
    ManualRollback,
    AutomatedRollback,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionTrigger {
    pub trigger_type: TriggerType,
    /// Who or what: the user for a manual start, the commit for a push.
    pub trigger_detail: String,
}

/// `sourceRevisions[]` / `artifactRevisions[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevision {
    pub action_name: String,
    pub revision_id: String,
    pub revision_summary: Option<String>,
    pub revision_url: Option<String>,
}

/// Which commits `ListSourceCommits` lists for an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CommitRange {
    /// What an approval at `stage_name` lets through: from the release live
    /// in the environment the pipeline deploys to next, to the execution's
    /// revision.
    #[serde(rename_all = "camelCase")]
    SinceLive { stage_name: String },
    /// What a retry would not release: from the execution's revision to
    /// the head of its branch.
    ToBranchHead,
}

/// One commit of a source repository, as `git log` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceCommit {
    pub commit_id: String,
    pub author: String,
    /// RFC 3339.
    pub date: String,
    /// The subject line.
    pub message: String,
}

/// `ListSourceCommits`: the commits `from..to` (`from` excluded), newest
/// first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceCommits {
    /// The source action whose repository it is.
    pub action_name: String,
    /// `None`: nothing is live there yet (the list starts at the root,
    /// cut at the limit).
    pub from: Option<String>,
    pub to: String,
    /// `SinceLive`: the environment the pipeline deploys to next.
    pub environment: Option<String>,
    pub commits: Vec<SourceCommit>,
    /// More commits are in the range than were listed.
    pub truncated: bool,
}

/// `sourceRevisions[]` in StartPipelineExecution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevisionOverride {
    pub action_name: String,
    /// `COMMIT_ID` locally; the others are refused by git sources.
    pub revision_type: String,
    pub revision_value: String,
}

/// `errorDetails{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetails {
    pub code: String,
    pub message: String,
}

/// Pass / fail / skip counts from JUnit reports, with the failing names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    /// `suite.test` (or `classname.name`) of each failed or errored case.
    pub failing: Vec<String>,
    /// The report files read, relative to the source dir.
    pub files: Vec<String>,
}

/// One buildspec phase of a build action, as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseState {
    /// `INSTALL`, `PRE_BUILD`, `BUILD`, `POST_BUILD`.
    pub phase_type: String,
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `STOPPED`, or `None` if skipped.
    pub phase_status: Option<String>,
    pub duration_ms: u64,
}

/// A finished approval: who, when and what they said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalResult {
    /// `Approved` or `Rejected`.
    pub status: String,
    pub summary: String,
    pub by: String,
    /// RFC 3339.
    pub at: String,
}

/// `retryStageMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryMetadata {
    pub auto_stage_retry_attempt: u32,
    pub manual_stage_retry_attempt: u32,
    /// `AutomatedStageRetry` or `ManualStageRetry`.
    pub latest_retry_trigger: Option<String>,
}

/// Output variables and artifacts of an action, by name.
pub type Variables = BTreeMap<String, String>;
