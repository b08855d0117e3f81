//! The summary of a Kubernetes environment, from its reflectors' stores:
//! the workload's ReplicaSets (rolling / canary) or slots (blue/green) as
//! variants, pod problems and the rollout as events, the cluster's error
//! when it cannot be read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;

use super::{KubeEnvironment, Stores, health, lock};
use crate::api::env::{EnvEvent, EnvironmentSummary, Variant};

/// The Deployments this environment is about, in slot order.
pub fn workload(env: &KubeEnvironment, stores: &Stores) -> Vec<Arc<Deployment>> {
    let all = stores.deployments.state();
    let names: Option<Vec<String>> = env.spec.workload.as_ref().map(|w| {
        if env.spec.strategy == "BlueGreen" {
            vec![format!("{w}-blue"), format!("{w}-green")]
        } else if env.spec.strategy == "Canary" {
            vec![w.clone(), format!("{w}-canary")]
        } else {
            vec![w.clone()]
        }
    });
    let mut out: Vec<Arc<Deployment>> = match &names {
        Some(n) => n
            .iter()
            .filter_map(|n| {
                all.iter()
                    .find(|d| d.metadata.name.as_deref() == Some(n))
                    .cloned()
            })
            .collect(),
        None => all,
    };
    if names.is_none() {
        out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }
    out
}

fn owned_by(meta: &kube::api::ObjectMeta, uid: Option<&str>) -> bool {
    uid.is_some_and(|u| meta.owner_references.iter().flatten().any(|o| o.uid == u))
}

/// A Deployment's ReplicaSets, newest revision first.
pub fn replicasets(stores: &Stores, d: &Deployment) -> Vec<Arc<ReplicaSet>> {
    let uid = d.metadata.uid.as_deref();
    let mut rs: Vec<Arc<ReplicaSet>> = stores
        .replicasets
        .state()
        .into_iter()
        .filter(|r| owned_by(&r.metadata, uid))
        .collect();
    rs.sort_by_key(|r| std::cmp::Reverse(health::revision_of(r).unwrap_or(0)));
    rs
}

/// The pods of a ReplicaSet.
pub fn pods_of(stores: &Stores, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
    let uid = rs.metadata.uid.as_deref();
    let mut p: Vec<Arc<Pod>> = stores
        .pods
        .state()
        .into_iter()
        .filter(|p| owned_by(&p.metadata, uid))
        .collect();
    p.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    p
}

/// Every pod by the uid of its owner, in one pass over the store.
type ByOwner = std::collections::HashMap<String, Vec<Arc<Pod>>>;

fn pods_by_owner(stores: &Stores) -> ByOwner {
    let mut m = ByOwner::new();
    for p in stores.pods.state() {
        for o in p.metadata.owner_references.iter().flatten() {
            m.entry(o.uid.clone()).or_default().push(p.clone());
        }
    }
    for v in m.values_mut() {
        v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }
    m
}

fn owned_pods(by: &ByOwner, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
    rs.metadata
        .uid
        .as_ref()
        .and_then(|u| by.get(u))
        .cloned()
        .unwrap_or_default()
}

/// The image of the container a release sets.
pub fn image_of(
    spec: &crate::config::workspace::KubernetesSpec,
    pod: Option<&k8s_openapi::api::core::v1::PodSpec>,
) -> String {
    pod.and_then(|s| {
        s.containers
            .iter()
            .find(|c| spec.container.as_ref().is_none_or(|n| &c.name == n))
            .and_then(|c| c.image.clone())
    })
    .unwrap_or_default()
}

fn ready_of(d: &Deployment) -> u32 {
    d.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
        .max(0) as u32
}

fn restarts(pods: &[Arc<Pod>]) -> u32 {
    pods.iter().map(|p| health::pod(p).restarts).sum()
}

pub fn summary(env: &KubeEnvironment) -> EnvironmentSummary {
    let (stores, errors, own, deployment, release, flux, crash, synced) = {
        let s = lock(&env.state);
        let mut errors: Vec<String> = s
            .errors
            .iter()
            .map(|(src, e)| {
                if *src == "connect" {
                    e.clone()
                } else {
                    format!("{src}: {e}")
                }
            })
            .collect();
        errors.sort();
        (
            s.stores.clone(),
            errors,
            s.own_events.clone(),
            s.deployment.clone(),
            s.release.clone(),
            s.flux.clone(),
            s.crash_lines.clone(),
            s.synced.len() >= super::WATCHED,
        )
    };
    let mut sum = EnvironmentSummary {
        // kubectl rollout undo's target is the previous ReplicaSet; not
        // named here.
        rollback_target: None,
        actions: Vec::new(),
        name: env.name.clone(),
        kind: "kubernetes".into(),
        location: format!("{}/{}", env.spec.context, env.spec.namespace),
        url: String::new(),
        strategy: env.spec.strategy.clone(),
        protected: env.protected,
        variants: Vec::new(),
        live: None,
        release,
        metrics: None,
        flux,
        deployment,
        events: Vec::new(),
    };
    let now = SystemTime::now();
    let mut problems: Vec<EnvEvent> = Vec::new();
    if !errors.is_empty() {
        sum.location = format!("{} · unreachable", sum.location);
        for e in &errors {
            problems.push(EnvEvent {
                at: now,
                kind: "error".into(),
                message: format!("cluster `{}`: {e} (retrying)", env.spec.context),
            });
        }
    }
    if errors.is_empty() && !synced {
        problems.push(EnvEvent {
            at: now,
            kind: "connecting".into(),
            message: format!("reading cluster `{}`…", env.spec.context),
        });
    }
    let mut names: Vec<String> = Vec::new();
    if let Some(stores) = &stores {
        let by_owner = pods_by_owner(stores);
        let deployments = workload(env, stores);
        if deployments.is_empty() && errors.is_empty() && synced {
            problems.push(EnvEvent {
                at: now,
                kind: "health".into(),
                message: format!(
                    "no Deployment {} in namespace {}",
                    env.spec
                        .workload
                        .clone()
                        .or(env.spec.selector.clone().map(|s| format!("matching {s}")))
                        .unwrap_or_default(),
                    env.spec.namespace
                ),
            });
        }
        let canary = env.spec.strategy == "Canary";
        // A canary's share is its share of the ready replicas both have.
        let ready_both: u32 = deployments.iter().map(|d| ready_of(d)).sum();
        if env.spec.strategy == "BlueGreen" || canary {
            let live = env
                .spec
                .service
                .as_ref()
                .filter(|_| !canary)
                .and_then(|svc| {
                    stores
                        .services
                        .state()
                        .into_iter()
                        .find(|s| s.metadata.name.as_deref() == Some(svc))
                        .and_then(|s| s.spec.clone()?.selector?.get(&env.spec.slot_label).cloned())
                });
            for d in &deployments {
                let label = match d.metadata.name.as_deref() {
                    Some(n) if canary && n.ends_with("-canary") => "canary".to_owned(),
                    Some(_) if canary => "stable".to_owned(),
                    n => n
                        .and_then(|n| n.rsplit('-').next())
                        .unwrap_or("")
                        .to_owned(),
                };
                let pods: Vec<Arc<Pod>> = replicasets(stores, d)
                    .iter()
                    .flat_map(|rs| owned_pods(&by_owner, rs))
                    .collect();
                let st = d.status.clone().unwrap_or_default();
                sum.variants.push(Variant {
                    revision: health::image_tag(&image_of(
                        &env.spec,
                        d.spec.template.spec.as_ref(),
                    ))
                    .to_owned(),
                    commit_message: None,
                    ready: st.ready_replicas.unwrap_or(0).max(0) as u32,
                    total: d.spec.replicas.unwrap_or(1).max(0) as u32,
                    restarts: restarts(&pods),
                    weight_percent: if canary {
                        (ready_of(d) * 100).checked_div(ready_both).unwrap_or(0)
                    } else if live.as_deref() == Some(label.as_str()) {
                        100
                    } else {
                        0
                    },
                    label,
                });
                collect(stores, &by_owner, d, &mut names, &mut problems, &crash, now);
            }
            sum.live = if canary {
                sum.variants
                    .iter()
                    .find(|v| v.weight_percent == 100)
                    .map(|v| v.label.clone())
            } else {
                live
            };
        } else {
            for d in &deployments {
                let rss = replicasets(stores, d);
                let ready_total: i32 = rss
                    .iter()
                    .map(|r| {
                        r.status
                            .as_ref()
                            .and_then(|s| s.ready_replicas)
                            .unwrap_or(0)
                    })
                    .sum();
                for rs in &rss {
                    let want = rs.spec.replicas.unwrap_or(0);
                    let have = rs.status.as_ref().map_or(0, |s| s.replicas);
                    if want == 0 && have == 0 && !std::ptr::eq(rs.as_ref(), rss[0].as_ref()) {
                        continue;
                    }
                    let ready = rs
                        .status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0);
                    let pods = owned_pods(&by_owner, rs);
                    let label = format!("rev{}", health::revision_of(rs).unwrap_or(0));
                    sum.variants.push(Variant {
                        label: if deployments.len() > 1 {
                            format!("{}/{label}", d.metadata.name.clone().unwrap_or_default())
                        } else {
                            label
                        },
                        revision: health::image_tag(&image_of(
                            &env.spec,
                            rs.spec.template.as_ref().and_then(|t| t.spec.as_ref()),
                        ))
                        .to_owned(),
                        commit_message: None,
                        ready: ready.max(0) as u32,
                        total: want.max(0) as u32,
                        restarts: restarts(&pods),
                        weight_percent: if ready_total > 0 {
                            (ready.max(0) as u32 * 100) / ready_total as u32
                        } else {
                            0
                        },
                    });
                }
                collect(stores, &by_owner, d, &mut names, &mut problems, &crash, now);
            }
            sum.live = sum
                .variants
                .iter()
                .find(|v| v.weight_percent == 100)
                .map(|v| v.label.clone());
        }
        let mut kube_events: Vec<EnvEvent> = stores
            .events
            .state()
            .into_iter()
            .filter(|e| {
                e.involved_object
                    .name
                    .as_ref()
                    .is_some_and(|n| names.contains(n))
            })
            .map(|e| {
                let at = e
                    .last_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .or(e.event_time.as_ref().map(|t| t.0))
                    .map_or(now, |t| {
                        SystemTime::UNIX_EPOCH
                            + Duration::from_millis(t.as_millisecond().max(0) as u64)
                    });
                EnvEvent {
                    at,
                    kind: if e.type_.as_deref() == Some("Warning") {
                        "health".into()
                    } else {
                        "restart".into()
                    },
                    message: format!(
                        "{} {}: {}",
                        e.reason.clone().unwrap_or_default(),
                        e.involved_object.name.clone().unwrap_or_default(),
                        e.message.clone().unwrap_or_default()
                    ),
                }
            })
            .collect();
        kube_events.sort_by_key(|e| std::cmp::Reverse(e.at));
        kube_events.truncate(20);
        let mut all: Vec<EnvEvent> = own.into_iter().chain(kube_events).collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.at));
        problems.extend(all);
    } else {
        problems.extend(own);
    }
    sum.events = problems;
    // While a deployment bakes: what its probes measured.
    if let Some(stats) = lock(&env.state).probe.clone() {
        let w = stats.window(Duration::from_secs(env.spec.alarm_window_seconds.max(1)));
        sum.metrics = Some(crate::api::env::RequestMetrics {
            rps: w.rps,
            error_rate: w.error_rate,
            p99_ms: w.p99.as_secs_f64() * 1000.0,
        });
    }
    sum
}

/// The rollout and pod problems of one Deployment, as events.
fn collect(
    stores: &Stores,
    by_owner: &ByOwner,
    d: &Deployment,
    names: &mut Vec<String>,
    problems: &mut Vec<EnvEvent>,
    crash: &std::collections::HashMap<String, Vec<String>>,
    now: SystemTime,
) {
    names.extend(d.metadata.name.clone());
    let r = health::rollout(d);
    if !r.done {
        problems.push(EnvEvent {
            at: now,
            kind: if r.failed.is_some() {
                "alarm"
            } else {
                "deploy"
            }
            .into(),
            message: r.message,
        });
    }
    for rs in replicasets(stores, d) {
        names.extend(rs.metadata.name.clone());
        for p in owned_pods(by_owner, &rs) {
            names.extend(p.metadata.name.clone());
            let h = health::pod(&p);
            if let Some(mut msg) = h.problem {
                if let Some(c) = &h.crashing
                    && let Some(lines) = crash.get(&format!("{}/{c}", h.name))
                    && !lines.is_empty()
                {
                    msg.push_str(": ");
                    msg.push_str(&lines.join(" | "));
                }
                problems.push(EnvEvent {
                    at: now,
                    kind: "health".into(),
                    message: msg,
                });
            }
        }
    }
}

/// Keeps the last log lines of crash-looping containers (`kubectl logs
/// --previous --tail 5`), fetched once per restart.
pub async fn fetch_crash_lines(env: Arc<KubeEnvironment>) {
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (Some(stores), Some(client)) = (env.stores(), env.client()) else {
            continue;
        };
        for p in stores.pods.state() {
            let h = health::pod(&p);
            let Some(c) = h.crashing else { continue };
            let key = format!("{}/{c}", h.name);
            if seen.get(&key) == Some(&h.restarts) {
                continue;
            }
            seen.insert(key.clone(), h.restarts);
            let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &env.spec.namespace);
            let lp = LogParams {
                container: Some(c.clone()),
                previous: true,
                tail_lines: Some(5),
                ..Default::default()
            };
            if let Ok(text) = api.logs(&h.name, &lp).await {
                let lines: Vec<String> = text.lines().map(str::to_owned).collect();
                lock(&env.state).crash_lines.insert(key, lines);
                env.changed();
            }
        }
    }
}
