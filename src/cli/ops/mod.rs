//! Commands that operate a workspace's engine: `run`, `serve`, `status`,
//! `executions`, `logs`, `approve`, `reject`, `retry`, `stop`, `rollback`,
//! `transition`, `envs`, `rollback-env`. Each talks to the workspace's
//! [backend](crate::backend): the engine that runs for the workspace (over
//! its socket) or, when none runs, one hosted in this process for as long
//! as the command needs it, serving the socket meanwhile so other
//! terminals can act on it.

mod common;
mod flux;
mod follow;
mod logs;
mod mutate;
mod run;
mod status;

pub use common::{api_failure, demo_dir, find_workspace, open, print_json};
pub use flux::{FluxGetArgs, flux_get};
pub use follow::follow;
pub use logs::{LogsArgs, logs};
pub use mutate::{
    ApprovalArgs, FluxCommand, RetryArgs, RollbackArgs, RollbackEnvArgs, StopArgs, TransitionArgs,
    approval_request, flux_request, mutate, retry_request, rollback_env_request, rollback_request,
    stop_request, transition_request,
};
pub use run::{RunArgs, run, serve};
pub use status::{ExecutionsArgs, StatusArgs, envs, executions, render_state, status};
