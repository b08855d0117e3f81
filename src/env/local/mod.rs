//! A local environment: the router on a stable port, two target groups of
//! supervised replica processes on loopback ports, health checks, alarms,
//! and deployments with CodeDeploy's strategies and rollback (reference §4).
//!
//! A deployment always installs the new revision in the idle target group,
//! waits until its replicas are healthy, points the test listener at it,
//! then shifts production traffic in the strategy's steps while watching
//! the alarms, and finally retires the old group (after the termination
//! wait for blue/green, during which a rollback is a traffic flip).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use super::iface::DeployUpdate;
use super::router::{Color, Router};
use super::strategy::TrafficRouting;

pub mod backend;
pub mod releases;
mod types;

pub use types::{
    DeploymentProgress, DeploymentState, DeploymentStatus, EnvConfig, EnvEvent, GroupInfo, Hooks,
};

struct Replica {
    addr: SocketAddr,
    child: tokio::process::Child,
    healthy: bool,
    restarts: u32,
}

struct GroupRun {
    revision: String,
    dir: PathBuf,
    replicas: Vec<Replica>,
    stop: watch::Sender<bool>,
}

struct Shared {
    events: VecDeque<EnvEvent>,
    deployment: Option<DeploymentState>,
    groups: [Option<GroupInfo>; 2],
    /// Followers of the deployments and events (see [`LocalEnv::follow`]).
    followers: Vec<mpsc::UnboundedSender<DeployUpdate>>,
}

impl Shared {
    fn tell(&mut self, u: impl Fn() -> DeployUpdate) {
        self.followers.retain(|f| f.send(u()).is_ok());
    }
}

/// One running environment.
pub struct LocalEnv {
    pub cfg: EnvConfig,
    pub router: Router,
    pub front: SocketAddr,
    pub test: SocketAddr,
    logs: PathBuf,
    groups: tokio::sync::Mutex<[Option<GroupRun>; 2]>,
    shared: Arc<Mutex<Shared>>,
    /// Set to stop the deployment in progress by flipping traffic back.
    rollback_now: watch::Sender<bool>,
    /// Called after every change of the deployment or a new event.
    pub on_change: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Bumped when a group is installed: the supervisor and the synthetic
    /// traffic sleep on it while nothing is deployed.
    installs: watch::Sender<u64>,
}

fn idx(c: Color) -> usize {
    match c {
        Color::Blue => 0,
        Color::Green => 1,
    }
}

const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

fn free_port() -> std::io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

impl LocalEnv {
    /// Starts the router (no revision deployed yet). `logs` receives the
    /// replicas' output files.
    pub async fn start(cfg: EnvConfig, logs: &Path) -> std::io::Result<Arc<LocalEnv>> {
        std::fs::create_dir_all(logs)?;
        let router = Router::with_idle_timeout(cfg.idle_timeout);
        let (front, _) = router
            .listen(SocketAddr::from(([127, 0, 0, 1], cfg.port)))
            .await?;
        let (test, _) = router
            .listen_test(SocketAddr::from((
                [127, 0, 0, 1],
                cfg.test_port.unwrap_or(0),
            )))
            .await?;
        let (rb, _) = watch::channel(false);
        Ok(Arc::new(LocalEnv {
            cfg,
            router,
            front,
            test,
            logs: logs.to_path_buf(),
            groups: tokio::sync::Mutex::new([None, None]),
            shared: Arc::new(Mutex::new(Shared {
                events: VecDeque::new(),
                deployment: None,
                groups: [None, None],
                followers: Vec::new(),
            })),
            rollback_now: rb,
            on_change: std::sync::OnceLock::new(),
            installs: watch::channel(0).0,
        }))
    }

    fn event(&self, kind: &str, message: impl Into<String>) {
        if let Ok(mut s) = self.shared.lock() {
            let e = EnvEvent {
                at: SystemTime::now(),
                kind: kind.into(),
                message: message.into(),
            };
            s.tell(|| DeployUpdate::Event(e.clone()));
            s.events.push_back(e);
            while s.events.len() > 200 {
                s.events.pop_front();
            }
        }
        self.changed();
    }

    /// Every change of a deployment (as [`DeployUpdate::Progress`]) and
    /// every event from now on, in order, until the receiver is dropped.
    pub fn follow(&self) -> mpsc::UnboundedReceiver<DeployUpdate> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut s) = self.shared.lock() {
            s.followers.push(tx);
        }
        rx
    }

    fn changed(&self) {
        if let Some(f) = self.on_change.get() {
            f();
        }
    }

    pub fn events(&self) -> Vec<EnvEvent> {
        self.shared
            .lock()
            .map(|s| s.events.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn deployment(&self) -> Option<DeploymentState> {
        self.shared.lock().ok().and_then(|s| s.deployment.clone())
    }

    pub fn group_info(&self, c: Color) -> Option<GroupInfo> {
        self.shared
            .lock()
            .ok()
            .and_then(|s| s.groups[idx(c)].clone())
    }

    fn set_deployment(&self, f: impl FnOnce(&mut DeploymentState)) {
        if let Ok(mut s) = self.shared.lock()
            && let Some(d) = s.deployment.as_mut()
        {
            f(d);
            let p = d.progress();
            s.tell(|| DeployUpdate::Progress(p.clone()));
        }
        self.changed();
    }

    /// The group taking production traffic (blue before any deployment).
    pub fn live(&self) -> Color {
        self.router.live().unwrap_or(Color::Blue)
    }

    async fn spawn_replica(&self, dir: &Path, color: Color, n: u32) -> std::io::Result<Replica> {
        let addr = free_port()?;
        let log =
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(
                    self.logs
                        .join(format!("{}-{}-{n}.log", self.cfg.name, color.as_str())),
                )?;
        // A pid file marks the replica so an engine started after a crash
        // can stop what this one left running (checked through /proc).
        let pid_file = self
            .logs
            .join(format!("{}-{}-{n}.pid", self.cfg.name, color.as_str()));
        let mut cmd = tokio::process::Command::new("bash");
        crate::proc::mark(&mut cmd, &pid_file);
        let child = cmd
            .args(["-c", &self.cfg.command])
            .current_dir(dir)
            .env("PORT", addr.port().to_string())
            .env("PIPEDECK_ENVIRONMENT", &self.cfg.name)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        crate::proc::record(&pid_file, child.id());
        Ok(Replica {
            addr,
            child,
            healthy: false,
            restarts: 0,
        })
    }

    /// Starts `replicas` processes of a revision in `color` and supervises
    /// them (restart with backoff) and their health until stopped.
    async fn install(&self, color: Color, revision: &str, dir: &Path) -> std::io::Result<()> {
        self.retire(color, self.cfg.deregistration_delay).await;
        let mut replicas = Vec::new();
        for n in 0..self.cfg.replicas.max(1) {
            replicas.push(self.spawn_replica(dir, color, n).await?);
        }
        self.router
            .set_replicas(color, replicas.iter().map(|r| r.addr).collect());
        let (stop, _) = watch::channel(false);
        {
            let mut g = self.groups.lock().await;
            g[idx(color)] = Some(GroupRun {
                revision: revision.to_owned(),
                dir: dir.to_path_buf(),
                replicas,
                stop,
            });
        }
        self.installs.send_modify(|n| *n += 1);
        self.update_info(color).await;
        Ok(())
    }

    async fn update_info(&self, color: Color) {
        let g = self.groups.lock().await;
        let info = g[idx(color)].as_ref().map(|run| GroupInfo {
            revision: run.revision.clone(),
            healthy: run.replicas.iter().filter(|r| r.healthy).count() as u32,
            total: run.replicas.len() as u32,
            restarts: run.replicas.iter().map(|r| r.restarts).sum(),
        });
        if let Ok(mut s) = self.shared.lock() {
            s.groups[idx(color)] = info;
        }
    }

    /// Stops a group's replicas (the whole process group of each), once
    /// the requests it is answering are done (`drain` at most).
    async fn retire(&self, color: Color, drain: Duration) {
        let deadline = Instant::now() + drain;
        let routed_away = || match self.router.live() {
            Some(live) => live != color,
            None => false,
        };
        if routed_away() {
            while self.router.in_flight(color) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let run = self.groups.lock().await[idx(color)].take();
        if let Some(mut run) = run {
            let _ = run.stop.send(true);
            for r in run.replicas.iter_mut() {
                if let Some(pid) = r.child.id() {
                    crate::proc::kill_group(pid);
                }
                let _ = r.child.kill().await;
            }
        }
        self.router.set_replicas(color, Vec::new());
        if let Ok(mut s) = self.shared.lock() {
            s.groups[idx(color)] = None;
        }
    }

    /// One round of health checks and supervision for a group: replicas
    /// that exited are restarted; health follows the thresholds.
    async fn check_group(&self, color: Color, streaks: &mut Vec<(u32, u32)>) {
        let mut g = self.groups.lock().await;
        let Some(run) = g[idx(color)].as_mut() else {
            return;
        };
        streaks.resize(run.replicas.len(), (0, 0));
        let dir = run.dir.clone();
        for (n, r) in run.replicas.iter_mut().enumerate() {
            if let Ok(Some(status)) = r.child.try_wait() {
                r.restarts += 1;
                r.healthy = false;
                let backoff = Duration::from_millis(100 * 2u64.pow(r.restarts.min(6)));
                self.event(
                    "restart",
                    format!(
                        "{} replica {n} exited ({status}); restarting in {} ms",
                        color.as_str(),
                        backoff.as_millis()
                    ),
                );
                tokio::time::sleep(backoff).await;
                if let Ok(new) = self.spawn_replica(&dir, color, n as u32).await {
                    let restarts = r.restarts;
                    *r = new;
                    r.restarts = restarts;
                }
                continue;
            }
            let ok = http_ok(r.addr, &self.cfg.health_path).await;
            let s = &mut streaks[n];
            if ok {
                s.0 += 1;
                s.1 = 0;
            } else {
                s.1 += 1;
                s.0 = 0;
            }
            if !r.healthy && s.0 >= self.cfg.healthy_threshold {
                r.healthy = true;
                self.event(
                    "health",
                    format!("{} replica {n} is healthy", color.as_str()),
                );
            } else if r.healthy && s.1 >= self.cfg.unhealthy_threshold {
                r.healthy = false;
                self.event(
                    "health",
                    format!(
                        "{} replica {n} is unhealthy: GET {} failed {} times",
                        color.as_str(),
                        self.cfg.health_path,
                        s.1
                    ),
                );
            }
        }
        let healthy: Vec<SocketAddr> = run
            .replicas
            .iter()
            .filter(|r| r.healthy)
            .map(|r| r.addr)
            .collect();
        // Only healthy replicas take traffic once any is healthy.
        if !healthy.is_empty() {
            self.router.set_replicas(color, healthy);
        }
        drop(g);
        self.update_info(color).await;
    }

    async fn all_healthy(&self, color: Color) -> bool {
        let g = self.groups.lock().await;
        g[idx(color)]
            .as_ref()
            .is_some_and(|r| !r.replicas.is_empty() && r.replicas.iter().all(|x| x.healthy))
    }

    /// Whether no group is installed. `installs` is marked seen first, so
    /// an install after this answer ends the caller's `installs.changed()`.
    async fn nothing_installed(&self, installs: &mut watch::Receiver<u64>) -> bool {
        installs.borrow_and_update();
        !self.groups.lock().await.iter().any(Option::is_some)
    }

    /// Keeps both groups supervised and health-checked, forever; sends the
    /// synthetic traffic, if any. While nothing is deployed both sleep
    /// until a group is installed: an idle engine with environments that
    /// never saw a deployment does not wake for them.
    pub fn supervise(self: &Arc<Self>) {
        if self.cfg.synthetic_rps > 0 {
            let (front, rps) = (self.front, self.cfg.synthetic_rps);
            let weak = Arc::downgrade(self);
            let mut installs = self.installs.subscribe();
            tokio::spawn(async move {
                let every = Duration::from_secs_f64(1.0 / f64::from(rps));
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    let Some(me) = weak.upgrade() else { return };
                    // Only once the live group can answer (a first install
                    // is not yet serving).
                    if !me.all_healthy(me.live()).await {
                        let idle = me.nothing_installed(&mut installs).await;
                        let wait = me.cfg.health_interval.max(every);
                        drop(me);
                        if idle {
                            // Nothing deployed: until something is (the
                            // environment going away ends the wait).
                            if installs.changed().await.is_err() {
                                return;
                            }
                        } else {
                            // Not healthy yet: health changes at the
                            // health checks' pace, not the traffic's.
                            tokio::time::sleep(wait).await;
                        }
                        tick.reset();
                        continue;
                    }
                    drop(me);
                    tokio::spawn(async move {
                        let _ = http_ok(front, "/").await;
                    });
                }
            });
        }
        let me = self.clone();
        let mut installs = self.installs.subscribe();
        tokio::spawn(async move {
            let mut streaks: [Vec<(u32, u32)>; 2] = [Vec::new(), Vec::new()];
            loop {
                if me.nothing_installed(&mut installs).await {
                    // `me` holds the sender: the wait ends with an install.
                    let _ = installs.changed().await;
                    continue;
                }
                for c in [Color::Blue, Color::Green] {
                    me.check_group(c, &mut streaks[idx(c)]).await;
                }
                tokio::time::sleep(me.cfg.health_interval).await;
            }
        });
    }

    /// The alarm that fires for `color`, if any: name, threshold, measured.
    pub fn alarm(&self, color: Color) -> Option<String> {
        let w = self.router.stats(color).window(self.cfg.alarm_window);
        crate::env::stats::alarm(
            &self.cfg.name,
            &w,
            self.cfg.max_error_rate,
            self.cfg.max_p99,
            self.cfg.alarm_window,
        )
    }

    async fn hook(&self, name: &str, cmds: &[String], dir: &Path) -> Result<(), String> {
        self.set_deployment(|d| {
            d.step = name.to_owned();
            d.hooks_run.push(name.to_owned());
        });
        for c in cmds {
            let out = tokio::process::Command::new("bash")
                .args(["-c", c])
                .current_dir(dir)
                .env("PIPEDECK_ENVIRONMENT", &self.cfg.name)
                .env("PIPEDECK_TEST_URL", format!("http://{}", self.test))
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|e| format!("hook {name}: `{c}` did not start: {e}"))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                let msg = format!(
                    "hook {name} failed: `{c}` exited with {}{}",
                    out.status.code().unwrap_or(-1),
                    err.lines()
                        .last()
                        .map(|l| format!(": {}", l.trim()))
                        .unwrap_or_default()
                );
                self.event("hook", msg.clone());
                return Err(msg);
            }
        }
        if !cmds.is_empty() {
            self.event("hook", format!("hook {name} succeeded"));
        }
        Ok(())
    }

    /// Rolls back the deployment in progress (a traffic flip while the old
    /// group is still up).
    pub fn request_rollback(&self) {
        self.rollback_now.send_replace(true);
    }

    /// The process ids of a group's replicas.
    pub async fn replica_pids(&self, color: Color) -> Vec<u32> {
        let g = self.groups.lock().await;
        g[idx(color)]
            .as_ref()
            .map(|r| r.replicas.iter().filter_map(|x| x.child.id()).collect())
            .unwrap_or_default()
    }

    /// Sleeps `d` while watching alarms on `color` and rollback requests.
    async fn bake(&self, d: Duration, color: Color, watch_alarm: bool) -> Result<(), String> {
        let until = Instant::now() + d;
        let mut rb = self.rollback_now.subscribe();
        loop {
            if *rb.borrow_and_update() {
                return Err("rolled back on request".into());
            }
            if watch_alarm && let Some(a) = self.alarm(color) {
                self.event("alarm", a.clone());
                return Err(a);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let step = (until - now).min(Duration::from_millis(100));
            tokio::select! {
                () = tokio::time::sleep(step) => {}
                _ = rb.changed() => {}
            }
        }
    }

    /// Deploys `revision` (its files in `dir`). Returns the final state.
    pub async fn deploy(
        &self,
        id: &str,
        revision: &str,
        dir: &Path,
        hooks: &Hooks,
    ) -> DeploymentState {
        self.rollback_now.send_replace(false);
        let old = self.live();
        let first = self.groups.lock().await[idx(old)].is_none();
        let new = if first { old } else { old.other() };
        if let Ok(mut s) = self.shared.lock() {
            let d = DeploymentState {
                id: id.to_owned(),
                revision: revision.to_owned(),
                status: DeploymentStatus::InProgress,
                step: "BeforeInstall".into(),
                new_color: new,
                traffic_percent: 0,
                next_step_at: None,
                reason: None,
                hooks_run: Vec::new(),
            };
            let p = d.progress();
            s.tell(|| DeployUpdate::Progress(p.clone()));
            s.deployment = Some(d);
        }
        self.event(
            "deploy",
            format!("deployment {id} of {revision} to {} started", new.as_str()),
        );
        let result = self
            .run_deployment(revision, dir, hooks, old, new, first)
            .await;
        let (status, reason) = match result {
            Ok(()) => (DeploymentStatus::Succeeded, None),
            Err(why) => {
                // Traffic back to the old group at once, if there is one.
                let rolled_back = !first && self.cfg.rollback_on_failure
                    || why.starts_with("alarm") && self.cfg.rollback_on_alarm
                    || why == "rolled back on request";
                let on_new = match new {
                    Color::Green => self.router.green_percent() > 0,
                    Color::Blue => self.router.green_percent() < 100,
                };
                if !first && (rolled_back || on_new) {
                    self.router.set_live(old);
                    self.router.set_test_target(old);
                    self.retire(new, self.cfg.deregistration_delay).await;
                    self.event(
                        "rollback",
                        format!("traffic back on {} ({why})", old.as_str()),
                    );
                }
                (
                    if why == "rolled back on request" {
                        DeploymentStatus::Stopped
                    } else {
                        DeploymentStatus::Failed
                    },
                    Some(why),
                )
            }
        };
        self.set_deployment(|d| {
            d.status = status;
            d.reason = reason.clone();
            d.step = "Done".into();
            d.next_step_at = None;
            d.traffic_percent = if status == DeploymentStatus::Succeeded {
                100
            } else {
                0
            };
        });
        self.deployment().unwrap_or_else(|| unreachable!())
    }

    async fn run_deployment(
        &self,
        revision: &str,
        dir: &Path,
        hooks: &Hooks,
        old: Color,
        new: Color,
        first: bool,
    ) -> Result<(), String> {
        self.hook("BeforeInstall", &hooks.before_install, dir)
            .await?;
        self.set_deployment(|d| d.step = "Install".into());
        self.install(new, revision, dir)
            .await
            .map_err(|e| format!("install failed: {e}"))?;
        // Replicas must become healthy in time.
        let deadline = Instant::now() + self.cfg.ready_timeout;
        while !self.all_healthy(new).await {
            if Instant::now() > deadline {
                return Err(format!(
                    "health check failed: the {} replicas did not answer GET {} within {} s",
                    new.as_str(),
                    self.cfg.health_path,
                    self.cfg.ready_timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.hook("AfterInstall", &hooks.after_install, dir).await?;
        self.set_deployment(|d| d.step = "AllowTestTraffic".into());
        self.router.set_test_target(new);
        self.hook(
            "AfterAllowTestTraffic",
            &hooks.after_allow_test_traffic,
            dir,
        )
        .await?;
        self.hook("BeforeAllowTraffic", &hooks.before_allow_traffic, dir)
            .await?;
        self.set_deployment(|d| d.step = "AllowTraffic".into());
        let blue_green = self.cfg.strategy.eq_ignore_ascii_case("BlueGreen");
        let routing = if first || blue_green {
            TrafficRouting::AllAtOnce
        } else {
            TrafficRouting::from_name(&self.cfg.strategy)?
        };
        let steps = routing.steps(self.cfg.time_scale);
        for s in &steps {
            let pct = s.percent;
            let to_green = if new == Color::Green { pct } else { 100 - pct };
            self.router.set_green_percent(to_green);
            self.set_deployment(|d| {
                d.traffic_percent = pct;
                d.next_step_at = (s.wait > Duration::ZERO).then(|| SystemTime::now() + s.wait);
            });
            self.event("deploy", format!("{pct}% of traffic on {}", new.as_str()));
            self.bake(s.wait, new, !first).await?;
        }
        self.hook("AfterAllowTraffic", &hooks.after_allow_traffic, dir)
            .await?;
        if !first {
            if blue_green && self.cfg.termination_wait > Duration::ZERO {
                let wait = Duration::from_secs_f64(
                    self.cfg.termination_wait.as_secs_f64() * self.cfg.time_scale.max(0.0),
                );
                self.set_deployment(|d| {
                    d.step = "TerminationWait".into();
                    d.status = DeploymentStatus::Baking;
                    d.next_step_at = Some(SystemTime::now() + wait);
                });
                self.bake(wait, new, true).await?;
            }
            self.retire(old, self.cfg.deregistration_delay).await;
            self.event("deploy", format!("{} retired", old.as_str()));
        }
        Ok(())
    }

    /// The replica output files kept in the logs directory, by name
    /// (without `.log`), sorted.
    pub fn log_files(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.logs)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|f| {
                        let p = f.path();
                        (p.extension()? == "log")
                            .then(|| p.file_stem()?.to_str().map(str::to_owned))?
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Stops every replica (the environment goes down with pipedeck).
    pub async fn shutdown(&self) {
        // pipedeck is going away: requests get a few seconds, not the
        // deregistration delay.
        self.retire(Color::Blue, SHUTDOWN_DRAIN).await;
        self.retire(Color::Green, SHUTDOWN_DRAIN).await;
    }
}

/// `GET path` answered 2xx within a second.
pub async fn http_ok(addr: SocketAddr, path: &str) -> bool {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
        let mut buf = [0u8; 32];
        let n = s.read(&mut buf).await.ok()?;
        let line = std::str::from_utf8(&buf[..n]).ok()?;
        let code: u16 = line.split(' ').nth(1)?.trim().parse().ok()?;
        Some((200..300).contains(&code))
    };
    tokio::time::timeout(Duration::from_secs(1), fut)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
