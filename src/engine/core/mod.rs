//! The engine actor: one task owns every execution of the workspace. It
//! takes requests from a channel, runs actions as tasks that report back
//! on the same channel, writes each change through to the store in one
//! transaction and then publishes it as an event.

mod actions;
mod commits;
mod define;
mod handle;
mod jobs;
mod load;
mod movement;
mod operations;
mod paging;
mod persist;
mod queries;
mod requests;
mod retry;
mod scratch;
mod start;
mod state;
mod step;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};

pub use self::handle::{EngineHandle, EngineOptions, start, start_with};
pub use self::jobs::log_dir;
use self::state::{ExecRec, PState, Running};
use crate::api::{ApiError, EngineEvent, Envelope, Reply};
use crate::config::workspace::Workspace;
use crate::engine::conditions;
use crate::providers::{self, ActionOutcome};
use crate::store::artifacts::{ArtifactStore, StoredArtifact};
use crate::store::{Store, StoreError};

/// The summary every action and execution gets when the engine stopped
/// under it (shutdown or crash).
pub const INTERRUPTED: &str = "interrupted: engine stopped";

/// The start of an execution's summary when the store refused a write of
/// its state (the cause follows).
pub const STORE_FAILED: &str = "the engine could not record this execution's state";

pub(crate) enum Msg {
    Call(Envelope, oneshot::Sender<Result<Reply, ApiError>>),
    ActionDone(Box<ActionDone>),
    ApprovalTimeout {
        action_execution_id: String,
    },
    ConditionDone {
        exec: String,
        stage: usize,
        kind: &'static str,
        results: Vec<conditions::RuleResult>,
    },
    SourceChange {
        pipeline: String,
        action: String,
        commit: String,
        detail: String,
    },
    /// The triggers could not read or keep what they saw.
    TriggerProblem {
        message: String,
    },
    /// Write again what the store refused.
    RetrySaves,
    /// A request answered from a task (an environment operation): its
    /// outcome for the audit trail.
    Audit(Box<(Envelope, Result<Reply, ApiError>)>),
    Shutdown(oneshot::Sender<()>),
}

pub(crate) struct ActionDone {
    exec: String,
    stage: usize,
    action: usize,
    action_execution_id: String,
    outcome: ActionOutcome,
    artifacts: Vec<(String, StoredArtifact)>,
    lines: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

/// Options for hosting an engine.
struct Engine {
    ws: Arc<Workspace>,
    store: Store,
    artifacts: ArtifactStore,
    /// The actions' scratch directories, reused.
    scratch: scratch::Scratch,
    events: broadcast::Sender<EngineEvent>,
    tx: mpsc::UnboundedSender<Msg>,
    pipelines: BTreeMap<String, PState>,
    /// The executions held in memory: per pipeline its newest, every
    /// unfinished one, the latest of each stage, and those this engine
    /// started. Older ones are read from the store when asked for.
    execs: HashMap<String, ExecRec>,
    running: HashMap<String, Running>,
    entry_counter: u64,
    started: String,
    stopping: bool,
    envs: providers::deploy::EnvCell,
    /// Executions whose last write the store refused: written again every
    /// second until it takes them (disk full), so once space is back the
    /// store holds what was reported.
    unsaved: std::collections::BTreeSet<String>,
    /// Why the store refuses writes ("disk full: …"), while it does.
    store_problem: Option<String>,
    /// A [`Msg::RetrySaves`] is on its way.
    retry_armed: bool,
    /// The stage rows the store holds of each unfinished execution, as
    /// last committed: a save writes only the stages that changed.
    written: HashMap<String, persist::Written>,
    /// The step in progress: its writes and announcements wait for its end.
    step: Option<step::Step>,
}

/// True when an error's text says the filesystem is full.
pub fn is_disk_full(cause: &str) -> bool {
    let c = cause.to_ascii_lowercase();
    c.contains("no space left") || c.contains("disk is full") || c.contains("os error 28")
}

/// `cause`, prefixed with "disk full" when that is what it is.
pub fn name_disk_full(cause: &str) -> String {
    if is_disk_full(cause) && !cause.starts_with("disk full") {
        format!("disk full: {cause}")
    } else {
        cause.to_owned()
    }
}

fn api(code: &str, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// The reply to a request whose step the store refused to record.
fn store_error(cause: String) -> ApiError {
    ApiError::new(
        "InternalError",
        format!("{STORE_FAILED}: {}", name_disk_full(&cause)),
    )
}

fn short(id: &str) -> &str {
    crate::engine::short_id(id, 8)
}
