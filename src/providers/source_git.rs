//! Git source actions (CodeCommit, CodeStarSourceConnection, GitHub, Bitbucket).
use super::{ActionContext, ActionOutcome, BoxFuture, Provider};
pub struct GitSource;
impl Provider for GitSource {
    fn run(&self, _ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(async { ActionOutcome::failed("JobFailed", "git source: being written") })
    }
}
