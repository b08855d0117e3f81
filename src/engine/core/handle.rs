//! The handle on a running engine, and starting one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Engine, EngineError, Msg};
use crate::api::{ApiError, EngineEvent, Envelope, Reply, Request};
use crate::config::workspace::Workspace;
use crate::store::artifacts::ArtifactStore;
use crate::store::{Store, now_rfc3339};

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Watch mapped repositories and start executions on new commits.
    pub triggers: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { triggers: true }
    }
}

/// A cheap, cloneable handle on a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Msg>,
    events: broadcast::Sender<EngineEvent>,
    pub workspace: Arc<Workspace>,
    pub started: String,
    /// Hosted read-only: every mutation is refused, from any client.
    readonly: Arc<AtomicBool>,
}

impl EngineHandle {
    /// Sends a request and waits for its answer.
    /// A caller claiming the engine's own user agent is refused: only the
    /// engine records engine events (it does so without this door).
    pub async fn call(&self, envelope: Envelope) -> Result<Reply, ApiError> {
        if envelope.user_agent.trim().eq_ignore_ascii_case("engine") {
            return Err(ApiError::new(
                "AccessDeniedException",
                "user agent \"engine\" is the engine's own; a client may not claim it",
            ));
        }
        if envelope.request.is_mutating() && self.readonly() {
            return Err(ApiError::new(
                "AccessDeniedException",
                format!(
                    "read-only mode: `{}` is refused (the engine of workspace {} is hosted read-only)",
                    envelope.request.event_name(),
                    self.workspace.name
                ),
            ));
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Call(envelope, tx))
            .map_err(|_| ApiError::new("EngineStopped", "the engine has stopped"))?;
        rx.await
            .map_err(|_| ApiError::new("EngineStopped", "the engine has stopped"))?
    }

    /// A request as the workspace's identity from `user_agent`.
    pub async fn request(&self, user_agent: &str, request: Request) -> Result<Reply, ApiError> {
        self.call(Envelope {
            identity: self.workspace.identity.clone(),
            user_agent: user_agent.to_owned(),
            request,
        })
        .await
    }

    /// From now on, refuse every mutation (an engine hosted read-only).
    pub fn set_readonly(&self) {
        self.readonly.store(true, Ordering::SeqCst);
    }

    pub fn readonly(&self) -> bool {
        self.readonly.load(Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// Stops every running action, records what ran as interrupted, and
    /// ends the actor.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<Msg> {
        self.tx.clone()
    }
}

/// Opens the workspace's store, recovers interrupted executions and starts
/// the actor on the current tokio runtime.
pub fn start(workspace: Workspace, options: EngineOptions) -> Result<EngineHandle, EngineError> {
    let ws = Arc::new(workspace);
    let envs = crate::env::manager::Environments::of_workspace(ws.clone());
    start_with(ws, options, envs)
}

/// [`start`], handed its environments (built by the caller: a fake in
/// tests, or environments of another kind).
pub fn start_with(
    ws: Arc<Workspace>,
    options: EngineOptions,
    environments: crate::env::manager::EnvFactory,
) -> Result<EngineHandle, EngineError> {
    // What builds leave running in the background is re-parented here,
    // killed with its build and reaped.
    if !crate::proc::become_subreaper() {
        tracing::warn!("cannot become the child subreaper; escaped build processes go to init");
    }
    let store = Store::open(&ws.state_dir)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (events, _) = broadcast::channel(4096);
    let started = now_rfc3339();
    let mut engine = Engine {
        ws: ws.clone(),
        store,
        artifacts: ArtifactStore::new(&ws.state_dir),
        scratch: super::scratch::Scratch::new(ws.state_dir.join("work")),
        events: events.clone(),
        tx: tx.clone(),
        pipelines: BTreeMap::new(),
        execs: HashMap::new(),
        running: HashMap::new(),
        entry_counter: 0,
        started: started.clone(),
        stopping: false,
        envs: Default::default(),
        unsaved: Default::default(),
        store_problem: None,
        retry_armed: false,
        written: HashMap::new(),
        step: None,
    };
    engine.load()?;
    let handle = EngineHandle {
        tx,
        events,
        workspace: ws.clone(),
        started,
        readonly: Arc::default(),
    };
    if options.triggers && ws.triggers {
        crate::engine::triggers::spawn(&handle, &engine.trigger_specs());
    }
    if !ws.environments.is_empty() {
        // Environments come back with the engine, on their last release.
        let (cell, events) = (engine.envs.clone(), engine.events.clone());
        tokio::spawn(async move {
            let r = cell
                .get_or_init(|| async move { environments(Some(events)).await.map(Arc::new) })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "environments did not start");
            }
        });
    }
    tokio::spawn(engine.run(rx));
    Ok(handle)
}
