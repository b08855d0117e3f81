//! Alarms on kubernetes environments, against the fake API server: the new
//! pods are probed through the API server's pod proxy while a deployment
//! bakes, and an alarm (the local environments' definitions: 5xx percent,
//! p99) fails it and, with DEPLOYMENT_STOP_ON_ALARM, rolls it back, with
//! the alarm in the deployment's events and reason. Also `b` during a
//! rolling update (one undo, by the deployment itself).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube_support::*;
use pipedeck::api::env::DeploymentStatus;
use pipedeck::env::iface::{DeployUpdate, Environment};
use pipedeck::env::kubernetes::KubeEnvironment;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_alarm_after_a_rolling_update_rolls_it_back() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("dev", &fake.url)], &[]);
    let c = client(&kc, "dev").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 2, json!({}))).await;
    controller_step(&c, "web", 2, None).await;
    let ctl = controller_all(c.clone(), &["web"], Arc::new(Mutex::new(HashMap::new())));
    let env = KubeEnvironment::start(
        "dev",
        spec(
            &kc,
            "dev",
            json!({"alarm_5xx_percent": 5.0, "alarm_window_seconds": 2, "probe_rps": 20,
                   "probe_port": 8080, "probe_path": "/health",
                   "auto_rollback": ["DEPLOYMENT_STOP_ON_ALARM"]}),
        ),
        false,
        quiet(),
    );
    summary_until(&env, "the first revision", |s| s.variants.len() == 1).await;

    // A good release bakes for the window and succeeds, its figures shown.
    let mut d = env.deploy(release_of("v2")).await.unwrap();
    loop {
        match next_update(&mut d).await {
            DeployUpdate::Progress(p) if p.status == DeploymentStatus::Baking => break,
            DeployUpdate::Finished(p) => panic!("finished before baking: {p:?}"),
            _ => {}
        }
    }
    let s = summary_until(&env, "probe figures", |s| {
        s.metrics.is_some_and(|m| m.rps > 0.0)
    })
    .await;
    assert_eq!(s.metrics.unwrap().error_rate, 0.0);
    let (_, last) = follow_to_end(d).await;
    assert_eq!(last.status, DeploymentStatus::Succeeded, "{last:?}");

    // The fake pods of `-http500` answer 500.
    let (updates, last) = follow_to_end(env.deploy(release_of("v3-http500")).await.unwrap()).await;
    assert_eq!(last.status, DeploymentStatus::Failed);
    let reason = last.reason.unwrap();
    assert!(
        reason.starts_with("alarm dev-5xx-rate: 100.0% of ")
            && reason.contains("requests answered 5xx over 2 s (threshold 5%)")
            && reason.ends_with("deployment.apps/web rolled back to revision 2"),
        "{reason}"
    );
    let text = said_text(&updates);
    assert!(
        text.contains("automatic rollback: alarm dev-5xx-rate"),
        "{text}"
    );
    // The Deploy action's failure line, as diagnosis reads it.
    let log = vec![format!(
        "[Deploy] deployment {} to dev failed: {reason}",
        last.id
    )];
    let found = pipedeck::diagnose::diagnose(
        &pipedeck::diagnose::Input {
            log: &log,
            ..Default::default()
        },
        &pipedeck::diagnose::catalogue::Catalogue::builtin(),
    );
    let f = found
        .iter()
        .find(|f| f.rule == "deploy.alarm_log")
        .unwrap_or_else(|| panic!("no alarm finding in {found:#?}"));
    assert!(
        f.title.starts_with("Alarm dev-5xx-rate fired in dev"),
        "{}",
        f.title
    );
    assert_eq!(replicas_and_image(&c, "web").await.1, "shop/web:v2");
    let s = summary_until(&env, "the alarm among the events", |s| {
        events_text(s).contains("[alarm] alarm dev-5xx-rate")
    })
    .await;
    assert!(s.metrics.is_none(), "no probes once the bake is over");
    // The probes went through the API server's pod proxy, on the port and path.
    let requests = http_get(fake.port, "/_fake/requests");
    assert!(
        requests.contains("/api/v1/namespaces/shop/pods/web-")
            && requests.contains(":8080/proxy/health"),
        "{requests}"
    );
    ctl.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_canary_trips_the_p99_alarm_and_is_scaled_back() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("prod", &fake.url)], &[]);
    let c = client(&kc, "prod").await;
    stable_and_canary(&c, 4).await;
    let ctl = controller_all(
        c.clone(),
        &["web", "web-canary"],
        Arc::new(Mutex::new(HashMap::new())),
    );
    let env = KubeEnvironment::start(
        "prod",
        spec(
            &kc,
            "prod",
            json!({"strategy": "Canary", "canary_steps": [25, 100], "canary_interval_seconds": 30,
                   "alarm_p99_ms": 100, "alarm_window_seconds": 2, "probe_rps": 10,
                   "auto_rollback": ["DEPLOYMENT_STOP_ON_ALARM"]}),
        ),
        true,
        quiet(),
    );
    summary_until(&env, "stable and canary", |s| s.variants.len() == 2).await;
    let (updates, last) = follow_to_end(env.deploy(release_of("v2-slow300")).await.unwrap()).await;
    assert_eq!(last.status, DeploymentStatus::Failed);
    let reason = last.reason.unwrap();
    assert!(
        reason.starts_with("alarm prod-p99-latency: p99 ")
            && reason.contains("(threshold 100 ms)")
            && reason.ends_with("canary web-canary scaled to 0, web back to 4 replicas"),
        "{reason}"
    );
    assert!(
        said_text(&updates).contains("canary step 25%: web-canary to 1 of 4 replicas"),
        "{}",
        said_text(&updates)
    );
    assert_eq!(
        replicas_and_image(&c, "web").await,
        (4, "shop/web:v1".into())
    );
    assert_eq!(replicas_and_image(&c, "web-canary").await.0, 0);
    ctl.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_during_a_rolling_update_undoes_it_once() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("dev", &fake.url)], &[]);
    let c = client(&kc, "dev").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 2, json!({}))).await;
    controller_step(&c, "web", 2, None).await;
    // New pods never become ready: the rollout waits.
    let stuck = Arc::new(Mutex::new(HashMap::from([(
        "web".to_owned(),
        json!({"state": {"waiting": {"reason": "ContainerCreating"}}}),
    )])));
    let ctl = controller_all(c.clone(), &["web"], stuck.clone());
    let env = KubeEnvironment::start(
        "dev",
        spec(&kc, "dev", json!({"auto_rollback": ["DEPLOYMENT_FAILURE"]})),
        false,
        quiet(),
    );
    summary_until(&env, "the first revision", |s| s.variants.len() == 1).await;
    let mut d = env.deploy(release_of("v2")).await.unwrap();
    loop {
        if let DeployUpdate::Event(e) = next_update(&mut d).await
            && e.message
                .contains("Waiting for deployment \"web\" rollout to finish")
        {
            break;
        }
    }
    stuck.lock().unwrap().clear();
    let msg = env.rollback().await.unwrap();
    assert_eq!(msg, "deployment.apps/web rolled back to revision 1");
    let (_, last) = follow_to_end(d).await;
    assert_eq!(last.status, DeploymentStatus::Stopped);
    // Once: a second undo would have brought v2 back.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(replicas_and_image(&c, "web").await.1, "shop/web:v1");
    ctl.abort();
    env.shutdown().await;
}
