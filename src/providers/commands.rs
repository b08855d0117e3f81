//! Invoke (Lambda) and Compute (Commands) actions.
use super::{ActionContext, ActionOutcome, BoxFuture, Provider};
pub struct LambdaCommand;
pub struct Commands;
impl Provider for LambdaCommand {
    fn run(&self, _ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(async { ActionOutcome::failed("JobFailed", "lambda: being written") })
    }
}
impl Provider for Commands {
    fn run(&self, _ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(async { ActionOutcome::failed("JobFailed", "commands: being written") })
    }
}
