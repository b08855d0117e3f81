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

#[derive(Debug)]
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
    /// How long a connection may wait for the other side to send or take
    /// a byte (an ALB's `idle_timeout.timeout_seconds`).
    idle_timeout: Duration,
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// An ALB's default idle timeout: a client connection idle between
/// requests is closed, a replica silent that long is answered 504.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an idle connection to a replica is kept: under the 5 s
/// keep-alive timeout of Node's and other common servers, so the replica
/// rarely closes one first.
const BACKEND_IDLE: Duration = Duration::from_secs(4);
const MAX_IDLE_PER_REPLICA: usize = 256;
/// A pooled connection idle this long is checked before it is used.
const PROBE_AFTER: Duration = Duration::from_secs(1);
/// Request bodies up to this size are read whole before they are sent, so
/// the request can be sent again if a pooled connection turns out closed.
const BUFFERED_BODY: u64 = 256 * 1024;

/// Whether the client connection goes on after a request.
enum Next {
    KeepAlive,
    Close,
}

/// Methods a client may expect to be sent twice (RFC 9110 §9.2.2): only
/// these are sent again when a reused connection fails.
const IDEMPOTENT: [&str; 6] = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];

/// Fields a `Connection` header may not remove: the message's framing and
/// its host (else a client could make the replica read the body as
/// another request).
const NEVER_HOP: [&str; 3] = ["content-length", "transfer-encoding", "host"];

/// A request's body, as the router will send it.
enum Body {
    /// Read whole (possibly empty): the request can be sent twice.
    Whole(Vec<u8>),
    /// Streamed from the client while it is sent: once only.
    Stream(Framing),
}

/// A request ready to go to a replica.
struct Req<'a> {
    /// The head as the replica gets it.
    forward: Vec<u8>,
    body: Body,
    method: &'a str,
    client_keep: bool,
    upgrade: bool,
    http10: bool,
}

/// Why there is no response head.
enum Missing {
    /// The connection closed before a byte of it.
    Closed,
    /// Nothing for the idle timeout.
    TimedOut,
    /// Cut off, or not HTTP.
    Broken,
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
        Router::with_idle_timeout(DEFAULT_IDLE_TIMEOUT)
    }

    /// A router whose connections wait at most `idle` for the other side.
    pub fn with_idle_timeout(idle: Duration) -> Router {
        Router {
            inner: Arc::new(Inner {
                groups: Default::default(),
                stats: Default::default(),
                green_percent: AtomicU32::new(0),
                counter: AtomicU64::new(0),
                test_target: AtomicUsize::new(0),
                in_flight: Default::default(),
                idle: Mutex::default(),
                opened: AtomicU64::new(0),
                idle_timeout: idle.max(Duration::from_millis(1)),
            }),
        }
    }

    pub fn set_replicas(&self, color: Color, addrs: Vec<SocketAddr>) {
        if let Ok(mut r) = self.inner.groups[color.index()].replicas.write() {
            *r = addrs;
        }
        // Idle connections to replicas that left the groups are closed.
        if let Ok(mut idle) = self.inner.idle.lock() {
            idle.retain(|addr, _| self.is_replica(*addr));
        }
    }

    /// Whether `addr` is a replica of either group.
    fn is_replica(&self, addr: SocketAddr) -> bool {
        self.inner
            .groups
            .iter()
            .any(|g| g.replicas.read().is_ok_and(|r| r.contains(&addr)))
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
    /// side closes it, or it is idle for the idle timeout.
    async fn connection(&self, client: TcpStream, peer: SocketAddr, port: u16, test: bool) {
        let mut c = Conn::new(client, self.inner.idle_timeout);
        loop {
            let head = match http::read_head(&mut c).await {
                Ok(Some(h)) => h,
                Ok(None) | Err(HeadError::TimedOut) => return,
                Err(e) => {
                    let why = match e {
                        HeadError::TooLarge => "the request head is larger than 64 KiB",
                        _ => "malformed request",
                    };
                    let _ = respond(&mut c, e.status(), why).await;
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
            let _ = respond(c, code, why).await;
            return Next::Close;
        }
        let http10 = version == "HTTP/1.0";
        let hosts = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
            .count();
        if hosts > 1 || (hosts == 0 && !http10) {
            let _ = respond(c, 400, "an HTTP/1.1 request needs exactly one Host header").await;
            return Next::Close;
        }
        if method == "CONNECT" {
            let _ = respond(c, 501, "CONNECT is not supported").await;
            return Next::Close;
        }
        let framing = match http::request_framing(&head) {
            Ok(f) => f,
            Err(_) => {
                let _ = respond(c, 400, "bad Content-Length or Transfer-Encoding").await;
                return Next::Close;
            }
        };
        // HTTP/1.0 keeps a connection only when it asks to; a request
        // with both Transfer-Encoding and Content-Length is suspect, and
        // its connection is closed after it (RFC 9112 §6.3).
        let client_keep = if http10 {
            head.has_token("connection", "keep-alive")
        } else {
            !head.has_token("connection", "close")
        } && !(head.get("transfer-encoding").is_some()
            && head.get("content-length").is_some());
        let upgrade =
            !http10 && head.has_token("connection", "upgrade") && head.get("upgrade").is_some();
        let forward = forwarded_head(&head, peer, port, http10, upgrade);
        if framing != Framing::None
            && !http10
            && head
                .get("expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && c.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err()
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
        let req = Req {
            forward,
            body,
            method,
            client_keep,
            upgrade,
            http10,
        };
        self.exchange(c, color, req).await
    }

    /// Sends one request to a replica of `color` and its answer back.
    async fn exchange(&self, c: &mut Conn, color: Color, req: Req<'_>) -> Next {
        let started = Instant::now();
        let group = &self.inner.groups[color.index()];
        let replicas = group.replicas.read().map(|r| r.clone()).unwrap_or_default();
        if replicas.is_empty() {
            return self
                .refuse(c, color, started, 503, "no replica in the target group")
                .await;
        }
        let first = group.next.fetch_add(1, Ordering::Relaxed);
        let whole = matches!(req.body, Body::Whole(_));
        // A request sent on a reused connection that fails before any
        // answer is sent again on a fresh one if it can be: its body is at
        // hand and its method idempotent (the replica may have acted on it).
        let retryable = whole && IDEMPOTENT.contains(&req.method);
        // A streamed body cannot be sent twice, so it goes on a fresh
        // connection (which may join the pool afterwards).
        let mut pooled = !req.upgrade && !req.http10 && whole;
        let (mut b, addr, response, sent_whole) = loop {
            let Some((mut b, addr, reused)) =
                self.backend(&replicas, first, pooled, !retryable).await
            else {
                return self
                    .refuse(c, color, started, 502, "no replica answered")
                    .await;
            };
            let mut out = req.forward.clone();
            let sent = match &req.body {
                Body::Whole(bytes) => {
                    out.extend_from_slice(bytes);
                    b.write_all(&out).await
                }
                Body::Stream(f) => http::forward_body(c, &mut b.io, *f, out).await,
            };
            let retry = reused && retryable;
            if sent.is_err() {
                if retry {
                    pooled = false;
                    continue;
                }
                // A replica may have answered early (413, 401) and closed
                // without reading the body: that answer is passed on.
                let early = tokio::time::timeout(
                    Duration::from_secs(1),
                    self.response_head(c, &mut b, req.http10),
                )
                .await;
                if let Ok(Ok(h)) = early {
                    break (b, addr, h, false);
                }
                return self
                    .refuse(c, color, started, 502, "the replica closed the connection")
                    .await;
            }
            match self.response_head(c, &mut b, req.http10).await {
                Ok(h) => break (b, addr, h, true),
                Err(Missing::Closed) if retry => pooled = false,
                Err(Missing::TimedOut) => {
                    return self
                        .refuse(c, color, started, 504, "the replica did not answer in time")
                        .await;
                }
                Err(_) => {
                    return self
                        .refuse(c, color, started, 502, "the replica sent no answer")
                        .await;
                }
            }
        };
        let Some(status) = http::status_of(&response.start) else {
            return self
                .refuse(c, color, started, 502, "the replica's answer is not HTTP")
                .await;
        };
        if status == 101 {
            if !req.upgrade || !sent_whole {
                return self
                    .refuse(
                        c,
                        color,
                        started,
                        502,
                        "the replica switched protocols unasked",
                    )
                    .await;
            }
            self.stats(color).record(status, started.elapsed());
            let mut out = Vec::new();
            response.write_to(&mut out);
            out.extend_from_slice(&b.take_buffered());
            if c.write_all(&out).await.is_ok() {
                let early = c.take_buffered();
                if b.write_all(&early).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut c.io, &mut b.io).await;
                }
            }
            return Next::Close;
        }
        let Ok(framing) = http::response_framing(&response, req.method == "HEAD", status) else {
            return self
                .refuse(
                    c,
                    color,
                    started,
                    502,
                    "the replica's answer has an invalid Content-Length",
                )
                .await;
        };
        self.stats(color).record(status, started.elapsed());
        let keep = req.client_keep && sent_whole && framing != Framing::UntilClose;
        let backend_keep = !req.http10
            && sent_whole
            && response.start.starts_with("HTTP/1.1")
            && !response.has_token("connection", "close")
            && framing != Framing::UntilClose;
        let mut out = Vec::with_capacity(1024);
        write_answer_head(&mut out, &response, keep, req.http10);
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

    /// Answers a request with the router's own error (counted in the
    /// group's statistics) and closes the connection.
    async fn refuse(
        &self,
        c: &mut Conn,
        color: Color,
        started: Instant,
        code: u16,
        why: &str,
    ) -> Next {
        self.stats(color).record(code, started.elapsed());
        let _ = respond(c, code, why).await;
        Next::Close
    }

    /// Reads the final response head, passing 1xx answers on (not to
    /// HTTP/1.0 clients).
    async fn response_head(
        &self,
        c: &mut Conn,
        b: &mut Conn,
        http10: bool,
    ) -> Result<Head, Missing> {
        let mut first = true;
        loop {
            let h = match http::read_head(b).await {
                Ok(Some(h)) => h,
                Ok(None) if first => return Err(Missing::Closed),
                Err(HeadError::TimedOut) => return Err(Missing::TimedOut),
                Ok(None) | Err(_) => return Err(Missing::Broken),
            };
            first = false;
            match http::status_of(&h.start) {
                Some(s) if (100..200).contains(&s) && s != 101 => {
                    if !http10 {
                        let mut out = Vec::new();
                        h.write_to(&mut out);
                        if c.write_all(&out).await.is_err() {
                            return Err(Missing::Broken);
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
                self.inner.opened.fetch_add(1, Ordering::Relaxed);
                return Some((Conn::quick_ack(s, self.inner.idle_timeout), addr, false));
            }
        }
        None
    }

    /// The newest idle connection to `addr`. It is checked to be open
    /// and quiet when `check` says so (a request that cannot be sent
    /// again) or when it has been idle a while; otherwise a closed one
    /// shows when it is used, and the request is sent again.
    fn take_idle(&self, addr: SocketAddr, check: bool) -> Option<Conn> {
        let mut idle = self.inner.idle.lock().ok()?;
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
        if !self.is_replica(addr) {
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

/// Whether a field stays on its hop: hop-by-hop ones, those the message's
/// `Connection` names, and a Content-Length beside Transfer-Encoding (RFC
/// 9112 §6.3: a replica that believed it would read the body differently).
fn dropped(name: &str, named: &[String], chunked: bool) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || named.iter().any(|h| name.eq_ignore_ascii_case(h))
        || (chunked && name.eq_ignore_ascii_case("content-length"))
}

/// The request head as the replica gets it: hop-by-hop fields dropped,
/// `X-Forwarded-For` (appended to), `-Proto` and `-Port` set, as bytes.
fn forwarded_head(
    head: &Head,
    peer: SocketAddr,
    port: u16,
    http10: bool,
    upgrade: bool,
) -> Vec<u8> {
    let named = hop_named(head);
    let chunked = head.get("transfer-encoding").is_some();
    let mut out = Vec::with_capacity(512);
    http::latin1(&mut out, &head.start);
    out.extend_from_slice(b"\r\n");
    let mut xff: Vec<&str> = Vec::new();
    for (n, v) in &head.headers {
        if upgrade && n.eq_ignore_ascii_case("upgrade") {
            http::put_field(&mut out, n, v);
        } else if dropped(n, &named, chunked) {
        } else if n.eq_ignore_ascii_case("x-forwarded-for") {
            xff.push(v);
        } else if !(n.eq_ignore_ascii_case("x-forwarded-proto")
            || n.eq_ignore_ascii_case("x-forwarded-port"))
        {
            http::put_field(&mut out, n, v);
        }
    }
    let ip = peer.ip().to_string();
    xff.push(&ip);
    http::put_field(&mut out, "X-Forwarded-For", &xff.join(", "));
    http::put_field(&mut out, "X-Forwarded-Proto", "http");
    http::put_field(&mut out, "X-Forwarded-Port", &port.to_string());
    if upgrade {
        http::put_field(&mut out, "Connection", "Upgrade");
    } else if http10 {
        http::put_field(&mut out, "Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes the response head as the client gets it: an HTTP/1.1 status
/// line (the router speaks 1.1 whatever the replica does), hop-by-hop
/// fields dropped, `Connection: close` when the router will close (and
/// `keep-alive` when it keeps an HTTP/1.0 client's connection).
fn write_answer_head(out: &mut Vec<u8>, response: &Head, keep: bool, http10: bool) {
    let named = hop_named(response);
    let chunked = response.get("transfer-encoding").is_some();
    let rest = response.start.split_once(' ').map_or("", |(_, r)| r);
    out.extend_from_slice(b"HTTP/1.1 ");
    http::latin1(out, rest);
    out.extend_from_slice(b"\r\n");
    for (n, v) in &response.headers {
        if !dropped(n, &named, chunked) {
            http::put_field(out, n, v);
        }
    }
    if !keep {
        http::put_field(out, "Connection", "close");
    } else if http10 {
        http::put_field(out, "Connection", "keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

/// The fields a message's `Connection` header names as hop-by-hop, less
/// those it may not remove.
fn hop_named(head: &Head) -> Vec<String> {
    let mut named = head.tokens("connection");
    named.retain(|n| !NEVER_HOP.contains(&n.as_str()));
    named
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
async fn respond(client: &mut Conn, code: u16, why: &str) -> std::io::Result<()> {
    let reason = match code {
        400 => "Bad Request",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Service Unavailable",
    };
    let body = format!("pipedeck router: {why}\n");
    let msg = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(msg.as_bytes()).await?;
    client.io.shutdown().await
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

    fn head(start: &str, headers: &[(&str, &str)]) -> Head {
        Head {
            start: start.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn hop_by_hop_fields_stay_and_content_length_never_travels_with_transfer_encoding() {
        let req = head(
            "POST /x HTTP/1.1",
            &[
                ("Host", "app"),
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "5"),
                ("Connection", "keep-alive, X-Hop"),
                ("X-Hop", "1"),
                ("X-Forwarded-For", "10.0.0.1"),
                ("X-Forwarded-Proto", "https"),
            ],
        );
        let parse = |b: Vec<u8>| http::parse_head(&b[..b.len() - 2]).unwrap();
        let f = parse(forwarded_head(
            &req,
            "127.0.0.1:5555".parse().unwrap(),
            8080,
            false,
            false,
        ));
        assert_eq!(f.start, "POST /x HTTP/1.1");
        assert_eq!(f.get("host"), Some("app"));
        assert_eq!(f.get("transfer-encoding"), Some("chunked"));
        for gone in ["content-length", "connection", "x-hop"] {
            assert_eq!(f.get(gone), None, "{gone}");
        }
        assert_eq!(f.get("x-forwarded-for"), Some("10.0.0.1, 127.0.0.1"));
        assert_eq!(f.get("x-forwarded-proto"), Some("http"));
        assert_eq!(f.get("x-forwarded-port"), Some("8080"));
        let http10 = parse(forwarded_head(
            &req,
            "127.0.0.1:1".parse().unwrap(),
            80,
            true,
            false,
        ));
        assert_eq!(http10.get("connection"), Some("close"));

        let resp = head(
            "HTTP/1.0 200 OK",
            &[
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "9"),
                ("Keep-Alive", "timeout=5"),
            ],
        );
        let answer = |keep, http10| {
            let mut out = Vec::new();
            write_answer_head(&mut out, &resp, keep, http10);
            parse(out)
        };
        let a = answer(false, false);
        assert_eq!(a.start, "HTTP/1.1 200 OK");
        assert_eq!(a.get("content-length"), None);
        assert_eq!(a.get("keep-alive"), None);
        assert_eq!(a.get("connection"), Some("close"));
        assert_eq!(answer(true, true).get("connection"), Some("keep-alive"));
        assert_eq!(answer(true, false).get("connection"), None);
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
