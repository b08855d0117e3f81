//! The router against hostile or broken peers: request smuggling through
//! `Connection`, conflicting framing, bytes a lenient replica would read
//! differently, a non-idempotent request on a connection that fails, a
//! replica that answers early or never, and the demo service behind a
//! pooled connection. (Found in review; each of these failed before.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipedeck::env::router::{Color, Router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Log = Arc<Mutex<Vec<String>>>;

#[derive(Clone, Copy)]
enum Act {
    /// 200 with the request path as body, keep-alive.
    Echo,
    /// Read the request, then close without answering.
    Vanish,
    /// Raw bytes, then keep the connection.
    Raw(&'static [u8]),
    /// Raw bytes, then close at once (without reading any body).
    RawClose(&'static [u8]),
}

/// A replica that logs each request head it parses (CL bodies, and chunked
/// bodies read to `0\r\n\r\n`) and acts per `f(path, nth request on conn)`.
async fn replica(f: fn(&str, usize) -> Act) -> (SocketAddr, Log) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let log: Log = Arc::default();
    let lg = log.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let lg = lg.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut nth = 0;
                loop {
                    let end = loop {
                        if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                            break i;
                        }
                        let mut tmp = [0u8; 65536];
                        match s.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    nth += 1;
                    lg.lock().unwrap().push(head.clone());
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let lower = head.to_ascii_lowercase();
                    let act = f(&path, nth);
                    if let Act::RawClose(b) = act {
                        let _ = s.write_all(b).await;
                        return;
                    }
                    // Body: chunked wins, else Content-Length.
                    let need_end = |b: &Vec<u8>| -> Option<usize> {
                        if lower.contains("transfer-encoding: chunked") {
                            memchr::memmem::find(b, b"0\r\n\r\n").map(|i| i + 5)
                        } else {
                            let cl = lower
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            (b.len() >= cl).then_some(cl)
                        }
                    };
                    let n = loop {
                        if let Some(n) = need_end(&buf) {
                            break n;
                        }
                        let mut tmp = [0u8; 65536];
                        match s.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&tmp[..k]),
                        }
                    };
                    buf.drain(..n);
                    match act {
                        Act::Echo => {
                            if path == "/smuggled" {
                                // A little processing time.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            let msg = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}",
                                path.len()
                            );
                            if s.write_all(msg.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Act::Vanish => return,
                        Act::Raw(b) => {
                            if s.write_all(b).await.is_err() {
                                return;
                            }
                        }
                        Act::RawClose(_) => unreachable!(),
                    }
                }
            });
        }
    });
    (addr, log)
}

async fn router(blue: SocketAddr) -> SocketAddr {
    let r = Router::new();
    r.set_replicas(Color::Blue, vec![blue]);
    let (addr, _t) = r.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    std::mem::forget(r);
    addr
}

/// Sends `req` and reads one response (CL-framed, or up to `Connection:
/// close`), returning (head, body).
async fn exchange(s: &mut TcpStream, req: &[u8]) -> (String, Vec<u8>) {
    s.write_all(req).await.unwrap();
    let mut buf = Vec::new();
    let fut = async {
        loop {
            if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i]).into_owned();
                let cl = head
                    .to_ascii_lowercase()
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok());
                if let Some(cl) = cl
                    && buf.len() >= i + 4 + cl
                {
                    return (head, buf[i + 4..i + 4 + cl].to_vec());
                }
            }
            let mut tmp = [0u8; 65536];
            match s.read(&mut tmp).await {
                Ok(0) | Err(_) => {
                    let i = memchr::memmem::find(&buf, b"\r\n\r\n").unwrap_or(buf.len());
                    let head = String::from_utf8_lossy(&buf[..i]).into_owned();
                    return (head, buf.get(i + 4..).unwrap_or(&[]).to_vec());
                }
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("no response in 5 s")
}

fn status(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

// 1. `Connection: content-length` makes the router drop the framing header
// it framed the body by: the body becomes a second request on a pooled
// connection, and its response is served to the next client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_header_naming_content_length_cannot_smuggle_a_request() {
    let (blue, log) = replica(|_, _| Act::Echo).await;
    let front = router(blue).await;
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut req = format!(
        "POST /attacker HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: content-length\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    req.extend_from_slice(smuggled);
    let mut a = TcpStream::connect(front).await.unwrap();
    let (h, _) = exchange(&mut a, &req).await;
    assert_eq!(status(&h), "200");
    // Another client, later.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut v = TcpStream::connect(front).await.unwrap();
    let (_, body) = exchange(&mut v, b"GET /victim HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let seen: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.lines().next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        (String::from_utf8_lossy(&body).into_owned(), seen.len()),
        ("/victim".to_owned(), 2),
        "replica saw {seen:?}"
    );
}

// 2. Both Transfer-Encoding and Content-Length go to the replica
// (RFC 9112 §6.3: an intermediary MUST remove Content-Length first).
// A replica that frames by Content-Length (the demo's http.server handler
// would) reads 3 bytes and takes the rest as a second request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_never_reaches_the_replica_with_transfer_encoding() {
    let (blue, log) = replica(|_, _| Act::Echo).await;
    let front = router(blue).await;
    let mut a = TcpStream::connect(front).await.unwrap();
    let (h, _) = exchange(
        &mut a,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status(&h), "200");
    let head = log.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        !(head.contains("content-length") && head.contains("transfer-encoding")),
        "forwarded: {head:?}"
    );
}

// 3. A bare LF inside a field value is forwarded: to a replica that ends
// lines at LF (Python's http.server, nginx, ...) it is a new header line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_lf_in_a_header_is_refused_not_forwarded() {
    let (blue, log) = replica(|_, _| Act::Echo).await;
    let front = router(blue).await;
    let mut a = TcpStream::connect(front).await.unwrap();
    a.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The router should have answered 400 and forwarded nothing; instead
    // the replica got the head and now waits for a chunked body that the
    // router thinks does not exist (the client hangs).
    let forwarded = log.lock().unwrap().first().cloned();
    assert_eq!(forwarded, None);
}

// 4. A POST the replica received (and acted on) on a reused connection,
// then closed without answering (a crash, an exception in http.server's
// handler), is sent a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_on_a_failing_reused_connection_is_not_sent_twice() {
    let (blue, log) = replica(|path, nth| {
        if path == "/charge" && nth > 1 {
            Act::Vanish
        } else {
            Act::Echo
        }
    })
    .await;
    let front = router(blue).await;
    let mut a = TcpStream::connect(front).await.unwrap();
    exchange(
        &mut a,
        b"POST /warm HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
    )
    .await;
    exchange(
        &mut a,
        b"POST /charge HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
    )
    .await;
    let charges = log
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.starts_with("POST /charge"))
        .count();
    assert_eq!(charges, 1, "the replica got POST /charge {charges} times");
}

// 5. obs-text (bytes >= 0x80) in a response field value is valid HTTP, but
// the router answers 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iso_8859_1_header_values_pass_through() {
    let (blue, _) = replica(|_, _| {
        Act::Raw(b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\"caf\xe9.txt\"\r\nContent-Length: 2\r\n\r\nok")
    })
    .await;
    let front = router(blue).await;
    let mut a = TcpStream::connect(front).await.unwrap();
    let (h, _) = exchange(&mut a, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status(&h), "200", "{h}");
}

// 6. A replica that refuses a large upload at once (413, close, body
// unread) is reported to the client as a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_to_an_unread_upload_is_passed_on() {
    let (blue, _) = replica(|_, _| {
        Act::RawClose(
            b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        )
    })
    .await;
    let front = router(blue).await;
    let mut a = TcpStream::connect(front).await.unwrap();
    let n = 8 << 20;
    let head = format!("PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n\r\n");
    a.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = a.into_split();
    tokio::spawn(async move {
        let _ = wr.write_all(&vec![b'x'; n]).await;
    });
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

// 7. A response with Transfer-Encoding and Content-Length reaches the
// client with both (the router frames it chunked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_with_transfer_encoding_loses_its_content_length() {
    let (blue, _) = replica(|_, _| {
        Act::Raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    })
    .await;
    let front = router(blue).await;
    let mut a = TcpStream::connect(front).await.unwrap();
    a.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    a.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    assert!(!text.contains("content-length: 100"), "{text}");
}

// 8. `Content-Length: +5` and chunk size `+5` are accepted (Rust's integer
// parsers take a sign) and forwarded as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_content_length_is_400() {
    let (blue, log) = replica(|_, _| Act::Echo).await;
    let front = router(blue).await;
    let mut a = TcpStream::connect(front).await.unwrap();
    let (h, _) = exchange(
        &mut a,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    )
    .await;
    let forwarded = log.lock().unwrap().first().cloned();
    assert_eq!(status(&h), "400", "forwarded: {forwarded:?}");
}

// 9. A replica that never answers: 504 after the idle timeout, and the
// request is no longer in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_replica_is_504_after_the_idle_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let blue = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut keep = Vec::new();
        loop {
            let (s, _) = l.accept().await.unwrap();
            keep.push(s);
        }
    });
    let r = Router::with_idle_timeout(Duration::from_millis(400));
    r.set_replicas(Color::Blue, vec![blue]);
    let (front, _t) = r.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut a = TcpStream::connect(front).await.unwrap();
    let started = std::time::Instant::now();
    let (h, _) = exchange(&mut a, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status(&h), "504", "{h}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(r.in_flight(Color::Blue), 0);
    let w = r.stats(Color::Blue).window(Duration::from_secs(10));
    assert_eq!((w.requests, w.errors_5xx), (1, 1));
    // An idle client is closed after the timeout, without an answer.
    let mut idle = TcpStream::connect(front).await.unwrap();
    let mut tmp = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), idle.read(&mut tmp))
        .await
        .expect("the idle client was not closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

// 10. The shipped demo service (Python http.server, do_GET only) never
// reads a request body: a GET with a Content-Length body is a second
// request on a pooled connection, answered to the next client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_service_reads_a_get_body_so_the_pool_stays_in_step() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new("python3")
        .args(["-m", "app.server"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/repo"))
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let blue: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..100 {
        if TcpStream::connect(blue).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let front = router(blue).await;
    // An unfinished head: the victim's request line becomes a field value.
    let smuggled = b"GET /greet?name=SMUGGLED HTTP/1.1\r\nX-Ignore: ";
    let mut req = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    req.extend_from_slice(smuggled);
    let mut a = TcpStream::connect(front).await.unwrap();
    exchange(&mut a, &req).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut v = TcpStream::connect(front).await.unwrap();
    let (_, body) = exchange(&mut v, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let _ = child.kill().await;
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(
        body.contains("\"status\""),
        "the victim's GET /health got: {body}"
    );
}

// 1b. The same through `Connection: transfer-encoding` (with the working
// tree's CL stripping, the replica then gets no framing at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_header_naming_transfer_encoding_cannot_smuggle_a_request() {
    let (blue, log) = replica(|_, _| Act::Echo).await;
    let front = router(blue).await;
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut req = b"POST /attacker HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n".to_vec();
    req.extend_from_slice(format!("{:x}\r\n", smuggled.len()).as_bytes());
    req.extend_from_slice(smuggled);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut a = TcpStream::connect(front).await.unwrap();
    exchange(&mut a, &req).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.lines().next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(seen, vec!["POST /attacker HTTP/1.1".to_owned()]);
}
