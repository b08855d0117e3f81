//! FluxCD through a kubernetes environment, against the fake API server
//! (its Kustomization and HelmRelease CRDs): Ready / revision / suspended
//! into the sync status, a Flux-managed Deployment refused, reconcile /
//! suspend / resume with the test playing the controller.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment as KDeployment;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube_support::*;
use pipedeck::api::env::EnvironmentSummary;
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

fn release(rev: &str) -> ReleaseRequest {
    ReleaseRequest {
        id: format!("d-{rev}"),
        revision: rev.into(),
        source: std::env::temp_dir(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_ready_revision_and_suspended_come_into_the_sync_status() {
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
        s.sync.as_ref().is_some_and(|x| x.ready == Some(true))
    })
    .await;
    let sync = s.sync.unwrap();
    assert_eq!(sync.object, "Kustomization/shop/apps");
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
    wait_summary(&env, "suspended", |s| {
        s.sync.as_ref().is_some_and(|x| x.suspended)
    })
    .await;

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
