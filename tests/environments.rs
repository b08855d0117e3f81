//! Local environments: deployments with CodeDeploy's strategies, hooks,
//! health checks, alarms and rollbacks, against real replica processes
//! (a small Python HTTP service) behind the router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pipedeck::env::local::{DeploymentStatus, EnvConfig, Hooks, LocalEnv};
use pipedeck::env::router::Color;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVER: &str = r#"
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
VERSION = open('VERSION').read().strip()
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True
    def do_GET(self):
        if self.path.startswith('/sleep/'):
            time.sleep(float(self.path[7:]))
        if self.path == '/health':
            code = 500 if os.path.exists('NOHEALTH') else 200
        else:
            code = 500 if os.path.exists('FAIL5XX') else 200
        body = VERSION.encode()
        self.send_response(code)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 128
ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#;

fn revision(root: &Path, version: &str, flags: &[&str]) -> PathBuf {
    let dir = root.join(version);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("server.py"), SERVER).unwrap();
    std::fs::write(dir.join("VERSION"), version).unwrap();
    for f in flags {
        std::fs::write(dir.join(f), "").unwrap();
    }
    dir
}

fn cfg(name: &str, strategy: &str) -> EnvConfig {
    EnvConfig {
        name: name.into(),
        port: 0,
        test_port: None,
        replicas: 2,
        command: "exec python3 server.py".into(),
        health_path: "/health".into(),
        health_interval: Duration::from_millis(50),
        healthy_threshold: 1,
        unhealthy_threshold: 2,
        max_error_rate: Some(5.0),
        max_p99: None,
        alarm_window: Duration::from_secs(5),
        strategy: strategy.into(),
        rollback_on_failure: true,
        rollback_on_alarm: true,
        termination_wait: Duration::ZERO,
        time_scale: 1.0,
        ready_timeout: Duration::from_secs(10),
        synthetic_rps: 0,
        idle_timeout: Duration::from_secs(60),
        deregistration_delay: Duration::from_secs(300),
    }
}

/// `GET path` on a connection of its own: the whole answer as text.
async fn get_raw(addr: std::net::SocketAddr, path: &str) -> Result<String, String> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| "timed out".to_owned())?
}

async fn get(addr: std::net::SocketAddr) -> Result<(u16, String), String> {
    let text = get_raw(addr, "/").await?;
    let code: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {text:?}"))?;
    Ok((code, text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()))
}

/// A client that keeps its connection to the router alive across
/// requests (and opens a new one when the router closes it).
struct KeepAlive {
    addr: std::net::SocketAddr,
    conn: Option<tokio::net::TcpStream>,
    buf: Vec<u8>,
}

impl KeepAlive {
    fn new(addr: std::net::SocketAddr) -> KeepAlive {
        KeepAlive {
            addr,
            conn: None,
            buf: Vec::new(),
        }
    }

    async fn get(&mut self) -> Result<u16, String> {
        let r = tokio::time::timeout(Duration::from_secs(10), self.exchange())
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r);
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    async fn exchange(&mut self) -> Result<u16, String> {
        if self.conn.is_none() {
            self.conn = Some(
                tokio::net::TcpStream::connect(self.addr)
                    .await
                    .map_err(|e| e.to_string())?,
            );
            self.buf.clear();
        }
        let s = self.conn.as_mut().unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before an answer".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
        let code: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no status in {head:?}"))?;
        let len: usize = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or("no Content-Length")?;
        while self.buf.len() < end + len {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed in the body".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.buf.drain(..end + len);
        if head.contains("connection: close") {
            self.conn = None;
        }
        Ok(code)
    }
}

async fn env(c: EnvConfig) -> (Arc<LocalEnv>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let e = LocalEnv::start(c, &tmp.path().join("logs")).await.unwrap();
    e.supervise();
    (e, tmp)
}

async fn first_deploy(e: &LocalEnv, root: &Path) {
    let d = e
        .deploy("d-1", "v1", &revision(root, "v1", &[]), &Hooks::default())
        .await;
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(get(e.front).await.unwrap(), (200, "v1".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_at_once_moves_all_traffic_and_retires_the_old_group() {
    let (e, tmp) = env(cfg("dev", "CodeDeployDefault.ECSAllAtOnce")).await;
    first_deploy(&e, tmp.path()).await;
    assert_eq!(e.live(), Color::Blue);
    let d = e
        .deploy(
            "d-2",
            "v2",
            &revision(tmp.path(), "v2", &[]),
            &Hooks::default(),
        )
        .await;
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(e.live(), Color::Green);
    for _ in 0..10 {
        assert_eq!(get(e.front).await.unwrap(), (200, "v2".into()));
    }
    assert!(e.group_info(Color::Blue).is_none(), "blue is retired");
    assert_eq!(e.group_info(Color::Green).unwrap().total, 2);
    e.shutdown().await;
}

/// Records the traffic percent every 20 ms while a deployment runs.
async fn deploy_watching(
    e: &Arc<LocalEnv>,
    id: &str,
    dir: PathBuf,
    hooks: Hooks,
) -> (DeploymentStatus, Vec<u32>, Option<String>) {
    let e2 = e.clone();
    let id = id.to_owned();
    let id2 = id.clone();
    let task = tokio::spawn(async move { e2.deploy(&id, "v2", &dir, &hooks).await });
    let mut seen: Vec<u32> = Vec::new();
    while !task.is_finished() {
        if let Some(d) = e.deployment()
            && d.id == id2
            && d.traffic_percent > 0
            && seen.last() != Some(&d.traffic_percent)
        {
            seen.push(d.traffic_percent);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = task.await.unwrap();
    if d.traffic_percent > 0 && seen.last() != Some(&d.traffic_percent) {
        seen.push(d.traffic_percent);
    }
    (d.status, seen, d.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_shifts_its_percentage_waits_then_shifts_the_rest() {
    let mut c = cfg("staging", "CodeDeployDefault.ECSCanary10Percent5Minutes");
    c.time_scale = 1.0 / 300.0; // 5 minutes become 1 second
    let (e, tmp) = env(c).await;
    first_deploy(&e, tmp.path()).await;
    let (status, seen, _) =
        deploy_watching(&e, "d-2", revision(tmp.path(), "v2", &[]), Hooks::default()).await;
    assert_eq!(status, DeploymentStatus::Succeeded);
    assert_eq!(seen, [10, 100]);
    assert_eq!(get(e.front).await.unwrap().1, "v2");
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_shifts_equal_steps_every_interval() {
    let mut c = cfg("staging", "ECSLinear25PercentEvery1Minutes");
    c.time_scale = 0.3 / 60.0;
    let (e, tmp) = env(c).await;
    first_deploy(&e, tmp.path()).await;
    let (status, seen, _) =
        deploy_watching(&e, "d-2", revision(tmp.path(), "v2", &[]), Hooks::default()).await;
    assert_eq!(status, DeploymentStatus::Succeeded);
    assert_eq!(seen, [25, 50, 75, 100]);
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_runs_the_hooks_in_codedeploy_order_with_test_traffic_on_green() {
    let mut c = cfg("prod", "BlueGreen");
    c.termination_wait = Duration::from_secs(1);
    let (e, tmp) = env(c).await;
    first_deploy(&e, tmp.path()).await;
    let order = tmp.path().join("order.txt");
    let rec = |name: &str| vec![format!("echo {name} >> {}", order.display())];
    let hooks = Hooks {
        before_install: rec("BeforeInstall"),
        after_install: rec("AfterInstall"),
        // The test listener already reaches the new revision here.
        after_allow_test_traffic: vec![format!(
            "python3 -c \"import os,urllib.request;print(urllib.request.urlopen(os.environ['PIPEDECK_TEST_URL']).read().decode())\" >> {}",
            order.display()
        )],
        before_allow_traffic: rec("BeforeAllowTraffic"),
        after_allow_traffic: rec("AfterAllowTraffic"),
    };
    let d = e
        .deploy("d-2", "v2", &revision(tmp.path(), "v2", &[]), &hooks)
        .await;
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let got = std::fs::read_to_string(&order).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines,
        [
            "BeforeInstall",
            "AfterInstall",
            "v2",
            "BeforeAllowTraffic",
            "AfterAllowTraffic"
        ]
    );
    assert_eq!(
        d.hooks_run,
        [
            "BeforeInstall",
            "AfterInstall",
            "AfterAllowTestTraffic",
            "BeforeAllowTraffic",
            "AfterAllowTraffic"
        ]
    );
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_that_never_gets_healthy_fails_and_traffic_stays_on_the_old_one() {
    let mut c = cfg("staging", "AllAtOnce");
    c.ready_timeout = Duration::from_secs(2);
    let (e, tmp) = env(c).await;
    first_deploy(&e, tmp.path()).await;
    let d = e
        .deploy(
            "d-2",
            "v2",
            &revision(tmp.path(), "v2", &["NOHEALTH"]),
            &Hooks::default(),
        )
        .await;
    assert_eq!(d.status, DeploymentStatus::Failed);
    let why = d.reason.unwrap();
    assert!(
        why.contains("health check failed") && why.contains("/health"),
        "{why}"
    );
    assert_eq!(get(e.front).await.unwrap(), (200, "v1".into()));
    assert!(e.events().iter().any(|ev| ev.kind == "rollback"));
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_during_the_canary_rolls_traffic_back_at_once() {
    let mut c = cfg("staging", "CodeDeployDefault.ECSCanary10Percent5Minutes");
    c.time_scale = 10.0 / 300.0; // a 10 s canary: the alarm must end it early
    let (e, tmp) = env(c).await;
    first_deploy(&e, tmp.path()).await;
    // Traffic, so the alarm has something to measure.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (front, stop) = (e.front, stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let _ = get(front).await;
            }
        })
    };
    let started = std::time::Instant::now();
    let (status, seen, reason) = deploy_watching(
        &e,
        "d-2",
        revision(tmp.path(), "v2", &["FAIL5XX"]),
        Hooks::default(),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    assert_eq!(status, DeploymentStatus::Failed);
    assert_eq!(seen, [10], "never shifted past the canary");
    let why = reason.unwrap();
    assert!(
        why.contains("5xx-rate") && why.contains("threshold 5%"),
        "{why}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the alarm ended the bake early"
    );
    assert_eq!(e.live(), Color::Blue);
    assert_eq!(get(e.front).await.unwrap(), (200, "v1".into()));
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_during_the_termination_wait_is_a_traffic_flip() {
    let mut c = cfg("prod", "BlueGreen");
    c.termination_wait = Duration::from_secs(30);
    let (e, tmp) = env(c).await;
    first_deploy(&e, tmp.path()).await;
    let e2 = e.clone();
    let dir = revision(tmp.path(), "v2", &[]);
    let task = tokio::spawn(async move { e2.deploy("d-2", "v2", &dir, &Hooks::default()).await });
    while e
        .deployment()
        .is_none_or(|d| d.status != DeploymentStatus::Baking)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(e.front).await.unwrap().1, "v2");
    assert!(
        e.group_info(Color::Blue).is_some(),
        "blue stays up during the wait"
    );
    let t = std::time::Instant::now();
    e.request_rollback();
    let d = task.await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "a flip, not a redeploy: {:?}",
        t.elapsed()
    );
    assert_eq!(d.status, DeploymentStatus::Stopped);
    assert_eq!(get(e.front).await.unwrap(), (200, "v1".into()));
    // After the wait a rollback is a new deployment of the last good revision.
    let d = e
        .deploy("d-3", "v1", &tmp.path().join("v1"), &Hooks::default())
        .await;
    assert_eq!(d.status, DeploymentStatus::Succeeded);
    assert_eq!(get(e.front).await.unwrap().1, "v1");
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replica_is_restarted() {
    let (e, tmp) = env(cfg("dev", "AllAtOnce")).await;
    first_deploy(&e, tmp.path()).await;
    // Kill one replica process: the supervisor restarts it.
    let pid = e.replica_pids(Color::Blue).await[0];
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let mut restarted = false;
    for _ in 0..100 {
        if e.group_info(Color::Blue)
            .is_some_and(|g| g.restarts > 0 && g.healthy == 2)
        {
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(restarted, "{:?}", e.events());
    assert_eq!(get(e.front).await.unwrap().1, "v1");
    e.shutdown().await;
}

/// The group that lost its traffic finishes what it is answering, for the
/// deregistration delay at most: a request that takes longer is cut then,
/// and the deployment goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_group_drains_for_the_deregistration_delay_at_most() {
    let mut c = cfg("prod", "BlueGreen");
    c.replicas = 1;
    c.deregistration_delay = Duration::from_millis(1500);
    let (e, tmp) = env(c).await;
    first_deploy(&e, tmp.path()).await;
    let slow = |secs: &'static str| {
        let front = e.front;
        tokio::spawn(async move {
            let text = get_raw(front, &format!("/sleep/{secs}"))
                .await
                .unwrap_or_else(|e| e);
            (text, std::time::Instant::now())
        })
    };
    // One request ends within the delay, one does not.
    let (short, long) = (slow("0.5"), slow("30"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(e.router.in_flight(Color::Blue), 2);
    let started = std::time::Instant::now();
    let d = e
        .deploy(
            "d-2",
            "v2",
            &revision(tmp.path(), "v2", &[]),
            &Hooks::default(),
        )
        .await;
    assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
    let (short, _) = short.await.unwrap();
    assert!(short.starts_with("HTTP/1.1 200"), "{short}");
    let (long, cut) = long.await.unwrap();
    assert!(
        !long.starts_with("HTTP/1.1 200"),
        "cut at the delay: {long:?}"
    );
    // Installing v2 takes well under a second here; then 1.5 s of drain.
    let took = cut - started;
    assert!(
        took > Duration::from_millis(1500) && took < Duration::from_millis(4500),
        "cut {took:?} after the deployment began"
    );
    assert_eq!(get(e.front).await.unwrap(), (200, "v2".into()));
    e.shutdown().await;
}

/// 16 clients, 20,000 requests in all, through a blue/green deployment and
/// a rollback: every request must succeed. Half the clients open a
/// connection per request, half keep theirs alive (so requests on one
/// client connection move between groups, and the router's pooled
/// connections to the retired group must not be used).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_downtime_through_a_blue_green_deployment_and_a_rollback() {
    let mut c = cfg("prod", "BlueGreen");
    c.replicas = 2;
    c.termination_wait = Duration::from_secs(60);
    let (e, tmp) = env(c).await;
    first_deploy(&e, tmp.path()).await;
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let remaining = Arc::new(AtomicU64::new(20_000));
    let mut clients = Vec::new();
    for k in 0..16 {
        let (front, ok, failed, remaining) =
            (e.front, ok.clone(), failed.clone(), remaining.clone());
        clients.push(tokio::spawn(async move {
            let mut kept = (k % 2 == 1).then(|| KeepAlive::new(front));
            while remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                let code = match kept.as_mut() {
                    Some(c) => c.get().await,
                    None => get(front).await.map(|(code, _)| code),
                };
                match code {
                    Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e2 = e.clone();
    let dir = revision(tmp.path(), "v2", &[]);
    let deploy = tokio::spawn(async move { e2.deploy("d-2", "v2", &dir, &Hooks::default()).await });
    while e
        .deployment()
        .is_none_or(|d| d.status != DeploymentStatus::Baking)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    e.request_rollback();
    let d = deploy.await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Stopped);
    for c in clients {
        c.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("zero-downtime: {ok} succeeded, {failed} failed");
    assert_eq!(ok + failed, 20_000);
    assert_eq!(failed, 0);
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_interface_a_deployment_streams_its_progress_and_a_stop_ends_it_stopped() {
    use pipedeck::env::iface::{DeployUpdate, Environment, ReleaseRequest};
    use pipedeck::env::local::backend::LocalEnvironment;
    use pipedeck::env::local::releases::Releases;
    let mut c = cfg("iface", "CodeDeployDefault.ECSCanary10Percent5Minutes");
    c.health_interval = Duration::from_millis(20);
    let (e, tmp) = env(c).await;
    let releases = Releases::new(tmp.path().join("state"));
    let env: Arc<dyn Environment> =
        Arc::new(LocalEnvironment::new(e.clone(), releases.clone(), true));
    assert_eq!((env.name(), env.kind()), ("iface", "local"));
    let release = |id: &str, v: &str| ReleaseRequest {
        id: id.into(),
        revision: v.into(),
        source: revision(tmp.path(), v, &[]),
    };

    // The first release: every step in order, events between, one final state.
    let mut d = env.deploy(release("d-1", "v1")).await.unwrap();
    let mut steps: Vec<String> = Vec::new();
    let mut events = Vec::new();
    let last = loop {
        match d.updates.recv().await.expect("the stream ended early") {
            DeployUpdate::Progress(p) => {
                if steps.last() != Some(&p.step) {
                    steps.push(p.step.clone());
                }
            }
            DeployUpdate::Event(ev) => events.push(ev.message),
            DeployUpdate::Finished(p) => break p,
        }
    };
    assert!(
        d.updates.recv().await.is_none(),
        "nothing after the final state"
    );
    assert_eq!(last.status, DeploymentStatus::Succeeded, "{last:?}");
    assert_eq!((last.id.as_str(), last.traffic_percent), ("d-1", 100));
    assert_eq!(
        steps,
        [
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "AllowTestTraffic",
            "AfterAllowTestTraffic",
            "BeforeAllowTraffic",
            "AllowTraffic",
            "AfterAllowTraffic",
            "Done"
        ]
    );
    assert_eq!(events[0], "deployment d-1 of v1 to blue started");
    assert!(
        events.iter().any(|m| m == "100% of traffic on blue"),
        "{events:?}"
    );
    assert_eq!(
        releases.history().unwrap().len(),
        1,
        "a success is remembered"
    );
    let s = env.summary();
    assert_eq!(s.release.as_ref().map(|r| r.id.as_str()), Some("d-1"));
    assert!(s.protected);
    let logs: Vec<(String, String)> = env.logs().into_iter().map(|l| (l.file, l.label)).collect();
    assert_eq!(
        logs,
        [
            ("iface-blue-0".to_owned(), "blue replica 0".to_owned()),
            ("iface-blue-1".to_owned(), "blue replica 1".to_owned())
        ]
    );

    // A canary that waits five minutes at 10%: a stop sends traffic back.
    let mut d = env.deploy(release("d-2", "v2")).await.unwrap();
    let last = loop {
        match d.updates.recv().await.expect("the stream ended early") {
            DeployUpdate::Progress(p) if p.traffic_percent == 10 && p.step == "AllowTraffic" => {
                assert_eq!(p.new_variant, "green");
                d.stop();
            }
            DeployUpdate::Finished(p) => break p,
            _ => {}
        }
    };
    assert_eq!(last.status, DeploymentStatus::Stopped, "{last:?}");
    assert_eq!(last.reason.as_deref(), Some("rolled back on request"));
    assert_eq!(get(e.front).await.unwrap(), (200, "v1".into()));
    assert_eq!(releases.history().unwrap().len(), 1, "a stopped one is not");
    env.shutdown().await;
}
