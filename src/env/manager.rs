//! The workspace's environments while an engine runs: their routers come
//! up with the engine, each comes back on its last successful deployment,
//! and Deploy actions mapped to them run deployments here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::iface::{BoxFuture, Environment};
use super::local::backend::LocalEnvironment;
use super::local::releases::Releases;
use super::local::{EnvConfig, LocalEnv};
use crate::api::env::EnvironmentSummary;
use crate::config::workspace::{EnvSpec, LocalSpec, Workspace};

pub use super::local::releases::{Release, appspec_hooks};

/// Set `PIPEDECK_EPHEMERAL_PORTS=1` to bind every environment to a free
/// port instead of its configured one (parallel tests, CI).
pub const EPHEMERAL_ENV: &str = "PIPEDECK_EPHEMERAL_PORTS";

/// The environments of a workspace, by name, whatever their kind.
pub struct Environments {
    pub envs: BTreeMap<String, Arc<dyn Environment>>,
}

/// How an engine is handed its environments: called once, with the
/// engine's event sender, when the engine starts.
pub type EnvFactory = Box<
    dyn FnOnce(
            Option<tokio::sync::broadcast::Sender<crate::api::EngineEvent>>,
        ) -> BoxFuture<'static, Result<Environments, String>>
        + Send,
>;

pub fn config_of(name: &str, e: &LocalSpec) -> EnvConfig {
    let eph = std::env::var(EPHEMERAL_ENV).is_ok_and(|v| v == "1");
    EnvConfig {
        name: name.to_owned(),
        port: if eph { 0 } else { e.port },
        test_port: if eph { Some(0) } else { e.test_port },
        replicas: e.replicas.max(1),
        command: e.command.clone(),
        health_path: e.health_path.clone(),
        health_interval: Duration::from_millis(e.health_interval_ms.max(20)),
        healthy_threshold: e.healthy_threshold.max(1),
        unhealthy_threshold: e.unhealthy_threshold.max(1),
        max_error_rate: e.alarm_5xx_percent,
        max_p99: e.alarm_p99_ms.map(Duration::from_millis),
        alarm_window: Duration::from_secs(e.alarm_window_seconds.max(1)),
        strategy: e.strategy.clone(),
        rollback_on_failure: e.auto_rollback.iter().any(|x| x == "DEPLOYMENT_FAILURE"),
        rollback_on_alarm: e
            .auto_rollback
            .iter()
            .any(|x| x == "DEPLOYMENT_STOP_ON_ALARM"),
        termination_wait: Duration::from_secs_f64(e.termination_wait_minutes.max(0.0) * 60.0),
        time_scale: e.time_scale,
        ready_timeout: Duration::from_secs(e.ready_timeout_seconds.max(1)),
        synthetic_rps: e.synthetic_rps.min(1000),
        idle_timeout: Duration::from_secs(e.idle_timeout_seconds.clamp(1, 4000)),
        deregistration_delay: Duration::from_secs(e.deregistration_delay_seconds.min(3600)),
    }
}

impl Environments {
    /// Environments built elsewhere (another kind, a test's fake): the
    /// engine can be handed these instead of starting the workspace's.
    pub fn new(envs: impl IntoIterator<Item = Arc<dyn Environment>>) -> Environments {
        Environments {
            envs: envs.into_iter().map(|e| (e.name().to_owned(), e)).collect(),
        }
    }

    /// Starts every environment of the workspace by its kind (a local
    /// one: its router, then its last successful release in the
    /// background). `events` hears of every change.
    pub async fn start(
        ws: &Workspace,
        events: Option<tokio::sync::broadcast::Sender<crate::api::EngineEvent>>,
    ) -> Result<Environments, String> {
        let dir = ws.state_dir.join("envs");
        for name in ws.environments.keys() {
            // Replicas a crashed engine left running.
            for p in crate::proc::reap_dir(&dir.join(name).join("logs")) {
                tracing::warn!(file = %p.display(), "killed a replica left by a crashed engine");
            }
        }
        let mut envs: Vec<Arc<dyn Environment>> = Vec::new();
        let mut locals = Vec::new();
        for (name, e) in &ws.environments {
            match &e.spec {
                EnvSpec::Local(spec) => {
                    let env = LocalEnv::start(config_of(name, spec), &dir.join(name).join("logs"))
                        .await
                        .map_err(|err| {
                            format!(
                                "environment {name}: cannot listen on 127.0.0.1:{}: {err} (another \
                                 program uses the port? change `port` in [environments.{name}])",
                                spec.port
                            )
                        })?;
                    if let Some(tx) = events.clone() {
                        let n = name.clone();
                        let _ = env.on_change.set(Box::new(move || {
                            let _ = tx.send(crate::api::EngineEvent::EnvironmentChanged {
                                environment_name: n.clone(),
                            });
                        }));
                    }
                    env.supervise();
                    let local = Arc::new(LocalEnvironment::new(
                        env,
                        Releases::new(dir.join(name)),
                        e.protected,
                    ));
                    locals.push(local.clone());
                    envs.push(local);
                }
                EnvSpec::Kubernetes(spec) => {
                    let tx = events.clone();
                    let n = name.clone();
                    let on_change: super::kubernetes::OnChange = Arc::new(move || {
                        if let Some(tx) = &tx {
                            let _ = tx.send(crate::api::EngineEvent::EnvironmentChanged {
                                environment_name: n.clone(),
                            });
                        }
                    });
                    envs.push(super::kubernetes::KubeEnvironment::start(
                        name,
                        spec.clone(),
                        e.protected,
                        on_change,
                    ));
                }
            }
        }
        for l in &locals {
            l.restore();
        }
        Ok(Environments::new(envs))
    }

    /// The workspace's own environments, started by kind (see [`Self::start`]).
    pub fn of_workspace(ws: Arc<Workspace>) -> EnvFactory {
        Box::new(move |events| Box::pin(async move { Environments::start(&ws, events).await }))
    }

    /// Environments built already (a fake, another kind).
    pub fn given(envs: Environments) -> EnvFactory {
        Box::new(move |_| Box::pin(async move { Ok(envs) }))
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Environment>> {
        self.envs.get(name)
    }

    /// What the TUI and `envs` show, by name.
    /// Every environment's summary with the Deploy actions that land
    /// there, in promotion order (the pipelines' order: dev, staging, prod).
    pub fn summaries(&self, ws: &Workspace) -> Vec<EnvironmentSummary> {
        let mut out: Vec<EnvironmentSummary> = self
            .envs
            .values()
            .map(|e| {
                let mut s = e.summary();
                if let Some(cfg) = ws.environments.get(&s.name) {
                    s.actions = cfg.actions.clone();
                }
                s
            })
            .collect();
        crate::api::env::promotion_order(&mut out, ws.pipelines.iter().map(|p| &p.pipeline));
        out
    }

    /// Rolls an environment back: a traffic flip while the old group is up
    /// (termination wait), else a new deployment of the previous release.
    pub async fn rollback(&self, env: &str) -> Result<String, String> {
        let e = self
            .envs
            .get(env)
            .ok_or_else(|| format!("no environment `{env}`"))?;
        e.rollback().await
    }

    /// A Flux operation on one of an environment's Flux objects.
    pub async fn flux(
        &self,
        env: &str,
        operation: crate::api::FluxOperation,
        object: &str,
    ) -> Result<String, crate::api::ApiError> {
        let e = self.envs.get(env).ok_or_else(|| {
            crate::api::ApiError::new("EnvironmentNotFound", format!("no environment `{env}`"))
        })?;
        e.flux(operation, object).await
    }

    pub async fn shutdown(&self) {
        for e in self.envs.values() {
            e.shutdown().await;
        }
    }
}
