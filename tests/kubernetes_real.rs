//! The scenarios of tests/kubernetes*.rs against a real cluster (kind, k3d,
//! EKS…), run only on demand:
//!
//! ```sh
//! PIPEDECK_KUBE_TEST_CONTEXT=kind-kind cargo test --test kubernetes_real -- --ignored --nocapture
//! ```
//!
//! `PIPEDECK_KUBE_TEST_CONTEXT` names the kubeconfig context (the file is
//! `PIPEDECK_KUBE_TEST_KUBECONFIG`, else `$KUBECONFIG` or `~/.kube/config`).
//! Each test creates a namespace of its own (`pipedeck-test-…`), works only
//! in it and deletes it at the end, passed or failed. The "releases" are
//! tags of `PIPEDECK_KUBE_TEST_IMAGE` (default `registry.k8s.io/pause`,
//! tags from `PIPEDECK_KUBE_TEST_TAGS`, default `3.9,3.10`), which the
//! cluster's nodes must be able to pull; a bad release is a tag that does
//! not exist. Unlike the fake API server's tests, a real controller moves
//! the ReplicaSets and pods, so they take seconds to minutes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube_support::{follow_within, next_update_within, release_of, said_text, summary_within};

/// A real controller, image pulls and progress deadlines take their time.
const SLOW: u64 = 300;
use pipedeck::api::env::DeploymentStatus;
use pipedeck::config::workspace::KubernetesSpec;
use pipedeck::env::iface::{DeployUpdate, Environment};
use pipedeck::env::kubernetes::KubeEnvironment;
use serde_json::{Value, json};

struct Real {
    context: String,
    kubeconfig: Option<String>,
    image: String,
    tags: (String, String),
}

fn real() -> Option<Real> {
    let Ok(context) = std::env::var("PIPEDECK_KUBE_TEST_CONTEXT") else {
        eprintln!("SKIPPED: set PIPEDECK_KUBE_TEST_CONTEXT to a kubeconfig context");
        return None;
    };
    let tags = std::env::var("PIPEDECK_KUBE_TEST_TAGS").unwrap_or_else(|_| "3.9,3.10".into());
    let (a, b) = tags
        .split_once(',')
        .expect("PIPEDECK_KUBE_TEST_TAGS is two tags, OLD,NEW");
    Some(Real {
        context,
        kubeconfig: std::env::var("PIPEDECK_KUBE_TEST_KUBECONFIG").ok(),
        image: std::env::var("PIPEDECK_KUBE_TEST_IMAGE")
            .unwrap_or_else(|_| "registry.k8s.io/pause".into()),
        tags: (a.trim().to_owned(), b.trim().to_owned()),
    })
}

async fn client_of(r: &Real) -> kube::Client {
    let kc = match &r.kubeconfig {
        Some(p) => kube::config::Kubeconfig::read_from(p).unwrap(),
        None => kube::config::Kubeconfig::read().unwrap(),
    };
    let opts = kube::config::KubeConfigOptions {
        context: Some(r.context.clone()),
        ..Default::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

fn spec(r: &Real, ns: &str, extra: Value) -> KubernetesSpec {
    let mut base = json!({"context": r.context, "namespace": ns, "workload": "web",
        "rollout_timeout_seconds": 240, "termination_wait_seconds": 0});
    if let Some(k) = &r.kubeconfig {
        base["kubeconfig"] = json!(k);
    }
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    toml::Value::try_from(&base).unwrap().try_into().unwrap()
}

/// Runs `scenario` in a namespace of its own, deleted afterwards whatever
/// happened; a failure is re-raised once the namespace is gone.
async fn in_namespace<F, Fut>(r: &Real, scenario: F)
where
    F: FnOnce(kube::Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let c = client_of(r).await;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let ns = format!("pipedeck-test-{}-{nanos:x}", std::process::id());
    let nsapi: Api<Namespace> = Api::all(c.clone());
    nsapi
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    eprintln!("namespace {ns} created");
    let result = tokio::spawn(scenario(c.clone(), ns.clone())).await;
    let deleted = nsapi.delete(&ns, &DeleteParams::default()).await;
    eprintln!("namespace {ns} deleted: {:?}", deleted.map(|_| ()));
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn deployment(name: &str, image: &str, replicas: i32, labels: Value) -> Deployment {
    let mut pod_labels = json!({"app": "web"});
    for (k, v) in labels.as_object().unwrap() {
        pod_labels[k] = v.clone();
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 60,
            "selector": {"matchLabels": pod_labels},
            "template": {"metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }))
    .unwrap()
}

async fn create(c: &kube::Client, ns: &str, d: Deployment) {
    let api: Api<Deployment> = Api::namespaced(c.clone(), ns);
    api.create(&PostParams::default(), &d).await.unwrap();
}

async fn service(c: &kube::Client, ns: &str, selector: Value) {
    let api: Api<Service> = Api::namespaced(c.clone(), ns);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "web"},
            "spec": {"selector": selector, "ports": [{"port": 80}]}}))
        .unwrap(),
    )
    .await
    .unwrap();
}

async fn image_of(c: &kube::Client, ns: &str, name: &str) -> (i32, String) {
    let api: Api<Deployment> = Api::namespaced(c.clone(), ns);
    let d = api.get(name).await.unwrap();
    (
        d.spec.replicas.unwrap_or(1),
        d.spec.template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default(),
    )
}

async fn up(env: &KubeEnvironment, variants: usize) {
    let end = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < end {
        let s = env.summary();
        if s.variants.len() >= variants
            && s.variants.iter().any(|v| v.ready > 0 && v.ready == v.total)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the workload never came up: {:#?}", env.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster named by PIPEDECK_KUBE_TEST_CONTEXT"]
async fn real_rolling_deploy_then_a_bad_release_is_undone() {
    let Some(r) = real() else { return };
    let r = Arc::new(r);
    let rr = r.clone();
    in_namespace(&r, move |c, ns| async move {
        let (old, new) = rr.tags.clone();
        create(
            &c,
            &ns,
            deployment("web", &format!("{}:{old}", rr.image), 2, json!({})),
        )
        .await;
        let env = KubeEnvironment::start(
            "real",
            spec(&rr, &ns, json!({"auto_rollback": ["DEPLOYMENT_FAILURE"]})),
            false,
            kube_support::quiet(),
        );
        up(&env, 1).await;
        let (updates, last) =
            follow_within(env.deploy(release_of(&new)).await.unwrap(), SLOW).await;
        assert_eq!(
            last.status,
            DeploymentStatus::Succeeded,
            "{}",
            said_text(&updates)
        );
        assert_eq!(
            image_of(&c, &ns, "web").await.1,
            format!("{}:{new}", rr.image)
        );
        let s = summary_within(&env, "the new revision live", SLOW, |s| s.live.is_some()).await;
        assert_eq!(s.release.unwrap().revision, new);
        // A tag that does not exist: the progress deadline, then rollout undo.
        let bad = env
            .deploy(release_of("pipedeck-no-such-tag"))
            .await
            .unwrap();
        let (_, last) = follow_within(bad, SLOW).await;
        assert_eq!(last.status, DeploymentStatus::Failed);
        let reason = last.reason.unwrap();
        assert!(reason.contains("rolled back to revision"), "{reason}");
        assert_eq!(
            image_of(&c, &ns, "web").await.1,
            format!("{}:{new}", rr.image)
        );
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster named by PIPEDECK_KUBE_TEST_CONTEXT"]
async fn real_blue_green_flips_the_service_and_back() {
    let Some(r) = real() else { return };
    let r = Arc::new(r);
    let rr = r.clone();
    in_namespace(&r, move |c, ns| async move {
        let (old, new) = rr.tags.clone();
        let image = format!("{}:{old}", rr.image);
        create(
            &c,
            &ns,
            deployment("web-blue", &image, 2, json!({"slot": "blue"})),
        )
        .await;
        create(
            &c,
            &ns,
            deployment("web-green", &image, 0, json!({"slot": "green"})),
        )
        .await;
        service(&c, &ns, json!({"app": "web", "slot": "blue"})).await;
        let env = KubeEnvironment::start(
            "real",
            spec(
                &rr,
                &ns,
                json!({"strategy": "BlueGreen", "service": "web",
                                  "termination_wait_seconds": 120}),
            ),
            true,
            kube_support::quiet(),
        );
        up(&env, 2).await;
        let mut d = env.deploy(release_of(&new)).await.unwrap();
        loop {
            match next_update_within(&mut d, SLOW).await {
                DeployUpdate::Progress(p) if p.status == DeploymentStatus::Baking => break,
                DeployUpdate::Finished(p) => panic!("finished before the flip: {p:?}"),
                _ => {}
            }
        }
        summary_within(&env, "green live", SLOW, |s| {
            s.live.as_deref() == Some("green")
        })
        .await;
        let msg = env.rollback().await.unwrap();
        eprintln!("{msg}");
        let (_, last) = follow_within(d, SLOW).await;
        assert_eq!(last.status, DeploymentStatus::Stopped);
        summary_within(&env, "blue live again", SLOW, |s| {
            s.live.as_deref() == Some("blue")
        })
        .await;
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster named by PIPEDECK_KUBE_TEST_CONTEXT"]
async fn real_canary_steps_then_promotes_and_b_scales_it_back() {
    let Some(r) = real() else { return };
    let r = Arc::new(r);
    let rr = r.clone();
    in_namespace(&r, move |c, ns| async move {
        let (old, new) = rr.tags.clone();
        let image = format!("{}:{old}", rr.image);
        create(
            &c,
            &ns,
            deployment("web", &image, 4, json!({"track": "stable"})),
        )
        .await;
        create(
            &c,
            &ns,
            deployment("web-canary", &image, 0, json!({"track": "canary"})),
        )
        .await;
        service(&c, &ns, json!({"app": "web"})).await;
        let env = KubeEnvironment::start(
            "real",
            spec(
                &rr,
                &ns,
                json!({"strategy": "Canary", "service": "web",
                                  "canary_steps": [25, 100], "canary_interval_seconds": 5}),
            ),
            true,
            kube_support::quiet(),
        );
        up(&env, 2).await;
        let mut d = env.deploy(release_of(&new)).await.unwrap();
        loop {
            match next_update_within(&mut d, SLOW).await {
                DeployUpdate::Progress(p) if p.step == "Canary25Percent" => break,
                DeployUpdate::Finished(p) => panic!("finished before the step: {p:?}"),
                _ => {}
            }
        }
        summary_within(&env, "a quarter on the canary", SLOW, |s| {
            s.weight_of("canary") == 25
        })
        .await;
        let (updates, last) = follow_within(d, SLOW).await;
        assert_eq!(
            last.status,
            DeploymentStatus::Succeeded,
            "{}",
            said_text(&updates)
        );
        assert_eq!(
            image_of(&c, &ns, "web").await,
            (4, format!("{}:{new}", rr.image))
        );
        assert_eq!(image_of(&c, &ns, "web-canary").await.0, 0);
        // `b` during a step: the canary to 0, the stable whole again.
        let mut d = env.deploy(release_of(&old)).await.unwrap();
        loop {
            match next_update_within(&mut d, SLOW).await {
                DeployUpdate::Progress(p) if p.step == "Canary25Percent" => break,
                DeployUpdate::Finished(p) => panic!("finished before the step: {p:?}"),
                _ => {}
            }
        }
        let msg = env.rollback().await.unwrap();
        assert_eq!(msg, "canary web-canary scaled to 0, web back to 4 replicas");
        let (_, last) = follow_within(d, SLOW).await;
        assert_eq!(last.status, DeploymentStatus::Stopped);
        assert_eq!(
            image_of(&c, &ns, "web").await,
            (4, format!("{}:{new}", rr.image))
        );
        env.shutdown().await;
    })
    .await;
}

/// With Flux installed on the cluster (its source-controller at least):
/// a GitRepository of `PIPEDECK_KUBE_TEST_FLUX_GIT` (default podinfo's
/// public repository, branch `PIPEDECK_KUBE_TEST_FLUX_BRANCH`, default
/// `master`) in the test namespace shows its fetched revision, is
/// suspended (a reconcile is then refused), resumed and reconciled as
/// `flux reconcile source git` does, waiting for the real controller. The
/// controller must be able to reach the repository. Skipped, saying so,
/// when the cluster does not serve GitRepository.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster named by PIPEDECK_KUBE_TEST_CONTEXT, with Flux"]
async fn real_flux_gitrepository_is_read_suspended_resumed_and_reconciled() {
    use pipedeck::api::FluxOperation as F;
    use pipedeck::env::kubernetes::flux;
    let Some(r) = real() else { return };
    let served = flux::discover(&client_of(&r).await).await.unwrap();
    if !served.iter().any(|(k, _)| k.kind == "GitRepository") {
        eprintln!(
            "SKIPPED: Flux is not installed on {} (no GitRepository CRD; `flux install` adds it)",
            r.context
        );
        return;
    }
    let url = std::env::var("PIPEDECK_KUBE_TEST_FLUX_GIT")
        .unwrap_or_else(|_| "https://github.com/stefanprodan/podinfo".into());
    let branch =
        std::env::var("PIPEDECK_KUBE_TEST_FLUX_BRANCH").unwrap_or_else(|_| "master".into());
    let r = Arc::new(r);
    let rr = r.clone();
    in_namespace(&r, move |c, ns| async move {
        let (_, ar) = flux::discover(&c)
            .await
            .unwrap()
            .into_iter()
            .find(|(k, _)| k.kind == "GitRepository")
            .unwrap();
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(c.clone(), &ns, &ar);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": ar.api_version, "kind": "GitRepository",
                "metadata": {"name": "podinfo"},
                "spec": {"url": url, "interval": "10m", "ref": {"branch": branch}}}))
            .unwrap(),
        )
        .await
        .unwrap();
        let env = KubeEnvironment::start(
            "real",
            spec(&rr, &ns, json!({})),
            false,
            kube_support::quiet(),
        );
        let s = summary_within(&env, "the GitRepository fetched", SLOW, |s| {
            s.flux.as_ref().is_some_and(|f| {
                f.objects
                    .iter()
                    .any(|o| o.name == "podinfo" && o.ready == Some(true))
            })
        })
        .await;
        let f = s.flux.unwrap();
        let o = f.objects.iter().find(|o| o.name == "podinfo").unwrap();
        assert!(
            o.revision
                .as_deref()
                .is_some_and(|r| r.starts_with(&format!("{branch}@sha1:"))),
            "{o:?}"
        );
        assert!(f.installed.iter().any(|k| k == "GitRepository"), "{f:?}");
        let ok = |r: Result<String, pipedeck::api::ApiError>| r.unwrap_or_else(|e| panic!("{e:?}"));
        ok(flux::operate(&env, F::Suspend, "gitrepo/podinfo").await);
        summary_within(&env, "suspended", 30, |s| {
            s.flux
                .as_ref()
                .is_some_and(|f| f.objects.iter().any(|o| o.name == "podinfo" && o.suspended))
        })
        .await;
        let e = flux::operate(&env, F::Reconcile, "gitrepo/podinfo")
            .await
            .unwrap_err();
        assert_eq!(e.code, "FluxObjectSuspended", "{e:?}");
        ok(flux::operate(&env, F::Resume, "gitrepo/podinfo").await);
        let said = ok(flux::operate(&env, F::Reconcile, "gitrepo/podinfo").await);
        assert!(
            said.starts_with(&format!("GitRepository {ns}/podinfo reconciled")),
            "{said}"
        );
        env.shutdown().await;
    })
    .await;
}
