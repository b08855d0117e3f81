//! One engine per workspace, reachable from any shell.
//!
//! - [`WorkspaceLock`]: an exclusive lock on `engine.lock` in the state dir
//!   (released by the OS when the process dies, even on `kill -9`), with the
//!   holder's pid written in it for messages.
//! - [`serve`]: the engine's local socket (`engine.sock`, mode 0600, in a
//!   0700 state dir; a peer of another uid is refused). The protocol is one
//!   JSON object per line: `{"call": Envelope}` is answered by
//!   `{"ok": Reply}` or `{"err": ApiError}`; `{"subscribe": true}` turns the
//!   connection into a stream of `{"event": EngineEvent}` lines.
//! - [`Client`]: the other end.
//!
//! Who a caller is comes from the socket's peer credentials (uid → user
//! name), never from what the request claims: the envelope's `identity` is
//! replaced, and a caller claiming to be the engine (`userAgent: engine`)
//! is refused — only the engine itself records engine events.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::api::{ApiError, EngineEvent, Envelope, Reply};
use crate::config::workspace::Workspace;
use crate::engine::EngineHandle;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "workspace {workspace} already has an engine (pid {pid}); pipedeck commands talk to it \
         over {socket}"
    )]
    Locked {
        workspace: String,
        pid: String,
        socket: PathBuf,
    },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
}

/// Held while this process hosts the workspace's engine.
pub struct WorkspaceLock {
    _file: File,
    path: PathBuf,
}

impl WorkspaceLock {
    pub fn acquire(ws: &Workspace) -> Result<WorkspaceLock, ControlError> {
        let path = ws.lock_path();
        let io = |e: std::io::Error| ControlError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        crate::store::create_private_dir(&ws.state_dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(ControlError::Locked {
                    workspace: ws.name.clone(),
                    pid: pid.trim().to_owned(),
                    socket: ws.socket_path(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(WorkspaceLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum ClientMsg {
    Call(Envelope),
    Subscribe(bool),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::large_enum_variant)]
enum ServerMsg {
    Ok(Reply),
    Err(ApiError),
    Event(EngineEvent),
}

#[cfg(unix)]
fn owner_uid(p: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| m.uid())
}

/// The socket server of a hosted engine.
pub struct Server {
    inflight: Arc<AtomicUsize>,
    clients: Arc<AtomicUsize>,
}

/// Counts a connection while it lives.
struct Connected(Arc<AtomicUsize>);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    /// Clients connected now (a `run --wait` attached, a TUI, …).
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::SeqCst)
    }

    /// Waits (2 s at most) until every answer being sent has been written,
    /// so a host that is about to exit does not cut a client off mid-reply.
    pub async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while self.inflight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Serves the engine on the workspace's socket until the engine stops.
/// Needs the [`WorkspaceLock`] (a stale socket file is replaced).
pub fn serve(handle: &EngineHandle, _lock: &WorkspaceLock) -> Result<Server, ControlError> {
    let path = handle.workspace.socket_path();
    let io = |e: std::io::Error| ControlError::Io {
        path: path.clone(),
        message: e.to_string(),
    };
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    let owner = owner_uid(&handle.workspace.state_dir);
    let handle = handle.clone();
    let inflight = Arc::new(AtomicUsize::new(0));
    let clients = Arc::new(AtomicUsize::new(0));
    let server = Server {
        inflight: inflight.clone(),
        clients: clients.clone(),
    };
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => {
                    failures = 0;
                    s
                }
                Err(e) => {
                    // Out of file descriptors, say: back off instead of
                    // spinning on the same error.
                    failures = failures.saturating_add(1);
                    let wait = accept_backoff(failures);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "accept on the engine socket failed");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let peer = match stream.peer_cred() {
                Ok(cred) => cred.uid(),
                Err(e) => {
                    tracing::warn!(error = %e, "refused a connection without peer credentials");
                    continue;
                }
            };
            if owner.is_some_and(|o| o != peer) {
                tracing::warn!(uid = peer, "refused a connection from another user");
                continue;
            }
            let h = handle.clone();
            let inflight = inflight.clone();
            let who = user_name(peer);
            clients.fetch_add(1, Ordering::SeqCst);
            let connected = Connected(clients.clone());
            tokio::spawn(async move {
                let _connected = connected;
                if let Err(e) = connection(h, stream, inflight, who).await {
                    tracing::debug!(error = %e, "client connection ended");
                }
            });
        }
    });
    Ok(server)
}

/// How long to wait after the `n`th accept failure in a row: 10 ms
/// doubling, at most one second.
fn accept_backoff(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis((10u64 << n.saturating_sub(1).min(7)).min(1000))
}

async fn send<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, m: &ServerMsg) -> std::io::Result<()> {
    let mut line = serde_json::to_string(m).map_err(std::io::Error::other)?;
    line.push('\n');
    w.write_all(line.as_bytes()).await
}

/// The user name of `uid` from `/etc/passwd`, or `uid-N` when it has none.
pub fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string() && !f[0].is_empty())
                    .then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid-{uid}"))
}

/// A socket caller's envelope as the engine sees it: the identity is the
/// peer's (whatever the request claimed); a caller may not speak as the
/// engine.
fn as_peer(mut env: Envelope, who: &str) -> Result<Envelope, ApiError> {
    if env.user_agent.trim().eq_ignore_ascii_case("engine")
        || env.user_agent.contains("amazonaws.com")
    {
        return Err(ApiError::new(
            "AccessDeniedException",
            format!(
                "user agent {:?} is the engine's own; a client (user {who}) may not claim it",
                env.user_agent
            ),
        ));
    }
    if env.identity != who {
        if !env.identity.is_empty() {
            tracing::debug!(
                claimed = env.identity,
                peer = who,
                "identity taken from the peer"
            );
        }
        env.identity = who.to_owned();
    }
    Ok(env)
}

async fn connection(
    h: EngineHandle,
    stream: UnixStream,
    inflight: Arc<AtomicUsize>,
    who: String,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        let msg: ClientMsg = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                send(
                    &mut w,
                    &ServerMsg::Err(ApiError::new(
                        "ValidationException",
                        format!("not a pipedeck request: {e}"),
                    )),
                )
                .await?;
                continue;
            }
        };
        match msg {
            ClientMsg::Call(env) => {
                inflight.fetch_add(1, Ordering::SeqCst);
                let r = match as_peer(env, &who) {
                    Ok(env) => match h.call(env).await {
                        Ok(r) => ServerMsg::Ok(r),
                        Err(e) => ServerMsg::Err(e),
                    },
                    Err(e) => ServerMsg::Err(e),
                };
                let sent = send(&mut w, &r).await;
                inflight.fetch_sub(1, Ordering::SeqCst);
                sent?;
            }
            ClientMsg::Subscribe(_) => {
                let rx = h.subscribe();
                send(&mut w, &ServerMsg::Ok(Reply::Done)).await?;
                return stream_events(rx, &mut w).await;
            }
        }
    }
    Ok(())
}

/// Writes events to a subscriber until the engine stops. One that fell
/// behind (its socket did not keep up) is told how many it missed, so it
/// reads everything again instead of silently missing changes.
async fn stream_events<W: tokio::io::AsyncWrite + Unpin>(
    mut rx: tokio::sync::broadcast::Receiver<EngineEvent>,
    w: &mut W,
) -> std::io::Result<()> {
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                EngineEvent::Resync { missed }
            }
            Err(_) => return Ok(()),
        };
        send(w, &ServerMsg::Event(ev)).await?;
    }
}

/// A connection to a running engine.
pub struct Client {
    reader: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Client {
    /// Connects to the workspace's engine; `None` when none runs.
    pub async fn connect(ws: &Workspace) -> Option<Client> {
        let stream = UnixStream::connect(ws.socket_path()).await.ok()?;
        let (r, w) = stream.into_split();
        Some(Client {
            reader: BufReader::new(r).lines(),
            writer: w,
        })
    }

    async fn write(&mut self, m: &ClientMsg) -> Result<(), ApiError> {
        let mut line =
            serde_json::to_string(m).map_err(|e| ApiError::new("InternalError", e.to_string()))?;
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(|e| ApiError::new("EngineUnreachable", format!("the engine went away: {e}")))
    }

    async fn read(&mut self) -> Result<ServerMsg, ApiError> {
        let lost = |m: String| ApiError::new("EngineUnreachable", m);
        let line = self
            .reader
            .next_line()
            .await
            .map_err(|e| lost(format!("the engine went away: {e}")))?
            .ok_or_else(|| lost("the engine closed the connection".into()))?;
        serde_json::from_str(&line).map_err(|e| lost(format!("unreadable answer: {e}")))
    }

    pub async fn call(&mut self, env: Envelope) -> Result<Reply, ApiError> {
        self.write(&ClientMsg::Call(env)).await?;
        loop {
            match self.read().await? {
                ServerMsg::Ok(r) => return Ok(r),
                ServerMsg::Err(e) => return Err(e),
                ServerMsg::Event(_) => continue,
            }
        }
    }

    /// Turns this connection into an event stream.
    pub async fn subscribe(mut self) -> Result<EventStream, ApiError> {
        self.write(&ClientMsg::Subscribe(true)).await?;
        match self.read().await? {
            ServerMsg::Ok(_) => Ok(EventStream { client: self }),
            ServerMsg::Err(e) => Err(e),
            ServerMsg::Event(_) => Ok(EventStream { client: self }),
        }
    }
}

pub struct EventStream {
    client: Client,
}

impl EventStream {
    /// The next event; `None` when the engine has gone.
    pub async fn next(&mut self) -> Option<EngineEvent> {
        loop {
            match self.client.read().await.ok()? {
                ServerMsg::Event(e) => return Some(e),
                _ => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::accept_backoff;
    use crate::api::EngineEvent;
    use std::time::Duration;

    #[tokio::test]
    async fn a_subscriber_that_fell_behind_is_told_to_resync() {
        let (tx, rx) = tokio::sync::broadcast::channel(4);
        // Ten events into a channel of four before the subscriber reads.
        for i in 0..10 {
            tx.send(EngineEvent::EnvironmentChanged {
                environment_name: format!("e{i}"),
            })
            .unwrap();
        }
        drop(tx);
        let mut out = Vec::new();
        super::stream_events(rx, &mut out).await.unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["event"]["type"], "resync", "{lines:?}");
        assert_eq!(lines[0]["event"]["missed"], 6, "{lines:?}");
        // Then the four it still had, in order.
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(lines[4]["event"]["environmentName"], "e9");
    }

    #[test]
    fn accept_failures_back_off_instead_of_spinning() {
        assert_eq!(accept_backoff(1), Duration::from_millis(10));
        assert_eq!(accept_backoff(2), Duration::from_millis(20));
        assert!(accept_backoff(5) > accept_backoff(4));
        assert_eq!(accept_backoff(50), Duration::from_secs(1));
    }
}
