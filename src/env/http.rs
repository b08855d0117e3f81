//! Just enough HTTP/1.1 for the router (RFC 9112): a buffered connection,
//! message heads, and forwarding a body by its framing (Content-Length,
//! chunked, or until the connection closes) without holding it whole.
//! Bodies are passed through byte for byte, chunk extensions and trailers
//! included.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest message head accepted (request or response).
pub const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;
const READ_SIZE: usize = 16 * 1024;

/// A TCP connection with a read buffer that outlives one message, so bytes
/// read past a head (the body, or a pipelined request) are not lost.
#[derive(Debug)]
pub struct Conn {
    pub io: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    quickack: bool,
    /// Part of a message has been read and more is awaited.
    mid_message: bool,
}

impl Conn {
    pub fn new(io: TcpStream) -> Conn {
        Conn {
            io,
            buf: Vec::with_capacity(READ_SIZE),
            pos: 0,
            quickack: false,
            mid_message: false,
        }
    }

    /// A connection that acknowledges at once what it has read when it
    /// waits for the rest of a message. For a kept-alive connection to a
    /// server that writes a response in two parts without TCP_NODELAY
    /// (Python's http.server does), Nagle's algorithm holds the second
    /// part until the first is acknowledged, and a delayed ACK makes that
    /// 40 ms. A message read in one go costs nothing more.
    pub fn quick_ack(io: TcpStream) -> Conn {
        Conn {
            quickack: true,
            ..Conn::new(io)
        }
    }

    /// Bytes read and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Reads more bytes into the buffer; 0 at the end of the stream.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.quickack && self.mid_message {
            let _ = rustix::net::sockopt::set_tcp_quickack(&self.io, true);
        }
        // Into the spare capacity: nothing is zeroed first.
        self.buf.reserve(READ_SIZE);
        let n = self.io.read_buf(&mut self.buf).await?;
        self.mid_message = n > 0;
        Ok(n)
    }

    /// The message read so far is whole: the next read starts another.
    pub fn message_done(&mut self) {
        self.mid_message = false;
    }

    /// Takes the buffered bytes out (for a tunnel).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let out = self.buffered().to_vec();
        self.buf.clear();
        self.pos = 0;
        out
    }
}

/// Why a message could not be read; `status` is what a client is told.
#[derive(Debug)]
pub enum HeadError {
    /// The stream ended or failed in the middle of a head.
    Io,
    /// Larger than [`MAX_HEAD`].
    TooLarge,
    /// Not HTTP/1.x.
    Malformed,
}

impl HeadError {
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge => 431,
            _ => 400,
        }
    }
}

/// A request or response head: the start line and the header fields, as
/// sent (names keep their case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub start: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of a header, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every comma-separated token of every `name` header, lower-cased.
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).iter().any(|t| t == token)
    }

    /// The head as bytes, ending with the blank line.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.start.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads one head. `Ok(None)`: the stream ended cleanly before a message
/// began (a keep-alive connection closed by its peer). Empty lines before
/// a request line are skipped, as RFC 9112 §2.2 allows.
pub async fn read_head(c: &mut Conn) -> Result<Option<Head>, HeadError> {
    loop {
        let b = c.buffered();
        let skip = b.iter().take_while(|&&x| x == b'\r' || x == b'\n').count();
        if skip > 0 {
            c.consume(skip);
        }
        if let Some(end) = memchr::memmem::find(c.buffered(), b"\r\n\r\n") {
            let head = parse_head(&c.buffered()[..end])?;
            c.consume(end + 4);
            return Ok(Some(head));
        }
        if c.buffered().len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        match c.fill().await {
            Ok(0) if c.buffered().is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(HeadError::Io),
            Ok(_) => {}
        }
    }
}

fn parse_head(b: &[u8]) -> Result<Head, HeadError> {
    if b.len() > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let text = std::str::from_utf8(b).map_err(|_| HeadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default();
    if start.is_empty() || start.split(' ').count() < 2 {
        return Err(HeadError::Malformed);
    }
    let mut headers = Vec::new();
    for line in lines {
        // Obsolete line folding and fields without a colon are refused.
        if line.starts_with([' ', '\t']) {
            return Err(HeadError::Malformed);
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::Malformed)?;
        if name.is_empty() || name.ends_with([' ', '\t']) {
            return Err(HeadError::Malformed);
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Head {
        start: start.to_owned(),
        headers,
    })
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes the connection (responses only).
    UntilClose,
}

fn content_length(h: &Head) -> Result<Option<u64>, HeadError> {
    let mut found: Option<u64> = None;
    for (n, v) in &h.headers {
        if !n.eq_ignore_ascii_case("content-length") {
            continue;
        }
        for part in v.split(',') {
            let len: u64 = part.trim().parse().map_err(|_| HeadError::Malformed)?;
            if found.is_some_and(|f| f != len) {
                return Err(HeadError::Malformed);
            }
            found = Some(len);
        }
    }
    Ok(found)
}

/// A request's body framing (RFC 9112 §6.3).
pub fn request_framing(h: &Head) -> Result<Framing, HeadError> {
    let te = h.tokens("transfer-encoding");
    if !te.is_empty() {
        // Chunked must be the last coding of a request.
        return if te.last().map(String::as_str) == Some("chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(HeadError::Malformed)
        };
    }
    Ok(match content_length(h)? {
        Some(0) | None => Framing::None,
        Some(n) => Framing::Length(n),
    })
}

/// A response's body framing, given the request's method and its status.
pub fn response_framing(h: &Head, head_request: bool, status: u16) -> Framing {
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Framing::None;
    }
    let te = h.tokens("transfer-encoding");
    if !te.is_empty() {
        return if te.last().map(String::as_str) == Some("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        };
    }
    match content_length(h) {
        Ok(Some(0)) => Framing::None,
        Ok(Some(n)) => Framing::Length(n),
        _ => Framing::UntilClose,
    }
}

/// The status code of a response's start line.
pub fn status_of(start: &str) -> Option<u16> {
    let mut parts = start.split(' ');
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Copies a body from `src` to `dst`. `out` holds bytes to send first (a
/// head); they go out together with the first part of the body, so a
/// small message costs one write.
pub async fn forward_body(
    src: &mut Conn,
    dst: &mut TcpStream,
    framing: Framing,
    mut out: Vec<u8>,
) -> io::Result<()> {
    match framing {
        Framing::None => {}
        Framing::Length(n) => copy_exact(src, dst, n, &mut out).await?,
        Framing::UntilClose => loop {
            out.extend_from_slice(src.buffered());
            let n = src.buffered().len();
            src.consume(n);
            flush(dst, &mut out).await?;
            if src.fill().await? == 0 {
                break;
            }
        },
        Framing::Chunked => loop {
            let line = read_line(src, &mut out, dst).await?;
            let size = chunk_size(&line)?;
            if size == 0 {
                // Trailer fields, then the blank line.
                loop {
                    let t = read_line(src, &mut out, dst).await?;
                    if t.is_empty() {
                        break;
                    }
                }
                break;
            }
            copy_exact(src, dst, size, &mut out).await?;
            if !read_line(src, &mut out, dst).await?.is_empty() {
                return Err(bad("chunk data longer than its size"));
            }
        },
    }
    flush(dst, &mut out).await
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

async fn flush(dst: &mut TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        dst.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

/// Moves exactly `n` bytes from `src` to `out`/`dst`.
async fn copy_exact(
    src: &mut Conn,
    dst: &mut TcpStream,
    mut n: u64,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    loop {
        let take = (src.buffered().len() as u64).min(n) as usize;
        out.extend_from_slice(&src.buffered()[..take]);
        src.consume(take);
        n -= take as u64;
        if n == 0 {
            return Ok(());
        }
        flush(dst, out).await?;
        if src.fill().await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Moves one CRLF-terminated line to `out` and returns it without the CRLF.
async fn read_line(src: &mut Conn, out: &mut Vec<u8>, dst: &mut TcpStream) -> io::Result<String> {
    loop {
        if let Some(i) = memchr::memchr(b'\n', src.buffered()) {
            let line = &src.buffered()[..=i];
            out.extend_from_slice(line);
            let text = String::from_utf8_lossy(line)
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            src.consume(i + 1);
            return Ok(text);
        }
        if src.buffered().len() > MAX_LINE {
            return Err(bad("chunk line too long"));
        }
        flush(dst, out).await?;
        if src.fill().await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

fn chunk_size(line: &str) -> io::Result<u64> {
    let hex = line.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| bad("bad chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes()).unwrap()
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = head("POST / HTTP/1.1\r\nContent-Length: 5");
        assert_eq!(request_framing(&h).unwrap(), Framing::Length(5));
        let h = head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5");
        assert_eq!(request_framing(&h).unwrap(), Framing::Chunked);
        let h = head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip");
        assert!(request_framing(&h).is_err());
        let h = head("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6");
        assert!(request_framing(&h).is_err());
        let h = head("GET / HTTP/1.1\r\nHost: x");
        assert_eq!(request_framing(&h).unwrap(), Framing::None);
        let r = head("HTTP/1.1 200 OK\r\nContent-Length: 10");
        assert_eq!(response_framing(&r, false, 200), Framing::Length(10));
        assert_eq!(response_framing(&r, true, 200), Framing::None);
        assert_eq!(response_framing(&r, false, 304), Framing::None);
        let r = head("HTTP/1.1 200 OK\r\nServer: x");
        assert_eq!(response_framing(&r, false, 200), Framing::UntilClose);
        assert_eq!(status_of("HTTP/1.1 503 Service Unavailable"), Some(503));
        assert_eq!(status_of("GET / HTTP/1.1"), None);
        assert!(parse_head(b"GET / HTTP/1.1\r\n folded").is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nNo colon").is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nName : v").is_err());
    }

    #[tokio::test]
    async fn a_chunked_body_passes_through_byte_for_byte_and_stops_at_its_end() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\nGET /next";
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let sender = tokio::spawn(async move {
            let mut s = TcpStream::connect(a).await.unwrap();
            // In pieces, to cross buffer refills mid-line.
            for piece in body.chunks(3) {
                s.write_all(piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            s
        });
        let (srv, _) = l.accept().await.unwrap();
        let mut src = Conn::new(srv);
        let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a2 = l2.local_addr().unwrap();
        let mut dst = TcpStream::connect(a2).await.unwrap();
        let (mut sink, _) = l2.accept().await.unwrap();
        forward_body(&mut src, &mut dst, Framing::Chunked, b"HEAD\r\n".to_vec())
            .await
            .unwrap();
        drop(dst);
        let mut got = Vec::new();
        sink.read_to_end(&mut got).await.unwrap();
        let chunked = &body[..body.len() - b"GET /next".len()];
        assert_eq!(got, [b"HEAD\r\n".as_slice(), chunked].concat());
        // What follows the body stays for the next message.
        let _s = sender.await.unwrap();
        while src.buffered().len() < 9 {
            src.fill().await.unwrap();
        }
        assert_eq!(src.buffered(), b"GET /next");
    }
}
