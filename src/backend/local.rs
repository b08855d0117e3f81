//! The workspace's engine hosted in this process. It serves the
//! workspace's socket while it runs, so other terminals attach to it.

use std::sync::Mutex;

use super::{Backend, BoxFuture, Events, OpenOptions, events_from_broadcast};
use crate::api::{ApiError, Envelope, Reply, Request};
use crate::config::workspace::Workspace;
use crate::control::{Server, WorkspaceLock};
use crate::engine::{EngineHandle, EngineOptions};

pub struct Hosted {
    handle: EngineHandle,
    user_agent: &'static str,
    /// The socket server and the lock, released on close.
    hosting: Mutex<Option<(Server, WorkspaceLock)>>,
}

impl Hosted {
    /// Starts the engine (it loads its store in the background) and its
    /// socket server. Needs the workspace's lock.
    pub fn start(ws: Workspace, lock: WorkspaceLock, opts: OpenOptions) -> Result<Hosted, String> {
        let handle = crate::engine::start(
            ws,
            EngineOptions {
                triggers: opts.triggers,
            },
        )
        .map_err(|e| e.to_string())?;
        if super::host_readonly() {
            handle.set_readonly();
        }
        let server = crate::control::serve(&handle, &lock).map_err(|e| e.to_string())?;
        Ok(Hosted {
            handle,
            user_agent: opts.user_agent,
            hosting: Mutex::new(Some((server, lock))),
        })
    }

    /// The engine itself (the local AWS API serves it too).
    pub fn handle(&self) -> &EngineHandle {
        &self.handle
    }
}

impl Backend for Hosted {
    fn call(&self, request: Request) -> BoxFuture<'_, Result<Reply, ApiError>> {
        Box::pin(async move {
            super::refused_readonly(&request)?;
            self.handle
                .call(Envelope {
                    identity: self.handle.workspace.identity.clone(),
                    user_agent: self.user_agent.into(),
                    request,
                })
                .await
        })
    }

    fn subscribe(&self) -> BoxFuture<'_, Result<Events, ApiError>> {
        Box::pin(async move { Ok(events_from_broadcast(self.handle.subscribe())) })
    }

    fn describe(&self) -> String {
        format!("engine hosted here (pid {})", std::process::id())
    }

    fn hosted(&self) -> bool {
        true
    }

    fn engine(&self) -> Option<&EngineHandle> {
        Some(&self.handle)
    }

    fn linger(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut told = false;
            loop {
                let clients = self
                    .hosting
                    .lock()
                    .ok()
                    .and_then(|h| h.as_ref().map(|(s, _)| s.clients()))
                    .unwrap_or(0);
                let running = match self
                    .handle
                    .request(self.user_agent, Request::EngineInfo)
                    .await
                {
                    Ok(Reply::Info { info }) => info.running_executions,
                    _ => 0,
                };
                if clients == 0 || running == 0 {
                    return;
                }
                if !told {
                    eprintln!(
                        "pipedeck: {running} execution(s) still run for {clients} other client(s) of \
                         this engine; it stays up until they end (Ctrl-C stops it, interrupting them)"
                    );
                    told = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                    _ = tokio::signal::ctrl_c() => return,
                }
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let hosting = self.hosting.lock().ok().and_then(|mut h| h.take());
            let Some((server, lock)) = hosting else {
                return;
            };
            server.drain().await;
            self.handle.shutdown().await;
            let _ = std::fs::remove_file(self.handle.workspace.socket_path());
            drop(lock);
        })
    }
}
