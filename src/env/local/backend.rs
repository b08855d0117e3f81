//! A local environment behind the [`Environment`] interface: the running
//! [`LocalEnv`] (router, replicas, deployments) with its releases.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::releases::{Release, Releases, appspec_hooks};
use super::{DeploymentStatus, Hooks, LocalEnv};
use crate::api::env::{EnvEvent, EnvironmentSummary, ReleaseInfo, RequestMetrics, Variant};
use crate::env::iface::{
    BoxFuture, DeployError, DeployUpdate, Deployment, EnvLog, Environment, ReleaseRequest,
};
use crate::env::router::Color;

/// A local environment as the engine sees it.
pub struct LocalEnvironment {
    pub env: Arc<LocalEnv>,
    pub releases: Releases,
    /// A rollback needs the environment's name typed in the TUI.
    pub protected: bool,
}

impl LocalEnvironment {
    pub fn new(env: Arc<LocalEnv>, releases: Releases, protected: bool) -> LocalEnvironment {
        LocalEnvironment {
            env,
            releases,
            protected,
        }
    }

    /// Brings the environment back on its last successful release, in the
    /// background. An unreadable history is recorded as an event instead.
    pub fn restore(&self) {
        let last = match self.releases.history() {
            Ok(h) => h.last().cloned(),
            Err(e) => {
                tracing::error!(env = self.env.cfg.name, error = %e, "release history unreadable");
                self.env
                    .event("error", format!("the last release was not restored: {e}"));
                return;
            }
        };
        let Some(r) = last.filter(|r| r.dir.is_dir()) else {
            return;
        };
        let env = self.env.clone();
        tokio::spawn(async move {
            let d = env
                .deploy(&r.id, &r.revision, &r.dir, &Hooks::default())
                .await;
            if d.status != DeploymentStatus::Succeeded {
                tracing::warn!(env = env.cfg.name, reason = ?d.reason, "could not restore the last release");
            }
        });
    }

    /// Runs a deployment of files already staged in `dir`, reporting on
    /// the returned stream; remembers it when it succeeds.
    fn run(
        &self,
        id: String,
        revision: String,
        dir: std::path::PathBuf,
        hooks: Hooks,
    ) -> Deployment {
        let mut follow = self.env.follow();
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, mut stop) = watch::channel(false);
        let (env, releases) = (self.env.clone(), self.releases.clone());
        tokio::spawn(async move {
            let d = {
                let run = env.deploy(&id, &revision, &dir, &hooks);
                tokio::pin!(run);
                let mut stop_open = true;
                loop {
                    tokio::select! {
                        d = &mut run => break d,
                        Some(u) = follow.recv() => {
                            let _ = tx.send(u);
                        }
                        r = stop.changed(), if stop_open => match r {
                            Ok(()) if *stop.borrow_and_update() => env.request_rollback(),
                            Ok(()) => {}
                            Err(_) => stop_open = false,
                        },
                    }
                }
            };
            while let Ok(u) = follow.try_recv() {
                let _ = tx.send(u);
            }
            drop(follow);
            if d.status == DeploymentStatus::Succeeded
                && let Err(e) = releases.remember(Release {
                    id: id.clone(),
                    revision: revision.clone(),
                    dir,
                    hooks,
                })
            {
                // Deployed, but a restart will not bring it back.
                env.event("error", e.clone());
                let _ = tx.send(DeployUpdate::Event(EnvEvent {
                    at: std::time::SystemTime::now(),
                    kind: "error".into(),
                    message: e,
                }));
            }
            let _ = tx.send(DeployUpdate::Finished(d.progress()));
        });
        Deployment::new(rx, stop_tx)
    }

    async fn stage_and_deploy(&self, r: ReleaseRequest) -> Result<Deployment, DeployError> {
        let dir = self.releases.revision_dir(&r.id);
        let (src, dst) = (r.source.clone(), dir.clone());
        let copied = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&dst);
            crate::store::artifacts::copy_tree(&src, &dst)
        })
        .await;
        if !matches!(copied, Ok(Ok(()))) {
            return Err(DeployError {
                code: "JobFailed",
                message: format!("cannot stage the revision in {}", dir.display()),
            });
        }
        let hooks = appspec_hooks(&dir).map_err(|message| DeployError {
            code: "ConfigurationError",
            message,
        })?;
        Ok(self.run(r.id, r.revision, dir, hooks))
    }

    async fn roll_back(&self) -> Result<String, String> {
        let e = &self.env;
        let env = &e.cfg.name;
        if let Some(d) = e.deployment()
            && matches!(
                d.status,
                DeploymentStatus::InProgress | DeploymentStatus::Baking
            )
        {
            e.request_rollback();
            return Ok(format!("deployment {} rolled back: traffic flipped", d.id));
        }
        let h = self.releases.history()?;
        if h.len() < 2 {
            return Err(format!(
                "{env} has no earlier successful release to roll back to"
            ));
        }
        let prev = h[h.len() - 2].clone();
        let id = format!("rb-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let d = e.deploy(&id, &prev.revision, &prev.dir, &prev.hooks).await;
        if d.status == DeploymentStatus::Succeeded {
            let back = format!("{env} is back on {} (deployment {id})", prev.revision);
            match self.releases.remember(Release {
                id: id.clone(),
                ..prev.clone()
            }) {
                Ok(()) => Ok(back),
                Err(e) => Err(format!("{back}, but {e}")),
            }
        } else {
            Err(d
                .reason
                .unwrap_or_else(|| "the rollback deployment failed".into()))
        }
    }
}

impl Environment for LocalEnvironment {
    fn name(&self) -> &str {
        &self.env.cfg.name
    }

    fn kind(&self) -> &'static str {
        "local"
    }

    fn summary(&self) -> EnvironmentSummary {
        let e = &self.env;
        let live = e.router.live();
        let measured = live.unwrap_or(Color::Blue);
        let w = e.router.stats(measured).window(e.cfg.alarm_window);
        let mut events = e.events();
        events.reverse();
        events.truncate(20);
        let history = self.releases.history();
        if let Err(why) = &history {
            // Shown for as long as the file stays unreadable.
            events.insert(
                0,
                EnvEvent {
                    at: std::time::SystemTime::now(),
                    kind: "error".into(),
                    message: why.clone(),
                },
            );
        }
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
            name: e.cfg.name.clone(),
            kind: "local".to_owned(),
            location: format!("http://{}", e.front),
            url: format!("http://{}", e.front),
            strategy: e.cfg.strategy.clone(),
            protected: self.protected,
            live: live.map(|c| c.as_str().to_owned()),
            variants,
            deployment: e.deployment().map(|d| d.progress()),
            release: history.as_ref().ok().and_then(|h| {
                h.last().map(|r| ReleaseInfo {
                    id: r.id.clone(),
                    revision: r.revision.clone(),
                })
            }),
            // What roll_back deploys again outside a deployment.
            rollback_target: history.as_ref().ok().and_then(|h| {
                h.len().checked_sub(2).map(|i| ReleaseInfo {
                    id: h[i].id.clone(),
                    revision: h[i].revision.clone(),
                })
            }),
            actions: Vec::new(),
            metrics: Some(RequestMetrics {
                rps: w.rps,
                error_rate: w.error_rate,
                p99_ms: w.p99.as_secs_f64() * 1000.0,
            }),
            flux: None,
            events,
        }
    }

    fn deploy(&self, release: ReleaseRequest) -> BoxFuture<'_, Result<Deployment, DeployError>> {
        Box::pin(self.stage_and_deploy(release))
    }

    fn rollback(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(self.roll_back())
    }

    fn logs(&self) -> Vec<EnvLog> {
        let prefix = format!("{}-", self.env.cfg.name);
        self.env
            .log_files()
            .into_iter()
            .map(|file| {
                let label = file
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.split_once('-'))
                    .map_or_else(|| file.clone(), |(color, n)| format!("{color} replica {n}"));
                EnvLog { file, label }
            })
            .collect()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.env.shutdown())
    }
}
