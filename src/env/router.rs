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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::http::{self, Conn, Framing, Head, HeadError};
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
    /// Idle keep-alive connections to replicas, newest last.
    idle: Mutex<HashMap<SocketAddr, Vec<(Conn, Instant)>>>,
    /// Connections opened to replicas, ever.
    opened: AtomicU64,
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

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client connection may sit idle between requests (an ALB's
/// default idle timeout).
const CLIENT_IDLE: Duration = Duration::from_secs(60);
/// How long an idle connection to a replica is kept: under the 5 s
/// keep-alive timeout of Node's and other common servers, so the replica
/// rarely closes one first.
const BACKEND_IDLE: Duration = Duration::from_secs(4);
const MAX_IDLE_PER_REPLICA: usize = 256;
/// Request bodies up to this size are read whole before they are sent, so
/// the request can be sent again if a pooled connection turns out closed.
const BUFFERED_BODY: u64 = 256 * 1024;

/// Whether the client connection goes on after a request.
enum Next {
    KeepAlive,
    Close,
}

/// A request's body, as the router will send it.
enum Body {
    /// Read whole (possibly empty): the request can be sent twice.
    Whole(Vec<u8>),
    /// Streamed from the client while it is sent: once only.
    Stream(Framing),
}

/// Hop-by-hop fields (RFC 9110 §7.6.1) that never cross the router.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "expect",
];

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    pub fn set_replicas(&self, color: Color, addrs: Vec<SocketAddr>) {
        if let Ok(mut r) = self.inner.groups[color.index()].replicas.write() {
            *r = addrs;
        }
        // Idle connections to replicas that left the groups are closed.
        let live: Vec<SocketAddr> = [Color::Blue, Color::Green]
            .iter()
            .flat_map(|c| self.replicas(*c))
            .collect();
        if let Ok(mut idle) = self.inner.idle.lock() {
            idle.retain(|addr, _| live.contains(addr));
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

    fn test_target(&self) -> Color {
        if self.inner.test_target.load(Ordering::SeqCst) == 1 {
            Color::Green
        } else {
            Color::Blue
        }
    }

    /// Requests to `color` accepted and not yet answered: a group is
    /// drained (safe to stop) when traffic has moved away and this is 0.
    pub fn in_flight(&self, color: Color) -> u64 {
        self.inner.in_flight[color.index()].load(Ordering::SeqCst)
    }

    pub fn stats(&self, color: Color) -> &Stats {
        &self.inner.stats[color.index()]
    }

    /// Connections the router has opened to replicas since it started
    /// (with keep-alive, far fewer than the requests it forwarded).
    pub fn connections_opened(&self) -> u64 {
        self.inner.opened.load(Ordering::Relaxed)
    }

    fn pick(&self) -> Color {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed) % 100;
        if n < u64::from(self.green_percent()) {
            Color::Green
        } else {
            Color::Blue
        }
    }

    /// Chooses a group for a request and counts it in flight there. The
    /// count is taken before the weights are read again, and a group that
    /// lost its traffic in between is not used: a drain that saw the
    /// traffic gone and then 0 in flight can stop the group safely.
    fn route(&self, test: bool) -> (Color, InFlight<'_>) {
        loop {
            let color = if test {
                self.test_target()
            } else {
                self.pick()
            };
            let count = &self.inner.in_flight[color.index()];
            count.fetch_add(1, Ordering::SeqCst);
            let still = if test {
                self.test_target() == color
            } else {
                let green = self.green_percent();
                match color {
                    Color::Green => green > 0,
                    Color::Blue => green < 100,
                }
            };
            if still {
                return (color, InFlight(count));
            }
            count.fetch_sub(1, Ordering::SeqCst);
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
            let mut sweep = tokio::time::interval(BACKEND_IDLE / 2);
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

    /// One client connection: requests one after another until either
    /// side closes it.
    async fn connection(&self, client: TcpStream, peer: SocketAddr, port: u16, test: bool) {
        let mut c = Conn::new(client);
        loop {
            let head = match tokio::time::timeout(CLIENT_IDLE, http::read_head(&mut c)).await {
                Err(_) | Ok(Ok(None)) => return,
                Ok(Ok(Some(h))) => h,
                Ok(Err(e)) => {
                    let why = match e {
                        HeadError::TooLarge => "the request head is larger than 64 KiB",
                        _ => "malformed request",
                    };
                    let _ = respond(&mut c.io, e.status(), why).await;
                    return;
                }
            };
            match self.request(&mut c, head, peer, port, test).await {
                Next::KeepAlive => {}
                Next::Close => {
                    let _ = c.io.shutdown().await;
                    return;
                }
            }
        }
    }

    async fn request(
        &self,
        c: &mut Conn,
        head: Head,
        peer: SocketAddr,
        port: u16,
        test: bool,
    ) -> Next {
        let mut parts = head.start.split(' ');
        let (method, _target, version) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if !version.starts_with("HTTP/1.") || parts.next().is_some() {
            let (code, why) = if version.starts_with("HTTP/") {
                (505, "only HTTP/1.x is spoken here")
            } else {
                (400, "malformed request line")
            };
            let _ = respond(&mut c.io, code, why).await;
            return Next::Close;
        }
        let http10 = version == "HTTP/1.0";
        let framing = match http::request_framing(&head) {
            Ok(f) => f,
            Err(_) => {
                let _ = respond(&mut c.io, 400, "bad Content-Length or Transfer-Encoding").await;
                return Next::Close;
            }
        };
        // HTTP/1.0 keeps a connection only when it asks to.
        let client_keep = if http10 {
            head.has_token("connection", "keep-alive")
        } else {
            !head.has_token("connection", "close")
        };
        let upgrade =
            !http10 && head.has_token("connection", "upgrade") && head.get("upgrade").is_some();
        let forward = forwarded_head(&head, peer, port, http10, upgrade);
        if framing != Framing::None
            && !http10
            && head
                .get("expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && c.io
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return Next::Close;
        }
        let body = match framing {
            Framing::None => Body::Whole(Vec::new()),
            Framing::Length(n) if n <= BUFFERED_BODY => match read_body(c, n as usize).await {
                Some(b) => Body::Whole(b),
                None => return Next::Close,
            },
            f => Body::Stream(f),
        };
        let (color, _in_flight) = self.route(test);
        self.exchange(
            c,
            color,
            &forward,
            body,
            method == "HEAD",
            client_keep,
            upgrade,
            http10,
        )
        .await
    }

    /// Sends one request to a replica of `color` and its answer back.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        c: &mut Conn,
        color: Color,
        forward: &Head,
        body: Body,
        head_request: bool,
        client_keep: bool,
        upgrade: bool,
        http10: bool,
    ) -> Next {
        let started = Instant::now();
        let group = &self.inner.groups[color.index()];
        let replicas = group.replicas.read().map(|r| r.clone()).unwrap_or_default();
        let fail = |code: u16| self.stats(color).record(code, started.elapsed());
        if replicas.is_empty() {
            fail(503);
            let _ = respond(&mut c.io, 503, "no replica in the target group").await;
            return Next::Close;
        }
        let first = group.next.fetch_add(1, Ordering::Relaxed);
        // A streamed body cannot be sent twice, so it goes on a fresh
        // connection (which may join the pool afterwards).
        let mut pooled = !upgrade && !http10 && matches!(body, Body::Whole(_));
        let (mut b, addr, response) = loop {
            let Some((mut b, addr, reused)) = self.backend(&replicas, first, pooled).await else {
                fail(502);
                let _ = respond(&mut c.io, 502, "no replica answered").await;
                return Next::Close;
            };
            let mut out = Vec::with_capacity(1024);
            forward.write_to(&mut out);
            let sent = match &body {
                Body::Whole(bytes) => {
                    out.extend_from_slice(bytes);
                    b.io.write_all(&out).await
                }
                Body::Stream(f) => http::forward_body(c, &mut b.io, *f, out).await,
            };
            let retry = reused && matches!(body, Body::Whole(_));
            if sent.is_err() {
                if retry {
                    pooled = false;
                    continue;
                }
                fail(502);
                let _ = respond(&mut c.io, 502, "the replica closed the connection").await;
                return Next::Close;
            }
            match self.response_head(c, &mut b, http10).await {
                Ok(h) => break (b, addr, h),
                Err(true) if retry => pooled = false,
                Err(_) => {
                    fail(502);
                    let _ = respond(&mut c.io, 502, "the replica sent no answer").await;
                    return Next::Close;
                }
            }
        };
        let Some(status) = http::status_of(&response.start) else {
            fail(502);
            let _ = respond(&mut c.io, 502, "the replica's answer is not HTTP").await;
            return Next::Close;
        };
        self.stats(color).record(status, started.elapsed());
        if status == 101 {
            if !upgrade {
                let _ = respond(&mut c.io, 502, "the replica switched protocols unasked").await;
                return Next::Close;
            }
            let mut out = Vec::new();
            response.write_to(&mut out);
            out.extend_from_slice(&b.take_buffered());
            if c.io.write_all(&out).await.is_ok() {
                let early = c.take_buffered();
                if b.io.write_all(&early).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut c.io, &mut b.io).await;
                }
            }
            return Next::Close;
        }
        let framing = http::response_framing(&response, head_request, status);
        let keep = client_keep && framing != Framing::UntilClose;
        let backend_keep = !http10
            && response.start.starts_with("HTTP/1.1")
            && !response.has_token("connection", "close")
            && framing != Framing::UntilClose;
        let mut out = Vec::with_capacity(1024);
        answer_head(&response, keep, http10).write_to(&mut out);
        if http::forward_body(&mut b, &mut c.io, framing, out)
            .await
            .is_err()
        {
            return Next::Close;
        }
        if backend_keep {
            b.message_done();
            self.put_idle(addr, b);
        }
        if keep { Next::KeepAlive } else { Next::Close }
    }

    /// Reads the final response head, passing 1xx answers on (not to
    /// HTTP/1.0 clients). `Err(true)`: the replica closed before sending a
    /// byte (a pooled connection it had already closed).
    async fn response_head(&self, c: &mut Conn, b: &mut Conn, http10: bool) -> Result<Head, bool> {
        let mut first = true;
        loop {
            let h = match http::read_head(b).await {
                Ok(Some(h)) => h,
                Ok(None) => return Err(first),
                Err(HeadError::Io) if first && b.buffered().is_empty() => return Err(true),
                Err(_) => return Err(false),
            };
            first = false;
            match http::status_of(&h.start) {
                Some(s) if (100..200).contains(&s) && s != 101 => {
                    if !http10 {
                        let mut out = Vec::new();
                        h.write_to(&mut out);
                        if c.io.write_all(&out).await.is_err() {
                            return Err(false);
                        }
                    }
                }
                _ => return Ok(h),
            }
        }
    }

    /// A connection to a replica of the group, round robin from `first`:
    /// an idle pooled one if there is one, else a new one; a replica that
    /// does not accept is skipped. The flag says whether it was reused.
    async fn backend(
        &self,
        replicas: &[SocketAddr],
        first: usize,
        pooled: bool,
    ) -> Option<(Conn, SocketAddr, bool)> {
        for k in 0..replicas.len() {
            let addr = replicas[(first + k) % replicas.len()];
            if pooled && let Some(c) = self.take_idle(addr) {
                return Some((c, addr, true));
            }
            if let Ok(Ok(s)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
            {
                let _ = s.set_nodelay(true);
                self.inner.opened.fetch_add(1, Ordering::Relaxed);
                return Some((Conn::quick_ack(s), addr, false));
            }
        }
        None
    }

    /// The newest idle connection to `addr` that is still open.
    fn take_idle(&self, addr: SocketAddr) -> Option<Conn> {
        let mut idle = self.inner.idle.lock().ok()?;
        let list = idle.get_mut(&addr)?;
        // One the replica closed meanwhile shows when it is used, and the
        // request is sent again on a fresh connection.
        match list.pop() {
            Some((c, since)) if since.elapsed() < BACKEND_IDLE => Some(c),
            _ => {
                // Everything older is older still.
                list.clear();
                None
            }
        }
    }

    /// Closes idle connections to replicas kept longer than [`BACKEND_IDLE`].
    fn sweep_idle(&self) {
        if let Ok(mut idle) = self.inner.idle.lock() {
            for list in idle.values_mut() {
                list.retain(|(_, since)| since.elapsed() < BACKEND_IDLE);
            }
            idle.retain(|_, list| !list.is_empty());
        }
    }

    fn put_idle(&self, addr: SocketAddr, c: Conn) {
        if !c.buffered().is_empty() {
            return;
        }
        let known = [Color::Blue, Color::Green].iter().any(|col| {
            self.inner.groups[col.index()]
                .replicas
                .read()
                .is_ok_and(|r| r.contains(&addr))
        });
        if !known {
            return;
        }
        if let Ok(mut idle) = self.inner.idle.lock() {
            let list = idle.entry(addr).or_default();
            if list.len() < MAX_IDLE_PER_REPLICA {
                list.push((c, Instant::now()));
            }
        }
    }
}

/// The request as the replica gets it: hop-by-hop fields dropped (and
/// those the client's `Connection` names), `X-Forwarded-*` set.
fn forwarded_head(head: &Head, peer: SocketAddr, port: u16, http10: bool, upgrade: bool) -> Head {
    let named = head.tokens("connection");
    let mut headers: Vec<(String, String)> = Vec::with_capacity(head.headers.len() + 4);
    let mut xff = None;
    for (n, v) in &head.headers {
        let lower = n.to_ascii_lowercase();
        if lower == "upgrade" && upgrade {
            headers.push((n.clone(), v.clone()));
            continue;
        }
        if HOP_BY_HOP.contains(&lower.as_str()) || named.contains(&lower) {
            continue;
        }
        match lower.as_str() {
            "x-forwarded-for" => {
                xff = Some(match xff {
                    Some(prev) => format!("{prev}, {v}"),
                    None => v.clone(),
                });
            }
            "x-forwarded-proto" | "x-forwarded-port" => {}
            _ => headers.push((n.clone(), v.clone())),
        }
    }
    let ip = peer.ip().to_string();
    headers.push((
        "X-Forwarded-For".into(),
        match xff {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip,
        },
    ));
    headers.push(("X-Forwarded-Proto".into(), "http".into()));
    headers.push(("X-Forwarded-Port".into(), port.to_string()));
    if upgrade {
        headers.push(("Connection".into(), "Upgrade".into()));
    } else if http10 {
        headers.push(("Connection".into(), "close".into()));
    }
    Head {
        start: head.start.clone(),
        headers,
    }
}

/// The response as the client gets it: an HTTP/1.1 status line (the
/// router speaks 1.1 whatever the replica does), hop-by-hop fields
/// dropped, `Connection: close` when the router will close (and
/// `keep-alive` when it keeps an HTTP/1.0 client's connection).
fn answer_head(response: &Head, keep: bool, http10: bool) -> Head {
    let named = response.tokens("connection");
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(n, _)| {
            let lower = n.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&lower.as_str()) && !named.contains(&lower)
        })
        .cloned()
        .collect();
    if !keep {
        headers.push(("Connection".into(), "close".into()));
    } else if http10 {
        headers.push(("Connection".into(), "keep-alive".into()));
    }
    let rest = response.start.split_once(' ').map_or("", |(_, r)| r);
    Head {
        start: format!("HTTP/1.1 {rest}"),
        headers,
    }
}

/// Reads a request body of `n` bytes whole.
async fn read_body(c: &mut Conn, n: usize) -> Option<Vec<u8>> {
    while c.buffered().len() < n {
        match c.fill().await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    let body = c.buffered()[..n].to_vec();
    c.consume(n);
    Some(body)
}

/// An answer from the router itself; the connection closes after it.
async fn respond(client: &mut TcpStream, code: u16, why: &str) -> std::io::Result<()> {
    let reason = match code {
        400 => "Bad Request",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        505 => "HTTP Version Not Supported",
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
    use tokio::io::AsyncReadExt;

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
