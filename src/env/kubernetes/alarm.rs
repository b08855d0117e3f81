//! Alarms on a cluster environment: the same definitions as a local
//! environment's (`alarm_5xx_percent`, `alarm_p99_ms` over
//! `alarm_window_seconds`, judged by [`crate::env::stats::alarm`]), measured
//! by probing the new variant's ready pods on `probe_path` through the API
//! server's pod proxy (`/api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH`),
//! `probe_rps` requests a second spread over the pods, while a deployment
//! bakes. A probe with no answer in 5 s counts as a 504; a request the API
//! server itself cannot take is not counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::deploy::Run;
use super::summary::{pods_of, replicasets};
use super::{Stores, health, lock};
use crate::config::workspace::KubernetesSpec;
use crate::env::stats::Stats;

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The ready pods of `deployment`'s newest ReplicaSet, with the port to
/// probe (`probe_port`, else the container's first port, else 80).
pub fn targets(spec: &KubernetesSpec, stores: &Stores, deployment: &str) -> Vec<(String, u16)> {
    let Some(d) = stores
        .deployments
        .state()
        .into_iter()
        .find(|d| d.metadata.name.as_deref() == Some(deployment))
    else {
        return Vec::new();
    };
    let Some(rs) = replicasets(stores, &d).into_iter().next() else {
        return Vec::new();
    };
    pods_of(stores, &rs)
        .into_iter()
        .filter(|p| health::pod(p).ready)
        .map(|p| {
            let port = spec.probe_port.unwrap_or_else(|| {
                p.spec
                    .as_ref()
                    .and_then(|s| {
                        s.containers
                            .iter()
                            .find(|c| spec.container.as_ref().is_none_or(|n| &c.name == n))
                    })
                    .and_then(|c| c.ports.as_ref()?.first())
                    .and_then(|p| u16::try_from(p.container_port).ok())
                    .unwrap_or(80)
            });
            (p.metadata.name.clone().unwrap_or_default(), port)
        })
        .collect()
}

/// One probe of `pod` through the API server; its answer goes into
/// `stats`.
pub async fn probe(
    client: kube::Client,
    ns: String,
    pod: String,
    port: u16,
    path: String,
    stats: Arc<Stats>,
) {
    let uri = format!("/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy{path}");
    let Ok(req) = hyper::Request::get(uri).body(kube::client::Body::from(Vec::new())) else {
        return;
    };
    let t = Instant::now();
    match tokio::time::timeout(PROBE_TIMEOUT, client.send(req)).await {
        Ok(Ok(resp)) => stats.record(resp.status().as_u16(), t.elapsed()),
        Ok(Err(e)) => tracing::debug!(pod, error = %e, "probe not sent"),
        Err(_) => stats.record(504, t.elapsed()),
    }
}

/// The alarm that fires now over `stats`, if any.
pub fn firing(name: &str, spec: &KubernetesSpec, stats: &Stats) -> Option<String> {
    let window = Duration::from_secs(spec.alarm_window_seconds.max(1));
    crate::env::stats::alarm(
        name,
        &stats.window(window),
        spec.alarm_5xx_percent,
        spec.alarm_p99_ms.map(Duration::from_millis),
        window,
    )
}

impl Run {
    /// Sleeps `d` while watching for a stop and, with an alarm defined,
    /// probing `target`'s new pods and judging the alarm (an alarm that
    /// fires is an `alarm` event and the error).
    pub(super) async fn bake(&self, d: Duration, target: &str) -> Result<(), String> {
        let spec = &self.env.spec;
        let until = Instant::now() + d;
        let mut stop = self.stop.clone();
        let stats = Arc::new(Stats::default());
        let alarmed = spec.has_alarm();
        if alarmed {
            lock(&self.env.state).probe = Some(stats.clone());
        }
        let period = Duration::from_secs_f64(1.0 / f64::from(spec.probe_rps.max(1)));
        let mut next_probe = Instant::now();
        let mut turn = 0usize;
        let result = loop {
            if *stop.borrow_and_update() {
                break Err("stopped".to_owned());
            }
            if alarmed && let Some(a) = firing(&self.env.name, spec, &stats) {
                self.event("alarm", a.clone());
                break Err(a);
            }
            let now = Instant::now();
            if now >= until {
                break Ok(());
            }
            if alarmed && now >= next_probe {
                let stores = lock(&self.env.state).stores.clone();
                let pods = stores
                    .map(|s| targets(spec, &s, target))
                    .unwrap_or_default();
                if let Some((pod, port)) = pods.get(turn % pods.len().max(1)).cloned() {
                    turn = turn.wrapping_add(1);
                    tokio::spawn(probe(
                        self.client.clone(),
                        spec.namespace.clone(),
                        pod,
                        port,
                        spec.probe_path.clone(),
                        stats.clone(),
                    ));
                }
                next_probe += period;
            }
            let mut step = (until - now).min(Duration::from_millis(100));
            if alarmed {
                step = step.min(next_probe.saturating_duration_since(now));
            }
            tokio::select! {
                () = tokio::time::sleep(step) => {}
                _ = stop.changed() => {}
            }
        };
        if alarmed {
            lock(&self.env.state).probe = None;
        }
        result
    }
}
