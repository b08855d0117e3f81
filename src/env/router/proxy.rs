//! The router's proxy: one client connection's requests, each routed on
//! its own, sent to a replica of its group (on a pooled connection when it
//! can be), and the answer streamed back; 1xx answers are passed on and an
//! `Upgrade` answered with 101 becomes a tunnel.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::headers::{forwarded_head, write_answer_head};
use super::{Color, Router};
use crate::env::http::{self, Conn, Framing, Head, HeadError};

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

impl Router {
    /// One client connection: requests one after another until either
    /// side closes it, or it is idle for the idle timeout.
    pub(super) async fn connection(
        &self,
        client: TcpStream,
        peer: SocketAddr,
        port: u16,
        test: bool,
    ) {
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
        let replicas = self.replicas(color);
        if replicas.is_empty() {
            return self
                .refuse(c, color, started, 503, "no replica in the target group")
                .await;
        }
        let first = self.inner.table.next_start(color);
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
