//! Deploy actions: an action mapped to an environment (`actions = [...]` in
//! `[environments.NAME]`) deploys its input artifact there with the
//! environment's strategy, following the deployment's progress stream
//! into its log; an unmapped one fails and says how to map it.

use std::sync::Arc;

use super::{ActionContext, ActionOutcome, BoxFuture, Provider};
use crate::api::env::DeploymentStatus;
use crate::env::iface::{DeployUpdate, ReleaseRequest, is_terminal};
use crate::env::manager::Environments;

/// The environments of the engine, started on first use.
pub type EnvCell = Arc<tokio::sync::OnceCell<Result<Arc<Environments>, String>>>;

pub struct Unmapped;

impl Provider for Unmapped {
    fn run(&self, mut ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(async move {
            let msg = format!(
                "no environment mapped for this deploy action ({}, provider {}): add \
                 `actions = [\"{}\"]` to an [environments.NAME] table in {}",
                ctx.action.name,
                ctx.action.provider(),
                ctx.action.name,
                ctx.workspace.root.join("pipedeck.toml").display()
            );
            ctx.log.line(&format!("[Deploy] {msg}"));
            ActionOutcome::failed("ConfigurationError", msg)
        })
    }
}

/// Deploys to a local environment.
pub struct EnvDeploy {
    pub env: String,
    pub cell: EnvCell,
}

impl Provider for EnvDeploy {
    fn run(&self, ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        let env = self.env.clone();
        let cell = self.cell.clone();
        Box::pin(run(ctx, env, cell))
    }
}

async fn run(mut ctx: ActionContext, name: String, cell: EnvCell) -> ActionOutcome {
    let ws = ctx.workspace.clone();
    let envs = cell
        // The engine starts them at its own start (with its events); this
        // only runs if a deployment comes first.
        .get_or_init(|| async move { Environments::start(&ws, None).await.map(Arc::new) })
        .await;
    let envs = match envs {
        Ok(e) => e.clone(),
        Err(e) => {
            ctx.log.line(&format!("[Deploy] {e}"));
            return ActionOutcome::failed("ConfigurationError", e.clone());
        }
    };
    let Some(env) = envs.envs.get(&name).cloned() else {
        return ActionOutcome::failed("ConfigurationError", format!("no environment `{name}`"));
    };
    let Some(input) = ctx.inputs.first().cloned() else {
        let msg = "a deploy action needs an input artifact: the revision to deploy".to_owned();
        ctx.log.line(&format!("[Deploy] {msg}"));
        return ActionOutcome::failed("ConfigurationError", msg);
    };
    let id = format!(
        "d-{}",
        ctx.action_execution_id
            .get(..8)
            .unwrap_or(&ctx.action_execution_id)
    );
    let revision = input
        .revision
        .clone()
        .map(|r| r.chars().take(12).collect::<String>())
        .unwrap_or_else(|| id.clone());
    let release = ReleaseRequest {
        id: id.clone(),
        revision: revision.clone(),
        source: input.dir.clone(),
    };
    let mut deployment = match env.deploy(release).await {
        Ok(d) => d,
        Err(e) => {
            ctx.log.line(&format!("[Deploy] {}", e.message));
            return ActionOutcome::failed(e.code, e.message);
        }
    };
    let (strategy, location) = {
        let s = env.summary();
        (s.strategy, s.location)
    };
    ctx.log.line(&format!(
        "[Deploy] deployment {id} of {revision} to {name} ({strategy}) at {location}"
    ));
    // Follow the deployment's progress stream into the action's log.
    let mut last = String::new();
    let mut stop_requested = false;
    let mut stop = ctx.stop.clone();
    let finished = loop {
        if !stop_requested && *stop.borrow_and_update() {
            stop_requested = true;
            deployment.stop();
            ctx.log.line("[Deploy] stop requested: rolling back");
        }
        let update = tokio::select! {
            u = deployment.updates.recv() => u,
            r = stop.changed(), if !stop_requested => {
                if r.is_err() {
                    // No one can ask for a stop any more.
                    stop_requested = true;
                }
                continue;
            }
        };
        match update {
            Some(DeployUpdate::Progress(d)) if !is_terminal(d.status) => {
                let now = format!("{} {}%", d.step, d.traffic_percent);
                if now != last {
                    ctx.log.line(&format!(
                        "[Deploy] {}: {}% of traffic on {} ({})",
                        d.step, d.traffic_percent, d.new_variant, d.revision
                    ));
                    last = now;
                }
            }
            Some(DeployUpdate::Progress(_)) => {}
            Some(DeployUpdate::Event(e)) => {
                ctx.log.line(&format!("[Deploy] {}: {}", e.kind, e.message));
            }
            Some(DeployUpdate::Finished(d)) => break Some(d),
            None => break None,
        }
        if deployment.updates.is_empty() {
            ctx.log.flush();
        }
    };
    let Some(d) = finished else {
        return ActionOutcome::failed(
            "JobFailed",
            "the deployment task failed: its progress stream ended without a final state",
        );
    };
    match d.status {
        DeploymentStatus::Succeeded => {
            let msg = format!("deployed {revision} to {name} ({strategy})");
            ctx.log.line(&format!("[Deploy] {msg}"));
            ActionOutcome {
                summary: Some(msg),
                external_execution_id: Some(id),
                ..ActionOutcome::succeeded()
            }
        }
        _ => {
            let why = d.reason.unwrap_or_else(|| "the deployment failed".into());
            let msg = format!("deployment {id} to {name} failed: {why}");
            ctx.log.line(&format!("[Deploy] {msg}"));
            ActionOutcome {
                external_execution_id: Some(id),
                ..ActionOutcome::failed("JobFailed", msg)
            }
        }
    }
}
