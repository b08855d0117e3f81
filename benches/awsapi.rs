//! GetPipelineState through the local AWS API beside baselines in the same
//! run (a plain `main`, not criterion):
//!
//! - `in-process`: `EngineHandle::call` (the floor: the engine actor alone);
//! - `socket`: the same request as JSON lines over the workspace's Unix
//!   socket (what `pipedeck status` and an attached TUI use);
//! - `aws-api`: `POST /` with `X-Amz-Target: CodePipeline_20150709.GetPipelineState`,
//!   SigV4-signed per request (as an SDK does), HTTP/1.1 keep-alive, the
//!   server verifying the signature and mapping the reply to AWS's shape.
//!
//! Latency: 2,000 sequential calls on one connection (p50 / p99 / mean).
//! Throughput: 8 connections calling back to back for 3 s.
//! The pipeline has 7 stages and one finished execution, so the state is
//! not empty (about 4 KB of JSON).
//!
//!     cargo bench --bench awsapi
//!
//! Figures measured 2026-12-01 on the 2-core dev machine while other
//! worktrees compiled (one run; expect the p99s to move a lot):
//!
//! ```text
//! in-process  p50   9.6 µs  p99   16.4 µs  mean  10.1 µs   73234 calls/s
//! socket      p50  50.0 µs  p99  217.6 µs  mean  72.1 µs   13663 calls/s
//! aws-api     p50 105.7 µs  p99 3939.0 µs  mean 198.0 µs    4957 calls/s
//! ```
//!
//! A second run, busier (others building): in-process p50 9.8 µs, 51,701/s;
//! socket p50 52.3 µs, 9,068/s; aws-api p50 121.9 µs, p99 5.2 ms, 3,182/s.
//!
//! Both runs: aws-api / socket = 2.1–2.3x at p50, 0.35x in throughput.
//! The API costs about 2x the socket per call (HTTP parsing, SigV4 on both
//! sides, the AWS shape); the client's own signing is inside these figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pipedeck::api::types::ExecutionStatus;
use pipedeck::api::{Envelope, Request};
use pipedeck::awsapi::{Credentials, Options, sigv4};
use pipedeck::engine::EngineHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SEQUENTIAL: usize = 2000;
const CONNECTIONS: usize = 8;
const SECONDS: u64 = 3;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A keep-alive HTTP/1.1 client that signs each request.
struct Http {
    s: TcpStream,
    addr: SocketAddr,
    creds: Credentials,
    buf: Vec<u8>,
}

impl Http {
    async fn connect(addr: SocketAddr, creds: &Credentials) -> Http {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Http {
            s,
            addr,
            creds: creds.clone(),
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    async fn get_state(&mut self) -> usize {
        let body = br#"{"name":"web"}"#;
        let mut h = vec![
            ("host".to_owned(), self.addr.to_string()),
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            (
                "x-amz-target".to_owned(),
                "CodePipeline_20150709.GetPipelineState".to_owned(),
            ),
        ];
        sigv4::sign(
            &mut h,
            "POST",
            "/",
            body,
            (&self.creds.access_key_id, &self.creds.secret_access_key),
            "us-east-1",
            "codepipeline",
            now(),
        );
        let mut req = String::from("POST / HTTP/1.1\r\n");
        for (k, v) in &h {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.s.write_all(&bytes).await.unwrap();
        // Read the head, then content-length bytes.
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        let (head_end, len) = loop {
            let n = self.s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..p]).to_ascii_lowercase();
                assert!(head.starts_with("http/1.1 200"), "{head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                break (p + 4, len);
            }
        };
        while self.buf.len() < head_end + len {
            let n = self.s.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            self.buf.extend_from_slice(&chunk[..n]);
        }
        len
    }
}

fn request() -> Envelope {
    Envelope {
        identity: "bench".into(),
        user_agent: "bench".into(),
        request: Request::GetPipelineState {
            pipeline_name: "web".into(),
        },
    }
}

struct Figures {
    p50: Duration,
    p99: Duration,
    mean: Duration,
    rps: f64,
}

fn summary(mut v: Vec<Duration>, rps: f64) -> Figures {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    Figures {
        p50: v[v.len() / 2],
        p99: v[v.len() * 99 / 100],
        mean,
        rps,
    }
}

async fn throughput<F, Fut>(mk: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS).map(|_| tokio::spawn(mk())).collect();
    let mut n = 0;
    for t in tasks {
        n += t.await.unwrap();
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

async fn bench_in_process(h: &EngineHandle) -> Figures {
    let mut lat = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        h.call(request()).await.unwrap();
        lat.push(t.elapsed());
    }
    let rps = throughput(|| {
        let h = h.clone();
        async move {
            let end = Instant::now() + Duration::from_secs(SECONDS);
            let mut n = 0;
            while Instant::now() < end {
                h.call(request()).await.unwrap();
                n += 1;
            }
            n
        }
    })
    .await;
    summary(lat, rps)
}

async fn bench_socket(ws: &pipedeck::config::workspace::Workspace) -> Figures {
    let mut c = pipedeck::control::Client::connect(ws).await.unwrap();
    let mut lat = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        c.call(request()).await.unwrap();
        lat.push(t.elapsed());
    }
    let rps = throughput(|| {
        let ws = ws.clone();
        async move {
            let mut c = pipedeck::control::Client::connect(&ws).await.unwrap();
            let end = Instant::now() + Duration::from_secs(SECONDS);
            let mut n = 0;
            while Instant::now() < end {
                c.call(request()).await.unwrap();
                n += 1;
            }
            n
        }
    })
    .await;
    summary(lat, rps)
}

async fn bench_api(addr: SocketAddr, creds: &Credentials) -> (Figures, usize) {
    let mut c = Http::connect(addr, creds).await;
    let size = c.get_state().await;
    let mut lat = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        c.get_state().await;
        lat.push(t.elapsed());
    }
    let rps = throughput(|| {
        let creds = creds.clone();
        async move {
            let mut c = Http::connect(addr, &creds).await;
            let end = Instant::now() + Duration::from_secs(SECONDS);
            let mut n = 0;
            while Instant::now() < end {
                c.get_state().await;
                n += 1;
            }
            n
        }
    })
    .await;
    (summary(lat, rps), size)
}

fn show(name: &str, f: &Figures) {
    println!(
        "{name:<11} p50 {:>7.1} µs  p99 {:>7.1} µs  mean {:>7.1} µs  {:>8.0} calls/s ({CONNECTIONS} connections)",
        f.p50.as_secs_f64() * 1e6,
        f.p99.as_secs_f64() * 1e6,
        f.mean.as_secs_f64() * 1e6,
        f.rps
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stages: Vec<String> = (1..=6)
            .map(|i| {
                common::stage(
                    &format!("Stage{i}"),
                    &[common::build_action(&format!("B{i}"), 1, "b.yml", "")],
                    "",
                )
            })
            .collect();
        let spec = common::buildspec(&["true"]);
        let ws = common::workspace(
            &common::pipeline("web", "SUPERSEDED", &stages),
            "",
            &[("b.yml", spec.as_str())],
        );
        let workspace = ws.load();
        let lock = pipedeck::control::WorkspaceLock::acquire(&workspace).unwrap();
        let h = ws.engine();
        let server = pipedeck::control::serve(&h, &lock).unwrap();
        let id = common::start(&h, "web").await;
        common::until_status(&h, "web", &id, ExecutionStatus::Succeeded).await;

        let creds = Credentials::generate();
        let api = pipedeck::awsapi::start(
            h.clone(),
            Options {
                addr: "127.0.0.1:0".parse().unwrap(),
                readonly: false,
                protected: vec![],
                protected_via_api: false,
                credentials: creds.clone(),
                workspace_root: ws.root.clone(),
            },
        )
        .await
        .unwrap();

        println!("GetPipelineState, 7 stages, {SEQUENTIAL} sequential calls, then {CONNECTIONS} connections for {SECONDS} s");
        let a = bench_in_process(&h).await;
        show("in-process", &a);
        let b = bench_socket(&workspace).await;
        show("socket", &b);
        let (c, size) = bench_api(api.local_addr, &creds).await;
        show("aws-api", &c);
        println!(
            "aws-api answer: {size} bytes; aws-api / socket: p50 {:.2}x, throughput {:.2}x",
            c.p50.as_secs_f64() / b.p50.as_secs_f64(),
            c.rps / b.rps
        );
        api.stop().await;
        server.drain().await;
        h.shutdown().await;
    });
}
