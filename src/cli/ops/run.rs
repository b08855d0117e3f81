//! `run` and `serve`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;
use color_eyre::eyre::{Result, eyre};

use super::common::{api_failure, open, pipeline_name, print_json};
use super::follow::follow;
use crate::api::types::ExecutionStatus;
use crate::api::{Reply, Request};
use crate::config::workspace::Workspace;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The pipeline (optional when the workspace has one)
    #[arg(long)]
    pub pipeline: Option<String>,
    /// A pipeline variable, NAME=VALUE (repeatable)
    #[arg(long = "var", value_parser = crate::cli::key_value, value_name = "NAME=VALUE")]
    pub vars: Vec<(String, String)>,
    /// Wait for the execution to end; exit 0 only if it succeeded
    #[arg(long)]
    pub wait: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ws: Workspace, a: RunArgs) -> Result<ExitCode> {
    let s = open(&ws, false).await?;
    let pipeline = pipeline_name(&ws, a.pipeline.clone())?;
    let r = s
        .call(Request::StartPipelineExecution {
            pipeline_name: pipeline.clone(),
            variables: a.vars.iter().cloned().collect::<BTreeMap<_, _>>(),
            source_revisions: Vec::new(),
        })
        .await;
    let id = match r {
        Ok(Reply::Started {
            pipeline_execution_id,
        }) => pipeline_execution_id,
        Ok(other) => return Err(eyre!("unexpected answer {other:?}")),
        Err(e) => {
            s.close().await;
            return Ok(api_failure(&e));
        }
    };
    if !a.json {
        say!(
            "started execution {id} of {pipeline}{}",
            if s.hosted() {
                " (this process hosts the engine until the execution ends)"
            } else {
                ""
            }
        );
    }
    let code = if a.wait || s.hosted() {
        match follow(&*s, &pipeline, &id, a.json).await {
            Ok(e) => {
                if a.json {
                    print_json(&e);
                }
                if !a.wait || e.status == ExecutionStatus::Succeeded {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(err) => {
                eprintln!("pipedeck: {err}");
                s.close().await;
                return Ok(ExitCode::from(130));
            }
        }
    } else {
        if a.json {
            print_json(&serde_json::json!({ "pipelineExecutionId": id }));
        }
        ExitCode::SUCCESS
    };
    s.linger().await;
    s.close().await;
    Ok(code)
}

/// Hosts the engine (with triggers) until Ctrl-C or SIGTERM, serving the
/// local AWS API too when asked.
pub async fn serve(
    ws: Workspace,
    aws_api: Option<crate::awsapi::cli::ServeApi>,
) -> Result<ExitCode> {
    if crate::backend::aws_selected() {
        // Nothing to host: AWS CodePipeline runs the pipelines.
        eprintln!(
            "pipedeck: `serve` hosts the local engine, and with --aws (or AWS accounts in the \
             workspace or config) the pipelines run in AWS CodePipeline: there is nothing to \
             serve. Drop --aws to host workspace {}'s engine, or run `pipedeck --aws` for the TUI.",
            ws.name
        );
        return Ok(ExitCode::from(2));
    }
    let s = open(&ws, true).await?;
    let Some(handle) = s.engine() else {
        eprintln!(
            "pipedeck: workspace {} already has an engine running (another `pipedeck serve` or \
             TUI hosts it); stop that one first",
            ws.name
        );
        return Ok(ExitCode::FAILURE);
    };
    let api = match &aws_api {
        Some(a) => Some(a.start(handle).await?),
        None => None,
    };
    say!(
        "engine for workspace {} is running (pid {}); Ctrl-C stops it",
        ws.name,
        std::process::id()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if let Some(api) = api {
        api.stop().await;
    }
    s.close().await;
    Ok(ExitCode::SUCCESS)
}
