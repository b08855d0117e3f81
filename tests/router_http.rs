#![allow(clippy::unwrap_used, clippy::expect_used)]
//! HTTP/1.1 conformance of the environment router (`pipedeck::env::router`)
//! as a reverse proxy: client keep-alive with per-request routing, pooled
//! backend connections (and retry of a stale one), message framing in both
//! directions, hop-by-hop headers, 1xx, Upgrade tunnels, errors, statistics
//! and the in-flight count.
//!
//! Everything runs against small fake replicas written here on raw sockets,
//! through a client that reads exactly one response at a time, so several
//! requests can be sent one after another on a single connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pipedeck::env::router::{Color, Router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// How long a client waits for the next byte before failing the test.
const IDLE: Duration = Duration::from_secs(5);
/// How long a client waits for the router to close a connection it should
/// close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The large response bodies.
const BIG: usize = 8 * 1024 * 1024;

/// Fails the test instead of hanging it.
async fn within(f: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the test took more than 20 s (something hangs)");
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Deterministic bytes, not periodic at any chunk size used here.
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((i % 251) as u8) ^ ((i >> 12) as u8))
        .collect()
}

fn big() -> &'static [u8] {
    static BIG_BODY: OnceLock<Vec<u8>> = OnceLock::new();
    BIG_BODY.get_or_init(|| pattern(BIG))
}

/// Polls `f` for up to a second until it gives `want` (the router may
/// update its counters just after the client saw the last byte).
async fn settles<T: PartialEq + std::fmt::Debug>(what: &str, want: T, f: impl Fn() -> T) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let got = f();
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!("{what}: expected {want:?}, still {got:?} after 1 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------
// Messages on the wire
// ---------------------------------------------------------------------------

/// A request or response head: the start line and the header fields.
#[derive(Debug, Clone)]
struct Head {
    start: String,
    headers: Vec<(String, String)>,
    raw: Vec<u8>,
}

impl Head {
    /// Lenient: a line without a colon becomes a field with an empty value.
    fn parse(raw: &[u8]) -> Head {
        let text = String::from_utf8_lossy(raw);
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once(':') {
                Some((n, v)) => (n.trim().to_owned(), v.trim().to_owned()),
                None => (l.to_owned(), String::new()),
            })
            .collect();
        Head {
            start,
            headers,
            raw: raw.to_vec(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether a comma-separated field (`Connection`, ...) lists `token`.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The start line's `i`-th space-separated field.
    fn field(&self, i: usize) -> &str {
        self.start.split(' ').nth(i).unwrap_or("")
    }

    fn status(&self) -> u16 {
        self.field(1).parse().unwrap_or(0)
    }

    fn content_length(&self) -> Option<usize> {
        self.get("content-length").and_then(|v| v.parse().ok())
    }

    fn chunked(&self) -> bool {
        self.has_token("transfer-encoding", "chunked")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilEof,
}

/// A decoded body. `complete` is false when the peer closed (or the bytes
/// stopped making sense) before the framing said the body ended.
#[derive(Debug, Default)]
struct Body {
    data: Vec<u8>,
    complete: bool,
    /// Chunk extensions, as sent (after the `;`).
    exts: Vec<String>,
    trailers: Vec<(String, String)>,
    error: Option<String>,
}

#[derive(Debug)]
struct Response {
    status: u16,
    head: Head,
    /// 1xx responses received before this one.
    interim: Vec<Head>,
    body: Body,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body.data).into_owned()
    }
}

/// What a connection does next.
#[derive(Debug, PartialEq, Eq)]
enum Peer {
    /// EOF or reset.
    Closed,
    /// Nothing within the wait.
    Open,
    /// Unexpected bytes.
    Sent(Vec<u8>),
}

/// A buffered connection: bytes read past one message stay for the next.
struct Wire {
    s: TcpStream,
    buf: Vec<u8>,
    /// Clients fail after this long without a byte; replicas wait forever.
    idle: Option<Duration>,
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed the connection",
    )
}

impl Wire {
    fn new(s: TcpStream, idle: Option<Duration>) -> Wire {
        let _ = s.set_nodelay(true);
        Wire {
            s,
            buf: Vec::new(),
            idle,
        }
    }

    /// Reads more bytes into the buffer; 0 at EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(64 * 1024);
        let idle = self.idle;
        let read = self.s.read_buf(&mut self.buf);
        match idle {
            Some(d) => tokio::time::timeout(d, read).await.map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing from the peer for {d:?}"),
                )
            })?,
            None => read.await,
        }
    }

    /// Like `fill`, EOF being an error.
    async fn more(&mut self) -> io::Result<()> {
        match self.fill().await? {
            0 => Err(eof()),
            _ => Ok(()),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s
            .write_all(bytes)
            .await
            .expect("writing to the router");
    }

    /// One head. `Ok(None)`: the peer closed before sending a byte.
    async fn read_head(&mut self) -> io::Result<Option<Head>> {
        loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                let rest = self.buf.split_off(i + 4);
                let raw = std::mem::replace(&mut self.buf, rest);
                return Ok(Some(Head::parse(&raw)));
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(eof())
                };
            }
        }
    }

    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            self.more().await?;
        }
    }

    /// Exactly `n` bytes.
    async fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.more().await?;
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// A body by its framing. Errors only on a timeout; a peer closing
    /// early gives an incomplete body.
    async fn read_body(&mut self, framing: Framing) -> io::Result<Body> {
        let mut b = Body::default();
        let r = match framing {
            Framing::None => Ok(()),
            Framing::Length(n) => match self.take(n).await {
                Ok(data) => {
                    b.data = data;
                    Ok(())
                }
                Err(e) => {
                    b.data = std::mem::take(&mut self.buf);
                    Err(e)
                }
            },
            Framing::Chunked => self.chunked_body(&mut b).await,
            Framing::UntilEof => loop {
                match self.fill().await {
                    Ok(0) => {
                        b.data = std::mem::take(&mut self.buf);
                        break Ok(());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        b.data = std::mem::take(&mut self.buf);
                        break Err(e);
                    }
                }
            },
        };
        match r {
            Ok(()) => {
                b.complete = true;
                Ok(b)
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(e),
            Err(e) => {
                b.error = Some(e.to_string());
                Ok(b)
            }
        }
    }

    async fn chunked_body(&mut self, b: &mut Body) -> io::Result<()> {
        loop {
            let line = self.read_line().await?;
            let (size, ext) = match line.split_once(';') {
                Some((s, e)) => (s, Some(e)),
                None => (line.as_str(), None),
            };
            if let Some(e) = ext {
                b.exts.push(e.trim().to_owned());
            }
            let size = usize::from_str_radix(size.trim(), 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size line {line:?}"),
                )
            })?;
            if size == 0 {
                loop {
                    let t = self.read_line().await?;
                    if t.is_empty() {
                        return Ok(());
                    }
                    if let Some((n, v)) = t.split_once(':') {
                        b.trailers.push((n.trim().to_owned(), v.trim().to_owned()));
                    }
                }
            }
            let data = self.take(size + 2).await?;
            if &data[size..] != b"\r\n" {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a chunk not followed by CRLF",
                ));
            }
            b.data.extend_from_slice(&data[..size]);
        }
    }

    /// Reads one final response (collecting 1xx ones before it).
    /// `head_request`: the request was HEAD, so there is no body.
    async fn response(&mut self, head_request: bool) -> Response {
        let mut interim = Vec::new();
        loop {
            let head = match self.read_head().await {
                Ok(Some(h)) => h,
                Ok(None) => panic!("the router closed the connection without a response"),
                Err(e) => panic!("reading a response head: {e}"),
            };
            let status = head.status();
            if (100..200).contains(&status) && status != 101 {
                interim.push(head);
                continue;
            }
            let framing = if head_request || status == 101 || status == 204 || status == 304 {
                Framing::None
            } else if head.chunked() {
                Framing::Chunked
            } else if let Some(n) = head.content_length() {
                Framing::Length(n)
            } else {
                Framing::UntilEof
            };
            let body = self
                .read_body(framing)
                .await
                .unwrap_or_else(|e| panic!("reading the body of {:?}: {e}", head.start));
            return Response {
                status,
                head,
                interim,
                body,
            };
        }
    }

    /// Sends a request and reads its response.
    async fn exchange(&mut self, request: &[u8]) -> Response {
        self.send(request).await;
        self.response(request.starts_with(b"HEAD ")).await
    }

    /// What the connection does within `wait`.
    async fn peer(&mut self, wait: Duration) -> Peer {
        if !self.buf.is_empty() {
            return Peer::Sent(std::mem::take(&mut self.buf));
        }
        let mut tmp = [0u8; 512];
        match tokio::time::timeout(wait, self.s.read(&mut tmp)).await {
            Ok(Ok(0) | Err(_)) => Peer::Closed,
            Ok(Ok(n)) => Peer::Sent(tmp[..n].to_vec()),
            Err(_) => Peer::Open,
        }
    }
}

// ---------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------

const CLOSE: &str = "Connection: close";

fn req(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    let mut v = s.into_bytes();
    v.extend_from_slice(body);
    v
}

fn get(path: &str) -> Vec<u8> {
    req("GET", path, &[], b"")
}

fn get_close(path: &str) -> Vec<u8> {
    req("GET", path, &[CLOSE], b"")
}

fn post(path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let cl = format!("Content-Length: {}", body.len());
    let mut all = vec![cl.as_str()];
    all.extend_from_slice(headers);
    req("POST", path, &all, body)
}

/// A chunked body of `pieces`, the first chunk with an extension.
fn chunked(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let ext = if i == 0 { ";ext=1" } else { "" };
        out.extend_from_slice(format!("{:x}{ext}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

async fn connect(addr: SocketAddr) -> Wire {
    let s = TcpStream::connect(addr)
        .await
        .expect("connecting to the router");
    Wire::new(s, Some(IDLE))
}

/// One request on a fresh connection: the response, then what the
/// connection did after it (within `CLOSE_WAIT`).
async fn once(addr: SocketAddr, request: &[u8]) -> (Response, Peer) {
    let mut c = connect(addr).await;
    let r = c.exchange(request).await;
    let p = c.peer(CLOSE_WAIT).await;
    (r, p)
}

async fn router_with(blue: &[&Replica], green: &[&Replica]) -> (Router, SocketAddr) {
    let r = Router::new();
    r.set_replicas(Color::Blue, blue.iter().map(|x| x.addr).collect());
    r.set_replicas(Color::Green, green.iter().map(|x| x.addr).collect());
    let (addr, _task) = r.listen(any_port()).await.expect("the router listens");
    (r, addr)
}

fn counts(r: &Router, color: Color) -> (u64, u64) {
    let w = r.stats(color).window(Duration::from_secs(10));
    (w.requests, w.errors_5xx)
}

// ---------------------------------------------------------------------------
// Fake replicas
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// HTTP/1.1 keep-alive; closes only when a request asks (`Connection:
    /// close`, or HTTP/1.0 without keep-alive), and then without saying so.
    KeepAlive,
    /// Answers with `Connection: close`, then keeps the socket open for
    /// 200 ms, counting any request that still arrives on it.
    SaysClose,
    /// Answers `HTTP/1.0` (no keep-alive), lingering like `SaysClose`.
    Http10,
    /// Closes each connection right after its first response, without
    /// saying `Connection: close`.
    CloseAfterFirst,
    /// Closes a connection idle for 50 ms after a response.
    IdleClose,
}

struct Shared {
    name: &'static str,
    /// Status of the default route.
    status: u16,
    mode: Mode,
    accepts: AtomicUsize,
    requests: AtomicUsize,
    /// Requests received on a connection after answering it would close.
    reused_after_close: AtomicUsize,
    /// `/stream-req`: the first body bytes arrived.
    body_started: Notify,
    /// `/stream-resp`: send the rest.
    release: Notify,
}

/// A replica on a local port. Routes:
/// - `/` (anything else): `status` with the replica's name as body
/// - `/echo`: the request body back (CL or chunked request)
/// - `/headers`: the raw request head back
/// - `/cl`: `hello world` by Content-Length (HEAD: the length, no body)
/// - `/chunked`: chunked, with chunk extensions and a trailer, in small pieces
/// - `/304`, `/204`: no body but a Content-Length
/// - `/big-cl`, `/big-chunked`: 8 MiB
/// - `/nolength`: a close-delimited body
/// - `/truncate-cl`, `/truncate-chunked`: closes mid-body
/// - `/hints`: 103 Early Hints, then 200
/// - `/ws`: 101 for a websocket upgrade, then echoes upper-cased
/// - `/stream-resp`: the first chunk, the rest on `release`
/// - `/stream-req`: notes the first body bytes, then echoes
/// - `/slow`: answers after 300 ms
///
/// A request with `Expect: 100-continue` gets `100 Continue` first.
struct Replica {
    addr: SocketAddr,
    sh: Arc<Shared>,
}

impl Replica {
    async fn start(name: &'static str, status: u16, mode: Mode) -> Replica {
        let l = TcpListener::bind(any_port()).await.unwrap();
        let addr = l.local_addr().unwrap();
        let sh = Arc::new(Shared {
            name,
            status,
            mode,
            accepts: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            reused_after_close: AtomicUsize::new(0),
            body_started: Notify::new(),
            release: Notify::new(),
        });
        let shared = sh.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                shared.accepts.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_replica_conn(Wire::new(s, None), shared.clone()));
            }
        });
        Replica { addr, sh }
    }

    async fn ok(name: &'static str) -> Replica {
        Replica::start(name, 200, Mode::KeepAlive).await
    }

    fn accepts(&self) -> usize {
        self.sh.accepts.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.sh.requests.load(Ordering::SeqCst)
    }

    fn reused_after_close(&self) -> usize {
        self.sh.reused_after_close.load(Ordering::SeqCst)
    }
}

async fn serve_replica_conn(mut w: Wire, sh: Arc<Shared>) {
    let mut served = 0usize;
    loop {
        let head = if sh.mode == Mode::IdleClose && served > 0 {
            match tokio::time::timeout(Duration::from_millis(50), w.read_head()).await {
                Ok(h) => h,
                Err(_) => return,
            }
        } else {
            w.read_head().await
        };
        let Ok(Some(head)) = head else {
            return;
        };
        sh.requests.fetch_add(1, Ordering::SeqCst);
        served += 1;
        let keep = match replica_answer(&mut w, &head, &sh).await {
            Ok(k) => k,
            Err(_) => return,
        };
        let asked_close = head.has_token("connection", "close")
            || (head.field(2) == "HTTP/1.0" && !head.has_token("connection", "keep-alive"));
        if !keep || asked_close {
            return;
        }
        match sh.mode {
            Mode::KeepAlive | Mode::IdleClose => {}
            Mode::CloseAfterFirst => return,
            Mode::SaysClose | Mode::Http10 => {
                // A client that listened never sends another request here.
                if let Ok(Ok(Some(_))) =
                    tokio::time::timeout(Duration::from_millis(200), w.read_head()).await
                {
                    sh.reused_after_close.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        426 => "Upgrade Required",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}

/// A response with a Content-Length, in the replica's mode.
async fn reply(
    w: &mut Wire,
    sh: &Shared,
    status: u16,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let version = if sh.mode == Mode::Http10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let conn = if sh.mode == Mode::SaysClose {
        "Connection: close\r\n"
    } else {
        ""
    };
    let mut msg = format!(
        "{version} {status} {}\r\nContent-Length: {}\r\nX-Replica: {}\r\n{conn}\r\n",
        reason(status),
        body.len(),
        sh.name
    )
    .into_bytes();
    if !head_only {
        msg.extend_from_slice(body);
    }
    w.s.write_all(&msg).await
}

/// Answers one request; `Ok(false)`: close the connection afterwards.
async fn replica_answer(w: &mut Wire, head: &Head, sh: &Shared) -> io::Result<bool> {
    let head_only = head.field(0) == "HEAD";
    let path = head.field(1).to_owned();
    if head.has_token("expect", "100-continue") {
        w.s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    if path == "/stream-req" {
        let n = head.content_length().unwrap_or(0);
        while w.buf.is_empty() {
            w.more().await?;
        }
        sh.body_started.notify_one();
        let body = w.take(n).await?;
        reply(w, sh, 200, &body, false).await?;
        return Ok(true);
    }
    let framing = if head.chunked() {
        Framing::Chunked
    } else if let Some(n) = head.content_length() {
        Framing::Length(n)
    } else {
        Framing::None
    };
    let body = w.read_body(framing).await?;
    if !body.complete {
        return Err(io::Error::other("an incomplete request body"));
    }
    match path.as_str() {
        "/echo" => reply(w, sh, 200, &body.data, head_only).await?,
        "/headers" => reply(w, sh, 200, &head.raw, head_only).await?,
        "/cl" => reply(w, sh, 200, b"hello world", head_only).await?,
        "/304" => {
            w.s.write_all(
                b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 100\r\n\r\n",
            )
            .await?;
        }
        "/204" => {
            w.s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")
                .await?;
        }
        "/chunked" => {
            let msg: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
                5;name=value\r\nhello\r\n6;quoted=\"a b\"\r\n world\r\n0\r\nX-Checksum: abc123\r\n\r\n";
            // In small pieces: the router must not expect a message, or a
            // chunk line, to arrive in one read.
            for piece in msg.chunks(7) {
                w.s.write_all(piece).await?;
                w.s.flush().await?;
                tokio::task::yield_now().await;
            }
        }
        "/big-cl" => {
            w.s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n").as_bytes())
                .await?;
            w.s.write_all(big()).await?;
        }
        "/big-chunked" => {
            w.s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let data = big();
            let sizes = [65536usize, 1, 4097, 30000, 100_000];
            let (mut off, mut i) = (0, 0);
            while off < data.len() {
                let n = sizes[i % sizes.len()].min(data.len() - off);
                let mut chunk = format!("{n:x}\r\n").into_bytes();
                chunk.extend_from_slice(&data[off..off + n]);
                chunk.extend_from_slice(b"\r\n");
                w.s.write_all(&chunk).await?;
                off += n;
                i += 1;
            }
            w.s.write_all(b"0\r\n\r\n").await?;
        }
        "/nolength" => {
            w.s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")
                .await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            w.s.write_all(b"part two").await?;
            w.s.shutdown().await?;
            return Ok(false);
        }
        "/truncate-cl" => {
            let mut msg = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
            msg.extend_from_slice(&[b'x'; 100]);
            w.s.write_all(&msg).await?;
            return Ok(false);
        }
        "/truncate-chunked" => {
            w.s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
                .await?;
            return Ok(false);
        }
        "/hints" => {
            w.s.write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
                .await?;
            tokio::time::sleep(Duration::from_millis(10)).await;
            reply(w, sh, 200, b"ok", head_only).await?;
        }
        "/ws" => {
            let upgrade = head.has_token("connection", "upgrade")
                && head
                    .get("upgrade")
                    .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
            if !upgrade {
                reply(w, sh, 426, b"the upgrade headers did not arrive", false).await?;
                return Ok(true);
            }
            // The first tunnelled bytes in the same write as the 101 head.
            w.s.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                  Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nsrv-hello",
            )
            .await?;
            loop {
                if !w.buf.is_empty() {
                    let out = std::mem::take(&mut w.buf).to_ascii_uppercase();
                    w.s.write_all(&out).await?;
                }
                if w.fill().await? == 0 {
                    w.s.shutdown().await?;
                    return Ok(false);
                }
            }
        }
        "/stream-resp" => {
            w.s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
                .await?;
            let _ = tokio::time::timeout(Duration::from_secs(3), sh.release.notified()).await;
            w.s.write_all(b"6\r\nsecond\r\n0\r\n\r\n").await?;
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            reply(w, sh, sh.status, sh.name.as_bytes(), head_only).await?;
        }
        _ => reply(w, sh, sh.status, sh.name.as_bytes(), head_only).await?,
    }
    Ok(true)
}

// ---------------------------------------------------------------------------
// 1. Client keep-alive
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_client_sends_many_requests_on_one_connection() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        for i in 0..5 {
            let r = c.exchange(&get("/")).await;
            assert_eq!(
                (r.status, r.text()),
                (200, "blue".to_owned()),
                "request {i}"
            );
            assert!(
                !r.head.has_token("connection", "close"),
                "request {i}: the router announced a close: {:?}",
                r.head
            );
        }
        assert_eq!(
            c.peer(Duration::from_millis(200)).await,
            Peer::Open,
            "an idle keep-alive client connection stays open"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_and_http10_clients_are_answered_then_closed() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let (r, after) = once(addr, &get_close("/")).await;
        assert_eq!((r.status, r.text()), (200, "blue".to_owned()));
        assert_eq!(after, Peer::Closed, "Connection: close");
        let (r, after) = once(addr, b"GET / HTTP/1.0\r\nHost: test\r\n\r\n").await;
        assert_eq!((r.status, r.text()), (200, "blue".to_owned()));
        assert_eq!(after, Peer::Closed, "HTTP/1.0 without keep-alive");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_to_a_connection_close_client_says_connection_close() {
    within(async {
        // The replica closes when asked but does not say so: the router must.
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let (r, after) = once(addr, &get_close("/")).await;
        assert_eq!(r.status, 200);
        assert!(
            r.head.has_token("connection", "close"),
            "no Connection: close in {:?}",
            r.head.start
        );
        assert_eq!(after, Peer::Closed);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_client_with_keep_alive_keeps_its_connection() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        for i in 0..3 {
            let r = c
                .exchange(b"GET / HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n")
                .await;
            assert_eq!(
                (r.status, r.text()),
                (200, "blue".to_owned()),
                "request {i}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_delimited_response_is_forwarded_then_the_client_closed() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        // A keep-alive client: only the missing length makes the router close.
        let mut c = connect(addr).await;
        let r = c.exchange(&get("/nolength")).await;
        assert_eq!(r.status, 200);
        assert!(r.body.complete, "{:?}", r.body.error);
        assert_eq!(r.text(), "part one, part two");
        assert_eq!(c.peer(CLOSE_WAIT).await, Peer::Closed);
        // Nothing left broken behind.
        let (r, _) = once(addr, &get_close("/")).await;
        assert_eq!(r.text(), "blue");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Weights, test listener and statistics per request
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_one_request_per_connection_exactly() {
    within(async {
        let blue = Replica::ok("blue").await;
        let green = Replica::start("green", 500, Mode::KeepAlive).await;
        let (r, addr) = router_with(&[&blue], &[&green]).await;
        r.set_green_percent(10);
        let mut greens = 0;
        for _ in 0..100 {
            let (resp, _) = once(addr, &get_close("/")).await;
            if resp.text() == "green" {
                assert_eq!(resp.status, 500);
                greens += 1;
            }
        }
        assert_eq!(greens, 10);
        settles("green (requests, 5xx)", (10, 10), || {
            counts(&r, Color::Green)
        })
        .await;
        settles("blue (requests, 5xx)", (90, 0), || counts(&r, Color::Blue)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_apply_per_request_on_one_keep_alive_connection() {
    within(async {
        let blue = Replica::ok("blue").await;
        let green = Replica::start("green", 500, Mode::KeepAlive).await;
        let (r, addr) = router_with(&[&blue], &[&green]).await;
        r.set_green_percent(10);
        let mut c = connect(addr).await;
        let mut greens = 0;
        for _ in 0..100 {
            let resp = c.exchange(&get("/")).await;
            if resp.text() == "green" {
                assert_eq!(resp.status, 500);
                greens += 1;
            }
        }
        assert_eq!(greens, 10, "10% of 100 requests on one connection");
        settles("green (requests, 5xx)", (10, 10), || {
            counts(&r, Color::Green)
        })
        .await;
        settles("blue (requests, 5xx)", (90, 0), || counts(&r, Color::Blue)).await;
        // Half and half, still on the same connection: both groups answer.
        r.set_green_percent(50);
        let mut seen = Vec::new();
        for _ in 0..100 {
            seen.push(c.exchange(&get("/")).await.text());
        }
        assert_eq!(seen.iter().filter(|s| *s == "green").count(), 50);
        assert_eq!(seen.iter().filter(|s| *s == "blue").count(), 50);
        settles("green (requests, 5xx)", (60, 60), || {
            counts(&r, Color::Green)
        })
        .await;
        settles("blue (requests, 5xx)", (140, 0), || counts(&r, Color::Blue)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_listener_routes_each_request_on_a_connection_to_the_test_target() {
    within(async {
        let blue = Replica::ok("blue").await;
        let green = Replica::ok("green").await;
        let (r, _) = router_with(&[&blue], &[&green]).await;
        let (test, _task) = r.listen_test(any_port()).await.unwrap();
        r.set_test_target(Color::Green);
        let mut c = connect(test).await;
        for _ in 0..3 {
            assert_eq!(c.exchange(&get("/")).await.text(), "green");
        }
        r.set_test_target(Color::Blue);
        for _ in 0..3 {
            assert_eq!(c.exchange(&get("/")).await.text(), "blue");
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// 2, 3. Backend pooling, stale connections
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connections_are_reused_for_one_keep_alive_client() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        for i in 0..100 {
            let r = c.exchange(&get("/")).await;
            assert_eq!(
                (r.status, r.text()),
                (200, "blue".to_owned()),
                "request {i}"
            );
        }
        assert_eq!(blue.requests(), 100);
        assert!(
            blue.accepts() <= 2,
            "100 sequential requests opened {} connections to the replica",
            blue.accepts()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connections_are_reused_across_client_connections() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        for i in 0..100 {
            let (r, after) = once(addr, &get_close("/")).await;
            assert_eq!(
                (r.status, r.text()),
                (200, "blue".to_owned()),
                "request {i}"
            );
            assert_eq!(after, Peer::Closed);
        }
        assert_eq!(blue.requests(), 100);
        assert!(
            blue.accepts() <= 2,
            "100 one-request client connections opened {} connections to the replica",
            blue.accepts()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_answering_close_or_http10_work_and_are_not_reused() {
    within(async {
        for mode in [Mode::SaysClose, Mode::Http10] {
            let blue = Replica::start("blue", 200, mode).await;
            let (_r, addr) = router_with(&[&blue], &[]).await;
            let mut c = connect(addr).await;
            for i in 0..5 {
                let r = c.exchange(&get("/")).await;
                assert_eq!(
                    (r.status, r.text()),
                    (200, "blue".to_owned()),
                    "{mode:?} request {i}"
                );
            }
            assert_eq!(blue.requests(), 5, "{mode:?}");
            assert_eq!(blue.accepts(), 5, "{mode:?}: one connection per request");
            // Let the lingering replica connections see any late request.
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert_eq!(
                blue.reused_after_close(),
                0,
                "{mode:?}: a request was sent on a connection the replica said it would close"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_connection_closed_after_first_response_is_retried() {
    within(async {
        let blue = Replica::start("blue", 200, Mode::CloseAfterFirst).await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        for i in 0..10 {
            let (r, _) = once(addr, &get_close("/")).await;
            assert_eq!(
                (r.status, r.text()),
                (200, "blue".to_owned()),
                "request {i}"
            );
        }
        assert_eq!(blue.requests(), 10, "each request answered exactly once");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_connection_closed_when_idle_is_retried() {
    within(async {
        let blue = Replica::start("blue", 200, Mode::IdleClose).await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        for i in 0..5 {
            let (r, _) = once(addr, &get_close("/")).await;
            assert_eq!(
                (r.status, r.text()),
                (200, "blue".to_owned()),
                "request {i}"
            );
            // Longer than the replica keeps an idle connection.
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
        assert_eq!(blue.requests(), 5);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_connections_are_retried_on_one_keep_alive_client_connection() {
    within(async {
        for mode in [Mode::CloseAfterFirst, Mode::IdleClose] {
            let blue = Replica::start("blue", 200, mode).await;
            let (_r, addr) = router_with(&[&blue], &[]).await;
            let mut c = connect(addr).await;
            for i in 0..5 {
                let r = c.exchange(&get("/")).await;
                assert_eq!(
                    (r.status, r.text()),
                    (200, "blue".to_owned()),
                    "{mode:?} request {i}"
                );
                if mode == Mode::IdleClose {
                    tokio::time::sleep(Duration::from_millis(120)).await;
                }
            }
            assert_eq!(blue.requests(), 5, "{mode:?}");
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// 4. Framing
// ---------------------------------------------------------------------------

fn assert_chunked_extras(r: &Response) {
    assert_eq!(r.status, 200);
    assert!(r.body.complete, "{:?}", r.body.error);
    assert_eq!(r.text(), "hello world");
    assert_eq!(
        r.body.exts,
        vec!["name=value".to_owned(), "quoted=\"a b\"".to_owned()],
        "chunk extensions"
    );
    assert_eq!(
        r.body.trailers,
        vec![("X-Checksum".to_owned(), "abc123".to_owned())],
        "trailers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_and_chunked_responses_are_framed() {
    within(async {
        // The replica keeps its connection: the router can only tell where a
        // response ends from its framing.
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let (r, after) = once(addr, &get_close("/cl")).await;
        assert_eq!((r.status, r.text()), (200, "hello world".to_owned()));
        assert_eq!(after, Peer::Closed);
        let (r, after) = once(addr, &get_close("/chunked")).await;
        assert_chunked_extras(&r);
        assert_eq!(after, Peer::Closed);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_204_and_304_have_no_body_even_with_a_content_length() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let (r, after) = once(addr, &req("HEAD", "/cl", &[CLOSE], b"")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.head.get("content-length"), Some("11"));
        assert_eq!(after, Peer::Closed, "HEAD: no body to wait for");
        let (r, after) = once(addr, &get_close("/304")).await;
        assert_eq!(r.status, 304);
        assert_eq!(r.head.get("etag"), Some("\"v1\""));
        assert_eq!(after, Peer::Closed, "304: no body to wait for");
        let (r, after) = once(addr, &get_close("/204")).await;
        assert_eq!(r.status, 204);
        assert_eq!(after, Peer::Closed, "204: no body to wait for");
        // A reused replica connection is still in step.
        let (r, _) = once(addr, &get_close("/")).await;
        assert_eq!((r.status, r.text()), (200, "blue".to_owned()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_responses_arrive_byte_exact() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        for path in ["/big-cl", "/big-chunked"] {
            let (r, after) = once(addr, &get_close(path)).await;
            assert_eq!(r.status, 200, "{path}");
            assert!(r.body.complete, "{path}: {:?}", r.body.error);
            assert_eq!(r.body.data.len(), BIG, "{path}");
            assert!(r.body.data == big(), "{path}: the body differs");
            assert_eq!(after, Peer::Closed, "{path}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_holds_on_one_keep_alive_connection() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        let r = c.exchange(&get("/cl")).await;
        assert_eq!(r.text(), "hello world");
        let r = c.exchange(&req("HEAD", "/cl", &[], b"")).await;
        assert_eq!((r.status, r.body.data.len()), (200, 0));
        let r = c.exchange(&get("/304")).await;
        assert_eq!(r.status, 304);
        let r = c.exchange(&get("/204")).await;
        assert_eq!(r.status, 204);
        assert_chunked_extras(&c.exchange(&get("/chunked")).await);
        let r = c.exchange(&get("/big-chunked")).await;
        assert!(r.body.complete && r.body.data == big(), "big chunked");
        let r = c.exchange(&get("/big-cl")).await;
        assert!(
            r.body.complete && r.body.data == big(),
            "big content-length"
        );
        let r = c.exchange(&post("/echo", &[], b"hello")).await;
        assert_eq!(r.text(), "hello");
        let mut body = chunked(&[b"abc", b"defg"]);
        let mut request = req("POST", "/echo", &["Transfer-Encoding: chunked"], b"");
        request.append(&mut body);
        let r = c.exchange(&request).await;
        assert_eq!(r.text(), "abcdefg");
        let r = c.exchange(&get("/")).await;
        assert_eq!((r.status, r.text()), (200, "blue".to_owned()));
        assert_eq!(c.peer(Duration::from_millis(200)).await, Peer::Open);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_body_is_streamed_not_buffered() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        c.send(&get_close("/stream-resp")).await;
        // The replica holds the rest back until the first chunk got here.
        let first = tokio::time::timeout(Duration::from_secs(2), async {
            let head = c.read_head().await.unwrap().unwrap();
            let size = c.read_line().await.unwrap();
            let data = c.take(7).await.unwrap();
            (head.status(), size, data)
        })
        .await
        .expect("the first chunk did not arrive before the whole body");
        assert_eq!(first, (200, "5".to_owned(), b"first\r\n".to_vec()));
        blue.sh.release.notify_one();
        let rest = c.read_body(Framing::Chunked).await.unwrap();
        assert!(rest.complete, "{:?}", rest.error);
        assert_eq!(rest.data, b"second");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_request_bodies_reach_the_replica_intact() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let (r, _) = once(addr, &post("/echo", &[CLOSE], b"hello")).await;
        assert_eq!((r.status, r.text()), (200, "hello".to_owned()));
        let body = pattern(1024 * 1024);
        let (r, _) = once(addr, &post("/echo", &[CLOSE], &body)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.data.len(), body.len());
        assert!(r.body.data == body, "the 1 MiB body differs");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_request_bodies_reach_the_replica_intact() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let te = "Transfer-Encoding: chunked";
        let mut request = req("POST", "/echo", &[te, CLOSE], b"");
        request.extend(chunked(&[b"Wiki", b"pedia", b" in\r\n\r\nchunks."]));
        let (r, _) = once(addr, &request).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "Wikipedia in\r\n\r\nchunks.");
        let data = pattern(256 * 1024);
        let pieces: Vec<&[u8]> = data.chunks(10_000).collect();
        let mut request = req("POST", "/echo", &[te, CLOSE], b"");
        request.extend(chunked(&pieces));
        let (r, _) = once(addr, &request).await;
        assert_eq!(r.status, 200);
        assert!(r.body.data == data, "the 256 KiB chunked body differs");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_body_is_streamed_to_the_replica() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        // Bodies up to 256 KiB are read whole (so a request can be sent
        // again on a fresh connection); larger ones stream.
        let half = 200 * 1024;
        let (first, last) = (vec![b'f'; half], vec![b'l'; half]);
        c.send(
            format!(
                "POST /stream-req HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                2 * half
            )
            .as_bytes(),
        )
        .await;
        c.send(&first).await;
        tokio::time::timeout(Duration::from_secs(2), blue.sh.body_started.notified())
            .await
            .expect("the first half of the body did not reach the replica before the second was sent");
        c.send(&last).await;
        let r = c.response(false).await;
        assert_eq!(r.status, 200);
        assert!(r.body.data == [first, last].concat(), "the echo differs");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_promptly() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        let started = Instant::now();
        // The head only: the body follows the 100.
        let head = req(
            "POST",
            "/echo",
            &["Content-Length: 5", "Expect: 100-continue", CLOSE],
            b"",
        );
        c.send(&head).await;
        let interim = tokio::time::timeout(Duration::from_secs(1), c.read_head())
            .await
            .expect("no 100 Continue within 1 s")
            .unwrap()
            .expect("the router closed instead of 100 Continue");
        assert_eq!(interim.status(), 100, "{:?}", interim.start);
        assert!(started.elapsed() < Duration::from_secs(1));
        c.send(b"hello").await;
        let r = c.response(false).await;
        assert_eq!((r.status, r.text()), (200, "hello".to_owned()));
    })
    .await;
}

// ---------------------------------------------------------------------------
// 5, 6, 7. Headers, 1xx, Upgrade
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_dropped_end_to_end_ones_forwarded() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        let r = c
            .exchange(
                b"GET /headers HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive, X-Hop\r\n\
                  Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Hop: secret\r\n\
                  X-Custom: kept\r\n\r\n",
            )
            .await;
        assert_eq!(r.status, 200);
        let seen = Head::parse(&r.body.data);
        assert_eq!(seen.get("host"), Some("example.test"));
        assert_eq!(seen.get("x-custom"), Some("kept"));
        for hop in ["keep-alive", "proxy-connection", "x-hop"] {
            assert!(
                !seen.has(hop),
                "{hop} reached the replica: {:?}",
                seen.headers
            );
        }
        assert!(
            !seen.has_token("connection", "x-hop"),
            "the client's Connection header reached the replica: {:?}",
            seen.headers
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_103_is_forwarded_before_the_final_response() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let (r, after) = once(addr, &get_close("/hints")).await;
        assert_eq!(r.interim.len(), 1, "{:?}", r.interim);
        assert_eq!(r.interim[0].status(), 103);
        assert_eq!(r.interim[0].get("link"), Some("</style.css>; rel=preload"));
        assert_eq!((r.status, r.text()), (200, "ok".to_owned()));
        assert_eq!(after, Peer::Closed);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_becomes_a_bidirectional_tunnel() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        let r = c
            .exchange(
                b"GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                  Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            )
            .await;
        assert_eq!(r.status, 101, "{:?} {}", r.head.start, r.text());
        assert_eq!(c.take(9).await.unwrap(), b"srv-hello", "replica to client");
        c.send(b"ping").await;
        assert_eq!(
            c.take(4).await.unwrap(),
            b"PING",
            "client to replica and back"
        );
        let many = b"abc".repeat(10_000);
        c.send(&many).await;
        assert_eq!(c.take(many.len()).await.unwrap(), many.to_ascii_uppercase());
        // The client ends its side; the replica closes; so does the tunnel.
        c.s.shutdown().await.unwrap();
        assert_eq!(c.peer(CLOSE_WAIT).await, Peer::Closed);
    })
    .await;
}

// ---------------------------------------------------------------------------
// 8. Errors, statistics, in flight
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_replica_is_503_a_dead_one_is_502_or_skipped() {
    within(async {
        let (r, addr) = router_with(&[], &[]).await;
        let (resp, _) = once(addr, &get_close("/")).await;
        assert_eq!(resp.status, 503);
        let dead = {
            let l = std::net::TcpListener::bind(any_port()).unwrap();
            l.local_addr().unwrap()
        };
        r.set_replicas(Color::Blue, vec![dead]);
        let (resp, _) = once(addr, &get_close("/")).await;
        assert_eq!(resp.status, 502);
        let blue = Replica::ok("blue").await;
        r.set_replicas(Color::Blue, vec![dead, blue.addr]);
        for i in 0..4 {
            let (resp, _) = once(addr, &get_close("/")).await;
            assert_eq!(
                (resp.status, resp.text()),
                (200, "blue".to_owned()),
                "request {i}"
            );
        }
        settles("blue (requests, 5xx)", (6, 2), || counts(&r, Color::Blue)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_closing_mid_response_closes_the_client() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        let resp = c.exchange(&get("/truncate-cl")).await;
        assert_eq!(resp.status, 200);
        assert!(
            !resp.body.complete,
            "a 1000-byte body ended after 100 bytes"
        );
        assert_eq!(resp.body.data.len(), 100);
        assert_eq!(c.peer(CLOSE_WAIT).await, Peer::Closed);
        let mut c = connect(addr).await;
        let resp = c.exchange(&get("/truncate-chunked")).await;
        assert_eq!(resp.status, 200);
        assert!(!resp.body.complete, "a chunked body without its last chunk");
        assert_eq!(resp.text(), "hello");
        assert_eq!(c.peer(CLOSE_WAIT).await, Peer::Closed);
        settles("in flight (blue)", 0, || r.in_flight(Color::Blue)).await;
        let (resp, _) = once(addr, &get_close("/")).await;
        assert_eq!((resp.status, resp.text()), (200, "blue".to_owned()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_400() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let bad: [&[u8]; 3] = [
            b"NOT-HTTP\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: test\r\nthis line has no colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: abc\r\n\r\n",
        ];
        for request in bad {
            let mut c = connect(addr).await;
            let _ = c.s.write_all(request).await;
            let r = c.response(false).await;
            assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(request));
        }
        assert_eq!(
            blue.requests(),
            0,
            "a malformed request reached the replica"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_head_is_431() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (_r, addr) = router_with(&[&blue], &[]).await;
        let mut request = b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 70 * 1024));
        request.extend_from_slice(b"\r\n\r\n");
        let mut c = connect(addr).await;
        // The router may answer and close before reading it all.
        let _ = c.s.write_all(&request).await;
        let r = c.response(false).await;
        assert_eq!(r.status, 431);
        assert_eq!(blue.requests(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_counts_a_request_while_it_is_answered() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        c.send(&get_close("/slow")).await;
        settles("in flight (blue) during /slow", 1, || {
            r.in_flight(Color::Blue)
        })
        .await;
        assert_eq!(r.in_flight(Color::Green), 0);
        let resp = c.response(false).await;
        assert_eq!(resp.text(), "blue");
        settles("in flight (blue) after", 0, || r.in_flight(Color::Blue)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_is_zero_for_idle_keep_alive_connections() {
    within(async {
        let blue = Replica::ok("blue").await;
        let (r, addr) = router_with(&[&blue], &[]).await;
        let mut c = connect(addr).await;
        for _ in 0..3 {
            assert_eq!(c.exchange(&get("/")).await.text(), "blue");
        }
        settles("in flight (blue), connection idle", 0, || {
            r.in_flight(Color::Blue)
        })
        .await;
        c.send(&get("/slow")).await;
        settles("in flight (blue) during /slow", 1, || {
            r.in_flight(Color::Blue)
        })
        .await;
        assert_eq!(c.response(false).await.text(), "blue");
        settles("in flight (blue) after /slow", 0, || {
            r.in_flight(Color::Blue)
        })
        .await;
        assert_eq!(
            c.peer(Duration::from_millis(100)).await,
            Peer::Open,
            "the client connection is still open"
        );
    })
    .await;
}
