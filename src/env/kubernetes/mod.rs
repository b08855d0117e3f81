//! `kind = "kubernetes"`: a Deployment (or a blue/green pair and their
//! Service) in one namespace of a kubeconfig context, behind the
//! [`Environment`] interface. Each environment has its own client, built
//! off the UI thread, and its own reflectors (Deployments, ReplicaSets,
//! Pods, Services, Events); a cluster that is down or refuses us shows
//! that on its own panel and is retried with backoff, never slowing the
//! others. Summaries are computed from the reflectors' stores on demand.

pub mod alarm;
pub mod canary;
pub mod client;
pub mod deploy;
pub mod flux;
pub mod health;
pub mod manifests;
mod summary;

use std::collections::{HashMap, VecDeque};

/// The watchers an environment runs (all answered = synced).
pub const WATCHED: usize = 5;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment as KDeployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::api::env::{DeploymentProgress, EnvEvent, EnvironmentSummary, FluxStatus, ReleaseInfo};
use crate::config::workspace::KubernetesSpec;
use crate::env::iface::{BoxFuture, DeployError, Deployment, EnvLog, Environment, ReleaseRequest};

/// Called on every change an environment sees (the engine's
/// EnvironmentChanged).
pub type OnChange = Arc<dyn Fn() + Send + Sync>;

/// The reflectors' stores of one connected cluster.
#[derive(Clone)]
pub struct Stores {
    pub deployments: Store<KDeployment>,
    pub replicasets: Store<ReplicaSet>,
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub events: Store<Event>,
}

/// What one environment knows, shared by its tasks and `summary`.
#[derive(Default)]
pub struct State {
    pub client: Option<kube::Client>,
    pub stores: Option<Stores>,
    /// Why the cluster cannot be read now, per source (`connect`,
    /// `deployments`…); cleared when it answers again.
    pub errors: HashMap<&'static str, String>,
    /// The watchers that have answered at least once.
    pub synced: std::collections::HashSet<&'static str>,
    /// pipedeck's own events (deploys, rollbacks), newest first.
    pub own_events: VecDeque<EnvEvent>,
    pub deployment: Option<DeploymentProgress>,
    pub release: Option<ReleaseInfo>,
    pub flux: Option<FluxStatus>,
    /// The last lines of a crash-looping container, by pod/container.
    pub crash_lines: HashMap<String, Vec<String>>,
    /// The probes of the variant a deployment is baking (its alarms).
    pub probe: Option<Arc<crate::env::stats::Stats>>,
}

/// A Kubernetes environment.
pub struct KubeEnvironment {
    pub name: String,
    pub spec: KubernetesSpec,
    pub protected: bool,
    pub state: Arc<Mutex<State>>,
    on_change: OnChange,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The deployment running now: its stop signal.
    running: Mutex<Option<tokio::sync::watch::Sender<bool>>>,
}

fn lock(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl KubeEnvironment {
    /// Starts connecting and watching in the background; returns at once.
    pub fn start(
        name: &str,
        spec: KubernetesSpec,
        protected: bool,
        on_change: OnChange,
    ) -> Arc<KubeEnvironment> {
        let env = Arc::new(KubeEnvironment {
            name: name.to_owned(),
            spec,
            protected,
            state: Arc::new(Mutex::new(State::default())),
            on_change,
            tasks: Mutex::new(Vec::new()),
            running: Mutex::new(None),
        });
        let e = env.clone();
        let task = tokio::spawn(async move { e.supervise().await });
        env.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        env
    }

    pub fn changed(&self) {
        (self.on_change)();
    }

    pub fn set_error(&self, source: &'static str, error: Option<String>) {
        let changed = {
            let mut s = lock(&self.state);
            match error {
                Some(e) => s.errors.insert(source, e.clone()).as_ref() != Some(&e),
                None => s.errors.remove(source).is_some(),
            }
        };
        if changed {
            self.changed();
        }
    }

    pub fn event(&self, kind: &str, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(
            env = self.name,
            kind,
            message,
            "kubernetes environment event"
        );
        {
            let mut s = lock(&self.state);
            s.own_events.push_front(EnvEvent {
                at: SystemTime::now(),
                kind: kind.to_owned(),
                message,
            });
            s.own_events.truncate(50);
        }
        self.changed();
    }

    pub fn client(&self) -> Option<kube::Client> {
        lock(&self.state).client.clone()
    }

    pub fn stores(&self) -> Option<Stores> {
        lock(&self.state).stores.clone()
    }

    /// The client and the watch stores, waiting up to 10 s for them right
    /// after start (they are built off the caller's task); else why the
    /// cluster cannot be reached.
    pub(crate) async fn connected(&self) -> Result<(kube::Client, Option<Stores>), String> {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while (self.client().is_none() || self.stores().is_none())
            && lock(&self.state).errors.is_empty()
            && std::time::Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match self.client() {
            Some(c) => Ok((c, self.stores())),
            None => {
                let why = lock(&self.state)
                    .errors
                    .values()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| "not connected yet".into());
                Err(format!(
                    "cluster `{}` cannot be reached: {why}",
                    self.spec.context
                ))
            }
        }
    }

    /// Connects (retrying with backoff), then runs the reflectors and the
    /// Flux poll until shutdown.
    async fn supervise(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(500);
        let client = loop {
            match client::connect(&self.spec).await {
                Ok(c) => break c,
                Err(e) => {
                    self.set_error("connect", Some(e));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        };
        self.set_error("connect", None);
        let ns = self.spec.namespace.clone();
        let labels = self.spec.selector.clone();
        let cfg = || {
            let c = watcher::Config::default();
            match &labels {
                Some(l) => c.labels(l),
                None => c,
            }
        };
        let (deployments, w1) = reflector::store();
        let (replicasets, w2) = reflector::store();
        let (pods, w3) = reflector::store();
        let (services, w4) = reflector::store();
        let (events, w5) = reflector::store();
        {
            let mut s = lock(&self.state);
            s.client = Some(client.clone());
            s.stores = Some(Stores {
                deployments,
                replicasets,
                pods,
                services,
                events,
            });
        }
        let mut tasks = Vec::new();
        macro_rules! run {
            ($kind:ty, $writer:expr, $source:literal, $cfg:expr) => {{
                let api: Api<$kind> = Api::namespaced(client.clone(), &ns);
                let me = self.clone();
                let stream = watcher(api, $cfg).default_backoff().reflect($writer);
                tasks.push(tokio::spawn(async move {
                    let mut stream = std::pin::pin!(stream);
                    while let Some(ev) = stream.next().await {
                        match ev {
                            Ok(ev) => {
                                // The store holds the list once InitDone is applied.
                                if matches!(ev, watcher::Event::InitDone) {
                                    lock(&me.state).synced.insert($source);
                                }
                                me.set_error($source, None);
                                me.changed();
                            }
                            Err(e) => me.set_error($source, Some(watch_error(&e))),
                        }
                    }
                }));
            }};
        }
        run!(KDeployment, w1, "deployments", cfg());
        run!(ReplicaSet, w2, "replicasets", cfg());
        run!(Pod, w3, "pods", cfg());
        let svc_cfg = match &self.spec.service {
            Some(s) => watcher::Config::default().fields(&format!("metadata.name={s}")),
            None => cfg(),
        };
        run!(Service, w4, "services", svc_cfg);
        run!(Event, w5, "events", watcher::Config::default());
        let me = self.clone();
        tasks.push(tokio::spawn(async move { flux::poll(me).await }));
        let me = self.clone();
        tasks.push(tokio::spawn(
            async move { summary::fetch_crash_lines(me).await },
        ));
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(tasks);
        self.changed();
    }
}

/// A watcher error in words (the API's message, or why it is unreachable).
fn watch_error(e: &watcher::Error) -> String {
    match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => client::describe(k),
        watcher::Error::WatchError(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

impl Environment for KubeEnvironment {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn summary(&self) -> EnvironmentSummary {
        summary::summary(self)
    }

    fn deploy(&self, release: ReleaseRequest) -> BoxFuture<'_, Result<Deployment, DeployError>> {
        Box::pin(deploy::deploy(self, release))
    }

    fn rollback(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(deploy::rollback(self))
    }

    fn logs(&self) -> Vec<EnvLog> {
        Vec::new()
    }

    fn flux(
        &self,
        operation: crate::api::FluxOperation,
        object: &str,
    ) -> BoxFuture<'_, Result<String, crate::api::ApiError>> {
        let object = object.to_owned();
        Box::pin(async move { flux::operate(self, operation, &object).await })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(stop) = self
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                stop.send_replace(true);
            }
            for t in self
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..)
            {
                t.abort();
            }
        })
    }
}
