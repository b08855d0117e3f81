//! Router figures (a plain `main`): throughput and p99 latency through the
//! router against connecting to a replica directly, the router's CPU time
//! per request, and the time from the decision to shift traffic to all
//! new requests reaching the new group.
//!
//!     cargo bench --bench router
//!
//! Three replicas (the demo service itself, `python3 -m app.server`; a
//! minimal Python http.server answering "ok"; a minimal Rust server
//! answering from memory) and two kinds of client (keep-alive; a new
//! connection per request), 16 at a time. The load generator and the Rust
//! replica run in processes of their own; this process holds only the
//! router, so its CPU time is the router's. When nginx or HAProxy is
//! installed, the same load goes through each of them too, in front of
//! the same replica, with keep-alive connections to it and the same
//! X-Forwarded-For/-Proto/-Port fields the router adds, for reference.
//! A second direct run sends those three fields itself: it tells what
//! parsing them costs the replica, which no proxy can save. Everything
//! shares the machine's cores.
//!
//!     cargo bench --bench router -- WORD   # only the cases naming WORD
//!     PIPEDECK_BENCH_PIN=1 cargo bench --bench router
//!
//! `PIPEDECK_BENCH_PIN=1` (needs `taskset`) puts the replicas on CPU 1
//! and everything else (load generator, router, reference proxies) on
//! CPU 0: the proxy takes no CPU time from the replica, as a load
//! balancer on other hosts than its targets takes none.
//!
//! Figures measured 2026-11-27 on the 2-core dev machine. Each figure is
//! the median of 5 alternating runs: percent of direct throughput (in
//! brackets: of direct with the three fields), then added p99 in ms.
//!
//! The replica on a core of its own (`PIPEDECK_BENCH_PIN=1`; 3 runs of
//! the keep-alive cases, 2 of the others):
//!
//! | replica, clients           | pipedeck router              | nginx 1.22          | HAProxy 2.6         |
//! |----------------------------|------------------------------|---------------------|---------------------|
//! | demo service, keep-alive   | 91-104% (104), +0.16..+0.46  | 90-107%, -0.2..+1.4 | 99-110%, -0.7..+0.4 |
//! | minimal Python, keep-alive | 84-111% (105-127), -0.4..+0.7| 99-103%, -0.3..+0.9 | 98-107%, -0.4..+0.2 |
//! | minimal Rust, keep-alive   | 24-29%, +0.6..+0.7           | 24-27%, +0.5..+0.7  | 23-26%, +0.6..+0.7  |
//! | demo, per request          | 288-308%                     | 254-268%            | 259-277%            |
//! | minimal Python, per request| 275-284%                     | 262-270%            | 262-266%            |
//! | minimal Rust, per request  | 53-56%                       | 50-52%              | 50-51%              |
//!
//! Everything sharing both cores (the default; 2 runs, and 2 more of the
//! minimal Python keep-alive case):
//!
//! | replica, clients           | pipedeck router            | nginx 1.22                 | HAProxy 2.6                |
//! |----------------------------|----------------------------|----------------------------|----------------------------|
//! | demo service, keep-alive   | 84-91% (88-91), 0..+1.8    | 85-94% (91-92), -0.4..+1.5 | 83-93% (90), -1.3..+2.2    |
//! | minimal Python, keep-alive | 77-83% (84-95), +1.0..+2.7 | 79-88% (87-100), +0.2..+1.8| 74-88% (79-101), +0.3..+2.0|
//! | minimal Rust, keep-alive   | 33%, +0.5..+0.6            | 32%, +0.6..+0.8            | 33-34%, +0.7..+1.4         |
//! | demo, per request          | 177%                       | 190%                       | 201%                       |
//! | minimal Python, per request| 225%                       | 237%                       | 220%                       |
//! | minimal Rust, per request  | 89%, -0.8                  | 88%, +0.3                  | 79%, -0.6                  |
//!
//! - With the demo service on a core of its own, the goal (>= 90% of
//!   direct throughput, < 1 ms added p99) is met in every run; with the
//!   minimal Python replica in 2 runs of 3 (84% in the third, added p99
//!   under 1 ms in all). The router is level with nginx and HAProxy.
//! - Sharing the cores, no proxy meets it reliably: each takes CPU time
//!   from the replica (router 46-60 us per request, nginx 45-55, HAProxy
//!   55-67 with a Python replica, most of it the kernel waking the
//!   replica's threads), and the router runs 1-5 points behind nginx.
//! - The three X-Forwarded fields alone cost a Python replica up to 13%
//!   of its throughput (http.server parses headers slowly).
//! - With a minimal replica every proxy reaches a quarter to a third of
//!   direct: a request costs a proxy a read and a write on each side, as
//!   many system calls as the client and the replica together, on the
//!   same cores as the load generator.
//! - A new connection per request: the proxies keep their connections to
//!   the replica alive, so the replica no longer pays a TCP handshake and
//!   a thread per request, and serves two to three times as many.
//! - Tried and dropped: running the router's connections on independent
//!   single-threaded event loops, as nginx's workers are, with a pool of
//!   replica connections per loop. No change beyond the noise.
//! - Shift: applied in under 1 us; no request sent after the decision
//!   reached the old group (goal < 50 ms: met).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pipedeck::env::router::{Color, Router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A replica answering `body` to every request, keeping connections alive
/// unless the client asks to close.
async fn replica(body: &'static str) -> SocketAddr {
    replica_on("127.0.0.1:0".parse().unwrap(), body).await
}

async fn replica_on(addr: SocketAddr, body: &'static str) -> SocketAddr {
    let l = TcpListener::bind(addr).await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                loop {
                    let end = loop {
                        if let Some(i) = memchr::memmem::find(&got, b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    };
                    let close = memchr::memmem::find(&got[..end], b"Connection: close").is_some();
                    got.drain(..end);
                    let msg = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n{body}",
                        body.len(),
                        if close { "Connection: close\r\n" } else { "" }
                    );
                    if s.write_all(msg.as_bytes()).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `Connection: close`: a new connection for every request.
    PerConnection,
    /// One connection per client, requests one after another.
    KeepAlive,
}

/// Whether clients send the three X-Forwarded-* fields the router adds:
/// a direct run whose requests cost the replica the same to parse.
static FORWARDED: AtomicBool = AtomicBool::new(false);

/// A client: one connection in keep-alive mode.
struct Client {
    addr: SocketAddr,
    mode: Mode,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    fn new(addr: SocketAddr, mode: Mode) -> Client {
        Client {
            addr,
            mode,
            conn: None,
            buf: Vec::new(),
        }
    }

    /// One GET; the body of a 200, or None.
    async fn get(&mut self) -> Option<String> {
        let r = self.exchange().await;
        if r.is_none() || self.mode == Mode::PerConnection {
            self.conn = None;
        }
        r
    }

    async fn exchange(&mut self) -> Option<String> {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr).await.ok()?;
            s.set_nodelay(true).ok()?;
            self.conn = Some(s);
            self.buf.clear();
        }
        let s = self.conn.as_mut()?;
        let req: &[u8] = match (self.mode, FORWARDED.load(Ordering::Relaxed)) {
            (Mode::PerConnection, false) => {
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            }
            (Mode::KeepAlive, false) => b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            (Mode::PerConnection, true) => {
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 38211\r\n\r\n"
            }
            (Mode::KeepAlive, true) => {
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 38211\r\n\r\n"
            }
        };
        s.write_all(req).await.ok()?;
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))?
            .trim()
            .parse()
            .ok()?;
        while self.buf.len() < end + len {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let ok = head.starts_with("http/1.") && head.get(8..13) == Some(" 200 ");
        let body = String::from_utf8_lossy(&self.buf[end..end + len]).into_owned();
        self.buf.drain(..end + len);
        ok.then_some(body)
    }
}

/// 16 clients, `n` requests: (requests per second, p50, p99, failures).
async fn load(addr: SocketAddr, n: u64, mode: Mode) -> (f64, Duration, Duration, u64) {
    let left = Arc::new(AtomicU64::new(n));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (left, failed) = (left.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut client = Client::new(addr, mode);
            while left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |x| x.checked_sub(1))
                .is_ok()
            {
                let t = Instant::now();
                if client.get().await.is_none() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (
        n as f64 / wall.as_secs_f64(),
        p(0.5),
        p(0.99),
        failed.load(Ordering::Relaxed),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

const PY_SERVER: &str = r#"import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'ok')
    def log_message(self, *a):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 256
ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#;

/// A minimal Python replica: the threading HTTP server the demo service
/// is built on, answering "ok".
async fn python_replica(dir: &std::path::Path) -> (SocketAddr, tokio::process::Child) {
    let script = dir.join("server.py");
    std::fs::write(&script, PY_SERVER).unwrap();
    let mut cmd = replica_command("python3");
    cmd.arg(&script);
    spawn_replica(cmd).await
}

/// The demo service itself (`python3 -m app.server`), as the demo's
/// environments run it.
async fn demo_service() -> (SocketAddr, tokio::process::Child) {
    let mut cmd = replica_command("python3");
    cmd.args(["-m", "app.server"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/repo"));
    spawn_replica(cmd).await
}

/// A loopback port free now (for a process told to listen on it).
fn free_port() -> Option<u16> {
    Some(
        std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port(),
    )
}

/// Waits up to 2 s for something to listen on `addr`.
async fn wait_listening(addr: SocketAddr) -> bool {
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn spawn_replica(mut cmd: tokio::process::Command) -> (SocketAddr, tokio::process::Child) {
    let port = free_port().unwrap();
    let child = cmd
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        // http.server prints a traceback for every connection reset,
        // as when a reference proxy stops.
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // One that never listens shows as failed requests.
    let _ = wait_listening(addr).await;
    (addr, child)
}

const RUNS: u64 = 5;

/// CPU time a process has used (user + system, all threads): "self"
/// or a pid.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces): utime is the 12th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    // Clock ticks of 10 ms (USER_HZ is 100 on Linux).
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

/// CPU time of a process and its children (nginx's workers).
fn tree_cpu_time(pid: &str) -> Duration {
    if pid == "self" {
        return cpu_time(pid);
    }
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    cpu_time(pid) + children.split_whitespace().map(cpu_time).sum::<Duration>()
}

/// A reverse proxy in front of the replica, as a separate process: nginx
/// or HAProxy when installed, for reference (same machine, same load,
/// keep-alive connections to the replica as the router keeps them).
async fn referenceproxy(
    kind: &str,
    replica: SocketAddr,
    dir: &std::path::Path,
) -> Option<(SocketAddr, tokio::process::Child)> {
    let port = free_port()?;
    let dir = dir.join(format!("{kind}-{}", replica.port()));
    std::fs::create_dir_all(&dir).ok()?;
    let d = dir.display();
    let mut cmd = match kind {
        "nginx" => {
            let conf = format!(
                "worker_processes 2; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
  uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  upstream replica {{ server {replica}; keepalive 64; keepalive_requests 1000000; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://replica;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Port $server_port;
    }}
  }}
}}
"
            );
            std::fs::write(dir.join("nginx.conf"), conf).ok()?;
            let mut c = tokio::process::Command::new("nginx");
            c.arg("-p").arg(&dir).arg("-c").arg(dir.join("nginx.conf"));
            c
        }
        _ => {
            let conf = format!(
                "global
  nbthread 2
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
  option forwardfor
frontend front
  bind 127.0.0.1:{port}
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Port %[dst_port]
  default_backend replica
backend replica
  server r {replica}
"
            );
            std::fs::write(dir.join("haproxy.cfg"), conf).ok()?;
            let mut c = tokio::process::Command::new("haproxy");
            c.arg("-db").arg("-f").arg(dir.join("haproxy.cfg"));
            c
        }
    };
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr).await.then_some((addr, child))
}

/// One way to reach the replica, and its figures over the runs.
struct Front {
    name: &'static str,
    addr: SocketAddr,
    /// Whether the client sends the X-Forwarded-* fields itself.
    forwarded: bool,
    proxy: Option<Proxy>,
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    cpu: Duration,
}

/// A reference proxy's process, stopped as asked when dropped (nginx's
/// master stops its workers on SIGTERM; killed outright, it would leave
/// them behind).
struct Proxy(tokio::process::Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let Some(pid) = self.0.id() else {
            return;
        };
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Front {
    /// Whose CPU time is the proxy's: a reference proxy's process, or
    /// None for this process (the router).
    fn pid(&self) -> Option<u32> {
        self.proxy.as_ref().and_then(|p| p.0.id())
    }

    fn new(name: &'static str, addr: SocketAddr, child: Option<tokio::process::Child>) -> Front {
        Front {
            name,
            addr,
            forwarded: false,
            proxy: child.map(Proxy),
            rps: vec![],
            p50: vec![],
            p99: vec![],
            cpu: Duration::ZERO,
        }
    }
}

/// Direct against through the router (and the reference proxies found),
/// alternating runs, medians.
async fn compare(label: &str, replica: SocketAddr, n: u64, mode: Mode, dir: &std::path::Path) {
    // `cargo bench --bench router -- WORD`: only the cases naming WORD.
    if let Some(only) = std::env::args().skip(1).find(|a| !a.starts_with('-'))
        && !label.contains(&only)
    {
        return;
    }
    let router = Router::new();
    router.set_replicas(Color::Blue, vec![replica]);
    let (front, _t) = router.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut fronts = vec![
        Front::new("direct", replica, None),
        Front {
            forwarded: true,
            ..Front::new("direct + X-Forwarded", replica, None)
        },
        Front::new("pipedeck router", front, None),
    ];
    for (kind, name) in [
        ("nginx", "nginx (reference)"),
        ("haproxy", "HAProxy (reference)"),
    ] {
        if let Some((addr, child)) = referenceproxy(kind, replica, dir).await {
            fronts.push(Front::new(name, addr, Some(child)));
        }
    }
    for f in &fronts {
        let _ = load_process(f.addr, n / 10, mode, f.forwarded).await; // warm up
    }
    for _ in 0..RUNS {
        for f in &mut fronts {
            let pid = f.pid().map_or("self".to_string(), |p| p.to_string());
            let t = tree_cpu_time(&pid);
            let r = load_process(f.addr, n, mode, f.forwarded).await;
            f.cpu += tree_cpu_time(&pid) - t;
            assert_eq!(r.3, 0, "failed requests via {}", f.name);
            f.rps.push(r.0);
            f.p50.push(r.1.as_secs_f64() * 1e3);
            f.p99.push(r.2.as_secs_f64() * 1e3);
        }
    }
    println!("  {label}");
    let (drps, dp99) = (median(fronts[0].rps.clone()), median(fronts[0].p99.clone()));
    let (xrps, xp99) = (median(fronts[1].rps.clone()), median(fronts[1].p99.clone()));
    let direct_cpu = (fronts[0].cpu + fronts[1].cpu) / 2;
    for f in &fronts {
        let (rps, p99) = (median(f.rps.clone()), median(f.p99.clone()));
        print!(
            "    {:<20} {rps:>7.0} req/s  p50 {:.3} ms  p99 {p99:.3} ms",
            f.name,
            median(f.p50.clone())
        );
        if f.forwarded {
            print!(
                "  ({:.0}% of direct: the fields' cost to the replica)",
                100.0 * rps / drps
            );
        } else if f.name != "direct" {
            // The router's CPU is this process's, which holds only the
            // router (less what it used idle, in the direct runs); a
            // reference proxy's is its own.
            let cpu = if f.pid().is_some() {
                f.cpu
            } else {
                f.cpu.saturating_sub(direct_cpu)
            };
            print!(
                "  => {:.0}% of direct ({:.0}% with the fields), p99 {:+.3} ms ({:+.3}), proxy CPU {:.1} us/request",
                100.0 * rps / drps,
                100.0 * rps / xrps,
                p99 - dp99,
                p99 - xp99,
                cpu.as_secs_f64() * 1e6 / (RUNS * n) as f64
            );
        }
        println!();
    }
    println!(
        "    (the router opened {} connections to the replica for {} requests; goal: >= 90% of direct, < 1 ms added p99)",
        router.connections_opened(),
        RUNS * n + n / 10
    );
}

/// The load generator and the minimal Rust replica run as processes of
/// their own (this binary again, in another role), as a client and a
/// service would: the bench's own process holds only the router, so its
/// CPU time is the router's and the router does not queue behind the
/// clients' tasks.
fn main() {
    if pinned() && std::env::var_os("PIPEDECK_BENCH_ROLE").is_none() {
        // This process and what it starts (but the replicas) on CPU 0.
        let ok = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "PIPEDECK_BENCH_PIN=1 needs taskset (util-linux)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match std::env::var("PIPEDECK_BENCH_ROLE").as_deref() {
        Ok("load") => runtime.block_on(load_role()),
        Ok("replica") => runtime.block_on(replica_role()),
        _ => runtime.block_on(bench()),
    }
}

/// `PIPEDECK_BENCH_ROLE=load ADDR=… N=… MODE=keep|close`: one load run,
/// printed as "rps p50_s p99_s failed".
async fn load_role() {
    let var = |k: &str| std::env::var(k).unwrap();
    let mode = if var("MODE") == "close" {
        Mode::PerConnection
    } else {
        Mode::KeepAlive
    };
    FORWARDED.store(var("XF") == "1", Ordering::Relaxed);
    let (rps, p50, p99, failed) = load(
        var("ADDR").parse().unwrap(),
        var("N").parse().unwrap(),
        mode,
    )
    .await;
    println!("{rps} {} {} {failed}", p50.as_secs_f64(), p99.as_secs_f64());
}

/// `PIPEDECK_BENCH_ROLE=replica PORT=…`: the minimal Rust replica.
async fn replica_role() {
    let port: u16 = std::env::var("PORT").unwrap().parse().unwrap();
    replica_on(SocketAddr::from(([127, 0, 0, 1], port)), "ok").await;
    std::future::pending::<()>().await;
}

/// One load run in a process of its own.
async fn load_process(
    addr: SocketAddr,
    n: u64,
    mode: Mode,
    forwarded: bool,
) -> (f64, Duration, Duration, u64) {
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env("PIPEDECK_BENCH_ROLE", "load")
        .env("XF", if forwarded { "1" } else { "0" })
        .env("ADDR", addr.to_string())
        .env("N", n.to_string())
        .env(
            "MODE",
            if mode == Mode::PerConnection {
                "close"
            } else {
                "keep"
            },
        )
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(f.len(), 4, "load generator: {text}");
    (
        f[0],
        Duration::from_secs_f64(f[1]),
        Duration::from_secs_f64(f[2]),
        f[3] as u64,
    )
}

/// `PIPEDECK_BENCH_PIN=1`: the replicas on CPU 1, everything else (the
/// load generator, the router, the reference proxies) on CPU 0, so a
/// proxy takes no CPU time from the replica, as a load balancer on other
/// hosts than its targets does.
fn pinned() -> bool {
    std::env::var("PIPEDECK_BENCH_PIN").as_deref() == Ok("1")
}

/// A command to start a replica: on CPU 1 when pinned.
fn replica_command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    if pinned() {
        let mut c = tokio::process::Command::new("taskset");
        c.args(["-c", "1"]).arg(program);
        c
    } else {
        tokio::process::Command::new(program)
    }
}

/// The minimal Rust replica as a process of its own.
async fn rust_replica() -> (SocketAddr, tokio::process::Child) {
    let mut cmd = replica_command(std::env::current_exe().unwrap().as_os_str());
    cmd.env("PIPEDECK_BENCH_ROLE", "replica");
    spawn_replica(cmd).await
}

async fn bench() {
    let tmp = tempfile::tempdir().unwrap();
    let (py, _child) = python_replica(tmp.path()).await;
    let (demo, _demo_child) = demo_service().await;
    println!("pipedeck router bench: 16 clients, {RUNS} alternating runs each (medians)");
    let (rust, _rust_child) = rust_replica().await;
    for (mode, what) in [
        (Mode::KeepAlive, "keep-alive clients"),
        (Mode::PerConnection, "a new connection per request"),
    ] {
        compare(
            &format!("the demo service (python3 -m app.server), {what}, 10,000 requests"),
            demo,
            10_000,
            mode,
            tmp.path(),
        )
        .await;
        compare(
            &format!("minimal Python http.server replica, {what}, 10,000 requests"),
            py,
            10_000,
            mode,
            tmp.path(),
        )
        .await;
        compare(
            &format!(
                "minimal Rust replica (the router's own cost dominates), {what}, 20,000 requests"
            ),
            rust,
            20_000,
            mode,
            tmp.path(),
        )
        .await;
    }
    let blue = replica("blue").await;
    let green = replica("green").await;
    let router = Router::new();
    router.set_replicas(Color::Blue, vec![blue]);
    router.set_replicas(Color::Green, vec![green]);
    let (front, _t) = router.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // Switch time: clients run; at t0 all traffic goes to green. Record
    // when each response arrived and from whom.
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(std::sync::Mutex::new(
        Vec::<(Instant, Instant, String)>::new(),
    ));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (stop, log) = (stop.clone(), log.clone());
        clients.push(tokio::spawn(async move {
            let mut client = Client::new(front, Mode::KeepAlive);
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                if let Some(b) = client.get().await {
                    log.lock().unwrap().push((sent, Instant::now(), b));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    router.set_live(Color::Green);
    let decided = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let log = log.lock().unwrap();
    let late_blue = log
        .iter()
        .filter(|(sent, _, b)| *sent > t0 + decided && b == "blue")
        .count();
    let last_blue = log
        .iter()
        .filter(|(_, _, b)| b == "blue")
        .map(|(_, done, _)| done.saturating_duration_since(t0))
        .max()
        .unwrap_or_default();
    let first_green = log
        .iter()
        .filter(|(_, _, b)| b == "green")
        .map(|(_, done, _)| done.saturating_duration_since(t0))
        .min()
        .unwrap_or_default();
    println!(
        "  shift decision applied in {:.3} ms; requests sent after it that reached blue: {late_blue}",
        decided.as_secs_f64() * 1e3
    );
    println!(
        "  first answer from green {:.3} ms after the decision; last answer from blue (in flight before it) {:.3} ms after",
        first_green.as_secs_f64() * 1e3,
        last_blue.as_secs_f64() * 1e3
    );
    println!(
        "  => all new requests reach green {:.3} ms after the decision (goal < 50 ms)",
        decided.as_secs_f64() * 1e3
    );
}
