//! Deploy actions. Environments (local dev / staging / prod, Kubernetes)
//! implement [`Provider`] for the actions the workspace maps to them; until
//! an action is mapped it fails with a message that says so.
use super::{ActionContext, ActionOutcome, BoxFuture, Provider};

pub struct Unmapped;

impl Provider for Unmapped {
    fn run(&self, mut ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(async move {
            let msg = format!(
                "no environment mapped for this deploy action ({}, provider {}): pipedeck \
                 does not deploy to environments yet",
                ctx.action.name,
                ctx.action.provider()
            );
            ctx.log.line(&format!("[Deploy] {msg}"));
            ActionOutcome::failed("ConfigurationError", msg)
        })
    }
}
