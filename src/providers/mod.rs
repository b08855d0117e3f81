//! Action providers: what an action *does*. The engine resolves variables,
//! materialises input artifacts into directories, hands a provider an
//! [`ActionContext`], and stores what comes back in the [`ActionOutcome`]
//! (output artifacts are ingested into the content-addressed store).
//!
//! Approvals are not a provider: the engine itself holds their tokens.

pub mod codebuild;
pub mod codebuild_local;
pub mod commands;
pub mod deploy;
pub mod eks;
pub mod mask;
pub mod source_git;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::types::{ErrorDetails, SourceRevision, TestReport};
use crate::config::workspace::Workspace;
use crate::model::pipeline::Action;

pub use codebuild_local::LogSink;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An input artifact, materialised as a directory the action may read
/// (and, like CodeBuild's source dir, write into: it is the action's copy).
#[derive(Debug, Clone)]
pub struct InputArtifact {
    pub name: String,
    pub dir: PathBuf,
    /// The source revision that produced it, when a source action did.
    pub revision: Option<String>,
}

/// Everything an action needs to run.
pub struct ActionContext {
    pub pipeline: String,
    pub execution_id: String,
    pub stage: String,
    /// `<uuid>`: names the log file and, for CodeBuild, the build id.
    pub action_execution_id: String,
    /// The action as declared, its `configuration` values with every
    /// `#{...}` variable already resolved.
    pub action: Action,
    /// In the order the action declares them; the first is the primary.
    pub inputs: Vec<InputArtifact>,
    /// A fresh directory owned by this action execution for outputs and
    /// scratch files; removed by the engine after the outputs are stored.
    pub work_dir: PathBuf,
    /// Kept between executions of the same action (CodeBuild `cache`).
    pub cache_dir: PathBuf,
    pub workspace: Arc<Workspace>,
    /// For source actions: the revision to fetch (a trigger's commit or
    /// StartPipelineExecution's `sourceRevisions`), else the branch head.
    pub source_revision: Option<String>,
    /// Flips to `true` when the action must stop (stop-and-abandon, timeout,
    /// engine shutdown): kill the work, return promptly.
    pub stop: watch::Receiver<bool>,
    pub timeout: Duration,
    /// When the action times out: the one timer. The engine stops the
    /// action then; a provider that runs a build gives it this deadline so
    /// the build itself says TIMED_OUT with the phases that ran.
    pub deadline: std::time::Instant,
    /// Every line of output goes here (masked by the provider where it
    /// knows secrets); the engine stores it and tells subscribers.
    pub log: Box<dyn LogSink>,
}

impl ActionContext {
    /// The time left before [`ActionContext::deadline`].
    pub fn remaining(&self) -> Duration {
        self.deadline
            .saturating_duration_since(std::time::Instant::now())
    }
}

/// `Succeeded` or `Failed`; timeouts and stops are failures with a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeStatus {
    Succeeded,
    Failed,
}

/// What an action produced.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    pub status: OutcomeStatus,
    /// `externalExecutionSummary`: one line a human reads first.
    pub summary: Option<String>,
    pub error: Option<ErrorDetails>,
    /// `externalExecutionId` (a CodeBuild build id `project:uuid`, a commit).
    pub external_execution_id: Option<String>,
    /// Output artifact name → directory whose content becomes the artifact.
    pub output_artifacts: Vec<(String, PathBuf)>,
    pub output_variables: BTreeMap<String, String>,
    /// Source actions: the revision they fetched.
    pub source_revision: Option<SourceRevision>,
    pub test_report: Option<TestReport>,
    /// Build actions: the buildspec phases as they ran.
    pub phases: Vec<crate::api::types::PhaseState>,
}

impl ActionOutcome {
    pub fn succeeded() -> Self {
        ActionOutcome {
            status: OutcomeStatus::Succeeded,
            summary: None,
            error: None,
            external_execution_id: None,
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            source_revision: None,
            test_report: None,
            phases: Vec::new(),
        }
    }

    /// A failure with an AWS-style error code (`JobFailed`,
    /// `ConfigurationError`, …) and a message that says what to do.
    pub fn failed(code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ActionOutcome {
            status: OutcomeStatus::Failed,
            summary: Some(message.clone()),
            error: Some(ErrorDetails {
                code: code.to_owned(),
                message,
            }),
            ..ActionOutcome::succeeded()
        }
    }
}

/// One kind of action, chosen by (category, provider).
pub trait Provider: Send + Sync {
    fn run(&self, ctx: ActionContext) -> BoxFuture<ActionOutcome>;
}

/// The provider for an action, or the reason none can run it locally.
pub fn for_action(
    action: &Action,
    ws: &Workspace,
    envs: &deploy::EnvCell,
) -> Result<Arc<dyn Provider>, String> {
    let provider = action.provider();
    match (action.action_type_id.category.as_str(), provider) {
        ("Source", "CodeCommit" | "CodeStarSourceConnection" | "GitHub" | "Bitbucket") => {
            Ok(Arc::new(source_git::GitSource))
        }
        ("Source", p @ ("S3" | "ECR")) => Err(format!(
            "the {p} source provider is not supported locally yet; use a git source \
             (CodeCommit, CodeStarSourceConnection, GitHub) mapped to a local repository"
        )),
        ("Build" | "Test", "CodeBuild") => Ok(Arc::new(codebuild::CodeBuild)),
        ("Invoke", "Lambda") => Ok(Arc::new(commands::LambdaCommand)),
        ("Compute", "Commands") => Ok(Arc::new(commands::Commands)),
        ("Deploy", "EKS") if eks::has_mode(&action.configuration) => Ok(Arc::new(eks::Eks)),
        ("Deploy", _) => Ok(
            match ws
                .environments
                .iter()
                .find(|(_, e)| e.actions.iter().any(|a| a == &action.name))
            {
                Some((name, _)) => Arc::new(deploy::EnvDeploy {
                    env: name.clone(),
                    cell: envs.clone(),
                }),
                None => Arc::new(deploy::Unmapped),
            },
        ),
        (category, p) => Err(format!(
            "no local provider for {category} action provider `{p}`; pipedeck runs Source \
             (CodeCommit, CodeStarSourceConnection, GitHub, Bitbucket), CodeBuild, Manual \
             approvals, Lambda, Commands and Deploy actions"
        )),
    }
}
