//! Commands that operate a workspace's engine: `run`, `serve`, `status`,
//! `executions`, `logs`, `approve`, `reject`, `retry`, `stop`, `rollback`,
//! `transition`. Each talks to the engine that runs for the workspace (over
//! its socket) or, when none runs, hosts one in this process for as long
//! as the command needs it, serving the socket meanwhile so other
//! terminals can act on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use color_eyre::eyre::{Result, eyre};

use crate::api::types::{ActionStatus, ExecutionStatus, StageStatus};
use crate::api::{
    ApiError, EngineEvent, Envelope, ExecutionSummary, PipelineState, Reply, Request,
};
use crate::config::workspace::Workspace;
use crate::control::{Client, ControlError, EventStream, WorkspaceLock};
use crate::engine::{EngineHandle, EngineOptions};
use crate::store::logs::LogReader;

/// Where the workspace is: `--workspace`, `PIPEDECK_WORKSPACE`, the current
/// directory if it is one, else the demo workspace in the data dir.
pub fn find_workspace(flag: Option<&Path>, data_dir: &Path) -> Result<Workspace> {
    let dir = match flag {
        Some(d) => d.to_path_buf(),
        None => {
            let cwd = std::env::current_dir()?;
            let is_ws = ["pipedeck.toml", "pipeline.json", "pipeline.toml"]
                .iter()
                .any(|f| cwd.join(f).is_file());
            let demo = data_dir.join("demo");
            if is_ws || !demo.is_dir() { cwd } else { demo }
        }
    };
    Workspace::load(&dir, data_dir).map_err(|e| eyre!("{e}"))
}

/// A running engine, remote or hosted here.
pub enum Session {
    Remote {
        client: Client,
        ws: Box<Workspace>,
    },
    Hosted {
        handle: EngineHandle,
        server: crate::control::Server,
        _lock: WorkspaceLock,
    },
}

pub enum Events {
    Remote(EventStream),
    Local(tokio::sync::broadcast::Receiver<EngineEvent>),
}

impl Events {
    pub async fn next(&mut self) -> Option<EngineEvent> {
        match self {
            Events::Remote(s) => s.next().await,
            Events::Local(rx) => loop {
                match rx.recv().await {
                    Ok(e) => return Some(e),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            },
        }
    }
}

impl Session {
    /// Attaches to the workspace's engine, or hosts one.
    pub async fn open(ws: Workspace, triggers: bool) -> Result<Session> {
        for _ in 0..50 {
            if let Some(client) = Client::connect(&ws).await {
                return Ok(Session::Remote {
                    client,
                    ws: Box::new(ws),
                });
            }
            match WorkspaceLock::acquire(&ws) {
                Ok(lock) => {
                    let handle = crate::engine::start(ws.clone(), EngineOptions { triggers })
                        .map_err(|e| eyre!("{e}"))?;
                    let server = crate::control::serve(&handle, &lock).map_err(|e| eyre!("{e}"))?;
                    return Ok(Session::Hosted {
                        handle,
                        server,
                        _lock: lock,
                    });
                }
                // Another process holds the engine but its socket is not
                // up yet (it is starting): try again shortly.
                Err(ControlError::Locked { .. }) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(eyre!("{e}")),
            }
        }
        Err(eyre!(
            "workspace {} is locked by another pipedeck, but its engine does not answer on {}",
            ws.name,
            ws.socket_path().display()
        ))
    }

    pub fn hosted(&self) -> bool {
        matches!(self, Session::Hosted { .. })
    }

    pub fn workspace(&self) -> &Workspace {
        match self {
            Session::Remote { ws, .. } => ws,
            Session::Hosted { handle, .. } => &handle.workspace,
        }
    }

    pub async fn call(&mut self, request: Request) -> Result<Reply, ApiError> {
        let env = Envelope {
            identity: self.workspace().identity.clone(),
            user_agent: "pipedeck-cli".into(),
            request,
        };
        match self {
            Session::Remote { client, .. } => client.call(env).await,
            Session::Hosted { handle, .. } => handle.call(env).await,
        }
    }

    pub async fn events(&self) -> Result<Events> {
        match self {
            Session::Remote { ws, .. } => {
                let c = Client::connect(ws)
                    .await
                    .ok_or_else(|| eyre!("the engine went away"))?;
                Ok(Events::Remote(
                    c.subscribe().await.map_err(|e| eyre!("{e}"))?,
                ))
            }
            Session::Hosted { handle, .. } => Ok(Events::Local(handle.subscribe())),
        }
    }

    pub async fn close(self) {
        if let Session::Hosted { handle, server, .. } = self {
            server.drain().await;
            handle.shutdown().await;
            let _ = std::fs::remove_file(handle.workspace.socket_path());
        }
    }
}

/// Prints an API error the way every command does and picks the exit code.
fn api_failure(e: &ApiError) -> ExitCode {
    eprintln!("pipedeck: {}: {}", e.code, e.message);
    ExitCode::FAILURE
}

fn glyph_exec(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Succeeded => "✓",
        ExecutionStatus::Failed => "✗",
        ExecutionStatus::InProgress => "▶",
        ExecutionStatus::Stopping | ExecutionStatus::Stopped => "■",
        ExecutionStatus::Superseded | ExecutionStatus::Cancelled => "⊘",
    }
}

fn glyph_action(s: ActionStatus) -> &'static str {
    match s {
        ActionStatus::Succeeded => "✓",
        ActionStatus::Failed => "✗",
        ActionStatus::InProgress => "▶",
        ActionStatus::Abandoned => "⊘",
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("pipedeck: cannot encode JSON: {e}"),
    }
}

async fn pipeline_name(s: &mut Session, given: Option<String>) -> Result<String> {
    if let Some(p) = given {
        return Ok(p);
    }
    let names: Vec<String> = s
        .workspace()
        .pipelines
        .iter()
        .map(|p| p.pipeline.name.clone())
        .collect();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(eyre!(
            "workspace {} has {} pipelines ({}); choose one with --pipeline",
            s.workspace().name,
            names.len(),
            names.join(", ")
        )),
    }
}

async fn get_execution(
    s: &mut Session,
    pipeline: &str,
    id: &str,
) -> Result<ExecutionSummary, ApiError> {
    match s
        .call(Request::GetPipelineExecution {
            pipeline_name: pipeline.into(),
            pipeline_execution_id: id.into(),
        })
        .await?
    {
        Reply::Execution { execution } => Ok(execution),
        other => Err(ApiError::new(
            "InternalError",
            format!("unexpected {other:?}"),
        )),
    }
}

/// Follows an execution to its end, printing what happens (unless quiet).
/// Ctrl-C while this process hosts the engine stops it cleanly.
pub async fn follow(
    s: &mut Session,
    pipeline: &str,
    id: &str,
    quiet: bool,
) -> Result<ExecutionSummary> {
    // SIGTERM, like Ctrl-C, stops a hosted engine cleanly (builds killed,
    // executions recorded as interrupted) instead of orphaning builds.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut events = s.events().await?;
    loop {
        let e = get_execution(s, pipeline, id)
            .await
            .map_err(|e| eyre!("{e}"))?;
        if e.status.is_terminal() {
            if !quiet {
                println!(
                    "{} execution {} {}{}",
                    glyph_exec(e.status),
                    short(id),
                    e.status.as_str(),
                    e.status_summary
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                );
            }
            return Ok(e);
        }
        let next = tokio::select! {
            ev = tokio::time::timeout(Duration::from_secs(1), events.next()) => ev,
            _ = tokio::signal::ctrl_c() => {
                return Err(eyre!("interrupted"));
            }
            _ = term.recv() => {
                return Err(eyre!("terminated"));
            }
        };
        let Ok(Some(ev)) = next else { continue };
        if quiet {
            continue;
        }
        match ev {
            EngineEvent::StageChanged {
                pipeline_execution_id,
                stage_name,
                status,
                ..
            } if pipeline_execution_id == id => {
                if status != StageStatus::InProgress {
                    println!("  stage {stage_name}: {}", status.as_str());
                } else {
                    println!("  stage {stage_name}: entered");
                }
            }
            EngineEvent::ActionChanged { action }
                if action.pipeline_execution_id == id && action.token.is_none() =>
            {
                println!(
                    "    {} {}/{}{}",
                    glyph_action(action.status),
                    action.stage_name,
                    action.action_name,
                    match (&action.status, &action.summary) {
                        (ActionStatus::InProgress, _) => " started".to_owned(),
                        (_, Some(sum)) => format!(": {sum}"),
                        _ => String::new(),
                    }
                );
            }
            EngineEvent::ApprovalPending { action } if action.pipeline_execution_id == id => {
                println!(
                    "    ⏸ {}/{} waits for approval{}: run `pipedeck approve {pipeline} {} {}` (or reject)",
                    action.stage_name,
                    action.action_name,
                    action
                        .approval
                        .as_ref()
                        .and_then(|a| a.custom_data.as_deref())
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    action.stage_name,
                    action.action_name
                );
            }
            _ => {}
        }
    }
}

// ------------------------------------------------------------------ run

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The pipeline (optional when the workspace has one)
    #[arg(long)]
    pub pipeline: Option<String>,
    /// A pipeline variable, NAME=VALUE (repeatable)
    #[arg(long = "var", value_parser = super::key_value, value_name = "NAME=VALUE")]
    pub vars: Vec<(String, String)>,
    /// Wait for the execution to end; exit 0 only if it succeeded
    #[arg(long)]
    pub wait: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ws: Workspace, a: RunArgs) -> Result<ExitCode> {
    let mut s = Session::open(ws, false).await?;
    let pipeline = pipeline_name(&mut s, a.pipeline.clone()).await?;
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
        println!(
            "started execution {id} of {pipeline}{}",
            if s.hosted() {
                " (this process hosts the engine until the execution ends)"
            } else {
                ""
            }
        );
    }
    let code = if a.wait || s.hosted() {
        match follow(&mut s, &pipeline, &id, a.json).await {
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
    s.close().await;
    Ok(code)
}

// ---------------------------------------------------------------- serve

/// Hosts the engine (with triggers) until Ctrl-C or SIGTERM.
pub async fn serve(
    ws: Workspace,
    aws_api: Option<crate::awsapi::cli::ServeApi>,
) -> Result<ExitCode> {
    let s = Session::open(ws, true).await?;
    let Session::Hosted { handle, .. } = &s else {
        eprintln!(
            "pipedeck: workspace {} already has an engine running",
            s.workspace().name
        );
        return Ok(ExitCode::FAILURE);
    };
    let api = match &aws_api {
        Some(a) => Some(a.start(handle).await?),
        None => None,
    };
    println!(
        "engine for workspace {} is running (pid {}); Ctrl-C stops it",
        s.workspace().name,
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

// --------------------------------------------------------------- status

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

pub fn render_state(st: &PipelineState, out: &mut String) {
    use std::fmt::Write;
    let width = st
        .stage_states
        .iter()
        .map(|s| s.stage_name.chars().count())
        .max()
        .unwrap_or(5);
    for s in &st.stage_states {
        let status = s
            .latest_execution
            .as_ref()
            .map_or("-", |l| l.status.as_str());
        let _ = write!(out, "  {:<width$}  {:<10}", s.stage_name, status);
        if !s.inbound_transition_state.enabled {
            let _ = write!(
                out,
                " [transition disabled: {}]",
                s.inbound_transition_state
                    .disabled_reason
                    .as_deref()
                    .unwrap_or("")
            );
        }
        for a in &s.action_states {
            match &a.latest_execution {
                Some(x) => {
                    let _ = write!(out, "  {} {}", glyph_action(x.status), a.action_name);
                    if x.token.is_some() {
                        out.push_str(" (approval pending)");
                    }
                }
                None => {
                    let _ = write!(out, "  · {}", a.action_name);
                }
            }
        }
        for w in &s.inbound_executions {
            let _ = write!(out, "  ← waiting: {}", short(&w.pipeline_execution_id));
        }
        out.push('\n');
    }
}

pub async fn status(ws: Workspace, a: StatusArgs) -> Result<ExitCode> {
    let mut s = Session::open(ws, false).await?;
    let pipelines = match s.call(Request::ListPipelines).await {
        Ok(Reply::Pipelines { pipelines }) => pipelines,
        Ok(other) => return Err(eyre!("unexpected answer {other:?}")),
        Err(e) => {
            s.close().await;
            return Ok(api_failure(&e));
        }
    };
    let mut states = Vec::new();
    for p in &pipelines {
        if let Ok(Reply::State { state }) = s
            .call(Request::GetPipelineState {
                pipeline_name: p.name.clone(),
            })
            .await
        {
            states.push(state);
        }
    }
    let hosted = s.hosted();
    let ws_name = s.workspace().name.clone();
    s.close().await;
    if a.json {
        print_json(&serde_json::json!({ "pipelines": pipelines, "states": states }));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "workspace {ws_name} — engine {}",
        if hosted {
            "not running (state read from the store)"
        } else {
            "running"
        }
    );
    for (p, st) in pipelines.iter().zip(&states) {
        let latest = match &p.latest_execution {
            Some(e) => format!(
                "{} {} {}{}",
                glyph_exec(e.status),
                short(&e.pipeline_execution_id),
                e.status.as_str(),
                e.current_stage
                    .as_deref()
                    .filter(|_| !e.status.is_terminal())
                    .map(|s| format!(" in {s}"))
                    .unwrap_or_default()
            ),
            None => "no executions yet".into(),
        };
        println!(
            "\n{}  ({}, v{})  {latest}{}",
            p.name,
            p.execution_mode,
            p.version,
            if p.pending_approvals > 0 {
                format!("  — {} approval(s) pending", p.pending_approvals)
            } else {
                String::new()
            }
        );
        let mut out = String::new();
        render_state(st, &mut out);
        print!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

// ----------------------------------------------------------- executions

#[derive(Args, Debug)]
pub struct ExecutionsArgs {
    pub pipeline: String,
    #[arg(long)]
    pub json: bool,
    /// How many, newest first
    #[arg(long, default_value_t = 20)]
    pub max: u32,
}

pub async fn executions(ws: Workspace, a: ExecutionsArgs) -> Result<ExitCode> {
    let mut s = Session::open(ws, false).await?;
    let r = s
        .call(Request::ListPipelineExecutions {
            pipeline_name: a.pipeline.clone(),
            max_results: Some(a.max),
        })
        .await;
    s.close().await;
    let list = match r {
        Ok(Reply::Executions { executions }) => executions,
        Ok(other) => return Err(eyre!("unexpected answer {other:?}")),
        Err(e) => return Ok(api_failure(&e)),
    };
    if a.json {
        print_json(&list);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36}  {:<11} {:<8} {:<22} {:<24} REVISION",
        "EXECUTION", "STATUS", "TYPE", "TRIGGER", "STARTED"
    );
    for e in list {
        let rev = e
            .source_revisions
            .first()
            .map(|r| {
                format!(
                    "{} {}",
                    short(&r.revision_id),
                    r.revision_summary.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default();
        println!(
            "{:<36}  {} {:<9} {:<8} {:<22} {:<24} {rev}",
            e.pipeline_execution_id,
            glyph_exec(e.status),
            e.status.as_str(),
            e.execution_type.as_str(),
            format!("{:?}", e.trigger.trigger_type),
            e.start_time,
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ----------------------------------------------------------------- logs

#[derive(Args, Debug)]
pub struct LogsArgs {
    pub pipeline: String,
    pub stage: String,
    pub action: String,
    /// An execution id (default: the action's latest run)
    #[arg(long)]
    pub execution: Option<String>,
    /// Keep printing new lines until the action ends
    #[arg(long, short)]
    pub follow: bool,
}

pub async fn logs(ws: Workspace, a: LogsArgs) -> Result<ExitCode> {
    let log_dir = ws.state_dir.join("logs");
    let mut s = Session::open(ws, false).await?;
    let detail = match &a.execution {
        Some(id) => match s
            .call(Request::ListActionExecutions {
                pipeline_name: a.pipeline.clone(),
                pipeline_execution_id: id.clone(),
            })
            .await
        {
            Ok(Reply::ActionExecutions { actions }) => actions
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
        s.close().await;
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
    let print_new = |printed: &mut u64| -> std::io::Result<()> {
        let mut r = match LogReader::open(&log_dir, &aeid) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        while *printed < r.len() {
            let chunk = r.read(*printed, 10_000)?;
            if chunk.is_empty() {
                break;
            }
            let mut out = String::new();
            for l in &chunk {
                out.push_str(l);
                out.push('\n');
            }
            *printed += chunk.len() as u64;
            use std::io::Write;
            let mut so = std::io::stdout().lock();
            so.write_all(out.as_bytes())?;
        }
        Ok(())
    };
    if !a.follow || detail.status != ActionStatus::InProgress {
        let r = print_new(&mut printed);
        s.close().await;
        if let Err(e) = r {
            eprintln!("pipedeck: log of {aeid}: {e}");
            return Ok(ExitCode::FAILURE);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut events = s.events().await?;
    print_new(&mut printed)?;
    loop {
        let ev = tokio::select! {
            ev = tokio::time::timeout(Duration::from_secs(2), events.next()) => ev,
            _ = tokio::signal::ctrl_c() => break,
        };
        match ev {
            Ok(Some(EngineEvent::LogAppended {
                action_execution_id,
                ..
            })) if action_execution_id == aeid => print_new(&mut printed)?,
            Ok(Some(EngineEvent::ActionChanged { action }))
                if action.action_execution_id == aeid
                    && action.status != ActionStatus::InProgress =>
            {
                print_new(&mut printed)?;
                break;
            }
            Ok(None) => break,
            _ => print_new(&mut printed)?,
        }
    }
    s.close().await;
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------ mutations

#[derive(Args, Debug)]
pub struct ApprovalArgs {
    pub pipeline: String,
    pub stage: String,
    pub action: String,
    /// What the approver says (≤ 512 characters)
    #[arg(long, default_value = "")]
    pub summary: String,
}

#[derive(Args, Debug)]
pub struct RetryArgs {
    pub pipeline: String,
    pub stage: String,
    /// Re-run every action of the stage (ALL_ACTIONS), not only the failed ones
    #[arg(long)]
    pub all: bool,
    /// The execution (default: the latest in the stage)
    #[arg(long)]
    pub execution: Option<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    pub pipeline: String,
    /// The execution (default: the latest in progress)
    #[arg(long)]
    pub execution: Option<String>,
    /// Abandon running actions instead of letting them finish
    #[arg(long)]
    pub abandon: bool,
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    pub pipeline: String,
    pub stage: String,
    /// The execution to roll back to (default: the latest success before the current one)
    #[arg(long = "to")]
    pub to: Option<String>,
}

#[derive(Args, Debug)]
pub struct TransitionArgs {
    pub pipeline: String,
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
/// request started work, it stays until that execution ends.
pub async fn mutate(ws: Workspace, request: Request) -> Result<ExitCode> {
    let pipeline = match &request {
        Request::PutApprovalResult { pipeline_name, .. }
        | Request::RetryStageExecution { pipeline_name, .. }
        | Request::StopPipelineExecution { pipeline_name, .. }
        | Request::RollbackStage { pipeline_name, .. }
        | Request::DisableStageTransition { pipeline_name, .. }
        | Request::EnableStageTransition { pipeline_name, .. } => pipeline_name.clone(),
        _ => String::new(),
    };
    let mut s = Session::open(ws, false).await?;
    let r = s.call(request).await;
    let code = match &r {
        Ok(reply) => {
            match reply {
                Reply::ApprovalRecorded { approved_at } => println!("recorded at {approved_at}"),
                Reply::Retried {
                    pipeline_execution_id,
                } => println!("retrying in execution {pipeline_execution_id}"),
                Reply::Stopped {
                    pipeline_execution_id,
                } => println!("stopping execution {pipeline_execution_id}"),
                Reply::RolledBack {
                    pipeline_execution_id,
                } => println!("rollback execution {pipeline_execution_id} started"),
                Reply::Message { message } => println!("{message}"),
                _ => println!("done"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => api_failure(e),
    };
    if s.hosted()
        && let Ok(
            Reply::Retried {
                pipeline_execution_id: id,
            }
            | Reply::RolledBack {
                pipeline_execution_id: id,
            },
        ) = &r
    {
        println!("(this process hosts the engine until the execution ends)");
        if follow(&mut s, &pipeline, id, false).await.is_err() {
            s.close().await;
            return Ok(ExitCode::from(130));
        }
    }
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

/// `pipedeck envs`: each environment's live release, traffic and health.
pub async fn envs(ws: Workspace, a: StatusArgs) -> Result<ExitCode> {
    let mut s = Session::open(ws, false).await?;
    // A hosted engine brings environments up in the background.
    let mut list = Vec::new();
    for _ in 0..50 {
        match s.call(Request::ListEnvironments).await {
            Ok(Reply::Environments { environments }) => {
                let done = environments.len() == s.workspace().environments.len();
                list = environments;
                if done {
                    break;
                }
            }
            Ok(_) => break,
            Err(e) => {
                s.close().await;
                return Ok(api_failure(&e));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.close().await;
    if a.json {
        print_json(&list);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("no environments: declare them as [environments.NAME] in pipedeck.toml");
    }
    for e in list {
        let live = e.live.clone().unwrap_or_else(|| "split".to_owned());
        let m = e.metrics.unwrap_or(crate::api::env::RequestMetrics {
            rps: 0.0,
            error_rate: 0.0,
            p99_ms: 0.0,
        });
        println!(
            "{:<10} {:<28} live {live:<6} release {:<14} {} · {:.1} req/s · {:.1}% 5xx · p99 {:.0} ms",
            e.name,
            e.location,
            e.release.as_ref().map_or("-", |r| r.revision.as_str()),
            e.strategy,
            m.rps,
            m.error_rate,
            m.p99_ms
        );
        if let Some(d) = &e.deployment {
            println!(
                "           deployment {} {:?} {} {}% on {}{}",
                d.id,
                d.status,
                d.step,
                d.traffic_percent,
                d.new_variant,
                d.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo workspace's default place.
pub fn demo_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("demo")
}
