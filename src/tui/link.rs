//! How the TUI reaches the workspace's engine: hosted in this process, or
//! attached over the socket to the process that hosts it. Either way the
//! same requests and events; the log files are read directly (same user).

use color_eyre::eyre::{Result, eyre};
use tokio::sync::mpsc;

use crate::api::{ApiError, EngineEvent, Envelope, Reply, Request};
use crate::config::workspace::Workspace;
use crate::control::{Client, ControlError, Server, WorkspaceLock};
use crate::engine::{EngineHandle, EngineOptions};

#[derive(Clone)]
pub enum Link {
    Hosted(EngineHandle),
    Remote { ws: Box<Workspace>, pid: String },
}

/// Keeps a hosted engine's lock and socket alive.
pub struct Hosting {
    pub server: Server,
    pub _lock: WorkspaceLock,
}

impl Link {
    /// Attaches to a running engine or hosts one (with triggers).
    pub async fn open(ws: Workspace) -> Result<(Link, Option<Hosting>)> {
        for _ in 0..50 {
            if Client::connect(&ws).await.is_some() {
                let pid = std::fs::read_to_string(ws.lock_path())
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                return Ok((
                    Link::Remote {
                        ws: Box::new(ws),
                        pid,
                    },
                    None,
                ));
            }
            match WorkspaceLock::acquire(&ws) {
                Ok(lock) => {
                    let handle = crate::engine::start(ws.clone(), EngineOptions { triggers: true })
                        .map_err(|e| eyre!("{e}"))?;
                    let server = crate::control::serve(&handle, &lock).map_err(|e| eyre!("{e}"))?;
                    return Ok((
                        Link::Hosted(handle),
                        Some(Hosting {
                            server,
                            _lock: lock,
                        }),
                    ));
                }
                Err(ControlError::Locked { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(eyre!("{e}")),
            }
        }
        Err(eyre!(
            "workspace {} is locked by another pipedeck whose engine does not answer",
            ws.name
        ))
    }

    pub fn workspace(&self) -> &Workspace {
        match self {
            Link::Hosted(h) => &h.workspace,
            Link::Remote { ws, .. } => ws,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Link::Hosted(_) => format!("engine hosted here (pid {})", std::process::id()),
            Link::Remote { pid, .. } => format!("attached to engine pid {pid}"),
        }
    }

    pub async fn call(&self, request: Request) -> Result<Reply, ApiError> {
        let env = Envelope {
            identity: self.workspace().identity.clone(),
            user_agent: "pipedeck-tui".into(),
            request,
        };
        match self {
            Link::Hosted(h) => h.call(env).await,
            Link::Remote { ws, .. } => {
                let mut c = Client::connect(ws)
                    .await
                    .ok_or_else(|| ApiError::new("EngineUnreachable", "the engine has gone"))?;
                c.call(env).await
            }
        }
    }

    /// Forwards engine events into `tx` until the engine goes; a lagging
    /// receiver gets `None` (resync from the store).
    pub fn bridge(&self, tx: mpsc::UnboundedSender<Option<EngineEvent>>) {
        match self.clone() {
            Link::Hosted(h) => {
                let mut rx = h.subscribe();
                tokio::spawn(async move {
                    loop {
                        match rx.recv().await {
                            Ok(e) => {
                                if tx.send(Some(e)).is_err() {
                                    return;
                                }
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                if tx.send(None).is_err() {
                                    return;
                                }
                            }
                            Err(_) => return,
                        }
                    }
                });
            }
            Link::Remote { ws, .. } => {
                tokio::spawn(async move {
                    let Some(c) = Client::connect(&ws).await else {
                        return;
                    };
                    let Ok(mut s) = c.subscribe().await else {
                        return;
                    };
                    while let Some(e) = s.next().await {
                        if tx.send(Some(e)).is_err() {
                            return;
                        }
                    }
                });
            }
        }
    }
}
