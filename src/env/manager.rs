//! The workspace's environments while an engine runs: their routers come
//! up with the engine, each comes back on its last successful deployment,
//! and Deploy actions mapped to them run deployments here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::local::{DeploymentStatus, EnvConfig, Hooks, LocalEnv};
use super::router::Color;
use crate::api::env::{
    DeploymentProgress, EnvironmentSummary, ReleaseInfo, RequestMetrics, Variant,
};
use crate::config::workspace::{EnvSpec, LocalSpec, Workspace};

/// Set `PIPEDECK_EPHEMERAL_PORTS=1` to bind every environment to a free
/// port instead of its configured one (parallel tests, CI).
pub const EPHEMERAL_ENV: &str = "PIPEDECK_EPHEMERAL_PORTS";

pub struct Environments {
    pub envs: BTreeMap<String, Arc<LocalEnv>>,
    dir: PathBuf,
}

/// A successful deployment, remembered for restarts and rollbacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub id: String,
    pub revision: String,
    pub dir: PathBuf,
    pub hooks: Hooks,
}

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

fn read_json<T: for<'de> Deserialize<'de>>(p: &Path) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

fn write_json<T: Serialize>(p: &Path, v: &T) -> std::io::Result<()> {
    let tmp = p.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, p)
}

impl Environments {
    /// Starts every environment's router and brings each back on its last
    /// successful release (in the background).
    pub async fn start(
        ws: &Workspace,
        events: Option<tokio::sync::broadcast::Sender<crate::api::EngineEvent>>,
    ) -> Result<Environments, String> {
        let dir = ws.state_dir.join("envs");
        let mut envs = BTreeMap::new();
        for name in ws.environments.keys() {
            // Replicas a crashed engine left running.
            for p in crate::proc::reap_dir(&dir.join(name).join("logs")) {
                tracing::warn!(file = %p.display(), "killed a replica left by a crashed engine");
            }
        }
        for (name, e) in &ws.environments {
            let EnvSpec::Local(e) = &e.spec;
            let env = LocalEnv::start(config_of(name, e), &dir.join(name).join("logs"))
                .await
                .map_err(|err| {
                    format!(
                        "environment {name}: cannot listen on 127.0.0.1:{}: {err} (another \
                         program uses the port? change `port` in [environments.{name}])",
                        e.port
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
            envs.insert(name.clone(), env);
        }
        let me = Environments { envs, dir };
        for (name, env) in &me.envs {
            if let Some(r) = me.history(name).last().cloned()
                && r.dir.is_dir()
            {
                let env = env.clone();
                tokio::spawn(async move {
                    let d = env
                        .deploy(&r.id, &r.revision, &r.dir, &Hooks::default())
                        .await;
                    if d.status != DeploymentStatus::Succeeded {
                        tracing::warn!(env = env.cfg.name, reason = ?d.reason, "could not restore the last release");
                    }
                });
            }
        }
        Ok(me)
    }

    /// Successful releases, oldest first (the last is live).
    pub fn history(&self, env: &str) -> Vec<Release> {
        read_json(&self.dir.join(env).join("releases.json")).unwrap_or_default()
    }

    pub fn remember(&self, env: &str, r: Release) -> std::io::Result<()> {
        let mut h = self.history(env);
        h.retain(|x| x.id != r.id);
        h.push(r);
        if h.len() > 10 {
            h.remove(0);
        }
        std::fs::create_dir_all(self.dir.join(env))?;
        write_json(&self.dir.join(env).join("releases.json"), &h)
    }

    /// Where a deployment's files are kept (the revision runs from there).
    pub fn revision_dir(&self, env: &str, id: &str) -> PathBuf {
        self.dir.join(env).join("revisions").join(id)
    }

    pub fn summaries(&self, ws: &Workspace) -> Vec<EnvironmentSummary> {
        self.envs
            .iter()
            .map(|(name, e)| {
                let live = e.router.live();
                let measured = live.unwrap_or(Color::Blue);
                let w = e.router.stats(measured).window(e.cfg.alarm_window);
                let mut events = e.events();
                events.reverse();
                events.truncate(20);
                let variants: Vec<Variant> = [Color::Blue, Color::Green]
                    .into_iter()
                    .filter_map(|c| {
                        let g = e.group_info(c)?;
                        let weight_percent = match c {
                            Color::Blue => 100 - e.router.green_percent(),
                            Color::Green => e.router.green_percent(),
                        };
                        Some(Variant {
                            label: c.as_str().to_owned(),
                            revision: g.revision,
                            commit_message: None,
                            ready: g.healthy,
                            total: g.total,
                            restarts: g.restarts,
                            weight_percent,
                        })
                    })
                    .collect();
                EnvironmentSummary {
                    name: name.clone(),
                    kind: "local".to_owned(),
                    location: format!("http://{}", e.front),
                    url: format!("http://{}", e.front),
                    strategy: e.cfg.strategy.clone(),
                    protected: ws.environments.get(name).is_some_and(|x| x.protected),
                    live: live.map(|c| c.as_str().to_owned()),
                    variants,
                    deployment: e.deployment().map(|d| DeploymentProgress {
                        id: d.id,
                        revision: d.revision,
                        status: d.status,
                        step: d.step,
                        new_variant: d.new_color.as_str().to_owned(),
                        traffic_percent: d.traffic_percent,
                        next_step_at: d.next_step_at,
                        reason: d.reason,
                        hooks_run: d.hooks_run,
                    }),
                    release: self.history(name).last().map(|r| ReleaseInfo {
                        id: r.id.clone(),
                        revision: r.revision.clone(),
                    }),
                    metrics: Some(RequestMetrics {
                        rps: w.rps,
                        error_rate: w.error_rate,
                        p99_ms: w.p99.as_secs_f64() * 1000.0,
                    }),
                    sync: None,
                    events,
                }
            })
            .collect()
    }

    /// Rolls an environment back: a traffic flip while the old group is up
    /// (termination wait), else a new deployment of the previous release.
    pub async fn rollback(&self, env: &str) -> Result<String, String> {
        let e = self
            .envs
            .get(env)
            .ok_or_else(|| format!("no environment `{env}`"))?;
        if let Some(d) = e.deployment()
            && matches!(
                d.status,
                DeploymentStatus::InProgress | DeploymentStatus::Baking
            )
        {
            e.request_rollback();
            return Ok(format!("deployment {} rolled back: traffic flipped", d.id));
        }
        let h = self.history(env);
        if h.len() < 2 {
            return Err(format!(
                "{env} has no earlier successful release to roll back to"
            ));
        }
        let prev = h[h.len() - 2].clone();
        let id = format!("rb-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let d = e.deploy(&id, &prev.revision, &prev.dir, &prev.hooks).await;
        if d.status == DeploymentStatus::Succeeded {
            let _ = self.remember(
                env,
                Release {
                    id: id.clone(),
                    ..prev.clone()
                },
            );
            Ok(format!(
                "{env} is back on {} (deployment {id})",
                prev.revision
            ))
        } else {
            Err(d
                .reason
                .unwrap_or_else(|| "the rollback deployment failed".into()))
        }
    }

    pub async fn shutdown(&self) {
        for e in self.envs.values() {
            e.shutdown().await;
        }
    }
}

/// Hooks from an `appspec.yml` in the revision: `hooks:` maps a lifecycle
/// event to a list of commands, or of `{location: script}` entries.
pub fn appspec_hooks(dir: &Path) -> Result<Hooks, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("appspec.yml"))
        .or_else(|_| std::fs::read_to_string(dir.join("appspec.yaml")))
    else {
        return Ok(Hooks::default());
    };
    let root = crate::model::yaml::parse(&text).map_err(|e| format!("appspec.yml: {e}"))?;
    let mut h = Hooks::default();
    let Some(hooks) = root.get("hooks") else {
        return Ok(h);
    };
    let entries: Vec<(String, &crate::model::node::Node)> = match &hooks.value {
        crate::model::node::Value::Map(m) => m.iter().map(|(k, v)| (k.name.clone(), v)).collect(),
        // ECS appspecs write a list of one-key maps.
        crate::model::node::Value::Seq(items) => items
            .iter()
            .filter_map(|i| match &i.value {
                crate::model::node::Value::Map(m) => m.first().map(|(k, v)| (k.name.clone(), v)),
                _ => None,
            })
            .collect(),
        _ => return Err("appspec.yml: `hooks` must be a map or a list".into()),
    };
    for (event, v) in entries {
        let cmds: Vec<String> = match &v.value {
            crate::model::node::Value::Seq(items) => items
                .iter()
                .filter_map(|i| match &i.value {
                    crate::model::node::Value::Str(s) => Some(s.clone()),
                    crate::model::node::Value::Map(_) => i
                        .get("location")
                        .and_then(|l| l.as_str().map(|s| format!("bash {s}"))),
                    _ => None,
                })
                .collect(),
            crate::model::node::Value::Str(s) => vec![s.clone()],
            _ => Vec::new(),
        };
        let slot = match event.as_str() {
            "BeforeInstall" => &mut h.before_install,
            "AfterInstall" => &mut h.after_install,
            "AfterAllowTestTraffic" => &mut h.after_allow_test_traffic,
            "BeforeAllowTraffic" => &mut h.before_allow_traffic,
            "AfterAllowTraffic" => &mut h.after_allow_traffic,
            other => return Err(format!("appspec.yml: unknown hook `{other}`")),
        };
        slot.extend(cmds);
    }
    Ok(h)
}
