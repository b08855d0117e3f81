//! The router of a local environment: a stable front port in front of two
//! target groups, blue and green, each a set of replica addresses. New
//! requests are split between the groups by weight (exactly `p` of every
//! 100 go to green); a request already in flight finishes where it started,
//! so shifting traffic drops nothing. A second, test listener sends
//! everything to one group (CodeDeploy's AllowTestTraffic).
//!
//! It speaks HTTP/1.1 one request per connection: it reads the request,
//! forwards it with `Connection: close`, and streams the answer back, noting
//! the status and the time to the first byte in the group's statistics.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::stats::Stats;

/// A target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }
    fn index(self) -> usize {
        match self {
            Color::Blue => 0,
            Color::Green => 1,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    replicas: RwLock<Vec<SocketAddr>>,
    next: AtomicUsize,
}

#[derive(Debug, Default)]
struct Inner {
    groups: [Group; 2],
    stats: [Stats; 2],
    /// Percent of production requests sent to green.
    green_percent: AtomicU32,
    counter: AtomicU64,
    /// The group the test listener sends to (0 blue, 1 green).
    test_target: AtomicUsize,
    /// Requests accepted and not yet answered, per group.
    in_flight: [AtomicU64; 2],
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A cheap handle; clones share the router.
#[derive(Debug, Clone, Default)]
pub struct Router {
    inner: Arc<Inner>,
}

const MAX_HEAD: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    pub fn set_replicas(&self, color: Color, addrs: Vec<SocketAddr>) {
        if let Ok(mut r) = self.inner.groups[color.index()].replicas.write() {
            *r = addrs;
        }
    }

    pub fn replicas(&self, color: Color) -> Vec<SocketAddr> {
        self.inner.groups[color.index()]
            .replicas
            .read()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Shifts production traffic: `percent` of new requests go to green.
    pub fn set_green_percent(&self, percent: u32) {
        self.inner
            .green_percent
            .store(percent.min(100), Ordering::SeqCst);
    }

    pub fn green_percent(&self) -> u32 {
        self.inner.green_percent.load(Ordering::SeqCst)
    }

    /// All production traffic to one group, at once.
    pub fn set_live(&self, color: Color) {
        self.set_green_percent(if color == Color::Green { 100 } else { 0 });
    }

    /// The group that takes all traffic, if one does.
    pub fn live(&self) -> Option<Color> {
        match self.green_percent() {
            0 => Some(Color::Blue),
            100 => Some(Color::Green),
            _ => None,
        }
    }

    pub fn set_test_target(&self, color: Color) {
        self.inner
            .test_target
            .store(color.index(), Ordering::SeqCst);
    }

    /// Requests to `color` accepted and not yet answered: a group is
    /// drained (safe to stop) when traffic has moved away and this is 0.
    pub fn in_flight(&self, color: Color) -> u64 {
        self.inner.in_flight[color.index()].load(Ordering::SeqCst)
    }

    pub fn stats(&self, color: Color) -> &Stats {
        &self.inner.stats[color.index()]
    }

    fn pick(&self) -> Color {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed) % 100;
        if n < u64::from(self.green_percent()) {
            Color::Green
        } else {
            Color::Blue
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
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let color = if test {
                    if me.inner.test_target.load(Ordering::SeqCst) == 1 {
                        Color::Green
                    } else {
                        Color::Blue
                    }
                } else {
                    me.pick()
                };
                me.inner.in_flight[color.index()].fetch_add(1, Ordering::SeqCst);
                let me = me.clone();
                tokio::spawn(async move {
                    let _guard = InFlight(&me.inner.in_flight[color.index()]);
                    me.handle(client, color).await;
                });
            }
        });
        Ok((local, task))
    }

    async fn handle(&self, mut client: TcpStream, color: Color) {
        let req = match read_request(&mut client).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(code) => {
                let _ = respond(&mut client, code, "bad request").await;
                return;
            }
        };
        let started = Instant::now();
        let group = &self.inner.groups[color.index()];
        let replicas = group.replicas.read().map(|r| r.clone()).unwrap_or_default();
        if replicas.is_empty() {
            let _ = respond(&mut client, 503, "no replica in the target group").await;
            self.stats(color).record(503, started.elapsed());
            return;
        }
        let first = group.next.fetch_add(1, Ordering::Relaxed);
        let mut backend = None;
        for k in 0..replicas.len() {
            let addr = replicas[(first + k) % replicas.len()];
            if let Ok(Ok(s)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
            {
                let _ = s.set_nodelay(true);
                backend = Some(s);
                break;
            }
        }
        let Some(mut backend) = backend else {
            let _ = respond(&mut client, 502, "no replica answered").await;
            self.stats(color).record(502, started.elapsed());
            return;
        };
        if backend.write_all(&req).await.is_err() {
            let _ = respond(&mut client, 502, "the replica closed the connection").await;
            self.stats(color).record(502, started.elapsed());
            return;
        }
        // The first bytes carry the status line.
        let mut buf = vec![0u8; 16 * 1024];
        let n = match backend.read(&mut buf).await {
            Ok(n) if n > 0 => n,
            _ => {
                let _ = respond(&mut client, 502, "the replica sent no answer").await;
                self.stats(color).record(502, started.elapsed());
                return;
            }
        };
        let latency = started.elapsed();
        let status = parse_status(&buf[..n]).unwrap_or(502);
        self.stats(color).record(status, latency);
        if client.write_all(&buf[..n]).await.is_err() {
            return;
        }
        let _ = tokio::io::copy(&mut backend, &mut client).await;
        let _ = client.shutdown().await;
    }
}

fn parse_status(b: &[u8]) -> Option<u16> {
    let line = b.split(|c| *c == b'\n').next()?;
    let mut parts = line.split(|c| *c == b' ');
    let version = parts.next()?;
    if !version.starts_with(b"HTTP/") {
        return None;
    }
    std::str::from_utf8(parts.next()?).ok()?.trim().parse().ok()
}

/// Reads one request and rewrites it for the replica (`Connection: close`).
/// `Ok(None)`: the client went away without a request.
async fn read_request(client: &mut TcpStream) -> Result<Option<Vec<u8>>, u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        match client.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut out = format!("{request_line}\r\n");
    let mut length = 0usize;
    for h in lines {
        if h.is_empty() {
            continue;
        }
        let name = h
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "connection" | "keep-alive" | "proxy-connection" => continue,
            "content-length" => {
                length = h
                    .split_once(':')
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .ok_or(400u16)?;
            }
            "transfer-encoding" => return Err(501),
            _ => {}
        }
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut req = out.into_bytes();
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(400),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    req.extend_from_slice(&body[..length.min(body.len())]);
    Ok(Some(req))
}

async fn respond(client: &mut TcpStream, code: u16, why: &str) -> std::io::Result<()> {
    let reason = match code {
        400 => "Bad Request",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        _ => "Service Unavailable",
    };
    let body = format!("pipedeck router: {why}\n");
    let msg = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(msg.as_bytes()).await?;
    client.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

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
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
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
