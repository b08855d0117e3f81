//! Kubernetes environment figures (a plain `main`), each printed next to a
//! baseline measured in the same run:
//!
//! - the time from a Pod status change on the (fake) API server to the
//!   environment's summary (what the panel draws), beside the time the
//!   same change takes to reach a bare kube-runtime watcher on the same
//!   server (the floor: the watch itself);
//! - the memory of 3 clusters × N pods watched, beside the RSS of the
//!   process before any environment starts;
//! - the time one summary of N pods takes.
//!
//! ```sh
//! cargo bench --bench kubernetes                 # 3 × 50 pods (CI time)
//! cargo bench --bench kubernetes -- --pods 500   # 3 × 500 pods
//! PIPEDECK_BENCH_KUBE_PODS=500 cargo bench --bench kubernetes
//! ```
//!
//! The clusters are tests/fixtures/kube/fake_apiserver.py (stdlib Python,
//! one process each, not counted in this process's RSS); nothing contacts
//! a real cluster. Both clocks start when the PATCH that changes the pod
//! is sent (the server changes it and announces it to its watches before
//! it answers), so both include the same request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/kube_support/mod.rs"]
mod kube_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use kube_support::*;
use pipedeck::env::iface::Environment;
use pipedeck::env::kubernetes::KubeEnvironment;
use serde_json::json;
use tokio::sync::{Notify, mpsc};

const CLUSTERS: usize = 3;
const CHANGES: u32 = 20;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn pods_wanted() -> Result<i32, String> {
    let args: Vec<String> = std::env::args().collect();
    let from_arg = args
        .iter()
        .position(|a| a == "--pods")
        .map(|i| args.get(i + 1).cloned().unwrap_or_default());
    let raw = from_arg.or_else(|| std::env::var("PIPEDECK_BENCH_KUBE_PODS").ok());
    match raw {
        None => Ok(50),
        Some(v) => match v.parse::<i32>() {
            Ok(n) if (1..=5000).contains(&n) => Ok(n),
            _ => Err(format!(
                "--pods / PIPEDECK_BENCH_KUBE_PODS: `{v}` is not 1 to 5000"
            )),
        },
    }
}

fn pct(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter word means nothing here.
    let pods = match pods_wanted() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(pods));
}

async fn run(pods: i32) {
    let dir = tempfile::tempdir().unwrap();
    let fakes: Vec<FakeCluster> = (0..CLUSTERS).map(|_| FakeCluster::start()).collect();
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
        create_deployment(&c, deployment("web", "web", "shop/web:v1", pods, json!({}))).await;
        controller_step(&c, "web", pods, None).await;
        clients.push(c);
    }
    println!("kubernetes: {CLUSTERS} clusters × {pods} pods (fake API servers on loopback)");

    let before = rss_kib();
    let changed = Arc::new(Notify::new());
    let envs: Vec<Arc<KubeEnvironment>> = ctxs
        .iter()
        .enumerate()
        .map(|(i, (ctx, _))| {
            let n = changed.clone();
            let on_change: pipedeck::env::kubernetes::OnChange = if i == 1 {
                Arc::new(move || n.notify_one())
            } else {
                Arc::new(|| {})
            };
            KubeEnvironment::start(ctx, spec(&kc, ctx, json!({})), false, on_change)
        })
        .collect();
    let want = pods as u32;
    for e in &envs {
        until("every pod in the summary", 120, || {
            let s = e.summary();
            s.variants.first().is_some_and(|v| v.ready == want)
                && !s.events.iter().any(|x| x.kind == "connecting")
        })
        .await;
    }
    let after = rss_kib();
    let mut summary_times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let s = envs[1].summary();
        summary_times.push(t.elapsed());
        assert_eq!(s.variants[0].ready, want);
    }

    // The bare watcher: kube-runtime's watcher on the same Pods, no store.
    let papi: Api<Pod> = Api::namespaced(clients[1].clone(), "shop");
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(u32, Instant)>();
    let bare = {
        let api = papi.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()));
            while let Some(ev) = stream.next().await {
                if let Ok(watcher::Event::Apply(p)) = ev {
                    let restarts = p
                        .status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .and_then(|c| c.first())
                        .map_or(0, |c| c.restart_count.max(0) as u32);
                    if restarts > 0 {
                        let _ = seen_tx.send((restarts, Instant::now()));
                    }
                }
            }
        })
    };
    // Let the bare watcher finish its initial list.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pod = papi.list(&Default::default()).await.unwrap().items[7]
        .metadata
        .name
        .clone()
        .unwrap();
    let (mut to_panel, mut to_watcher) = (Vec::new(), Vec::new());
    for n in 1..=CHANGES {
        let (pp, body) = (
            PatchParams::default(),
            Patch::Merge(json!({"status": {"containerStatuses": [{
            "name": "web", "image": "shop/web:v1", "imageID": "", "ready": true, "restartCount": n,
            "state": {"running": {}}}]}})),
        );
        let t = Instant::now();
        let patch = papi.patch_status(&pod, &pp, &body);
        // The panel's side, while the PATCH is answered: every change the
        // environment announces, until its summary has the new count.
        let panel = async {
            let end = t + Duration::from_secs(10);
            loop {
                if envs[1].summary().variants[0].restarts == n {
                    return t.elapsed();
                }
                assert!(Instant::now() < end, "the summary never saw restart {n}");
                let _ = tokio::time::timeout(Duration::from_millis(50), changed.notified()).await;
            }
        };
        let (patched, seen) = tokio::join!(patch, panel);
        patched.unwrap();
        to_panel.push(seen);
        loop {
            let (r, at) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
                .await
                .expect("the bare watcher sees the change")
                .unwrap();
            if r == n {
                to_watcher.push(at.saturating_duration_since(t));
                break;
            }
        }
    }
    bare.abort();
    println!(
        "pod status change -> summary:      p50 {}, p90 {}, max {} ({CHANGES} changes)",
        ms(pct(&mut to_panel, 50)),
        ms(pct(&mut to_panel, 90)),
        ms(pct(&mut to_panel, 100))
    );
    println!(
        "  baseline, bare kube watcher:     p50 {}, p90 {}, max {} (the same changes)",
        ms(pct(&mut to_watcher, 50)),
        ms(pct(&mut to_watcher, 90)),
        ms(pct(&mut to_watcher, 100))
    );
    println!(
        "memory with {CLUSTERS} × {pods} pods watched: VmRSS {:.1} MiB (+{:.1} MiB)",
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0
    );
    println!(
        "  baseline, before watching:       VmRSS {:.1} MiB",
        before as f64 / 1024.0
    );
    println!(
        "one summary of {pods} pods:          p50 {}",
        ms(pct(&mut summary_times, 50))
    );
    for e in envs {
        e.shutdown().await;
    }
}
