//! The real-cluster check, which needs PIPEDECK_KUBE_TEST_CONTEXT (the
//! figures are `cargo bench --bench kubernetes`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::sync::Arc;

use kube_support::*;
use pipedeck::env::iface::Environment;
use pipedeck::env::kubernetes::KubeEnvironment;
use serde_json::json;

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
