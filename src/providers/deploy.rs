//! Deploy actions.
use super::{ActionContext, ActionOutcome, BoxFuture, Provider};
pub struct Unmapped;
impl Provider for Unmapped {
    fn run(&self, _ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(async { ActionOutcome::failed("JobFailed", "deploy: being written") })
    }
}
