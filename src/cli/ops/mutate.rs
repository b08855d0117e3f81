//! The mutating commands: `approve`, `reject`, `retry`, `stop`,
//! `rollback`, `transition`, `rollback-env`.

use std::process::ExitCode;

use clap::Args;
use color_eyre::eyre::Result;

use super::common::{
    api_failure, did_you_mean, newer_commits, open, print_json, resolve_execution,
};
use super::follow::follow;
use crate::api::types::ExecutionStatus;
use crate::api::{Reply, Request};
use crate::config::workspace::Workspace;

#[derive(Args, Debug)]
pub struct ApprovalArgs {
    /// The pipeline, as `pipedeck status` names it
    pub pipeline: String,
    /// The stage, as the pipeline names it (e.g. Build)
    pub stage: String,
    /// The action in that stage (e.g. UnitTests, Release)
    pub action: String,
    /// What the approver says (≤ 512 characters)
    #[arg(long, default_value = "")]
    pub summary: String,
    /// Print the reply (and, with --wait, the finished execution) as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RetryArgs {
    /// The pipeline, as `pipedeck status` names it
    pub pipeline: String,
    /// The stage, as the pipeline names it (e.g. Build)
    pub stage: String,
    /// Re-run every action of the stage (ALL_ACTIONS), not only the failed ones
    #[arg(long)]
    pub all: bool,
    /// The execution id, or a unique prefix of one (default: the latest in the stage)
    #[arg(long)]
    pub execution: Option<String>,
    /// Wait for the execution to end; exit 0 only if it succeeded
    #[arg(long)]
    pub wait: bool,
    /// Print the reply (and, with --wait, the finished execution) as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// The pipeline, as `pipedeck status` names it
    pub pipeline: String,
    /// The execution id, or a unique prefix of one (default: the latest in progress)
    #[arg(long)]
    pub execution: Option<String>,
    /// Abandon running actions instead of letting them finish
    #[arg(long)]
    pub abandon: bool,
    #[arg(long)]
    pub reason: Option<String>,
    /// Wait for the execution to end; exit non-zero if it failed
    #[arg(long)]
    pub wait: bool,
    /// Print the reply (and, with --wait, the finished execution) as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The pipeline, as `pipedeck status` names it
    pub pipeline: String,
    /// The stage, as the pipeline names it (e.g. Build)
    pub stage: String,
    /// The execution to roll back to (default: the latest success before the current one)
    #[arg(long = "to")]
    pub to: Option<String>,
    /// Wait for the execution to end; exit 0 only if it succeeded
    #[arg(long)]
    pub wait: bool,
    /// Print the reply (and, with --wait, the finished execution) as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TransitionArgs {
    /// The pipeline, as `pipedeck status` names it
    pub pipeline: String,
    /// The stage, as the pipeline names it (e.g. Build)
    pub stage: String,
    /// Disable the stage's inbound transition, with a reason
    #[arg(
        long,
        value_name = "REASON",
        conflicts_with = "enable",
        required_unless_present = "enable"
    )]
    pub disable: Option<String>,
    /// Enable it again
    #[arg(long)]
    pub enable: bool,
}

/// Sends one mutating request; when this process hosts the engine and the
/// request started work, it stays until that execution ends. With `wait`
/// it follows the execution to its end and exits non-zero unless it
/// succeeded (or, for a stop, stopped).
pub async fn mutate(ws: Workspace, request: Request, wait: bool, json: bool) -> Result<ExitCode> {
    let pipeline = match &request {
        Request::PutApprovalResult { pipeline_name, .. }
        | Request::RetryStageExecution { pipeline_name, .. }
        | Request::StopPipelineExecution { pipeline_name, .. }
        | Request::RollbackStage { pipeline_name, .. }
        | Request::DisableStageTransition { pipeline_name, .. }
        | Request::EnableStageTransition { pipeline_name, .. } => pipeline_name.clone(),
        _ => String::new(),
    };
    let s = open(&ws, false).await?;
    let mut request = request;
    match &mut request {
        Request::RetryStageExecution {
            pipeline_execution_id: Some(id),
            ..
        }
        | Request::StopPipelineExecution {
            pipeline_execution_id: Some(id),
            ..
        }
        | Request::RollbackStage {
            target_pipeline_execution_id: Some(id),
            ..
        } => *id = resolve_execution(&*s, &pipeline, id).await,
        _ => {}
    }
    let (stage, action) = match &request {
        Request::PutApprovalResult {
            stage_name,
            action_name,
            ..
        } => (Some(stage_name.clone()), Some(action_name.clone())),
        Request::RetryStageExecution { stage_name, .. }
        | Request::RollbackStage { stage_name, .. }
        | Request::DisableStageTransition { stage_name, .. }
        | Request::EnableStageTransition { stage_name, .. } => (Some(stage_name.clone()), None),
        _ => (None, None),
    };
    let r = s.call(request).await;
    if let Err(e) = &r
        && let Some(h) =
            did_you_mean(&*s, &e.code, &pipeline, stage.as_deref(), action.as_deref()).await
    {
        eprintln!("pipedeck: {h}");
    }
    let code = match &r {
        Ok(reply) if json => {
            print_json(reply);
            ExitCode::SUCCESS
        }
        Err(e) if json => {
            print_json(&serde_json::json!({"error": {"code": e.code, "message": e.message}}));
            ExitCode::FAILURE
        }
        Ok(reply) => {
            match reply {
                Reply::ApprovalRecorded { approved_at } => say!("recorded at {approved_at}"),
                Reply::Retried {
                    pipeline_execution_id,
                } => say!("retrying in execution {pipeline_execution_id}"),
                Reply::Stopped {
                    pipeline_execution_id,
                } => say!("stopping execution {pipeline_execution_id}"),
                Reply::RolledBack {
                    pipeline_execution_id,
                } => say!("rollback execution {pipeline_execution_id} started"),
                Reply::Message { message } => say!("{message}"),
                _ => say!("done"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => api_failure(e),
    };
    let started = match &r {
        Ok(
            Reply::Retried {
                pipeline_execution_id: id,
            }
            | Reply::RolledBack {
                pipeline_execution_id: id,
            },
        ) if wait || s.hosted() => Some((id.clone(), false)),
        Ok(Reply::Stopped {
            pipeline_execution_id: id,
        }) if wait => Some((id.clone(), true)),
        _ => None,
    };
    let mut code = code;
    if let Ok(Reply::Retried {
        pipeline_execution_id: id,
    }) = &r
        && let Ok(e) = s.execution(&pipeline, id).await
    {
        for n in newer_commits(&ws, &e.source_revisions) {
            let line = format!(
                "note: a retry re-runs the execution's revision {} ({}); the branch has a newer commit {}: `pipedeck run` releases it",
                short_rev(&n.revision),
                n.action,
                short_rev(&n.head),
            );
            if json {
                eprintln!("{line}");
            } else {
                say!("{line}");
            }
        }
    }
    if let Some((id, stopping)) = started {
        if s.hosted() && !json {
            say!("(this process hosts the engine until the execution ends)");
        }
        match follow(&*s, &pipeline, &id, json).await {
            Ok(e) => {
                if json && wait {
                    print_json(&e);
                }
                let ok = e.status == ExecutionStatus::Succeeded
                    || (stopping && e.status == ExecutionStatus::Stopped);
                if wait && !ok {
                    code = ExitCode::FAILURE;
                }
            }
            Err(_) => {
                s.close().await;
                return Ok(ExitCode::from(130));
            }
        }
    }
    s.linger().await;
    s.close().await;
    Ok(code)
}

pub fn approval_request(a: ApprovalArgs, approve: bool) -> Request {
    Request::PutApprovalResult {
        pipeline_name: a.pipeline,
        stage_name: a.stage,
        action_name: a.action,
        token: None,
        status: if approve { "Approved" } else { "Rejected" }.into(),
        summary: a.summary,
    }
}

pub fn retry_request(a: RetryArgs) -> Request {
    Request::RetryStageExecution {
        pipeline_name: a.pipeline,
        stage_name: a.stage,
        pipeline_execution_id: a.execution,
        retry_mode: if a.all {
            "ALL_ACTIONS"
        } else {
            "FAILED_ACTIONS"
        }
        .into(),
    }
}

pub fn stop_request(a: StopArgs) -> Request {
    Request::StopPipelineExecution {
        pipeline_name: a.pipeline,
        pipeline_execution_id: a.execution,
        abandon: a.abandon,
        reason: a.reason,
    }
}

pub fn rollback_request(a: RollbackArgs) -> Request {
    Request::RollbackStage {
        pipeline_name: a.pipeline,
        stage_name: a.stage,
        target_pipeline_execution_id: a.to,
    }
}

pub fn transition_request(a: TransitionArgs) -> Request {
    match a.disable {
        Some(reason) => Request::DisableStageTransition {
            pipeline_name: a.pipeline,
            stage_name: a.stage,
            reason,
        },
        None => Request::EnableStageTransition {
            pipeline_name: a.pipeline,
            stage_name: a.stage,
        },
    }
}

#[derive(Args, Debug)]
pub struct RollbackEnvArgs {
    /// The environment (e.g. prod)
    pub environment: String,
}

pub fn rollback_env_request(a: RollbackEnvArgs) -> Request {
    Request::RollbackEnvironment {
        environment_name: a.environment,
    }
}

/// `pipedeck flux get ENV`, `pipedeck flux reconcile|suspend|resume ENV KIND/NAME`.
#[derive(clap::Subcommand, Debug)]
pub enum FluxCommand {
    /// List the environment's Flux objects (as `flux get all`)
    Get(super::flux::FluxGetArgs),
    /// Ask Flux to reconcile now and wait until it has (as `flux reconcile`)
    Reconcile(FluxTarget),
    /// Stop Flux reconciling the object (`spec.suspend = true`)
    Suspend(FluxTarget),
    /// Let Flux reconcile the object again (`spec.suspend = false`)
    Resume(FluxTarget),
}

#[derive(Args, Debug)]
pub struct FluxTarget {
    /// The kubernetes environment (e.g. prod)
    pub environment: String,
    /// KIND/NAME or KIND/NAMESPACE/NAME; KIND Kustomization (ks), HelmRelease (hr),
    /// GitRepository (gitrepo), OCIRepository (ocirepo), ImageRepository (imagerepo),
    /// ImagePolicy
    pub object: String,
}

/// The request of a mutating `flux` command; `get`, which only reads, is
/// handed back.
pub fn flux_request(c: FluxCommand) -> Result<Request, super::flux::FluxGetArgs> {
    let (operation, t) = match c {
        FluxCommand::Get(a) => return Err(a),
        FluxCommand::Reconcile(t) => (crate::api::FluxOperation::Reconcile, t),
        FluxCommand::Suspend(t) => (crate::api::FluxOperation::Suspend, t),
        FluxCommand::Resume(t) => (crate::api::FluxOperation::Resume, t),
    };
    Ok(Request::FluxObject {
        environment_name: t.environment,
        object: t.object,
        operation,
    })
}

fn short_rev(r: &str) -> &str {
    r.get(..8).unwrap_or(r)
}
