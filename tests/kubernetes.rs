//! Kubernetes environments against a fake API server on loopback
//! (tests/fixtures/kube/fake_apiserver.py), whose protocol a real kubectl
//! checks first. No test contacts a real cluster: every kubeconfig is a
//! temporary file naming 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment as KDeployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube_support::*;
use pipedeck::api::env::{DeploymentStatus, EnvironmentSummary};
use pipedeck::env::iface::{DeployUpdate, Environment, ReleaseRequest};
use pipedeck::env::kubernetes::KubeEnvironment;
use serde_json::json;

fn quiet() -> pipedeck::env::kubernetes::OnChange {
    Arc::new(|| {})
}

fn events(s: &EnvironmentSummary) -> String {
    s.events
        .iter()
        .map(|e| format!("[{}] {}", e.kind, e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_kubectl_speaks_to_the_fake_api_server() {
    let Some(kubectl) = kubectl() else {
        eprintln!("SKIPPED: no kubectl (set PIPEDECK_TEST_VENV to the test venv)");
        return;
    };
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("fake", &fake.url)], &[]);
    let home = dir.path();
    let manifest = dir.path().join("web.json");
    std::fs::write(
        &manifest,
        deployment("web", "web", "shop/web:v1", 2, json!({})).to_string(),
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    let (ok, out) = run(
        &kubectl,
        &kc,
        home,
        &["apply", "--server-side", "--validate=false", "-f", m],
    );
    assert!(
        ok && out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let (ok, out) = run(&kubectl, &kc, home, &["get", "deploy"]);
    assert!(ok && out.contains("web"), "{out}");
    let (ok, out) = run(
        &kubectl,
        &kc,
        home,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    );
    assert!(ok && out.contains("kubectl"), "{out}");

    // get -w sees the change a merge patch makes.
    let mut watch = std::process::Command::new(&kubectl)
        .args([
            "get",
            "deploy",
            "web",
            "-w",
            "-o",
            "jsonpath={.spec.replicas}{\"\\n\"}",
        ])
        .env("KUBECONFIG", &kc)
        .env("HOME", home)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (ok, out) = run(
        &kubectl,
        &kc,
        home,
        &[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ],
    );
    assert!(ok && out.contains("patched"), "{out}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    watch.kill().unwrap();
    let out = watch.wait_with_output().unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.lines().any(|l| l == "2") && seen.lines().any(|l| l == "3"),
        "get -w printed {seen:?}"
    );

    // Server-side apply conflicts with the field kubectl-patch now owns.
    let (ok, out) = run(
        &kubectl,
        &kc,
        home,
        &["apply", "--server-side", "--validate=false", "-f", m],
    );
    assert!(
        !ok && out.contains("conflict with \"kubectl-patch\"") && out.contains(".spec.replicas"),
        "{out}"
    );

    // rollout status waits (WatchList answered 422, then list + watch) and
    // finishes when the status a controller would write arrives.
    let (kc2, home2, kubectl2) = (kc.clone(), home.to_path_buf(), kubectl.clone());
    let status = tokio::task::spawn_blocking(move || {
        run(
            &kubectl2,
            &kc2,
            &home2,
            &["rollout", "status", "deploy/web", "--timeout=20s"],
        )
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let c = client(&kc, "fake").await;
    controller_step(&c, "web", 3, None).await;
    let (ok, out) = status.await.unwrap();
    assert!(
        ok && out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );
}

async fn wait_summary<F: Fn(&EnvironmentSummary) -> bool>(
    env: &KubeEnvironment,
    what: &str,
    f: F,
) -> EnvironmentSummary {
    let end = Instant::now() + Duration::from_secs(15);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_names_pod_problems_and_replicaset_revisions() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 2, json!({}))).await;
    controller_step(&c, "web", 2, None).await;
    let dapi: Api<KDeployment> = Api::namespaced(c.clone(), "shop");
    dapi.patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "shop/web:v2"}]}}}})))
        .await
        .unwrap();
    let pull = json!({"state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"shop/web:v2\""}}});
    let (_, pods) = controller_step(&c, "web", 0, Some(pull)).await;
    // One pod of the new revision crash-loops on OOM instead.
    let papi: Api<Pod> = Api::namespaced(c.clone(), "shop");
    let crash = pods[1].metadata.name.clone().unwrap();
    papi.patch(&crash, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {"fake.pipedeck.dev/previous-log": "starting\nloading catalogue\nfatal: out of memory"}}})))
        .await
        .unwrap();
    papi.patch_status(&crash, &PatchParams::default(), &Patch::Merge(json!({"status": {"containerStatuses": [{
        "name": "web", "image": "shop/web:v2", "imageID": "", "ready": false, "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}})))
        .await
        .unwrap();

    let env = KubeEnvironment::start("prod", spec(&kc, "prod", json!({})), true, quiet());
    let s = wait_summary(&env, "both revisions and the crash lines", |s| {
        s.variants.len() == 2 && events(s).contains("fatal: out of memory")
    })
    .await;
    assert_eq!(s.kind, "kubernetes");
    assert_eq!(s.location, "prod/shop");
    assert!(s.protected);
    let (new, old) = (&s.variants[0], &s.variants[1]);
    assert_eq!(
        (
            new.label.as_str(),
            new.revision.as_str(),
            new.ready,
            new.total,
            new.restarts
        ),
        ("rev2", "v2", 0, 2, 4)
    );
    assert_eq!(
        (
            old.label.as_str(),
            old.revision.as_str(),
            old.ready,
            old.total,
            old.weight_percent
        ),
        ("rev1", "v1", 2, 2, 100)
    );
    let ev = events(&s);
    assert!(ev.contains("ImagePullBackOff: image shop/web:v2"), "{ev}");
    assert!(
        ev.contains(
            "CrashLoopBackOff: container web restarted 4 times, last OOMKilled (memory limit 128Mi)"
        ),
        "{ev}"
    );
    assert!(
        ev.contains("loading catalogue | fatal: out of memory"),
        "{ev}"
    );
    assert!(ev.contains("Waiting for deployment \"web\" rollout to finish: 2 old replicas are pending termination..."), "{ev}");
    env.shutdown().await;
}

/// Acts as the Deployment controller: each new generation gets its
/// ReplicaSet and `ready` pods (the rest in `bad` state).
fn controller(
    c: kube::Client,
    name: &'static str,
    ready: i32,
    bad: Option<serde_json::Value>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<KDeployment> = Api::namespaced(c.clone(), "shop");
        // Only generations after this one: the current one is done already.
        let mut seen = api
            .get(name)
            .await
            .map_or(0, |d| d.metadata.generation.unwrap_or(0));
        loop {
            if let Ok(d) = api.get(name).await {
                let g = d.metadata.generation.unwrap_or(0);
                if g != seen {
                    seen = g;
                    controller_step(&c, name, ready, bad.clone()).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
}

async fn follow(
    mut d: pipedeck::env::iface::Deployment,
) -> (Vec<DeployUpdate>, pipedeck::api::env::DeploymentProgress) {
    let mut all = Vec::new();
    loop {
        let u = tokio::time::timeout(Duration::from_secs(30), d.updates.recv())
            .await
            .unwrap()
            .unwrap();
        all.push(u.clone());
        if let DeployUpdate::Finished(p) = u {
            return (all, p);
        }
    }
}

fn said(updates: &[DeployUpdate]) -> String {
    updates
        .iter()
        .filter_map(|u| match u {
            DeployUpdate::Event(e) => Some(e.message.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn release(rev: &str) -> ReleaseRequest {
    ReleaseRequest {
        id: format!("d-{rev}"),
        revision: rev.into(),
        source: std::env::temp_dir(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deploy_applies_the_image_and_waits_like_rollout_status() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("dev", &fake.url)], &[]);
    let c = client(&kc, "dev").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 2, json!({}))).await;
    controller_step(&c, "web", 2, None).await;
    let ctl = controller(c.clone(), "web", 2, None);
    let env = KubeEnvironment::start("dev", spec(&kc, "dev", json!({})), false, quiet());
    wait_summary(&env, "the first revision", |s| s.variants.len() == 1).await;
    let d = env.deploy(release("v3")).await.unwrap();
    let (updates, last) = follow(d).await;
    assert_eq!(
        last.status,
        DeploymentStatus::Succeeded,
        "{:?}",
        said(&updates)
    );
    let text = said(&updates);
    assert!(
        text.contains("server-side apply of deployment.apps/web (field manager pipedeck)"),
        "{text}"
    );
    assert!(
        text.contains("deployment \"web\" successfully rolled out"),
        "{text}"
    );
    let api: Api<KDeployment> = Api::namespaced(c.clone(), "shop");
    let d = api.get("web").await.unwrap();
    let image = d.spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    assert_eq!(image, "shop/web:v3");
    assert!(
        d.metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|m| m.manager.as_deref() == Some("pipedeck")
                && m.operation.as_deref() == Some("Apply"))
    );
    let s = wait_summary(&env, "revision 2 live", |s| {
        s.live.as_deref() == Some("rev2")
    })
    .await;
    assert_eq!(s.release.unwrap().revision, "v3");
    ctl.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_rollout_rolls_itself_back_like_rollout_undo() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("dev", &fake.url)], &[]);
    let c = client(&kc, "dev").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 2, json!({}))).await;
    controller_step(&c, "web", 2, None).await;
    let bad = json!({"deadline": true, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}});
    let ctl = controller(c.clone(), "web", 0, Some(bad));
    let env = KubeEnvironment::start(
        "dev",
        spec(&kc, "dev", json!({"auto_rollback": ["DEPLOYMENT_FAILURE"]})),
        false,
        quiet(),
    );
    wait_summary(&env, "the first revision", |s| s.variants.len() == 1).await;
    let (updates, last) = follow(env.deploy(release("v9")).await.unwrap()).await;
    assert_eq!(last.status, DeploymentStatus::Failed);
    let reason = last.reason.unwrap();
    assert!(
        reason.contains("deployment \"web\" exceeded its progress deadline"),
        "{reason}"
    );
    assert!(
        reason.contains("deployment.apps/web rolled back to revision 1"),
        "{reason}"
    );
    assert!(
        said(&updates)
            .contains("automatic rollback: deployment \"web\" exceeded its progress deadline")
    );
    let api: Api<KDeployment> = Api::namespaced(c.clone(), "shop");
    let t = api.get("web").await.unwrap().spec.template;
    assert_eq!(
        t.spec.unwrap().containers[0].image.as_deref(),
        Some("shop/web:v1")
    );
    assert!(
        !t.metadata
            .unwrap()
            .labels
            .unwrap()
            .contains_key("pod-template-hash")
    );
    ctl.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_flips_the_service_and_b_flips_it_back_fast() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    create_deployment(
        &c,
        deployment("web-blue", "web", "shop/web:v1", 2, json!({"slot": "blue"})),
    )
    .await;
    create_deployment(
        &c,
        deployment(
            "web-green",
            "web",
            "shop/web:v1",
            0,
            json!({"slot": "green"}),
        ),
    )
    .await;
    controller_step(&c, "web-blue", 2, None).await;
    let svc: Api<Service> = Api::namespaced(c.clone(), "shop");
    svc.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web", "slot": "blue"}, "ports": [{"port": 80}]}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let ctl = controller(c.clone(), "web-green", 2, None);
    let env = KubeEnvironment::start(
        "prod",
        spec(
            &kc,
            "prod",
            json!({"strategy": "BlueGreen", "service": "web", "termination_wait_seconds": 60}),
        ),
        true,
        quiet(),
    );
    wait_summary(&env, "blue live", |s| {
        s.live.as_deref() == Some("blue") && s.variants.len() == 2
    })
    .await;
    let mut d = env.deploy(release("v2")).await.unwrap();
    // Until Baking: traffic moved, blue still up.
    loop {
        match tokio::time::timeout(Duration::from_secs(20), d.updates.recv())
            .await
            .unwrap()
            .unwrap()
        {
            DeployUpdate::Progress(p) if p.status == DeploymentStatus::Baking => break,
            DeployUpdate::Finished(p) => panic!("finished early: {p:?}"),
            _ => {}
        }
    }
    let selector = |s: Service| s.spec.unwrap().selector.unwrap();
    let sel = selector(svc.get("web").await.unwrap());
    assert_eq!(sel.get("slot").map(String::as_str), Some("green"));
    assert_eq!(
        sel.get("app").map(String::as_str),
        Some("web"),
        "the selector is sent whole"
    );
    let s = wait_summary(&env, "green live", |s| s.live.as_deref() == Some("green")).await;
    assert_eq!(s.weight_of("green"), 100);

    let t = Instant::now();
    let msg = env.rollback().await.unwrap();
    let flip = t.elapsed();
    eprintln!(
        "blue/green rollback flip: {:.1} ms ({msg})",
        flip.as_secs_f64() * 1000.0
    );
    assert!(flip < Duration::from_millis(500), "flip took {flip:?}");
    assert_eq!(
        selector(svc.get("web").await.unwrap())
            .get("slot")
            .map(String::as_str),
        Some("blue")
    );
    let (_, last) = follow(d).await;
    assert_eq!(last.status, DeploymentStatus::Stopped);
    ctl.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clusters_side_by_side_one_down_and_one_with_a_failing_exec_user() {
    let (a, b) = (FakeCluster::start(), FakeCluster::start());
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let dir = tempfile::tempdir().unwrap();
    let aws = dir.path().join("aws");
    std::fs::write(&aws, "#!/bin/sh\necho 'An error occurred (ExpiredToken) when calling the AssumeRole operation: the token expired' >&2\nexit 255\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&aws).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&aws, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kc = kubeconfig(
        dir.path(),
        &[
            ("dev", &a.url),
            ("staging", &b.url),
            ("prod", &down),
            ("eks", &a.url),
        ],
        &[("eks", aws.to_str().unwrap())],
    );
    for (ctx, image) in [("dev", "shop/web:v2"), ("staging", "shop/web:v1")] {
        let c = client(&kc, ctx).await;
        create_deployment(&c, deployment("web", "web", image, 2, json!({}))).await;
        controller_step(&c, "web", 2, None).await;
    }
    let t = Instant::now();
    let envs: Vec<Arc<KubeEnvironment>> = ["dev", "staging", "prod", "eks"]
        .iter()
        .map(|n| KubeEnvironment::start(n, spec(&kc, n, json!({})), false, quiet()))
        .collect();
    let dev = wait_summary(&envs[0], "dev", |s| {
        s.variants.len() == 1 && s.variants[0].ready == 2
    })
    .await;
    let staging = wait_summary(&envs[1], "staging", |s| s.variants.len() == 1).await;
    let both = t.elapsed();
    eprintln!("two healthy clusters summarised in {both:?} while prod is down");
    assert!(both < Duration::from_secs(3), "{both:?}");
    assert_eq!(dev.variants[0].revision, "v2");
    assert_eq!(staging.variants[0].revision, "v1");
    let prod = wait_summary(&envs[2], "prod's error", |s| {
        s.events.iter().any(|e| e.kind == "error")
    })
    .await;
    assert!(
        prod.location.ends_with("· unreachable"),
        "{}",
        prod.location
    );
    let ev = events(&prod);
    assert!(
        ev.contains("cluster `prod`:") && ev.contains("(retrying)"),
        "{ev}"
    );
    let eks = wait_summary(&envs[3], "the exec error", |s| {
        s.events.iter().any(|e| e.kind == "error")
    })
    .await;
    let ev = events(&eks);
    assert!(
        ev.contains("ExpiredToken"),
        "the plugin's stderr is shown: {ev}"
    );
    for e in envs {
        e.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_gone_during_a_watch_makes_the_watcher_relist() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("dev", &fake.url)], &[]);
    let c = client(&kc, "dev").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 2, json!({}))).await;
    controller_step(&c, "web", 1, None).await;
    let env = KubeEnvironment::start("dev", spec(&kc, "dev", json!({})), false, quiet());
    wait_summary(&env, "1 of 2", |s| {
        s.variants.first().is_some_and(|v| v.ready == 1)
    })
    .await;
    fake.compact();
    controller_step(&c, "web", 2, None).await;
    let s = wait_summary(&env, "2 of 2 after the re-list", |s| {
        s.variants.first().is_some_and(|v| v.ready == 2)
    })
    .await;
    assert_eq!(s.live.as_deref(), Some("rev1"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_cluster_gets_a_tls_client_with_the_one_crypto_provider() {
    // Something on loopback that accepts and hangs up: the TLS handshake
    // fails, so the panel says so. Two rustls providers in the process
    // would panic when the client is built instead.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            drop(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let kc = kubeconfig(dir.path(), &[("tls", &url)], &[]);
    let text = std::fs::read_to_string(&kc).unwrap().replace(
        &format!("\"server\": \"{url}\""),
        &format!("\"server\": \"{url}\", \"insecure-skip-tls-verify\": true"),
    );
    std::fs::write(&kc, text).unwrap();
    let spec = spec(&kc, "tls", json!({}));
    assert!(
        pipedeck::env::kubernetes::client::connect(&spec)
            .await
            .is_ok()
    );
    let env = KubeEnvironment::start("tls", spec, false, quiet());
    let s = wait_summary(&env, "the TLS error", |s| {
        s.events.iter().any(|e| e.kind == "error")
    })
    .await;
    assert!(s.location.ends_with("· unreachable"), "{}", s.location);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_crash_looping_past_the_threshold_roll_the_deploy_back() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("dev", &fake.url)], &[]);
    let c = client(&kc, "dev").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 2, json!({}))).await;
    controller_step(&c, "web", 2, None).await;
    let crash = json!({"restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                       "lastState": {"terminated": {"reason": "Error", "exitCode": 3}}});
    let ctl = controller(c.clone(), "web", 0, Some(crash));
    let env = KubeEnvironment::start(
        "dev",
        spec(
            &kc,
            "dev",
            json!({"auto_rollback": ["DEPLOYMENT_FAILURE"], "crashloop_restarts": 3}),
        ),
        false,
        quiet(),
    );
    wait_summary(&env, "the first revision", |s| s.variants.len() == 1).await;
    let (_, last) = follow(env.deploy(release("v4")).await.unwrap()).await;
    assert_eq!(last.status, DeploymentStatus::Failed);
    let reason = last.reason.unwrap();
    assert!(
        reason.contains("CrashLoopBackOff: container web restarted 5 times, last exit code 3 (past the threshold of 3 restarts)")
            && reason.contains("rolled back to revision 1"),
        "{reason}"
    );
    ctl.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorized_cluster_says_to_check_the_eks_access_entry() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod-expired", &fake.url)], &[]);
    let env = KubeEnvironment::start("prod", spec(&kc, "prod-expired", json!({})), false, quiet());
    let s = wait_summary(&env, "the 401", |s| {
        s.events.iter().any(|e| e.kind == "error")
    })
    .await;
    let ev = events(&s);
    assert!(
        ev.contains("Unauthorized: the API server refused the credentials")
            && ev.contains("access entry"),
        "{ev}"
    );
    env.shutdown().await;
}
