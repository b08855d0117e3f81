//! Deploying to a Kubernetes environment: server-side apply (field manager
//! `pipedeck`) of the release's image, then waiting as `kubectl rollout
//! status -w` does, with its messages. A failed rollout (progress deadline,
//! crash loop past the threshold, timeout) rolls itself back when
//! `auto_rollback` has DEPLOYMENT_FAILURE. Blue/green scales the idle slot
//! up, waits until it is fully available, then moves the Service selector
//! (sent whole: an atomic map under server-side apply); rollback moves it
//! back while the old slot is up. Rolling rollback is `kubectl rollout
//! undo`: the previous ReplicaSet's template, pod-template-hash removed.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::apps::v1::Deployment as KDeployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::summary::{image_of, pods_of, replicasets, workload};
use super::{KubeEnvironment, client, health, lock};
use crate::api::env::{DeploymentProgress, DeploymentStatus, EnvEvent, ReleaseInfo};
use crate::env::iface::{DeployError, DeployUpdate, Deployment, ReleaseRequest};

pub const FIELD_MANAGER: &str = "pipedeck";
const FLUX_LABELS: [(&str, &str); 2] = [
    ("kustomize.toolkit.fluxcd.io/name", "Kustomization"),
    ("helm.toolkit.fluxcd.io/name", "HelmRelease"),
];

fn refuse(message: String) -> DeployError {
    DeployError {
        code: "ConfigurationError",
        message,
    }
}

/// Refuses an object Flux manages: Flux would revert any change.
pub fn flux_owner(meta: &kube::api::ObjectMeta) -> Option<String> {
    let labels = meta.labels.as_ref()?;
    FLUX_LABELS.iter().find_map(|(label, kind)| {
        let name = labels.get(*label)?;
        let ns = labels
            .get(&label.replace("/name", "/namespace"))
            .cloned()
            .unwrap_or_default();
        Some(format!("{kind}/{ns}/{name}"))
    })
}

pub(super) fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Replica counts alone go under a field manager of their own: under
/// `pipedeck` they would drop the template fields its last apply set.
pub(super) fn scale_params() -> PatchParams {
    PatchParams::apply(SCALE_MANAGER).force()
}

pub const SCALE_MANAGER: &str = "pipedeck-scale";

/// The pod template with the release's image on the deploy container.
pub(super) fn with_image(
    spec: &crate::config::workspace::KubernetesSpec,
    d: &KDeployment,
    revision: &str,
    id: &str,
) -> Result<serde_json::Value, DeployError> {
    let cfg = spec;
    let spec = d.spec.template.spec.as_ref();
    let current = image_of(cfg, spec);
    if current.is_empty() {
        return Err(refuse(format!(
            "deployment {} has no container {}",
            d.metadata.name.clone().unwrap_or_default(),
            cfg.container.clone().unwrap_or_default()
        )));
    }
    let repo = cfg
        .image
        .clone()
        .unwrap_or_else(|| health::image_repo(&current).to_owned());
    let image = format!("{repo}:{revision}");
    let mut containers =
        serde_json::to_value(spec.map(|s| s.containers.clone()).unwrap_or_default())
            .map_err(|e| refuse(e.to_string()))?;
    if let Some(list) = containers.as_array_mut() {
        for c in list.iter_mut() {
            let name = c["name"].as_str().unwrap_or_default().to_owned();
            if cfg.container.as_ref().is_none_or(|n| *n == name) {
                c["image"] = json!(image);
                if cfg.container.is_none() {
                    break;
                }
            }
        }
    }
    Ok(json!({
        "metadata": {"annotations": {"pipedeck.dev/deployment": id}},
        "spec": {"containers": containers},
    }))
}

pub async fn deploy(
    env: &KubeEnvironment,
    release: ReleaseRequest,
) -> Result<Deployment, DeployError> {
    let (client, stores) = match env.connected().await {
        Ok((client, Some(stores))) => (client, stores),
        Ok((_, None)) => {
            return Err(DeployError {
                code: "JobFailed",
                message: format!(
                    "cluster `{}`: its watches have not started yet",
                    env.spec.context
                ),
            });
        }
        Err(message) => {
            return Err(DeployError {
                code: "JobFailed",
                message,
            });
        }
    };
    // Right after start the Deployments may not have been read yet.
    let mut deployments = workload(env, &stores);
    let until = Instant::now() + Duration::from_secs(10);
    while deployments.is_empty()
        && !lock(&env.state).synced.contains("deployments")
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        deployments = workload(env, &stores);
    }
    if deployments.is_empty() {
        return Err(refuse(format!(
            "no Deployment {} in namespace {} of context {}",
            env.spec.workload.clone().unwrap_or_default(),
            env.spec.namespace,
            env.spec.context
        )));
    }
    if env.spec.strategy == "Canary" && deployments.len() < 2 {
        let (stable, canary) = super::canary::names(&env.spec);
        return Err(refuse(format!(
            "strategy Canary needs Deployments {stable} (stable) and {canary} in namespace {}, \
             their pods selected by one Service through a label they share; {} is missing",
            env.spec.namespace,
            if deployments
                .iter()
                .any(|d| d.metadata.name.as_deref() == Some(&stable))
            {
                canary.clone()
            } else {
                stable.clone()
            }
        )));
    }
    for d in &deployments {
        if let Some(owner) = flux_owner(&d.metadata) {
            return Err(refuse(format!(
                "deployment {} is managed by Flux ({owner}): pipedeck does not apply or patch \
                 it, Flux would revert the change; change its source and reconcile {owner} instead",
                d.metadata.name.clone().unwrap_or_default()
            )));
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    *env.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop_tx.clone());
    let me = Arc::new(Run {
        env: EnvRef::of(env),
        client,
        release,
        tx,
        stop: stop_rx,
    });
    if env.spec.strategy == "BlueGreen" {
        let live = live_slot(env, &stores).unwrap_or_else(|| "blue".into());
        let idle = if live == "blue" { "green" } else { "blue" }.to_owned();
        tokio::spawn(async move { me.blue_green(live, idle).await });
    } else if env.spec.strategy == "Canary" {
        tokio::spawn(async move { me.canary().await });
    } else {
        let d = deployments[0].clone();
        let patch = with_image(&env.spec, &d, &me.release.revision, &me.release.id)?;
        tokio::spawn(async move { me.rolling((*d).clone(), patch).await });
    }
    Ok(Deployment::new(rx, stop_tx))
}

/// The slot the Service selects now.
fn live_slot(env: &KubeEnvironment, stores: &super::Stores) -> Option<String> {
    let svc = env.spec.service.as_ref()?;
    stores
        .services
        .state()
        .into_iter()
        .find(|s| s.metadata.name.as_deref() == Some(svc))?
        .spec
        .clone()?
        .selector?
        .get(&env.spec.slot_label)
        .cloned()
}

/// What a running deployment needs of its environment (it outlives the
/// `&KubeEnvironment` borrow of `deploy`).
#[derive(Clone)]
pub(super) struct EnvRef {
    pub(super) name: String,
    pub(super) state: Arc<std::sync::Mutex<super::State>>,
    pub(super) spec: crate::config::workspace::KubernetesSpec,
    on_change: super::OnChange,
}

impl EnvRef {
    fn of(env: &KubeEnvironment) -> EnvRef {
        EnvRef {
            name: env.name.clone(),
            state: env.state.clone(),
            spec: env.spec.clone(),
            on_change: env.on_change.clone(),
        }
    }
}

pub(super) struct Run {
    pub(super) env: EnvRef,
    pub(super) client: kube::Client,
    pub(super) release: ReleaseRequest,
    tx: mpsc::UnboundedSender<DeployUpdate>,
    pub(super) stop: watch::Receiver<bool>,
}

impl Run {
    pub(super) fn progress(
        &self,
        status: DeploymentStatus,
        step: &str,
        variant: &str,
        traffic: u32,
        reason: Option<String>,
    ) -> DeploymentProgress {
        DeploymentProgress {
            id: self.release.id.clone(),
            revision: self.release.revision.clone(),
            status,
            step: step.to_owned(),
            new_variant: variant.to_owned(),
            traffic_percent: traffic,
            next_step_at: None,
            reason,
            hooks_run: Vec::new(),
        }
    }

    pub(super) fn report(&self, p: DeploymentProgress) {
        let done = crate::env::iface::is_terminal(p.status);
        lock(&self.env.state).deployment = Some(p.clone());
        if done {
            if p.status == DeploymentStatus::Succeeded {
                lock(&self.env.state).release = Some(ReleaseInfo {
                    id: p.id.clone(),
                    revision: p.revision.clone(),
                });
            }
            let _ = self.tx.send(DeployUpdate::Finished(p));
        } else {
            let _ = self.tx.send(DeployUpdate::Progress(p));
        }
        (self.env.on_change)();
    }

    pub(super) fn event(&self, kind: &str, message: String) {
        let ev = EnvEvent {
            at: SystemTime::now(),
            kind: kind.to_owned(),
            message,
        };
        {
            let mut s = lock(&self.env.state);
            s.own_events.push_front(ev.clone());
            s.own_events.truncate(50);
        }
        let _ = self.tx.send(DeployUpdate::Event(ev));
        (self.env.on_change)();
    }

    pub(super) fn api(&self) -> Api<KDeployment> {
        Api::namespaced(self.client.clone(), &self.env.spec.namespace)
    }

    async fn rolling(self: Arc<Self>, d: KDeployment, template_patch: serde_json::Value) {
        let name = d.metadata.name.clone().unwrap_or_default();
        self.report(self.progress(DeploymentStatus::InProgress, "Install", &name, 0, None));
        let body = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"template": template_patch},
        });
        self.event(
            "deploy",
            format!("server-side apply of deployment.apps/{name} (field manager {FIELD_MANAGER})"),
        );
        if let Err(e) = self
            .api()
            .patch(&name, &apply_params(), &Patch::Apply(&body))
            .await
        {
            let msg = format!(
                "apply of deployment.apps/{name} failed: {}",
                client::describe(&e)
            );
            self.event("deploy", msg.clone());
            self.report(self.progress(DeploymentStatus::Failed, "Install", &name, 0, Some(msg)));
            return;
        }
        let mut result = self.wait_rollout(&name).await;
        if result.is_ok() && self.env.spec.has_alarm() {
            // The new pods answer alone now: their alarms get a window.
            let wait = Duration::from_secs(self.env.spec.alarm_window_seconds.max(1));
            let mut p = self.progress(DeploymentStatus::Baking, "Bake", &name, 100, None);
            p.next_step_at = Some(SystemTime::now() + wait);
            self.report(p);
            result = self.bake(wait, &name).await;
        }
        match result {
            Ok(()) => {
                self.report(self.progress(DeploymentStatus::Succeeded, "Done", &name, 100, None));
            }
            Err(reason) if reason == "stopped" => {
                // Stopped (or `b`): the previous revision comes back, once.
                let why = match undo(&self.client, &self.env.spec.namespace, &name).await {
                    Ok(msg) => {
                        self.event("rollback", msg.clone());
                        format!("rolled back: {msg}")
                    }
                    Err(e) => {
                        self.event("rollback", format!("rollback failed: {e}"));
                        format!("stopped; the rollback failed: {e}")
                    }
                };
                self.report(self.progress(
                    DeploymentStatus::Stopped,
                    "Install",
                    &name,
                    0,
                    Some(why),
                ));
            }
            Err(reason) => {
                let mut reason = reason;
                let event = if reason.starts_with("alarm") {
                    "DEPLOYMENT_STOP_ON_ALARM"
                } else {
                    "DEPLOYMENT_FAILURE"
                };
                if self.env.spec.rolls_back_on(event) {
                    self.event("rollback", format!("automatic rollback: {reason}"));
                    match undo(&self.client, &self.env.spec.namespace, &name).await {
                        Ok(msg) => {
                            self.event("rollback", msg.clone());
                            reason = format!("{reason}; {msg}");
                        }
                        Err(e) => {
                            self.event("rollback", format!("automatic rollback failed: {e}"));
                            reason = format!("{reason}; the rollback failed: {e}");
                        }
                    }
                }
                self.report(self.progress(
                    DeploymentStatus::Failed,
                    "Install",
                    &name,
                    0,
                    Some(reason),
                ));
            }
        }
    }

    /// `kubectl rollout status -w`: its messages as events, until done,
    /// failed (progress deadline, crash loop), stopped or timed out.
    pub(super) async fn wait_rollout(&self, name: &str) -> Result<(), String> {
        let deadline =
            Instant::now() + Duration::from_secs(self.env.spec.rollout_timeout_seconds.max(1));
        let mut said = String::new();
        let mut stop = self.stop.clone();
        // Before our write is observed the old status would look complete.
        let mut applied_generation = None;
        loop {
            let d = self
                .api()
                .get(name)
                .await
                .map_err(|e| format!("reading deployment {name}: {}", client::describe(&e)))?;
            let generation = d.metadata.generation.unwrap_or(0);
            let first = *applied_generation.get_or_insert(generation);
            let r = health::rollout(&d);
            if r.message != said {
                said = r.message.clone();
                self.event("deploy", r.message.clone());
                let st = d.status.clone().unwrap_or_default();
                let want = d.spec.replicas.unwrap_or(1).max(1);
                let pct = (st.updated_replicas.unwrap_or(0).max(0) * 100 / want).min(100) as u32;
                self.report(self.progress(
                    DeploymentStatus::InProgress,
                    "Install",
                    name,
                    pct,
                    None,
                ));
            }
            if let Some(f) = r.failed {
                return Err(f);
            }
            if r.done && generation >= first {
                return Ok(());
            }
            if let Some(p) = self.crash_looping(&d) {
                return Err(p);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "deployment \"{name}\" did not finish within {} s: {said}",
                    self.env.spec.rollout_timeout_seconds
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(150)) => {}
                _ = stop.changed() => return Err("stopped".into()),
            }
        }
    }

    /// A pod of the newest ReplicaSet restarting past the threshold.
    fn crash_looping(&self, d: &KDeployment) -> Option<String> {
        let stores = lock(&self.env.state).stores.clone()?;
        let rs = replicasets(&stores, d).into_iter().next()?;
        for p in pods_of(&stores, &rs) {
            let h = health::pod(&p);
            if h.restarts >= self.env.spec.crashloop_restarts.max(1)
                && let Some(problem) = h.problem
            {
                return Some(format!(
                    "{problem} (past the threshold of {} restarts)",
                    self.env.spec.crashloop_restarts
                ));
            }
        }
        None
    }

    async fn blue_green(self: Arc<Self>, live: String, idle: String) {
        let w = self.env.spec.workload.clone().unwrap_or_default();
        let (live_name, idle_name) = (format!("{w}-{live}"), format!("{w}-{idle}"));
        self.report(self.progress(DeploymentStatus::InProgress, "Install", &idle, 0, None));
        let fail = |me: &Self, msg: String| {
            me.event("deploy", msg.clone());
            me.report(me.progress(DeploymentStatus::Failed, "Install", &idle, 0, Some(msg)));
        };
        let (live_d, idle_d) = match (
            self.api().get(&live_name).await,
            self.api().get(&idle_name).await,
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return fail(&self, client::describe(&e)),
        };
        let replicas = live_d.spec.replicas.unwrap_or(1).max(1);
        let template = match with_image(
            &self.env.spec,
            &idle_d,
            &self.release.revision,
            &self.release.id,
        ) {
            Ok(t) => t,
            Err(e) => return fail(&self, e.message),
        };
        let body = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": idle_name},
            "spec": {"replicas": replicas, "template": template},
        });
        self.event(
            "deploy",
            format!(
                "scaling {idle_name} to {replicas} with {}",
                self.release.revision
            ),
        );
        if let Err(e) = self
            .api()
            .patch(&idle_name, &apply_params(), &Patch::Apply(&body))
            .await
        {
            return fail(
                &self,
                format!("apply of {idle_name} failed: {}", client::describe(&e)),
            );
        }
        if let Err(reason) = self.wait_rollout(&idle_name).await {
            let reason = format!("{reason}; traffic stays on {live}");
            let _ = self.scale(&idle_name, 0).await;
            self.event("rollback", reason.clone());
            return self.report(self.progress(
                DeploymentStatus::Failed,
                "Install",
                &idle,
                0,
                Some(reason),
            ));
        }
        let t = Instant::now();
        if let Err(e) = self.flip(&idle).await {
            return fail(&self, e);
        }
        self.event(
            "deploy",
            format!(
                "Service {} now selects {idle} ({} ms)",
                self.env.spec.service.clone().unwrap_or_default(),
                t.elapsed().as_millis()
            ),
        );
        let wait = Duration::from_secs(self.env.spec.termination_wait_seconds);
        let mut p = self.progress(
            DeploymentStatus::Baking,
            "TerminationWait",
            &idle,
            100,
            None,
        );
        p.next_step_at = Some(SystemTime::now() + wait);
        self.report(p);
        match self.bake(wait, &idle_name).await {
            Ok(()) => {}
            Err(why) if why == "stopped" => {
                return self.report(self.progress(
                    DeploymentStatus::Stopped,
                    "TerminationWait",
                    &idle,
                    0,
                    Some(format!("rolled back: traffic is on {live} again")),
                ));
            }
            Err(why) => {
                let reason = if !self.env.spec.rolls_back_on("DEPLOYMENT_STOP_ON_ALARM") {
                    format!(
                        "{why}; traffic stays on {idle} (auto_rollback has no DEPLOYMENT_STOP_ON_ALARM)"
                    )
                } else {
                    match self.flip(&live).await {
                        Ok(()) => {
                            let _ = self.scale(&idle_name, 0).await;
                            format!("{why}; rolled back: traffic is on {live} again")
                        }
                        Err(e) => format!("{why}; the rollback failed: {e}"),
                    }
                };
                self.event("rollback", reason.clone());
                return self.report(self.progress(
                    DeploymentStatus::Failed,
                    "TerminationWait",
                    &idle,
                    0,
                    Some(reason),
                ));
            }
        }
        if let Err(e) = self.scale(&live_name, 0).await {
            self.event("deploy", format!("scaling {live_name} down failed: {e}"));
        }
        self.report(self.progress(DeploymentStatus::Succeeded, "Done", &idle, 100, None));
    }

    pub(super) async fn scale(&self, name: &str, replicas: i32) -> Result<(), String> {
        let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": replicas}});
        self.api()
            .patch(name, &scale_params(), &Patch::Apply(&body))
            .await
            .map(|_| ())
            .map_err(|e| client::describe(&e))
    }

    async fn flip(&self, slot: &str) -> Result<(), String> {
        flip(&self.client, &self.env.spec, slot).await
    }
}

/// Moves the Service's selector to `slot`, the whole map in one apply.
pub async fn flip(
    client: &kube::Client,
    spec: &crate::config::workspace::KubernetesSpec,
    slot: &str,
) -> Result<(), String> {
    let name = spec.service.clone().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(client.clone(), &spec.namespace);
    let svc = api.get(&name).await.map_err(|e| client::describe(&e))?;
    let mut selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
    selector.insert(spec.slot_label.clone(), slot.to_owned());
    let body = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"selector": selector}});
    api.patch(&name, &apply_params(), &Patch::Apply(&body))
        .await
        .map(|_| ())
        .map_err(|e| format!("moving Service {name} to {slot}: {}", client::describe(&e)))
}

/// `kubectl rollout undo`: the previous revision's template, by JSON patch.
pub async fn undo(client: &kube::Client, ns: &str, name: &str) -> Result<String, String> {
    let api: Api<KDeployment> = Api::namespaced(client.clone(), ns);
    let rsapi: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(client.clone(), ns);
    let d = api.get(name).await.map_err(|e| client::describe(&e))?;
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let mut all: Vec<_> = rsapi
        .list(&Default::default())
        .await
        .map_err(|e| client::describe(&e))?
        .items
        .into_iter()
        .filter(|r| {
            r.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .filter_map(|r| health::revision_of(&r).map(|v| (v, r)))
        .collect();
    all.sort_by_key(|(v, _)| std::cmp::Reverse(*v));
    let Some((rev, prev)) = all.get(1).cloned() else {
        return Err(format!(
            "no rollout history found for deployment \"{name}\""
        ));
    };
    let mut template = prev.spec.template.unwrap_or_default();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    const SKIP: [&str; 6] = [
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    ];
    let mut annotations = std::collections::BTreeMap::new();
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if SKIP.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in prev.metadata.annotations.iter().flatten() {
        if !SKIP.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]))
    .map_err(|e| e.to_string())?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .map_err(|e| client::describe(&e))?;
    Ok(format!(
        "deployment.apps/{name} rolled back to revision {rev}"
    ))
}

/// `b`: blue/green moves the selector back while the old slot is up; a
/// rolling update is undone.
pub async fn rollback(env: &KubeEnvironment) -> Result<String, String> {
    let (Some(client), Some(stores)) = (env.client(), env.stores()) else {
        return Err(format!("cluster `{}` cannot be reached", env.spec.context));
    };
    if env.spec.strategy == "BlueGreen" {
        let live = live_slot(env, &stores).ok_or("the Service selects no slot")?;
        let other = if live == "blue" { "green" } else { "blue" };
        let w = env.spec.workload.clone().unwrap_or_default();
        let up = stores
            .deployments
            .state()
            .into_iter()
            .find(|d| d.metadata.name.as_deref() == Some(&format!("{w}-{other}")))
            .and_then(|d| d.status.clone()?.available_replicas)
            .unwrap_or(0);
        if up == 0 {
            return Err(format!(
                "{w}-{other} has no available replicas: nothing to move the traffic back to"
            ));
        }
        let t = Instant::now();
        flip(&client, &env.spec, other).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if let Some(stop) = env.running.lock().unwrap_or_else(|p| p.into_inner()).take() {
            stop.send_replace(true);
        }
        let msg = format!(
            "rolled back: Service {} selects {other} again ({ms:.1} ms)",
            env.spec.service.clone().unwrap_or_default()
        );
        env.event("rollback", msg.clone());
        return Ok(msg);
    }
    if env.spec.strategy == "Canary" {
        if let Some(r) = stop_in_flight(env).await {
            return r;
        }
        let msg = super::canary::abort(&client, &env.spec).await?;
        env.event("rollback", msg.clone());
        return Ok(msg);
    }
    let name = workload(env, &stores)
        .first()
        .and_then(|d| d.metadata.name.clone())
        .ok_or("no Deployment to roll back")?;
    if let Some(r) = stop_in_flight(env).await {
        return r;
    }
    let msg = undo(&client, &env.spec.namespace, &name).await?;
    env.event("rollback", msg.clone());
    Ok(msg)
}

/// Stops the deployment in flight, if any, and waits for its end: a
/// stopped rolling update or canary rolls itself back (once: two undos
/// would bring the release back, two aborts could read each other's
/// half-done scaling).
async fn stop_in_flight(env: &KubeEnvironment) -> Option<Result<String, String>> {
    let in_flight = lock(&env.state)
        .deployment
        .as_ref()
        .is_some_and(|d| !crate::env::iface::is_terminal(d.status));
    let running = env.running.lock().unwrap_or_else(|p| p.into_inner()).take();
    let stop = running.filter(|_| in_flight)?;
    stop.send_replace(true);
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        if let Some(d) = lock(&env.state).deployment.clone()
            && crate::env::iface::is_terminal(d.status)
        {
            let why = d.reason.unwrap_or_else(|| "stopped".into());
            return Some(match d.status {
                DeploymentStatus::Stopped => {
                    Ok(why.strip_prefix("rolled back: ").unwrap_or(&why).to_owned())
                }
                _ => Err(why),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(Err("the deployment did not stop within 60 s".into()))
}
