//! The router of a local environment: a stable front port in front of two
//! target groups, blue and green, each a set of replica addresses. New
//! requests are split between the groups by weight (exactly `p` of every
//! 100 go to green); a request already in flight finishes where it started,
//! so shifting traffic drops nothing. A second, test listener sends
//! everything to one group (CodeDeploy's AllowTestTraffic).
//!
//! It is an HTTP/1.1 reverse proxy, like a load balancer's listener:
//! - clients keep their connections alive across requests, and each
//!   request is routed on its own (an ALB's weighted target groups);
//! - connections to replicas are kept alive and reused from a pool; a
//!   reused connection the replica had closed is retried once on a fresh
//!   one when the request can be sent again;
//! - bodies stream through by their framing (length, chunked, or until
//!   close), `Expect: 100-continue` is answered at once, 1xx responses are
//!   passed on, and an `Upgrade` answered with 101 becomes a tunnel;
//! - hop-by-hop headers stay on their hop, and `X-Forwarded-For`, `-Proto`
//!   and `-Port` are set as an ALB sets them.
//!
//! Each request's status and time to the first byte of its answer go to
//! its group's statistics.

mod headers;
mod pool;
mod proxy;
mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use table::Color;

#[derive(Debug)]
struct Inner {
    /// The target groups and the weights between them.
    table: table::Table,
    /// Idle keep-alive connections to replicas.
    pool: pool::Pool,
    /// How long a connection may wait for the other side to send or take
    /// a byte (an ALB's `idle_timeout.timeout_seconds`).
    idle_timeout: Duration,
}

/// A cheap handle; clones share the router.
#[derive(Debug, Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

/// An ALB's default idle timeout: a client connection idle between
/// requests is closed, a replica silent that long is answered 504.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Router {
    pub fn new() -> Router {
        Router::with_idle_timeout(DEFAULT_IDLE_TIMEOUT)
    }

    /// A router whose connections wait at most `idle` for the other side.
    pub fn with_idle_timeout(idle: Duration) -> Router {
        Router {
            inner: Arc::new(Inner {
                table: table::Table::default(),
                pool: pool::Pool::default(),
                idle_timeout: idle.max(Duration::from_millis(1)),
            }),
        }
    }

    /// Serves production traffic on `addr` (port 0: any free port).
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
        self.serve(addr, false).await
    }

    /// Serves the test listener: everything to the test target group.
    pub async fn listen_test(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
        self.serve(addr, true).await
    }

    async fn serve(
        &self,
        addr: SocketAddr,
        test: bool,
    ) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let me = self.clone();
        let task = tokio::spawn(async move {
            let mut sweep = tokio::time::interval(pool::BACKEND_IDLE / 2);
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = sweep.tick() => {
                        me.sweep_idle();
                        continue;
                    }
                };
                let Ok((client, peer)) = accepted else {
                    // Out of descriptors, say: let the others finish.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let _ = client.set_nodelay(true);
                let me = me.clone();
                tokio::spawn(async move {
                    me.connection(client, peer, local.port(), test).await;
                });
            }
        });
        Ok((local, task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::http;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    fn parse_status(b: &[u8]) -> Option<u16> {
        let line = String::from_utf8_lossy(b).lines().next()?.to_owned();
        http::status_of(&line)
    }

    /// A replica answering `status` with `body`.
    async fn replica(status: u16, body: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while memchr::memmem::find(&got, b"\r\n\r\n").is_none() {
                        let n = s.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    let msg = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(msg.as_bytes()).await;
                });
            }
        });
        addr
    }

    async fn get(addr: SocketAddr) -> (u16, String) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (parse_status(&out).unwrap(), body)
    }

    #[tokio::test]
    async fn weights_split_new_requests_exactly_and_stats_count_per_group() {
        let r = Router::new();
        r.set_replicas(Color::Blue, vec![replica(200, "blue").await]);
        r.set_replicas(Color::Green, vec![replica(500, "green").await]);
        let (front, _t) = r.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_eq!(get(front).await.1, "blue");
        r.set_green_percent(10);
        let mut greens = 0;
        for _ in 0..100 {
            if get(front).await.1 == "green" {
                greens += 1;
            }
        }
        assert_eq!(greens, 10);
        let g = r.stats(Color::Green).window(Duration::from_secs(10));
        assert_eq!((g.requests, g.errors_5xx), (10, 10));
        let b = r.stats(Color::Blue).window(Duration::from_secs(10));
        assert_eq!((b.requests, b.errors_5xx), (91, 0));
        r.set_live(Color::Green);
        assert_eq!(r.live(), Some(Color::Green));
        assert_eq!(get(front).await, (500, "green".into()));
    }

    #[tokio::test]
    async fn the_test_listener_reaches_only_its_target_group() {
        let r = Router::new();
        r.set_replicas(Color::Blue, vec![replica(200, "blue").await]);
        r.set_replicas(Color::Green, vec![replica(200, "green").await]);
        let (front, _a) = r.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (test, _b) = r.listen_test("127.0.0.1:0".parse().unwrap()).await.unwrap();
        r.set_test_target(Color::Green);
        assert_eq!(get(test).await.1, "green");
        assert_eq!(get(front).await.1, "blue");
    }

    #[tokio::test]
    async fn no_replica_is_503_and_a_dead_one_is_skipped_or_502() {
        let r = Router::new();
        let (front, _t) = r.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_eq!(get(front).await.0, 503);
        // A port nobody listens on.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        r.set_replicas(Color::Blue, vec![dead]);
        assert_eq!(get(front).await.0, 502);
        r.set_replicas(Color::Blue, vec![dead, replica(200, "ok").await]);
        for _ in 0..4 {
            assert_eq!(get(front).await, (200, "ok".into()));
        }
    }
}
