//! FluxCD through a kubernetes environment, against the fake API server
//! (its Flux CRDs, all six kinds or some left out): Ready / revision /
//! suspended / the picked image into the environment's Flux objects, a
//! Flux-managed Deployment refused, reconcile / suspend / resume with the
//! test playing the controller, and a real kubectl reading what pipedeck
//! shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment as KDeployment;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube_support::*;
use pipedeck::api::env::{EnvironmentSummary, FluxObject};
use pipedeck::env::iface::{Environment, ReleaseRequest};
use pipedeck::env::kubernetes::KubeEnvironment;
use serde_json::json;

fn quiet() -> pipedeck::env::kubernetes::OnChange {
    Arc::new(|| {})
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

fn first(s: &EnvironmentSummary) -> Option<&FluxObject> {
    s.flux.as_ref().and_then(|f| f.objects.first())
}

fn release(rev: &str) -> ReleaseRequest {
    ReleaseRequest {
        id: format!("d-{rev}"),
        revision: rev.into(),
        source: std::env::temp_dir(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_ready_revision_and_suspended_come_into_the_flux_objects() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 1, json!({}))).await;
    let env = KubeEnvironment::start("prod", spec(&kc, "prod", json!({})), false, quiet());
    wait_summary(&env, "connected", |s| {
        !s.events.iter().any(|e| e.kind == "error") && s.variants.is_empty()
    })
    .await;
    let ar = pipedeck::env::kubernetes::flux::resource("Kustomization").unwrap();
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(c.clone(), "shop", &ar);
    let mut obj: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "shop"},
        "spec": {"suspend": false, "path": "./apps", "interval": "5m"},
    }))
    .unwrap();
    obj = api.create(&PostParams::default(), &obj).await.unwrap();
    let _ = obj;
    api.patch_status("apps", &PatchParams::default(), &Patch::Merge(json!({"status": {
        "lastAppliedRevision": "main@sha1:67e2c98a0f1b2c3d4e5f67e2c98a0f1b2c3d4e5f",
        "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                        "message": "Applied revision: main@sha1:67e2c98a0f1b2c3d4e5f67e2c98a0f1b2c3d4e5f"}]}})))
        .await
        .unwrap();
    let s = wait_summary(&env, "the Kustomization Ready", |s| {
        first(s).is_some_and(|x| x.ready == Some(true))
    })
    .await;
    let sync = first(&s).unwrap().clone();
    assert_eq!(sync.id(), "Kustomization/shop/apps");
    assert_eq!(sync.ready, Some(true));
    assert_eq!(sync.revision.as_deref(), Some("main@sha1:67e2c98a"));
    assert_eq!(sync.message, "Applied revision: main@sha1:67e2c98a");
    assert!(!sync.suspended);
    api.patch(
        "apps",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": true}})),
    )
    .await
    .unwrap();
    wait_summary(&env, "suspended", |s| first(s).is_some_and(|x| x.suspended)).await;

    // A Flux-managed Deployment is never applied.
    let dapi: Api<KDeployment> = Api::namespaced(c.clone(), "shop");
    dapi.patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {
        "kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "shop"}}})))
        .await
        .unwrap();
    wait_summary(&env, "the label", |_| true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let Err(e) = env.deploy(release("v2")).await else {
        panic!("a Flux-managed Deployment was deployed")
    };
    assert!(
        e.message
            .contains("managed by Flux (Kustomization/shop/apps)"),
        "{}",
        e.message
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_reconcile_waits_for_the_controller_and_is_refused_when_suspended() {
    use pipedeck::env::kubernetes::flux;
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    let ar = flux::resource("HelmRelease").unwrap();
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(c.clone(), "shop", &ar);
    let obj: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "shop"}, "spec": {"interval": "5m"}}))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    // The helm-controller's part: echo the request, report the upgrade.
    let ctl = {
        let api = api.clone();
        tokio::spawn(async move {
            loop {
                let o = api.get("web").await.unwrap();
                let asked = o
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("reconcile.fluxcd.io/requestedAt").cloned());
                if let Some(t) = asked
                    && o.data["status"]["lastHandledReconcileAt"].as_str() != Some(t.as_str())
                {
                    api.patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {
                        "lastHandledReconcileAt": t,
                        "history": [{"chartVersion": "6.3.5", "status": "deployed"}],
                        "conditions": [{"type": "Ready", "status": "True", "reason": "UpgradeSucceeded",
                                        "message": "Helm upgrade succeeded for release shop/web.v2 with chart podinfo@6.3.5"}]}})))
                        .await
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let msg = flux::reconcile(&c, "HelmRelease", "shop", "web", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(msg.contains("Helm upgrade succeeded"), "{msg}");
    let s = flux::status_of("HelmRelease", &api.get("web").await.unwrap());
    assert_eq!(
        (s.revision.as_deref(), s.ready),
        (Some("6.3.5"), Some(true))
    );
    flux::set_suspended(&c, "HelmRelease", "shop", "web", true)
        .await
        .unwrap();
    let err = flux::reconcile(&c, "HelmRelease", "shop", "web", Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(err.contains("resource is suspended"), "{err}");
    assert!(flux::status_of("HelmRelease", &api.get("web").await.unwrap()).suspended);
    flux::set_suspended(&c, "HelmRelease", "shop", "web", false)
        .await
        .unwrap();
    assert!(!flux::status_of("HelmRelease", &api.get("web").await.unwrap()).suspended);
    ctl.abort();
}

const SHA1: &str = "67e2c98a0f1b2c3d4e5f67e2c98a0f1b2c3d4e5f";
const SHA256: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// Creates a Flux object in `shop` at `version`, with `status` written as
/// its controller would.
async fn put(
    c: &kube::Client,
    kind: &str,
    version: &str,
    name: &str,
    spec: serde_json::Value,
    status: serde_json::Value,
) -> Api<kube::api::DynamicObject> {
    use pipedeck::env::kubernetes::flux;
    let k = flux::kind(kind).unwrap();
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(c.clone(), "shop", &flux::resource_at(k, version));
    let obj: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{}/{version}", k.group), "kind": kind,
        "metadata": {"name": name, "namespace": "shop"}, "spec": spec}))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
    api
}

fn ready(reason: &str, message: &str) -> serde_json::Value {
    json!([{"type": "Ready", "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": "2026-12-01T15:00:00Z"}])
}

/// One object of each of the six kinds, as their controllers leave them
/// (the Kustomization's health checks failing).
async fn six_kinds(c: &kube::Client) {
    put(c, "GitRepository", "v1", "shop", json!({"url": "https://example.com/shop.git", "interval": "1m"}),
        json!({"artifact": {"revision": format!("main@sha1:{SHA1}")},
               "conditions": ready("Succeeded", &format!("stored artifact for revision 'main@sha1:{SHA1}'"))})).await;
    put(
        c,
        "OCIRepository",
        "v1",
        "charts",
        json!({"url": "oci://ghcr.io/shop/charts", "interval": "5m"}),
        json!({"artifact": {"revision": format!("6.3.5@sha256:{SHA256}")},
               "conditions": ready("Succeeded", "stored artifact")}),
    )
    .await;
    put(c, "Kustomization", "v1", "apps", json!({"path": "./apps", "interval": "5m"}),
        json!({"lastAppliedRevision": format!("main@sha1:{SHA1}"),
               "conditions": [{"type": "Ready", "status": "False", "reason": "HealthCheckFailed",
                   "lastTransitionTime": "2026-12-01T15:01:00Z",
                   "message": "health check failed after 30s: timeout waiting for: [Deployment/shop/web status: 'InProgress']"}]})).await;
    put(
        c,
        "HelmRelease",
        "v2",
        "web",
        json!({"interval": "5m"}),
        json!({"history": [{"chartVersion": "6.3.5", "status": "deployed"}],
               "conditions": ready("UpgradeSucceeded", "Helm upgrade succeeded")}),
    )
    .await;
    put(
        c,
        "ImageRepository",
        "v1",
        "web",
        json!({"image": "ghcr.io/shop/web", "interval": "5m"}),
        json!({"lastScanResult": {"scanTime": "2026-12-01T15:02:00Z", "tagCount": 14},
               "conditions": ready("Succeeded", "successful scan: found 14 tags")}),
    )
    .await;
    put(c, "ImagePolicy", "v1", "web", json!({"imageRepositoryRef": {"name": "web"}, "policy": {"semver": {"range": "1.x"}}}),
        json!({"latestRef": {"name": "ghcr.io/shop/web", "tag": "1.4.2", "digest": format!("sha256:{SHA256}")},
               "conditions": ready("Succeeded", "Latest image tag for ghcr.io/shop/web resolved to 1.4.2")})).await;
}

fn of<'a>(s: &'a EnvironmentSummary, kind: &str) -> &'a FluxObject {
    s.flux
        .as_ref()
        .and_then(|f| f.objects.iter().find(|o| o.kind == kind))
        .unwrap_or_else(|| panic!("no {kind} in {s:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_six_kinds_are_listed_with_flux_gets_columns_worst_first() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    six_kinds(&c).await;
    let env = KubeEnvironment::start("prod", spec(&kc, "prod", json!({})), false, quiet());
    let s = wait_summary(&env, "six Flux objects", |s| {
        s.flux.as_ref().is_some_and(|f| f.objects.len() == 6)
    })
    .await;
    let f = s.flux.as_ref().unwrap();
    assert_eq!(f.installed, pipedeck::api::env::FLUX_KINDS);
    assert!(f.missing().is_empty() && f.error.is_none(), "{f:#?}");
    // The one failing its health checks first.
    let worst = f.worst().unwrap();
    assert_eq!(worst.id(), "Kustomization/shop/apps");
    assert_eq!(
        (worst.ready, worst.reason.as_deref()),
        (Some(false), Some("HealthCheckFailed"))
    );
    assert_eq!(worst.since.as_deref(), Some("2026-12-01T15:01:00Z"));
    assert_eq!(f.not_ready(), 1);
    assert_eq!(of(&s, "GitRepository").detail(), "main@sha1:67e2c98a");
    assert_eq!(of(&s, "OCIRepository").detail(), "6.3.5@sha256:0a1b2c3d");
    assert_eq!(of(&s, "HelmRelease").detail(), "6.3.5");
    assert_eq!(
        of(&s, "ImageRepository").detail(),
        "scanned 2026-12-01T15:02:00Z · 14 tags"
    );
    assert_eq!(
        of(&s, "ImagePolicy").detail(),
        "image: ghcr.io/shop/web:1.4.2"
    );
    assert!(f.objects[1..].iter().all(|o| o.ready == Some(true)));
    // Diagnosis takes the failed health check as a record of the
    // environment a Deploy action lands in.
    let mut mapped = s.clone();
    mapped.actions = vec!["Deploy-Prod".into()];
    let health = pipedeck::diagnose::flux::health(&[mapped], "Deploy-Prod");
    assert_eq!(health.len(), 1, "{health:?}");
    assert_eq!(health[0].name, "Kustomization/shop/apps");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_whose_crd_is_absent_is_said_and_the_others_are_shown() {
    let fake = FakeCluster::start_with(&["--without", "imagerepositories,imagepolicies"]);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    put(&c, "GitRepository", "v1", "shop", json!({"interval": "1m"}),
        json!({"artifact": {"revision": format!("main@sha1:{SHA1}")}, "conditions": ready("Succeeded", "stored")})).await;
    put(&c, "Kustomization", "v1", "apps", json!({"interval": "1m"}),
        json!({"lastAppliedRevision": format!("main@sha1:{SHA1}"), "conditions": ready("ReconciliationSucceeded", "Applied")})).await;
    let env = KubeEnvironment::start("prod", spec(&kc, "prod", json!({})), false, quiet());
    let s = wait_summary(&env, "two Flux objects", |s| {
        s.flux.as_ref().is_some_and(|f| f.objects.len() == 2)
    })
    .await;
    let f = s.flux.as_ref().unwrap();
    assert!(f.is_installed());
    assert_eq!(f.missing(), ["ImageRepository", "ImagePolicy"]);
    assert_eq!(f.error, None);
    assert_eq!(of(&s, "GitRepository").detail(), "main@sha1:67e2c98a");
    // An operation on a kind the cluster does not serve says so.
    let e = pipedeck::env::kubernetes::flux::operate(
        &env,
        pipedeck::api::FluxOperation::Suspend,
        "ImagePolicy/web",
    )
    .await
    .unwrap_err();
    assert!(
        e.message.contains("does not serve ImagePolicy"),
        "{}",
        e.message
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_any_flux_crd_is_flux_not_installed() {
    let fake = FakeCluster::start_with(&[
        "--without",
        "kustomizations,helmreleases,gitrepositories,ocirepositories,imagerepositories,imagepolicies",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let env = KubeEnvironment::start("prod", spec(&kc, "prod", json!({})), false, quiet());
    let s = wait_summary(&env, "the Flux read", |s| s.flux.is_some()).await;
    let f = s.flux.unwrap();
    assert!(!f.is_installed(), "{f:#?}");
    assert!(f.objects.is_empty() && f.error.is_none(), "{f:#?}");
    assert_eq!(f.missing().len(), 6);
    // Not an error of the environment.
    assert!(
        !s.events.iter().any(|e| e.kind == "error"),
        "{:#?}",
        s.events
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_flux_2_7_the_image_kinds_and_oci_are_read_at_v1beta2() {
    let fake = FakeCluster::start_with(&["--flux-legacy"]);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    put(&c, "ImagePolicy", "v1beta2", "web", json!({"imageRepositoryRef": {"name": "web"}}),
        json!({"latestImage": "ghcr.io/shop/web:1.4.1", "conditions": ready("Succeeded", "resolved")})).await;
    let oci = put(&c, "OCIRepository", "v1beta2", "charts", json!({"interval": "5m"}),
        json!({"artifact": {"revision": "6.3.4@sha256:0a1b2c3d"}, "conditions": ready("Succeeded", "stored")})).await;
    let env = KubeEnvironment::start("prod", spec(&kc, "prod", json!({})), false, quiet());
    let s = wait_summary(&env, "two Flux objects", |s| {
        s.flux.as_ref().is_some_and(|f| f.objects.len() == 2)
    })
    .await;
    assert_eq!(
        of(&s, "ImagePolicy").detail(),
        "image: ghcr.io/shop/web:1.4.1"
    );
    assert_eq!(of(&s, "OCIRepository").detail(), "6.3.4@sha256:0a1b2c3d");
    // Operations use the version the cluster serves.
    let msg = pipedeck::env::kubernetes::flux::operate(
        &env,
        pipedeck::api::FluxOperation::Suspend,
        "ocirepo/charts",
    )
    .await
    .unwrap();
    assert_eq!(msg, "OCIRepository shop/charts suspended");
    assert_eq!(
        oci.get("charts").await.unwrap().data["spec"]["suspend"],
        json!(true)
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitrepository_is_reconciled_like_flux_reconcile_source_git() {
    use pipedeck::api::FluxOperation as F;
    use pipedeck::env::kubernetes::flux;
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    let api = put(&c, "GitRepository", "v1", "shop", json!({"interval": "1m"}),
        json!({"artifact": {"revision": format!("main@sha1:{SHA1}")}, "conditions": ready("Succeeded", "stored")})).await;
    // The source-controller's part: echo the request with a new artifact.
    let ctl = {
        let api = api.clone();
        tokio::spawn(async move {
            loop {
                let o = api.get("shop").await.unwrap();
                let asked = o
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("reconcile.fluxcd.io/requestedAt").cloned());
                if let Some(t) = asked
                    && o.data["status"]["lastHandledReconcileAt"].as_str() != Some(t.as_str())
                {
                    api.patch_status("shop", &PatchParams::default(), &Patch::Merge(json!({"status": {
                        "lastHandledReconcileAt": t,
                        "artifact": {"revision": "main@sha1:1111111111111111111111111111111111111111"},
                        "conditions": ready("Succeeded", "stored artifact for revision 'main@sha1:1111111111111111111111111111111111111111'")}})))
                        .await
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let env = KubeEnvironment::start("prod", spec(&kc, "prod", json!({})), false, quiet());
    let msg = flux::operate(&env, F::Reconcile, "gitrepo/shop")
        .await
        .unwrap();
    assert_eq!(
        msg,
        "GitRepository shop/shop reconciled: stored artifact for revision 'main@sha1:11111111'"
    );
    let s = wait_summary(&env, "the new revision", |s| {
        s.flux.as_ref().is_some_and(|f| {
            f.objects
                .first()
                .is_some_and(|o| o.revision.as_deref() == Some("main@sha1:11111111"))
        })
    })
    .await;
    assert!(
        s.events
            .iter()
            .any(|e| e.kind == "flux" && e.message.contains("GitRepository shop/shop reconciled")),
        "{:#?}",
        s.events
    );
    // Suspended: a reconcile is refused, saying why.
    flux::operate(&env, F::Suspend, "GitRepository/shop/shop")
        .await
        .unwrap();
    let e = flux::operate(&env, F::Reconcile, "gitrepo/shop")
        .await
        .unwrap_err();
    assert_eq!(e.code, "FluxObjectSuspended");
    assert!(e.message.contains("resource is suspended"), "{}", e.message);
    wait_summary(&env, "suspended", |s| first(s).is_some_and(|o| o.suspended)).await;
    flux::operate(&env, F::Resume, "gitrepo/shop")
        .await
        .unwrap();
    wait_summary(&env, "resumed", |s| first(s).is_some_and(|o| !o.suspended)).await;
    // A kind pipedeck does not know is refused with the list of kinds.
    let e = flux::operate(&env, F::Reconcile, "Bucket/shop")
        .await
        .unwrap_err();
    assert_eq!(e.code, "ValidationException");
    assert!(
        e.message.contains("GitRepository (gitrepo)"),
        "{}",
        e.message
    );
    ctl.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_kubectl_reads_the_flux_objects_pipedeck_shows() {
    let Some(kubectl) = kubectl() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no kubectl under CI (set PIPEDECK_TEST_VENV)"
        );
        eprintln!("SKIPPED: no kubectl (set PIPEDECK_TEST_VENV to the test venv)");
        return;
    };
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    six_kinds(&c).await;
    let env = KubeEnvironment::start("prod", spec(&kc, "prod", json!({})), false, quiet());
    let s = wait_summary(&env, "six Flux objects", |s| {
        s.flux.as_ref().is_some_and(|f| f.objects.len() == 6)
    })
    .await;
    for (resource, kind) in [
        ("gitrepositories.source.toolkit.fluxcd.io", "GitRepository"),
        ("imagepolicies.image.toolkit.fluxcd.io", "ImagePolicy"),
        (
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "Kustomization",
        ),
    ] {
        let (ok, out) = run(
            &kubectl,
            &kc,
            dir.path(),
            &["get", resource, "-n", "shop", "-o", "json"],
        );
        assert!(ok, "kubectl get {resource}: {out}");
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{out}");
        let theirs = pipedeck::env::kubernetes::flux::status_of(
            kind,
            &serde_json::from_value(items[0].clone()).unwrap(),
        );
        assert_eq!(
            &theirs,
            of(&s, kind),
            "kubectl's {kind} reads as pipedeck shows it"
        );
    }
    // And the raw fields kubectl prints are the ones pipedeck cut.
    let (ok, out) = run(
        &kubectl,
        &kc,
        dir.path(),
        &[
            "get",
            "gitrepositories.source.toolkit.fluxcd.io",
            "shop",
            "-n",
            "shop",
            "-o",
            "jsonpath={.status.artifact.revision}",
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(out.trim(), format!("main@sha1:{SHA1}"));
    assert!(
        of(&s, "GitRepository")
            .detail()
            .starts_with(&out.trim()[..18])
    );
    env.shutdown().await;
}
