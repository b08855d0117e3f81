//! Figures for Kubernetes environments, run on demand
//! (`cargo test --test kubernetes_bench -- --ignored --nocapture`): the time
//! from a Pod status change on the (fake) API server to the environment's
//! summary, and the memory of 3 clusters × 500 pods watched. Also the
//! real-cluster check, which needs PIPEDECK_KUBE_TEST_CONTEXT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube_support::*;
use pipedeck::env::iface::Environment;
use pipedeck::env::kubernetes::KubeEnvironment;
use serde_json::json;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored --nocapture"]
async fn pod_change_to_panel_latency_and_memory_with_3_clusters_of_500_pods() {
    let dir = tempfile::tempdir().unwrap();
    let fakes: Vec<FakeCluster> = (0..3).map(|_| FakeCluster::start()).collect();
    let ctxs: Vec<(String, String)> = fakes
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("c{i}"), f.url.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = ctxs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let kc = kubeconfig(dir.path(), &refs, &[]);
    let mut clients = Vec::new();
    for (ctx, _) in &ctxs {
        let c = client(&kc, ctx).await;
        create_deployment(&c, deployment("web", "web", "shop/web:v1", 500, json!({}))).await;
        controller_step(&c, "web", 500, None).await;
        clients.push(c);
    }
    let before = rss_kib();
    let envs: Vec<Arc<KubeEnvironment>> = ctxs
        .iter()
        .map(|(ctx, _)| {
            KubeEnvironment::start(ctx, spec(&kc, ctx, json!({})), false, Arc::new(|| {}))
        })
        .collect();
    for e in &envs {
        until("500 pods", 60, || {
            e.summary().variants.first().is_some_and(|v| v.ready == 500)
                && !e.summary().events.iter().any(|x| x.kind == "connecting")
        })
        .await;
    }
    let after = rss_kib();
    let t = Instant::now();
    let summaries: Vec<_> = envs.iter().map(|e| e.summary()).collect();
    let summary_time = t.elapsed() / 3;
    assert_eq!(summaries.len(), 3);
    // A pod's restart count changes on the server: how soon the panel has it.
    let papi: Api<Pod> = Api::namespaced(clients[1].clone(), "shop");
    let pod = papi.list(&Default::default()).await.unwrap().items[7]
        .metadata
        .name
        .clone()
        .unwrap();
    let mut lat = Vec::new();
    for n in 1..=20u32 {
        let t = Instant::now();
        papi.patch_status(
            &pod,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"containerStatuses": [{
            "name": "web", "image": "shop/web:v1", "imageID": "", "ready": true, "restartCount": n,
            "state": {"running": {}}}]}})),
        )
        .await
        .unwrap();
        until("the restart", 10, || {
            envs[1].summary().variants[0].restarts == n
        })
        .await;
        lat.push(t.elapsed());
    }
    lat.sort();
    eprintln!(
        "pod status change -> summary: p50 {:?}, max {:?} (20 changes, 3 clusters x 500 pods watched; includes the PATCH round trip)",
        lat[10], lat[19]
    );
    eprintln!(
        "memory: VmRSS {} MiB before the environments, {} MiB with 3 x 500 pods watched (+{} MiB); one summary of 500 pods takes {:?}",
        before / 1024,
        after / 1024,
        after.saturating_sub(before) / 1024,
        summary_time
    );
    for e in envs {
        e.shutdown().await;
    }
    let _ = Duration::ZERO;
}

/// Against a real cluster: PIPEDECK_KUBE_TEST_CONTEXT (a kubeconfig
/// context, e.g. kind-kind, k3d-dev or an EKS ARN), with
/// PIPEDECK_KUBE_TEST_NAMESPACE and PIPEDECK_KUBE_TEST_WORKLOAD (an existing
/// Deployment). Read-only: it only watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster named by PIPEDECK_KUBE_TEST_CONTEXT"]
async fn a_real_cluster_is_summarised() {
    let Ok(ctx) = std::env::var("PIPEDECK_KUBE_TEST_CONTEXT") else {
        eprintln!("SKIPPED: set PIPEDECK_KUBE_TEST_CONTEXT");
        return;
    };
    let ns = std::env::var("PIPEDECK_KUBE_TEST_NAMESPACE").unwrap_or_else(|_| "default".into());
    let workload = std::env::var("PIPEDECK_KUBE_TEST_WORKLOAD").unwrap_or_else(|_| "web".into());
    let spec: pipedeck::config::workspace::KubernetesSpec = toml::Value::try_from(json!({
        "context": ctx, "namespace": ns, "workload": workload,
    }))
    .unwrap()
    .try_into()
    .unwrap();
    let env = KubeEnvironment::start("real", spec, false, Arc::new(|| {}));
    until("the workload's ReplicaSets", 30, || {
        !env.summary().variants.is_empty()
    })
    .await;
    eprintln!("{:#?}", env.summary());
    env.shutdown().await;
}
