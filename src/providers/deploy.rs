//! Deploy actions: an action mapped to an environment (`actions = [...]` in
//! `[environments.NAME]`) deploys its input artifact there with the
//! environment's strategy; an unmapped one fails and says how to map it.

use std::sync::Arc;
use std::time::Duration;

use super::{ActionContext, ActionOutcome, BoxFuture, Provider};
use crate::env::local::DeploymentStatus;
use crate::env::manager::{Environments, Release, appspec_hooks};

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
    let dir = envs.revision_dir(&name, &id);
    let (src, dst) = (input.dir.clone(), dir.clone());
    let copied = tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&dst);
        crate::store::artifacts::copy_tree(&src, &dst)
    })
    .await;
    if !matches!(copied, Ok(Ok(()))) {
        return ActionOutcome::failed(
            "JobFailed",
            format!("cannot stage the revision in {}", dir.display()),
        );
    }
    let hooks = match appspec_hooks(&dir) {
        Ok(h) => h,
        Err(e) => {
            ctx.log.line(&format!("[Deploy] {e}"));
            return ActionOutcome::failed("ConfigurationError", e);
        }
    };
    let revision = input
        .revision
        .clone()
        .map(|r| r.chars().take(12).collect::<String>())
        .unwrap_or_else(|| id.clone());
    ctx.log.line(&format!(
        "[Deploy] deployment {id} of {revision} to {name} ({}) at http://{}",
        env.cfg.strategy, env.front
    ));
    let task = {
        let (env, id, revision, dir, hooks) = (
            env.clone(),
            id.clone(),
            revision.clone(),
            dir.clone(),
            hooks.clone(),
        );
        tokio::spawn(async move { env.deploy(&id, &revision, &dir, &hooks).await })
    };
    // Follow the deployment into the action's log.
    let mut seen_events = env.events().len();
    let mut last = String::new();
    let mut stop_requested = false;
    while !task.is_finished() {
        if !stop_requested && *ctx.stop.borrow() {
            stop_requested = true;
            env.request_rollback();
            ctx.log.line("[Deploy] stop requested: rolling back");
        }
        if let Some(d) = env.deployment() {
            let now = format!("{} {}%", d.step, d.traffic_percent);
            if now != last {
                ctx.log.line(&format!(
                    "[Deploy] {}: {}% of traffic on {} ({})",
                    d.step,
                    d.traffic_percent,
                    d.new_color.as_str(),
                    d.revision
                ));
                last = now;
            }
        }
        let events = env.events();
        for e in events.iter().skip(seen_events) {
            ctx.log.line(&format!("[Deploy] {}: {}", e.kind, e.message));
        }
        seen_events = events.len();
        ctx.log.flush();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = match task.await {
        Ok(d) => d,
        Err(e) => {
            return ActionOutcome::failed("JobFailed", format!("the deployment task failed: {e}"));
        }
    };
    for e in env.events().iter().skip(seen_events) {
        ctx.log.line(&format!("[Deploy] {}: {}", e.kind, e.message));
    }
    match d.status {
        DeploymentStatus::Succeeded => {
            let _ = envs.remember(
                &name,
                Release {
                    id: id.clone(),
                    revision: revision.clone(),
                    dir,
                    hooks,
                },
            );
            let msg = format!("deployed {revision} to {name} ({})", env.cfg.strategy);
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
