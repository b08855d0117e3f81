//! The router's connection pool: keep-alive connections to replicas,
//! reused newest first, checked when they may have gone stale, and closed
//! when idle too long or when their replica leaves the groups.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::Router;
use crate::env::http::Conn;

#[derive(Debug, Default)]
pub(super) struct Pool {
    /// Idle keep-alive connections to replicas, newest last.
    idle: Mutex<HashMap<SocketAddr, Vec<(Conn, Instant)>>>,
    /// Connections opened to replicas, ever.
    opened: AtomicU64,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an idle connection to a replica is kept: under the 5 s
/// keep-alive timeout of Node's and other common servers, so the replica
/// rarely closes one first.
pub(super) const BACKEND_IDLE: Duration = Duration::from_secs(4);
const MAX_IDLE_PER_REPLICA: usize = 256;
/// A pooled connection idle this long is checked before it is used.
const PROBE_AFTER: Duration = Duration::from_secs(1);

impl Pool {
    /// Closes idle connections to addresses `keep` refuses.
    pub(super) fn retain(&self, keep: impl Fn(SocketAddr) -> bool) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.retain(|addr, _| keep(*addr));
        }
    }
}

impl Router {
    /// Connections the router has opened to replicas since it started
    /// (with keep-alive, far fewer than the requests it forwarded).
    pub fn connections_opened(&self) -> u64 {
        self.inner.pool.opened.load(Ordering::Relaxed)
    }

    /// A connection to a replica of the group, round robin from `first`:
    /// an idle pooled one if there is one, else a new one; a replica that
    /// does not accept is skipped. The flag says whether it was reused.
    pub(super) async fn backend(
        &self,
        replicas: &[SocketAddr],
        first: usize,
        pooled: bool,
        check: bool,
    ) -> Option<(Conn, SocketAddr, bool)> {
        for k in 0..replicas.len() {
            let addr = replicas[(first + k) % replicas.len()];
            if pooled && let Some(c) = self.take_idle(addr, check) {
                return Some((c, addr, true));
            }
            if let Ok(Ok(s)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
            {
                let _ = s.set_nodelay(true);
                self.inner.pool.opened.fetch_add(1, Ordering::Relaxed);
                return Some((Conn::quick_ack(s, self.inner.idle_timeout), addr, false));
            }
        }
        None
    }

    /// The newest idle connection to `addr`. It is checked to be open
    /// and quiet when `check` says so (a request that cannot be sent
    /// again) or when it has been idle a while; otherwise a closed one
    /// shows when it is used, and the request is sent again.
    pub(super) fn take_idle(&self, addr: SocketAddr, check: bool) -> Option<Conn> {
        let mut idle = self.inner.pool.idle.lock().ok()?;
        let list = idle.get_mut(&addr)?;
        while let Some((c, since)) = list.pop() {
            if since.elapsed() >= BACKEND_IDLE {
                // Everything older is older still.
                list.clear();
                break;
            }
            if !check && since.elapsed() < PROBE_AFTER {
                return Some(c);
            }
            // Open and quiet: reading would block. One the replica closed
            // reads 0 bytes; bytes it sent unasked (a 408 on its own idle
            // timeout) would be taken for the next answer.
            let mut probe = [0u8; 1];
            if matches!(c.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            {
                return Some(c);
            }
        }
        None
    }

    /// Closes idle connections to replicas kept longer than [`BACKEND_IDLE`].
    pub(super) fn sweep_idle(&self) {
        if let Ok(mut idle) = self.inner.pool.idle.lock() {
            for list in idle.values_mut() {
                list.retain(|(_, since)| since.elapsed() < BACKEND_IDLE);
            }
            idle.retain(|_, list| !list.is_empty());
        }
    }

    pub(super) fn put_idle(&self, addr: SocketAddr, c: Conn) {
        if !c.buffered().is_empty() {
            return;
        }
        if !self.is_replica(addr) {
            return;
        }
        if let Ok(mut idle) = self.inner.pool.idle.lock() {
            let list = idle.entry(addr).or_default();
            if list.len() < MAX_IDLE_PER_REPLICA {
                list.push((c, Instant::now()));
            }
        }
    }
}
