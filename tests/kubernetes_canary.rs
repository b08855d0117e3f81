//! `strategy = "Canary"` by replica ratio against the fake API server:
//! a stable and a canary Deployment behind one Service selecting both, the
//! canary's share of the ready replicas reported as its traffic weight,
//! promotion to the stable, and rollback (the canary to 0, the stable back
//! to every replica) on `b` and on a failed canary rollout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube_support::*;
use pipedeck::api::env::{DeploymentStatus, EnvironmentSummary};
use pipedeck::env::iface::{DeployUpdate, Environment};
use pipedeck::env::kubernetes::KubeEnvironment;
use serde_json::json;

fn weights(s: &EnvironmentSummary) -> (u32, u32) {
    (s.weight_of("stable"), s.weight_of("canary"))
}

/// Follows `d` until it reports the step `step`; returns its traffic.
async fn until_step(d: &mut pipedeck::env::iface::Deployment, step: &str) -> u32 {
    loop {
        match next_update(d).await {
            DeployUpdate::Progress(p) if p.step == step => return p.traffic_percent,
            DeployUpdate::Finished(p) => panic!("finished before {step}: {p:?}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_steps_by_replica_ratio_promotes_and_rolls_back() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    stable_and_canary(&c, 10).await;
    create_service(&c, "web", json!({"app": "web"})).await;
    let bad = Arc::new(Mutex::new(HashMap::new()));
    let ctl = controller_all(c.clone(), &["web", "web-canary"], bad.clone());
    let env = KubeEnvironment::start(
        "prod",
        spec(
            &kc,
            "prod",
            json!({"strategy": "Canary", "service": "web", "canary_steps": [10, 50, 100],
                   "canary_interval_seconds": 1, "auto_rollback": ["DEPLOYMENT_FAILURE"]}),
        ),
        true,
        quiet(),
    );
    let s = summary_until(&env, "stable and canary", |s| {
        s.variants.len() == 2 && weights(s) == (100, 0)
    })
    .await;
    assert_eq!(s.live.as_deref(), Some("stable"));

    // 10%: one canary replica of ten, nine stable.
    let mut d = env.deploy(release_of("v2")).await.unwrap();
    assert_eq!(until_step(&mut d, "Canary10Percent").await, 10);
    let s = env.summary();
    assert!(
        events_text(&s)
            .contains("canary step 10%: web-canary to 1 of 10 replicas with v2, web to 9"),
        "{}",
        events_text(&s)
    );
    let s = summary_until(&env, "10% on the canary", |s| weights(s) == (90, 10)).await;
    let canary = s.variant("canary").unwrap();
    assert_eq!((canary.revision.as_str(), canary.ready), ("v2", 1));
    assert_eq!(s.variant("stable").unwrap().revision, "v1");
    assert_eq!(s.live, None, "traffic is split");
    assert_eq!(
        replicas_and_image(&c, "web").await,
        (9, "shop/web:v1".into())
    );
    assert_eq!(until_step(&mut d, "Canary50Percent").await, 50);
    summary_until(&env, "50% on the canary", |s| weights(s) == (50, 50)).await;
    let (updates, last) = follow_to_end(d).await;
    let text = said_text(&updates);
    assert_eq!(last.status, DeploymentStatus::Succeeded, "{last:?}\n{text}");
    assert!(
        text.contains("promoting v2: web to 10 replicas with it"),
        "{text}"
    );
    assert_eq!(
        replicas_and_image(&c, "web").await,
        (10, "shop/web:v2".into())
    );
    assert_eq!(replicas_and_image(&c, "web-canary").await.0, 0);
    let s = summary_until(&env, "the release promoted", |s| {
        weights(s) == (100, 0) && s.variant("stable").is_some_and(|v| v.revision == "v2")
    })
    .await;
    assert_eq!(s.release.unwrap().revision, "v2");

    // `b` during a step: the canary goes, the stable has every replica.
    let mut d = env.deploy(release_of("v3")).await.unwrap();
    until_step(&mut d, "Canary10Percent").await;
    let msg = env.rollback().await.unwrap();
    assert_eq!(
        msg,
        "canary web-canary scaled to 0, web back to 10 replicas"
    );
    let (_, last) = follow_to_end(d).await;
    assert_eq!(last.status, DeploymentStatus::Stopped, "{last:?}");
    assert_eq!(
        replicas_and_image(&c, "web").await,
        (10, "shop/web:v2".into())
    );
    assert_eq!(replicas_and_image(&c, "web-canary").await.0, 0);
    summary_until(&env, "all traffic on the stable again", |s| {
        weights(s) == (100, 0)
    })
    .await;

    // A canary that cannot come up is rolled back on its own.
    bad.lock().unwrap().insert(
        "web-canary".to_owned(),
        json!({"deadline": true, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}),
    );
    let (updates, last) = follow_to_end(env.deploy(release_of("v4")).await.unwrap()).await;
    assert_eq!(last.status, DeploymentStatus::Failed);
    let reason = last.reason.unwrap();
    assert!(
        reason.contains("deployment \"web-canary\" exceeded its progress deadline")
            && reason.contains("canary web-canary scaled to 0, web back to 10 replicas"),
        "{reason}"
    );
    assert!(
        said_text(&updates).contains("automatic rollback: deployment \"web-canary\""),
        "{}",
        said_text(&updates)
    );
    assert_eq!(
        replicas_and_image(&c, "web").await,
        (10, "shop/web:v2".into())
    );
    assert_eq!(replicas_and_image(&c, "web-canary").await.0, 0);
    let s = summary_until(&env, "the rollback in the events", |s| {
        events_text(s).contains("[rollback] canary web-canary scaled to 0")
    })
    .await;
    assert_eq!(s.strategy, "Canary");
    ctl.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_without_its_pair_or_a_shared_service_is_refused() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    create_deployment(
        &c,
        deployment("web", "web", "shop/web:v1", 2, json!({"track": "stable"})),
    )
    .await;
    controller_step(&c, "web", 2, None).await;
    let canary = json!({"strategy": "Canary", "service": "web", "canary_interval_seconds": 1});
    let env = KubeEnvironment::start("prod", spec(&kc, "prod", canary.clone()), true, quiet());
    summary_until(&env, "the stable", |s| s.variants.len() == 1).await;
    let err = env.deploy(release_of("v2")).await.err().unwrap();
    assert_eq!(err.code, "ConfigurationError");
    assert!(
        err.message
            .contains("strategy Canary needs Deployments web (stable) and web-canary")
            && err.message.ends_with("web-canary is missing"),
        "{}",
        err.message
    );
    env.shutdown().await;

    // The Service selects only the stable's pods: the share would be a lie.
    create_deployment(
        &c,
        deployment(
            "web-canary",
            "web",
            "shop/web:v1",
            0,
            json!({"track": "canary"}),
        ),
    )
    .await;
    create_service(&c, "web", json!({"app": "web", "track": "stable"})).await;
    let env = KubeEnvironment::start("prod", spec(&kc, "prod", canary), true, quiet());
    summary_until(&env, "both", |s| s.variants.len() == 2).await;
    let (_, last) = follow_to_end(env.deploy(release_of("v2")).await.unwrap()).await;
    assert_eq!(last.status, DeploymentStatus::Failed);
    assert_eq!(
        last.reason.as_deref(),
        Some(
            "Service web selects track=stable, which the pods of web-canary do not carry: a \
             canary needs one Service selecting both Deployments by a shared label"
        )
    );
    assert_eq!(replicas_and_image(&c, "web-canary").await.0, 0);
    env.shutdown().await;
}
