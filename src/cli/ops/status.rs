//! `status`, `executions` and `envs`: what runs, what ran, what is live.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use color_eyre::eyre::{Result, eyre};

use super::common::{api_failure, glyph_action, glyph_exec, open, print_json, short};
use crate::api::{PipelineState, Reply, Request};
use crate::config::workspace::Workspace;

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

pub fn render_state(st: &PipelineState, out: &mut String) {
    use std::fmt::Write;
    let width = st
        .stage_states
        .iter()
        .map(|s| s.stage_name.chars().count())
        .max()
        .unwrap_or(5);
    for s in &st.stage_states {
        let status = s
            .latest_execution
            .as_ref()
            .map_or("-", |l| l.status.as_str());
        let _ = write!(out, "  {:<width$}  {:<10}", s.stage_name, status);
        if !s.inbound_transition_state.enabled {
            let _ = write!(
                out,
                " [transition disabled: {}]",
                s.inbound_transition_state
                    .disabled_reason
                    .as_deref()
                    .unwrap_or("")
            );
        }
        for a in &s.action_states {
            match &a.latest_execution {
                Some(x) => {
                    let _ = write!(out, "  {} {}", glyph_action(x.status), a.action_name);
                    if x.token.is_some() {
                        out.push_str(" (approval pending)");
                    }
                }
                None => {
                    let _ = write!(out, "  · {}", a.action_name);
                }
            }
        }
        for w in &s.inbound_executions {
            let _ = write!(out, "  ← waiting: {}", short(&w.pipeline_execution_id));
        }
        out.push('\n');
    }
}

pub async fn status(ws: Workspace, a: StatusArgs) -> Result<ExitCode> {
    let s = open(&ws, false).await?;
    let pipelines = match s.call(Request::list_pipelines()).await {
        Ok(Reply::Pipelines { pipelines, .. }) => pipelines,
        Ok(other) => return Err(eyre!("unexpected answer {other:?}")),
        Err(e) => {
            s.close().await;
            return Ok(api_failure(&e));
        }
    };
    let mut states = Vec::new();
    for p in &pipelines {
        if let Ok(Reply::State { state }) = s
            .call(Request::GetPipelineState {
                pipeline_name: p.name.clone(),
            })
            .await
        {
            states.push(state);
        }
    }
    let hosted = s.hosted();
    let store_problem = match s.call(Request::EngineInfo).await {
        Ok(Reply::Info { info }) => info.store_problem,
        _ => None,
    };
    let ws_name = ws.name.clone();
    s.close().await;
    if a.json {
        let mut v = serde_json::json!({ "pipelines": pipelines, "states": states });
        if let Some(p) = &store_problem {
            v["storeProblem"] = serde_json::Value::String(p.clone());
        }
        print_json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "workspace {ws_name} — engine {}",
        if hosted {
            "not running (state read from the store)"
        } else {
            "running"
        }
    );
    if let Some(p) = &store_problem {
        say!("  ! the engine cannot write its store ({p}); it keeps trying");
    }
    for (p, st) in pipelines.iter().zip(&states) {
        let latest = match &p.latest_execution {
            Some(e) => format!(
                "{} {} {}{}",
                glyph_exec(e.status),
                short(&e.pipeline_execution_id),
                e.status.as_str(),
                e.current_stage
                    .as_deref()
                    .filter(|_| !e.status.is_terminal())
                    .map(|s| format!(" in {s}"))
                    .unwrap_or_default()
            ),
            None => "no executions yet".into(),
        };
        say!(
            "\n{}  ({}, v{})  {latest}{}",
            p.name,
            p.execution_mode,
            p.version,
            if p.pending_approvals > 0 {
                format!("  — {} approval(s) pending", p.pending_approvals)
            } else {
                String::new()
            }
        );
        let mut out = String::new();
        render_state(st, &mut out);
        say_raw!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ExecutionsArgs {
    pub pipeline: String,
    #[arg(long)]
    pub json: bool,
    /// How many, newest first
    #[arg(long, default_value_t = 20)]
    pub max: u32,
}

pub async fn executions(ws: Workspace, a: ExecutionsArgs) -> Result<ExitCode> {
    let s = open(&ws, false).await?;
    let r = s
        .call(Request::ListPipelineExecutions {
            pipeline_name: a.pipeline.clone(),
            max_results: Some(a.max),
            next_token: None,
        })
        .await;
    s.close().await;
    let list = match r {
        Ok(Reply::Executions { executions, .. }) => executions,
        Ok(other) => return Err(eyre!("unexpected answer {other:?}")),
        Err(e) => return Ok(api_failure(&e)),
    };
    if a.json {
        print_json(&list);
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:<36}  {:<11} {:<8} {:<22} {:<24} REVISION",
        "EXECUTION",
        "STATUS",
        "TYPE",
        "TRIGGER",
        "STARTED"
    );
    for e in list {
        let rev = e
            .source_revisions
            .first()
            .map(|r| {
                format!(
                    "{} {}",
                    short(&r.revision_id),
                    r.revision_summary.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default();
        say!(
            "{:<36}  {} {:<9} {:<8} {:<22} {:<24} {rev}",
            e.pipeline_execution_id,
            glyph_exec(e.status),
            e.status.as_str(),
            e.execution_type.as_str(),
            format!("{:?}", e.trigger.trigger_type),
            e.start_time,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A kubernetes environment's Flux objects under it, as `flux get` prints
/// them (READY, SUSPENDED, the revision / image / scan, MESSAGE).
pub(super) fn print_flux(f: &crate::api::env::FluxStatus) {
    if let Some(why) = &f.error {
        println!("           flux: cannot read the Flux objects: {why}");
    }
    if !f.is_installed() {
        if f.error.is_none() {
            println!("           flux: Flux is not installed in this cluster");
        }
        return;
    }
    let missing = f.missing();
    if !missing.is_empty() {
        println!("           flux: not installed: {}", missing.join(", "));
    }
    if f.objects.is_empty() {
        println!("           flux: no objects");
    }
    for o in &f.objects {
        println!(
            "           {} ready {} · suspended {} · {} · {}",
            o.id(),
            o.ready
                .map_or("Unknown", |r| if r { "True" } else { "False" }),
            if o.suspended { "True" } else { "False" },
            Some(o.detail())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "-".into()),
            o.message
        );
    }
}

/// The environments as the engine shows them, once each has been read (a
/// hosted engine brings them up in the background), or the failure's exit
/// code.
pub(super) async fn read_envs(
    ws: &Workspace,
) -> Result<std::result::Result<Vec<crate::api::env::EnvironmentSummary>, ExitCode>> {
    let s = open(ws, false).await?;
    let mut list = Vec::new();
    for _ in 0..50 {
        match s.call(Request::ListEnvironments).await {
            Ok(Reply::Environments { environments }) => {
                // A cluster's first read (or its error) comes in the background.
                let done = environments.len() == ws.environments.len()
                    && !environments.iter().any(|e| {
                        e.events.iter().any(|ev| ev.kind == "connecting")
                            // A reachable cluster's Flux objects come a moment later.
                            || (e.kind == "kubernetes"
                                && e.flux.is_none()
                                && !e.events.iter().any(|ev| ev.kind == "error"))
                    });
                list = environments;
                if done {
                    break;
                }
            }
            Ok(_) => break,
            Err(e) => {
                s.close().await;
                return Ok(Err(api_failure(&e)));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.close().await;
    Ok(Ok(list))
}

/// `pipedeck envs`: each environment's live release, traffic and health.
pub async fn envs(ws: Workspace, a: StatusArgs) -> Result<ExitCode> {
    let list = match read_envs(&ws).await? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    if a.json {
        print_json(&list);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        say!("no environments: declare them as [environments.NAME] in pipedeck.toml");
    }
    for e in list {
        let live = e.live.clone().unwrap_or_else(|| "split".to_owned());
        let m = e.metrics.unwrap_or(crate::api::env::RequestMetrics {
            rps: 0.0,
            error_rate: 0.0,
            p99_ms: 0.0,
        });
        say!(
            "{:<10} {:<28} live {live:<6} release {:<14} {} · {:.1} req/s · {:.1}% 5xx · p99 {:.0} ms",
            e.name,
            e.location,
            // The release taking traffic (during a termination wait, the new one).
            e.live_revision().unwrap_or("-"),
            e.strategy,
            m.rps,
            m.error_rate,
            m.p99_ms
        );
        if e.kind == "kubernetes" {
            // A cluster's panel in text: its variants, Flux, and what is wrong.
            for v in &e.variants {
                println!(
                    "           {:<10} {}/{} ready · {} restarts · {} · {}% traffic",
                    v.label, v.ready, v.total, v.restarts, v.revision, v.weight_percent
                );
            }
            if let Some(f) = &e.flux {
                print_flux(f);
            }
            for ev in e
                .events
                .iter()
                .filter(|ev| matches!(ev.kind.as_str(), "error" | "health" | "alarm"))
                .take(5)
            {
                println!("           {}: {}", ev.kind, ev.message);
            }
        }
        if let Some(d) = &e.deployment {
            say!(
                "           deployment {} {:?} {} {}% on {}{}",
                d.id,
                d.status,
                d.step,
                d.traffic_percent,
                d.new_variant,
                d.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
