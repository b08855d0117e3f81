//! Just enough HTTP/1.1 for the router (RFC 9112): a buffered connection,
//! message heads, and forwarding a body by its framing (Content-Length,
//! chunked, or until the connection closes) without holding it whole.
//! Bodies are passed through byte for byte, chunk extensions and trailers
//! included.

use std::io;
use std::time::Duration;

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
    /// How long a read or a write may wait (an ALB's idle timeout).
    pub idle: Duration,
}

impl Conn {
    pub fn new(io: TcpStream, idle: Duration) -> Conn {
        Conn {
            io,
            buf: Vec::with_capacity(READ_SIZE),
            pos: 0,
            quickack: false,
            mid_message: false,
            idle,
        }
    }

    /// A connection that acknowledges at once what it has read when it
    /// waits for the rest of a message. For a kept-alive connection to a
    /// server that writes a response in two parts without TCP_NODELAY
    /// (Python's http.server does), Nagle's algorithm holds the second
    /// part until the first is acknowledged, and a delayed ACK makes that
    /// 40 ms. A message read in one go costs nothing more.
    pub fn quick_ack(io: TcpStream, idle: Duration) -> Conn {
        Conn {
            quickack: true,
            ..Conn::new(io, idle)
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

    /// Reads more bytes into the buffer; 0 at the end of the stream,
    /// `TimedOut` after [`Conn::idle`] without a byte.
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
        let n = tokio::time::timeout(self.idle, self.io.read_buf(&mut self.buf))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        self.mid_message = n > 0;
        Ok(n)
    }

    /// The message read so far is whole: the next read starts another.
    pub fn message_done(&mut self) {
        self.mid_message = false;
    }

    /// Writes all of `bytes`, `TimedOut` if the peer takes none for
    /// [`Conn::idle`].
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        write_all(&mut self.io, bytes, self.idle).await
    }

    /// Takes the buffered bytes out (for a tunnel).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let out = self.buffered().to_vec();
        self.buf.clear();
        self.pos = 0;
        out
    }
}

/// `write_all` that gives up after `idle` without progress.
pub async fn write_all(io: &mut TcpStream, bytes: &[u8], idle: Duration) -> io::Result<()> {
    tokio::time::timeout(idle, io.write_all(bytes))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Why a message could not be read; `status` is what a client is told.
#[derive(Debug)]
pub enum HeadError {
    /// The stream ended or failed in the middle of a head.
    Io,
    /// Nothing arrived for the idle timeout.
    TimedOut,
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

    /// Whether a `name` header lists `token` (case-insensitively).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The head as bytes, ending with the blank line (each char one
    /// byte: heads are read as ISO-8859-1).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        latin1(out, &self.start);
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            put_field(out, n, v);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// One `name: value` line.
pub fn put_field(out: &mut Vec<u8>, name: &str, value: &str) {
    latin1(out, name);
    out.extend_from_slice(b": ");
    latin1(out, value);
    out.extend_from_slice(b"\r\n");
}

pub fn latin1(out: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        out.extend_from_slice(s.as_bytes());
    } else {
        out.extend(
            s.chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
        );
    }
}

/// Reads one head. `Ok(None)`: the stream ended (or failed) before a
/// message began (a keep-alive connection closed by its peer). Empty lines
/// before a request line are skipped, as RFC 9112 §2.2 allows.
pub async fn read_head(c: &mut Conn) -> Result<Option<Head>, HeadError> {
    loop {
        let b = c.buffered();
        let skip = b.iter().take_while(|&&x| x == b'\r' || x == b'\n').count();
        if skip > 0 {
            c.consume(skip);
        }
        if let Some(end) = memchr::memmem::find(c.buffered(), b"\r\n\r\n") {
            let head = parse_head(&c.buffered()[..end + 2])?;
            c.consume(end + 4);
            return Ok(Some(head));
        }
        if c.buffered().len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        match c.fill().await {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(HeadError::TimedOut),
            Ok(0) | Err(_) if c.buffered().is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(HeadError::Io),
            Ok(_) => {}
        }
    }
}

/// Parses a head: the bytes up to and including its last line's CRLF.
pub fn parse_head(b: &[u8]) -> Result<Head, HeadError> {
    if b.len() > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    // Every line ends CRLF: a bare LF or CR is refused, as are obsolete
    // line folding and fields without a colon.
    let mut lines = b
        .split_inclusive(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r\n").ok_or(HeadError::Malformed));
    let start = lines.next().ok_or(HeadError::Malformed)??;
    if start.is_empty() || start.iter().any(|&c| is_ctl(c)) || !start.contains(&b' ') {
        return Err(HeadError::Malformed);
    }
    let mut headers = Vec::new();
    for line in lines {
        let line = line?;
        let colon = memchr::memchr(b':', line).ok_or(HeadError::Malformed)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Err(HeadError::Malformed);
        }
        let value = trim_ows(value);
        if value.iter().any(|&c| is_ctl(c) && c != b'\t') {
            return Err(HeadError::Malformed);
        }
        headers.push((from_latin1(name), from_latin1(value)));
    }
    Ok(Head {
        start: from_latin1(start),
        headers,
    })
}

fn is_ctl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Optional whitespace is spaces and tabs only.
fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn from_latin1(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if b.is_ascii() => s.to_owned(),
        _ => b.iter().map(|&c| char::from(c)).collect(),
    }
}

/// Decimal digits only (no sign, no spaces), as Content-Length must be.
fn parse_digits(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
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
            let len = parse_digits(part.trim_matches([' ', '\t'])).ok_or(HeadError::Malformed)?;
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

/// A response's body framing, given the request's method and its status;
/// an invalid Content-Length is an error (a proxy answers 502).
pub fn response_framing(h: &Head, head_request: bool, status: u16) -> Result<Framing, HeadError> {
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::None);
    }
    let te = h.tokens("transfer-encoding");
    if !te.is_empty() {
        return Ok(if te.last().map(String::as_str) == Some("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    Ok(match content_length(h)? {
        Some(0) => Framing::None,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
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
            flush(dst, &mut out, src.idle).await?;
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
    flush(dst, &mut out, src.idle).await
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

async fn flush(dst: &mut TcpStream, out: &mut Vec<u8>, idle: Duration) -> io::Result<()> {
    if !out.is_empty() {
        write_all(dst, out, idle).await?;
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
        flush(dst, out, src.idle).await?;
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
        flush(dst, out, src.idle).await?;
        if src.fill().await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

fn chunk_size(line: &str) -> io::Result<u64> {
    // Hex digits, then optional whitespace before an extension.
    let hex = line.split(';').next().unwrap_or("");
    let hex = hex.trim_end_matches([' ', '\t']);
    if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad("bad chunk size"));
    }
    u64::from_str_radix(hex, 16).map_err(|_| bad("chunk size too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn head(text: &str) -> Head {
        parse_head(format!("{text}\r\n").as_bytes()).unwrap()
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
        assert_eq!(
            response_framing(&r, false, 200).unwrap(),
            Framing::Length(10)
        );
        assert_eq!(response_framing(&r, true, 200).unwrap(), Framing::None);
        assert_eq!(response_framing(&r, false, 304).unwrap(), Framing::None);
        let r = head("HTTP/1.1 200 OK\r\nServer: x");
        assert_eq!(
            response_framing(&r, false, 200).unwrap(),
            Framing::UntilClose
        );
        let r = head("HTTP/1.1 200 OK\r\nContent-Length: x");
        assert!(response_framing(&r, false, 200).is_err());
        assert_eq!(status_of("HTTP/1.1 503 Service Unavailable"), Some(503));
        assert_eq!(status_of("GET / HTTP/1.1"), None);
        let bad = |h: &[u8]| parse_head(&[h, b"\r\n"].concat()).is_err();
        assert!(bad(b"GET / HTTP/1.1\r\n folded"));
        assert!(bad(b"GET / HTTP/1.1\r\nNo colon"));
        assert!(bad(b"GET / HTTP/1.1\r\nName : v"));
        assert!(bad(b"GET / HTTP/1.1\r\nX-A: a\nTransfer-Encoding: chunked"));
        assert!(bad(b"GET / HTTP/1.1\r\nX-A: a\rb"));
        assert!(bad(b"GET / HTTP/1.1\r\nContent-Length\x0b: 4"));
        assert!(request_framing(&head("POST / HTTP/1.1\r\nContent-Length: +4")).is_err());
        assert!(request_framing(&head("POST / HTTP/1.1\r\nContent-Length: 4 4")).is_err());
        // ISO-8859-1 values pass through byte for byte.
        let h = parse_head(b"HTTP/1.1 200 OK\r\nX-File: caf\xe9\t\r\n").unwrap();
        assert_eq!(h.get("x-file"), Some("caf\u{e9}"));
        let mut out = Vec::new();
        h.write_to(&mut out);
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nX-File: caf\xe9\r\n\r\n");
        assert!(chunk_size("+5").is_err() && chunk_size(" 5").is_err());
        assert_eq!(chunk_size("1f ;name=v").unwrap(), 31);
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
        let mut src = Conn::new(srv, Duration::from_secs(5));
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
