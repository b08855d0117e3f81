//! The one seam the TUI and every CLI command talk to. A backend answers
//! the contract's requests (`crate::api`) and publishes its events; which
//! one is behind it is the backend's business:
//!
//! - [`local::Hosted`]: the workspace's engine, hosted in this process (it
//!   serves the workspace's socket meanwhile, so other terminals attach);
//! - [`remote::Remote`]: a client of the engine another process hosts;
//! - [`fake::Fake`]: scripted state, for tests of the TUI loop and the CLI.
//!
//! Neither the TUI nor the CLI opens the store, the state dir or a log
//! file: they ask the backend. Dynamic dispatch (`Arc<dyn Backend>`) keeps
//! one instantiation of every caller, whatever the backend.

pub mod aws;
pub mod fake;
pub mod local;
pub mod remote;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::api::{
    ActionExecutionDetail, ApiError, EngineEvent, ExecutionSummary, LogPage, LogRef, Reply, Request,
};
use crate::config::workspace::Workspace;
use crate::control::{Client, ControlError, WorkspaceLock};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A backend shared by the tasks that use it.
pub type Shared = Arc<dyn Backend>;

pub trait Backend: Send + Sync {
    /// One request, answered or refused with an AWS-named error.
    fn call(&self, request: Request) -> BoxFuture<'_, Result<Reply, ApiError>>;

    /// Events from now on. The stream ends when the backend goes away; a
    /// subscriber that fell behind gets [`EngineEvent::Resync`].
    fn subscribe(&self) -> BoxFuture<'_, Result<Events, ApiError>>;

    /// For the header: where the engine runs.
    fn describe(&self) -> String;

    /// True when this process hosts the engine: it ends with the process.
    fn hosted(&self) -> bool;

    /// Stops a hosted engine cleanly (answers in flight are written first);
    /// a client just disconnects.
    fn close(&self) -> BoxFuture<'_, ()>;

    /// The engine, when this process hosts it (the local AWS API serves it).
    fn engine(&self) -> Option<&crate::engine::EngineHandle> {
        None
    }

    /// Before a hosted engine is closed at the end of a command: waits
    /// while other clients are connected and executions run (a second
    /// `run --wait` attached to this engine), so they are not cut off.
    /// A client has nothing to wait for.
    fn linger(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A subscription's events.
pub struct Events {
    rx: mpsc::UnboundedReceiver<EngineEvent>,
}

impl Events {
    pub fn new(rx: mpsc::UnboundedReceiver<EngineEvent>) -> Events {
        Events { rx }
    }

    /// The next event; `None` when the backend has gone.
    pub async fn next(&mut self) -> Option<EngineEvent> {
        self.rx.recv().await
    }
}

/// Forwards a broadcast receiver into an [`Events`] stream, turning a lag
/// into [`EngineEvent::Resync`].
pub fn events_from_broadcast(mut rx: tokio::sync::broadcast::Receiver<EngineEvent>) -> Events {
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let ev = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    EngineEvent::Resync { missed }
                }
                Err(_) => return,
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    Events::new(out)
}

static READONLY: AtomicBool = AtomicBool::new(false);
static HOST_READONLY: AtomicBool = AtomicBool::new(false);

/// Read-only for the rest of this process (`--readonly`, or `readonly =
/// true` in the config): every backend opened refuses this process's
/// mutations.
pub fn set_readonly() {
    READONLY.store(true, Ordering::SeqCst);
}

pub fn readonly() -> bool {
    READONLY.load(Ordering::SeqCst)
}

/// An engine hosted by this process refuses mutations from any client
/// (`serve --readonly`). A read-only TUI that hosts refuses only its own:
/// other terminals may still act on the engine.
pub fn set_host_readonly() {
    HOST_READONLY.store(true, Ordering::SeqCst);
}

fn host_readonly() -> bool {
    HOST_READONLY.load(Ordering::SeqCst)
}

/// The refusal of a mutation in read-only mode, worded as the TUI does.
pub fn readonly_refusal(what: &str) -> ApiError {
    ApiError::new(
        "AccessDeniedException",
        format!(
            "read-only mode: `{what}` is disabled (started with --readonly or readonly = true in the config)"
        ),
    )
}

fn refused_readonly(request: &Request) -> Result<(), ApiError> {
    if request.is_mutating() && readonly() {
        return Err(readonly_refusal(request.event_name()));
    }
    Ok(())
}

/// How a command or the TUI reaches the workspace's engine.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Host with triggers (watching repositories) when this process hosts.
    pub triggers: bool,
    /// `pipedeck-cli`, `pipedeck-tui`: the audit trail's user agent.
    pub user_agent: &'static str,
}

/// The AWS accounts every [`open`] of this process reaches instead of the
/// workspace's engine (`--aws`).
#[derive(Debug, Clone)]
pub struct AwsSelection {
    pub targets: Vec<crate::aws::AwsTarget>,
    pub intervals: crate::aws::account::Intervals,
}

static AWS: std::sync::OnceLock<AwsSelection> = std::sync::OnceLock::new();

/// Chooses AWS for this process (once, before the first [`open`]).
pub fn select_aws(sel: AwsSelection) {
    let _ = AWS.set(sel);
}

pub fn aws_selected() -> bool {
    AWS.get().is_some()
}

pub fn aws_selection() -> Option<&'static AwsSelection> {
    AWS.get()
}

/// Attaches to the engine running for the workspace, or hosts one here;
/// with [`select_aws`], the AWS backend (its state dir holds the log
/// mirror and the local audit trail of AWS operations).
pub async fn open(ws: &Workspace, opts: OpenOptions) -> Result<Shared, String> {
    not_another_users(ws)?;
    if let Some(sel) = AWS.get() {
        let b = aws::AwsBackend::connect(
            &sel.targets,
            sel.intervals,
            ws.state_dir.clone(),
            opts.user_agent,
        )
        .await;
        return Ok(Arc::new(b));
    }
    for _ in 0..50 {
        if let Some(client) = Client::connect(ws).await {
            return Ok(Arc::new(remote::Remote::new(ws, client, opts.user_agent)));
        }
        match WorkspaceLock::acquire(ws) {
            Ok(lock) => {
                let hosted = local::Hosted::start(ws.clone(), lock, opts)?;
                return Ok(Arc::new(hosted));
            }
            // Another process holds the engine but its socket is not up
            // yet (it is starting): try again shortly.
            Err(ControlError::Locked { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!(
        "workspace {} is locked by another pipedeck, but its engine does not answer on {}",
        ws.name,
        ws.socket_path().display()
    ))
}

/// A workspace whose state dir belongs to another user is refused with a
/// message saying so (its engine refuses other uids anyway).
fn not_another_users(ws: &Workspace) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        if let Ok(m) = std::fs::metadata(&ws.state_dir)
            && m.uid() != me
        {
            return Err(format!(
                "workspace {} belongs to user {} (uid {}): you ({}, uid {me}) may not use it; \
                 run pipedeck as {} or give it another --data-dir",
                ws.name,
                crate::control::user_name(m.uid()),
                m.uid(),
                crate::control::user_name(me),
                crate::control::user_name(m.uid()),
            ));
        }
    }
    Ok(())
}

fn unexpected(what: &str, reply: &Reply) -> ApiError {
    ApiError::new(
        "InternalError",
        format!("{what}: unexpected answer {reply:?}"),
    )
}

/// Typed calls over any backend.
impl dyn Backend + '_ {
    pub async fn execution(&self, pipeline: &str, id: &str) -> Result<ExecutionSummary, ApiError> {
        match self
            .call(Request::GetPipelineExecution {
                pipeline_name: pipeline.into(),
                pipeline_execution_id: id.into(),
            })
            .await?
        {
            Reply::Execution { execution } => Ok(execution),
            other => Err(unexpected("GetPipelineExecution", &other)),
        }
    }

    /// Every action execution of an execution, newest first.
    pub async fn action_executions(
        &self,
        pipeline: &str,
        id: &str,
    ) -> Result<Vec<ActionExecutionDetail>, ApiError> {
        match self
            .call(Request::ListActionExecutions {
                pipeline_name: pipeline.into(),
                pipeline_execution_id: id.into(),
                max_results: None,
                next_token: None,
            })
            .await?
        {
            Reply::ActionExecutions { actions, .. } => Ok(actions),
            other => Err(unexpected("ListActionExecutions", &other)),
        }
    }

    /// A window of a log; `start` `None` is the last `limit` lines.
    pub async fn read_log(
        &self,
        log: &LogRef,
        start: Option<u64>,
        limit: u32,
    ) -> Result<LogPage, ApiError> {
        match self
            .call(Request::GetLogEvents {
                log: log.clone(),
                start_line: start,
                limit,
            })
            .await?
        {
            Reply::LogEvents { page } => Ok(page),
            other => Err(unexpected("GetLogEvents", &other)),
        }
    }

    /// A whole log, read a page at a time (diagnosis reads it whole).
    pub async fn read_whole_log(&self, log: &LogRef) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        loop {
            let page = self
                .read_log(
                    log,
                    Some(out.len() as u64),
                    crate::store::log_query::MAX_PAGE,
                )
                .await?;
            if page.lines.is_empty() {
                return Ok(out);
            }
            out.extend(page.lines);
            if out.len() as u64 >= page.total {
                return Ok(out);
            }
        }
    }

    /// Line numbers (0-based) of the lines that match.
    pub async fn search_log(
        &self,
        log: &LogRef,
        pattern: &str,
        regex: bool,
    ) -> Result<Vec<u64>, ApiError> {
        match self
            .call(Request::FilterLogEvents {
                log: log.clone(),
                pattern: pattern.into(),
                regex,
                limit: None,
            })
            .await?
        {
            Reply::LogMatches { lines, .. } => Ok(lines),
            other => Err(unexpected("FilterLogEvents", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lagged_subscription_becomes_a_resync() {
        let (tx, rx) = tokio::sync::broadcast::channel(2);
        for i in 0..5 {
            tx.send(EngineEvent::EnvironmentChanged {
                environment_name: format!("e{i}"),
            })
            .unwrap();
        }
        let mut ev = events_from_broadcast(rx);
        assert_eq!(ev.next().await, Some(EngineEvent::Resync { missed: 3 }));
        assert!(matches!(
            ev.next().await,
            Some(EngineEvent::EnvironmentChanged { environment_name }) if environment_name == "e3"
        ));
        drop(tx);
        assert!(ev.next().await.is_some());
        assert_eq!(ev.next().await, None, "the stream ends with the backend");
    }
}
