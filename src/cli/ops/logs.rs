//! `logs`: an action's log, whole or followed while it runs.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use color_eyre::eyre::{Result, eyre};

use super::common::{api_failure, did_you_mean, open, resolve_execution};
use crate::api::types::ActionStatus;
use crate::api::{EngineEvent, Reply, Request};
use crate::config::workspace::Workspace;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The pipeline, as `pipedeck status` names it
    pub pipeline: String,
    /// The stage, as the pipeline names it (e.g. Build)
    pub stage: String,
    /// The action in that stage (e.g. UnitTests, Release)
    pub action: String,
    /// An execution id, or a unique prefix of one (default: the action's latest run)
    #[arg(long)]
    pub execution: Option<String>,
    /// Keep printing new lines until the action ends
    #[arg(long, short)]
    pub follow: bool,
}

pub async fn logs(ws: Workspace, a: LogsArgs) -> Result<ExitCode> {
    let s = open(&ws, false).await?;
    let mut a = a;
    if let Some(id) = &a.execution {
        a.execution = Some(resolve_execution(&*s, &a.pipeline, id).await);
    }
    let detail = match &a.execution {
        Some(id) => match s
            .call(Request::ListActionExecutions {
                pipeline_name: a.pipeline.clone(),
                pipeline_execution_id: id.clone(),
                max_results: None,
                next_token: None,
            })
            .await
        {
            Ok(Reply::ActionExecutions { actions, .. }) => actions
                .into_iter()
                .find(|x| x.stage_name == a.stage && x.action_name == a.action),
            Ok(_) => None,
            Err(e) => {
                s.close().await;
                return Ok(api_failure(&e));
            }
        },
        None => match s
            .call(Request::GetPipelineState {
                pipeline_name: a.pipeline.clone(),
            })
            .await
        {
            Ok(Reply::State { state }) => state
                .stage_states
                .into_iter()
                .find(|x| x.stage_name == a.stage)
                .and_then(|x| {
                    x.action_states
                        .into_iter()
                        .find(|y| y.action_name == a.action)
                })
                .and_then(|y| y.latest_execution),
            Ok(_) => None,
            Err(e) => {
                s.close().await;
                return Ok(api_failure(&e));
            }
        },
    };
    let Some(detail) = detail else {
        let hint = did_you_mean(
            &*s,
            "ActionNotFound",
            &a.pipeline,
            Some(&a.stage),
            Some(&a.action),
        )
        .await;
        s.close().await;
        if let Some(h) = hint {
            eprintln!("pipedeck: {h}");
        }
        eprintln!(
            "pipedeck: ActionExecutionNotFound: {}/{} of {} has not run{}",
            a.stage,
            a.action,
            a.pipeline,
            a.execution
                .as_deref()
                .map(|e| format!(" in execution {e}"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::FAILURE);
    };
    let aeid = detail.action_execution_id.clone();
    let mut printed = 0u64;
    let log = crate::api::LogRef::action(&aeid);
    if !a.follow || detail.status != ActionStatus::InProgress {
        let r = print_new(&*s, &log, &mut printed).await;
        s.close().await;
        if let Err(e) = r {
            eprintln!("pipedeck: log of {aeid}: {e}");
            return Ok(ExitCode::FAILURE);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut events = s.subscribe().await.map_err(|e| eyre!("{e}"))?;
    print_new(&*s, &log, &mut printed).await?;
    loop {
        let ev = tokio::select! {
            ev = tokio::time::timeout(Duration::from_secs(2), events.next()) => ev,
            _ = tokio::signal::ctrl_c() => break,
        };
        match ev {
            Ok(Some(EngineEvent::LogAppended {
                action_execution_id,
                ..
            })) if action_execution_id == aeid => print_new(&*s, &log, &mut printed).await?,
            Ok(Some(EngineEvent::ActionChanged { action }))
                if action.action_execution_id == aeid
                    && action.status != ActionStatus::InProgress =>
            {
                print_new(&*s, &log, &mut printed).await?;
                break;
            }
            Ok(None) => break,
            _ => print_new(&*s, &log, &mut printed).await?,
        }
    }
    s.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Prints the lines after `printed`; a log not written yet is empty.
async fn print_new(
    s: &dyn crate::backend::Backend,
    log: &crate::api::LogRef,
    printed: &mut u64,
) -> Result<()> {
    use std::io::Write;
    loop {
        let page = match s
            .read_log(log, Some(*printed), crate::store::log_query::MAX_PAGE)
            .await
        {
            Ok(p) => p,
            Err(e) if e.code == "ResourceNotFoundException" => return Ok(()),
            Err(e) => return Err(eyre!("{}: {}", e.code, e.message)),
        };
        if page.lines.is_empty() {
            return Ok(());
        }
        let mut out = String::new();
        for l in &page.lines {
            out.push_str(l);
            out.push('\n');
        }
        *printed += page.lines.len() as u64;
        std::io::stdout().lock().write_all(out.as_bytes())?;
        if *printed >= page.total {
            return Ok(());
        }
    }
}
