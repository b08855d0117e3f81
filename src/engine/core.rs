//! The engine actor: one task owns every execution of the workspace. It
//! takes requests from a channel, runs actions as tasks that report back
//! on the same channel, writes each change through to the store in one
//! transaction and then publishes it as an event.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::conditions;
use super::vars::{self, Scope};
use crate::api::types::{
    ActionStatus, ApprovalResult, ErrorDetails, ExecutionStatus, ExecutionTrigger, ExecutionType,
    RetryMetadata, SourceRevisionOverride, StageStatus, TriggerType,
};
use crate::api::{
    ActionExecutionDetail, ActionState, ApiError, ApprovalInfo, ArtifactRef, AuditEvent,
    ConditionState, EngineEvent, EngineInfo, Envelope, ExecutionSummary, InboundExecution,
    PipelineState, PipelineSummary, Reply, Request, RuleState, StageExecution, StageState,
    TransitionState, UserIdentity,
};
use crate::config::workspace::{Workspace, WorkspacePipeline};
use crate::model::pipeline::{Condition, ExecutionMode, Rule};
use crate::providers::{self, ActionContext, ActionOutcome, InputArtifact, OutcomeStatus};
use crate::store::artifacts::{ArtifactStore, StoredArtifact};
use crate::store::logs::LogWriter;
use crate::store::{Store, StoreError, now_rfc3339};

/// The summary every action and execution gets when the engine stopped
/// under it (shutdown or crash).
pub const INTERRUPTED: &str = "interrupted: engine stopped";

/// Executions per pipeline the engine keeps in memory (the newest; older
/// ones stay in the store). ListPipelineExecutions shows up to this many.
pub const MEMORY_EXECUTIONS: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Position {
    /// Waiting in front of stage `i` (its inbound execution).
    Waiting(usize),
    /// Holds (or, in PARALLEL, runs in) stage `i`.
    InStage(usize),
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum StopMode {
    Wait,
    Abandon,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StageRec {
    name: String,
    status: Option<StageStatus>,
    retry: RetryMetadata,
    /// The automatic retry was used for the current failure.
    auto_retried: bool,
    /// Order in which executions entered this stage (for "latest").
    entry_seq: u64,
    /// The latest attempt of each action in this stage run.
    actions: Vec<Option<ActionExecutionDetail>>,
    condition: Option<ConditionState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExecRec {
    summary: ExecutionSummary,
    seq: i64,
    stages: Vec<StageRec>,
    /// Artifact name → content id.
    artifacts: BTreeMap<String, String>,
    /// Action namespace → its output variables.
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    position: Position,
    stop: Option<StopMode>,
    /// Source action name → the commit to fetch.
    source_overrides: BTreeMap<String, String>,
    /// Attempts so far per `stage/action` (retries count up).
    #[serde(default)]
    attempts: BTreeMap<String, u32>,
}

impl ExecRec {
    fn terminal(&self) -> bool {
        self.summary.status.is_terminal()
    }
}

struct PState {
    def: Arc<WorkspacePipeline>,
    version: u32,
    locks: Vec<Option<String>>,
    /// The execution that most recently entered each stage.
    latest: Vec<Option<String>>,
    inbound: Vec<VecDeque<String>>,
    transitions: Vec<TransitionState>,
    /// Execution ids, oldest first.
    order: Vec<String>,
}

impl PState {
    fn mode(&self) -> ExecutionMode {
        self.def.pipeline.execution_mode
    }
    fn stage_index(&self, name: &str) -> Result<usize, ApiError> {
        self.def
            .pipeline
            .stages
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| {
                ApiError::new(
                    "StageNotFound",
                    format!(
                        "pipeline {} has no stage `{name}` (stages: {})",
                        self.def.pipeline.name,
                        self.def
                            .pipeline
                            .stages
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }
}

/// A running action's handle.
struct Running {
    stop: Arc<watch::Sender<bool>>,
}

pub(crate) enum Msg {
    Call(Envelope, oneshot::Sender<Result<Reply, ApiError>>),
    ActionDone(Box<ActionDone>),
    ApprovalTimeout {
        action_execution_id: String,
    },
    ConditionDone {
        exec: String,
        stage: usize,
        kind: &'static str,
        results: Vec<conditions::RuleResult>,
    },
    SourceChange {
        pipeline: String,
        action: String,
        commit: String,
        detail: String,
    },
    Shutdown(oneshot::Sender<()>),
}

pub(crate) struct ActionDone {
    exec: String,
    stage: usize,
    action: usize,
    action_execution_id: String,
    outcome: ActionOutcome,
    artifacts: Vec<(String, StoredArtifact)>,
    lines: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

/// Options for hosting an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Watch mapped repositories and start executions on new commits.
    pub triggers: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { triggers: true }
    }
}

/// A cheap, cloneable handle on a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Msg>,
    events: broadcast::Sender<EngineEvent>,
    pub workspace: Arc<Workspace>,
    pub started: String,
}

impl EngineHandle {
    /// Sends a request and waits for its answer.
    pub async fn call(&self, envelope: Envelope) -> Result<Reply, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Call(envelope, tx))
            .map_err(|_| ApiError::new("EngineStopped", "the engine has stopped"))?;
        rx.await
            .map_err(|_| ApiError::new("EngineStopped", "the engine has stopped"))?
    }

    /// A request as the workspace's identity from `user_agent`.
    pub async fn request(&self, user_agent: &str, request: Request) -> Result<Reply, ApiError> {
        self.call(Envelope {
            identity: self.workspace.identity.clone(),
            user_agent: user_agent.to_owned(),
            request,
        })
        .await
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// Stops every running action, records what ran as interrupted, and
    /// ends the actor.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<Msg> {
        self.tx.clone()
    }
}

/// Opens the workspace's store, recovers interrupted executions and starts
/// the actor on the current tokio runtime.
pub fn start(workspace: Workspace, options: EngineOptions) -> Result<EngineHandle, EngineError> {
    let ws = Arc::new(workspace);
    let store = Store::open(&ws.state_dir)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (events, _) = broadcast::channel(4096);
    let started = now_rfc3339();
    let mut engine = Engine {
        ws: ws.clone(),
        store,
        artifacts: ArtifactStore::new(&ws.state_dir),
        events: events.clone(),
        tx: tx.clone(),
        pipelines: BTreeMap::new(),
        execs: HashMap::new(),
        running: HashMap::new(),
        entry_counter: 0,
        started: started.clone(),
        stopping: false,
        envs: Default::default(),
    };
    engine.load()?;
    let handle = EngineHandle {
        tx,
        events,
        workspace: ws.clone(),
        started,
    };
    if options.triggers && ws.triggers {
        super::triggers::spawn(&handle, &engine.trigger_specs());
    }
    if !ws.environments.is_empty() {
        // Environments come back with the engine, on their last release.
        let (cell, ws2, events) = (engine.envs.clone(), ws.clone(), engine.events.clone());
        tokio::spawn(async move {
            let r = cell
                .get_or_init(|| async move {
                    crate::env::manager::Environments::start(&ws2, Some(events))
                        .await
                        .map(Arc::new)
                })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "environments did not start");
            }
        });
    }
    tokio::spawn(engine.run(rx));
    Ok(handle)
}

struct Engine {
    ws: Arc<Workspace>,
    store: Store,
    artifacts: ArtifactStore,
    events: broadcast::Sender<EngineEvent>,
    tx: mpsc::UnboundedSender<Msg>,
    pipelines: BTreeMap<String, PState>,
    execs: HashMap<String, ExecRec>,
    running: HashMap<String, Running>,
    entry_counter: u64,
    started: String,
    stopping: bool,
    envs: providers::deploy::EnvCell,
}

fn api(code: &str, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

impl Engine {
    // ---------------------------------------------------------------- load

    /// Kills builds an engine that died left running, and clears their
    /// scratch directories.
    fn reap_orphans(&self) {
        let work = self.ws.state_dir.join("work");
        let Ok(rd) = std::fs::read_dir(&work) else {
            return;
        };
        for e in rd.flatten() {
            let pgid = e.path().join("pgid");
            if providers::codebuild_local::kill_orphan(&pgid) {
                tracing::warn!(dir = %e.path().display(), "killed a build orphaned by a crashed engine");
            }
            let _ = std::fs::remove_dir_all(e.path());
        }
    }

    fn load(&mut self) -> Result<(), EngineError> {
        self.reap_orphans();
        let now = now_rfc3339();
        for wp in &self.ws.pipelines {
            let def = serde_json::to_string(&wp.pipeline).unwrap_or_default();
            let hash = {
                use sha2::{Digest, Sha256};
                Sha256::digest(def.as_bytes())
                    .iter()
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            };
            let name = wp.pipeline.name.clone();
            let version = match self.store.latest_pipeline_version(&name)? {
                Some((v, h)) if h == hash => v,
                Some((v, _)) => v + 1,
                None => wp.pipeline.version.unwrap_or(1).max(1),
            };
            self.store
                .batch(|b| b.pipeline_version(&name, version, &hash, &def, &now))?;
            let n = wp.pipeline.stages.len();
            let mut transitions: Vec<TransitionState> = (0..n)
                .map(|_| TransitionState {
                    enabled: true,
                    last_changed_by: None,
                    last_changed_at: None,
                    disabled_reason: None,
                })
                .collect();
            for d in &wp.pipeline.disabled_inbound_transitions {
                if let Some(i) = wp
                    .pipeline
                    .stages
                    .iter()
                    .position(|s| s.name == d.stage_name)
                {
                    transitions[i].enabled = false;
                    transitions[i].disabled_reason = Some(d.reason.clone());
                    transitions[i].last_changed_by = Some("pipeline definition".into());
                }
            }
            for (stage, st) in self.store.transitions(&name)? {
                if let Some(i) = wp.pipeline.stages.iter().position(|s| s.name == stage) {
                    transitions[i] = st;
                }
            }
            let mut ps = PState {
                def: Arc::new(wp.clone()),
                version,
                locks: vec![None; n],
                latest: vec![None; n],
                inbound: vec![VecDeque::new(); n],
                transitions,
                order: Vec::new(),
            };
            let mut latest_seq = vec![0u64; n];
            for row in self.store.executions(&name, MEMORY_EXECUTIONS)? {
                let mut rec: ExecRec = match self.store.decode(&row.record) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(execution = row.id, error = %e, "skipping a stored execution");
                        continue;
                    }
                };
                let interrupted = !rec.terminal();
                if interrupted {
                    recover_interrupted(&mut rec, &now);
                }
                for (i, st) in rec.stages.iter().enumerate().take(n) {
                    if st.status.is_some() && st.entry_seq >= latest_seq[i] {
                        latest_seq[i] = st.entry_seq;
                        ps.latest[i] = Some(rec.summary.pipeline_execution_id.clone());
                    }
                    self.entry_counter = self.entry_counter.max(st.entry_seq);
                }
                ps.order.push(rec.summary.pipeline_execution_id.clone());
                if interrupted {
                    let actions: Vec<ActionExecutionDetail> = rec
                        .stages
                        .iter()
                        .flat_map(|s| s.actions.iter().flatten().cloned())
                        .collect();
                    self.store.batch(|b| {
                        write_exec(b, &rec)?;
                        for a in &actions {
                            b.action_execution(a)?;
                        }
                        Ok(())
                    })?;
                    tracing::warn!(
                        execution = row.id,
                        "recorded an interrupted execution as Failed"
                    );
                }
                self.execs
                    .insert(rec.summary.pipeline_execution_id.clone(), rec);
            }
            self.pipelines.insert(name, ps);
        }
        Ok(())
    }

    fn trigger_specs(&self) -> Vec<super::triggers::Watch> {
        super::triggers::watches(&self.ws, &self.store)
    }

    // ---------------------------------------------------------------- loop

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Call(env, reply)
                    if matches!(env.request, Request::RollbackEnvironment { .. }) =>
                {
                    // Slow (a redeploy): answered from a task when done.
                    self.rollback_environment(env, reply);
                }
                Msg::Call(env, reply) if env.request.is_log_read() => {
                    // Reads files: answered from a blocking task.
                    let dir = self.ws.state_dir.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = reply.send(crate::store::log_query::answer(&dir, &env.request));
                    });
                }
                Msg::Call(env, reply) => {
                    let r = self.handle(&env);
                    if env.request.is_mutating() {
                        self.audit_call(&env, &r);
                    }
                    let _ = reply.send(r);
                }
                Msg::ActionDone(done) => self.action_done(*done),
                Msg::ApprovalTimeout {
                    action_execution_id,
                } => self.approval_timeout(&action_execution_id),
                Msg::ConditionDone {
                    exec,
                    stage,
                    kind,
                    results,
                } => self.condition_done(&exec, stage, kind, results),
                Msg::SourceChange {
                    pipeline,
                    action,
                    commit,
                    detail,
                } => self.source_change(&pipeline, &action, &commit, &detail),
                Msg::Shutdown(done) => {
                    self.shutdown().await;
                    let _ = done.send(());
                    return;
                }
            }
        }
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        self.stopping = true;
        for r in self.running.values() {
            let _ = r.stop.send(true);
        }
        let now = now_rfc3339();
        let ids: Vec<String> = self
            .execs
            .iter()
            .filter(|(_, e)| !e.terminal())
            .map(|(k, _)| k.clone())
            .collect();
        for id in ids {
            if let Some(rec) = self.execs.get_mut(&id) {
                recover_interrupted(rec, &now);
            }
            self.save(&id, true);
            self.publish_exec(&id);
        }
        if let Some(Ok(envs)) = self.envs.get() {
            envs.shutdown().await;
        }
        // Give running process trees a moment to be killed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !self.running.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.running.retain(|_, r| !r.stop.is_closed());
        }
    }

    // ----------------------------------------------------------- requests

    fn handle(&mut self, env: &Envelope) -> Result<Reply, ApiError> {
        if self.stopping && env.request.is_mutating() {
            return Err(api("EngineStopped", "the engine is shutting down"));
        }
        match &env.request {
            Request::StartPipelineExecution {
                pipeline_name,
                variables,
                source_revisions,
            } => {
                let id = self.start_execution(
                    pipeline_name,
                    variables,
                    source_revisions,
                    ExecutionTrigger {
                        trigger_type: TriggerType::StartPipelineExecution,
                        trigger_detail: env.identity.clone(),
                    },
                )?;
                Ok(Reply::Started {
                    pipeline_execution_id: id,
                })
            }
            Request::StopPipelineExecution {
                pipeline_name,
                pipeline_execution_id,
                abandon,
                reason,
            } => self.stop(
                pipeline_name,
                pipeline_execution_id.as_deref(),
                *abandon,
                reason,
            ),
            Request::RetryStageExecution {
                pipeline_name,
                stage_name,
                pipeline_execution_id,
                retry_mode,
            } => self.retry(
                pipeline_name,
                stage_name,
                pipeline_execution_id.as_deref(),
                retry_mode,
                false,
            ),
            Request::PutApprovalResult {
                pipeline_name,
                stage_name,
                action_name,
                token,
                status,
                summary,
            } => self.put_approval(
                pipeline_name,
                stage_name,
                action_name,
                token.as_deref(),
                status,
                summary,
                &env.identity,
            ),
            Request::RollbackStage {
                pipeline_name,
                stage_name,
                target_pipeline_execution_id,
            } => self.rollback(
                pipeline_name,
                stage_name,
                target_pipeline_execution_id.as_deref(),
                TriggerType::ManualRollback,
                &env.identity,
            ),
            Request::DisableStageTransition {
                pipeline_name,
                stage_name,
                reason,
            } => self.set_transition(pipeline_name, stage_name, Some(reason), &env.identity),
            Request::EnableStageTransition {
                pipeline_name,
                stage_name,
            } => self.set_transition(pipeline_name, stage_name, None, &env.identity),
            Request::ListPipelines => Ok(Reply::Pipelines {
                pipelines: self.list_pipelines(),
            }),
            Request::GetPipeline { pipeline_name } => {
                let ps = self.pipeline(pipeline_name)?;
                Ok(Reply::Pipeline {
                    pipeline: Box::new(ps.def.pipeline.clone()),
                    version: ps.version,
                })
            }
            Request::GetLogEvents { .. } | Request::FilterLogEvents { .. } => Err(api(
                "InternalError",
                "log reads are answered from a blocking task",
            )),
            Request::GetPipelineState { pipeline_name } => Ok(Reply::State {
                state: self.state(pipeline_name)?,
            }),
            Request::ListPipelineExecutions {
                pipeline_name,
                max_results,
            } => {
                let ps = self.pipeline(pipeline_name)?;
                let max = max_results.unwrap_or(100).clamp(1, 1000) as usize;
                let executions = ps
                    .order
                    .iter()
                    .rev()
                    .take(max)
                    .filter_map(|id| self.execs.get(id))
                    .map(|e| e.summary.clone())
                    .collect();
                Ok(Reply::Executions { executions })
            }
            Request::GetPipelineExecution {
                pipeline_name,
                pipeline_execution_id,
            } => Ok(Reply::Execution {
                execution: self
                    .exec_of(pipeline_name, pipeline_execution_id)?
                    .summary
                    .clone(),
            }),
            Request::ListActionExecutions {
                pipeline_name,
                pipeline_execution_id,
            } => {
                self.exec_of(pipeline_name, pipeline_execution_id)?;
                let mut actions = self
                    .store
                    .action_executions(pipeline_execution_id)
                    .map_err(|e| api("InternalError", e.to_string()))?;
                // The in-memory record is newer for running actions.
                if let Some(rec) = self.execs.get(pipeline_execution_id) {
                    for a in rec.stages.iter().flat_map(|s| s.actions.iter().flatten()) {
                        if let Some(slot) = actions
                            .iter_mut()
                            .find(|x| x.action_execution_id == a.action_execution_id)
                        {
                            *slot = a.clone();
                        }
                    }
                }
                actions.reverse();
                Ok(Reply::ActionExecutions { actions })
            }
            Request::LookupEvents { max_results } => Ok(Reply::Events {
                events: self
                    .store
                    .audit(max_results.unwrap_or(50).clamp(1, 10_000))
                    .map_err(|e| api("InternalError", e.to_string()))?,
            }),
            Request::ListEnvironments => Ok(Reply::Environments {
                environments: match self.envs.get() {
                    Some(Ok(envs)) => envs.summaries(&self.ws),
                    Some(Err(e)) => return Err(api("EnvironmentsUnavailable", e.clone())),
                    None => Vec::new(),
                },
            }),
            Request::RollbackEnvironment { .. } => Err(api(
                "InternalError",
                "RollbackEnvironment is handled asynchronously",
            )),
            Request::EngineInfo => Ok(Reply::Info {
                info: EngineInfo {
                    workspace: self.ws.name.clone(),
                    workspace_root: self.ws.root.display().to_string(),
                    pid: std::process::id(),
                    started: self.started.clone(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    running_executions: self.execs.values().filter(|e| !e.terminal()).count()
                        as u32,
                },
            }),
        }
    }

    fn rollback_environment(
        &mut self,
        env: Envelope,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    ) {
        let Request::RollbackEnvironment { environment_name } = &env.request else {
            return;
        };
        let name = environment_name.clone();
        let envs = match self.envs.get() {
            Some(Ok(e)) if e.envs.contains_key(&name) => e.clone(),
            Some(Err(e)) => {
                let r = Err(api("EnvironmentsUnavailable", e.clone()));
                self.audit_call(&env, &r);
                let _ = reply.send(r);
                return;
            }
            _ => {
                let r = Err(api(
                    "EnvironmentNotFound",
                    format!(
                        "workspace {} has no environment `{name}` (environments: {})",
                        self.ws.name,
                        self.ws
                            .environments
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                self.audit_call(&env, &r);
                let _ = reply.send(r);
                return;
            }
        };
        self.audit_call(
            &env,
            &Ok(Reply::Message {
                message: format!("rollback of {name} requested"),
            }),
        );
        tokio::spawn(async move {
            let r = envs
                .rollback(&name)
                .await
                .map(|message| Reply::Message { message })
                .map_err(|e| api("UnableToRollbackEnvironment", e));
            let _ = reply.send(r);
        });
    }

    fn pipeline(&self, name: &str) -> Result<&PState, ApiError> {
        self.pipelines.get(name).ok_or_else(|| {
            api(
                "PipelineNotFound",
                format!(
                    "no pipeline `{name}` in workspace {} (pipelines: {})",
                    self.ws.name,
                    self.pipelines
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    fn exec_of(&self, pipeline: &str, id: &str) -> Result<&ExecRec, ApiError> {
        self.pipeline(pipeline)?;
        self.execs
            .get(id)
            .filter(|e| e.summary.pipeline_name == pipeline)
            .ok_or_else(|| {
                api(
                    "PipelineExecutionNotFound",
                    format!("pipeline {pipeline} has no execution {id}"),
                )
            })
    }

    fn list_pipelines(&self) -> Vec<PipelineSummary> {
        self.pipelines
            .iter()
            .map(|(name, ps)| PipelineSummary {
                name: name.clone(),
                version: ps.version,
                pipeline_type: format!("{:?}", ps.def.pipeline.effective_type()),
                execution_mode: ps.mode().as_str().to_owned(),
                latest_execution: ps
                    .order
                    .last()
                    .and_then(|id| self.execs.get(id))
                    .map(|e| e.summary.clone()),
                pending_approvals: ps
                    .order
                    .iter()
                    .filter_map(|id| self.execs.get(id))
                    .flat_map(|e| e.stages.iter().flat_map(|s| s.actions.iter().flatten()))
                    .filter(|a| a.token.is_some() && a.status == ActionStatus::InProgress)
                    .count() as u32,
            })
            .collect()
    }

    fn state(&self, pipeline: &str) -> Result<PipelineState, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let stage_states = ps
            .def
            .pipeline
            .stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let latest = ps.latest[i].as_ref().and_then(|id| self.execs.get(id));
                let rec = latest.map(|e| &e.stages[i]);
                StageState {
                    stage_name: stage.name.clone(),
                    inbound_executions: ps.inbound[i]
                        .iter()
                        .filter_map(|id| self.execs.get(id))
                        .map(|e| InboundExecution {
                            pipeline_execution_id: e.summary.pipeline_execution_id.clone(),
                            status: e.summary.status,
                            execution_type: e.summary.execution_type,
                        })
                        .collect(),
                    inbound_transition_state: ps.transitions[i].clone(),
                    latest_execution: latest.and_then(|e| {
                        Some(StageExecution {
                            pipeline_execution_id: e.summary.pipeline_execution_id.clone(),
                            status: e.stages[i].status?,
                            execution_type: e.summary.execution_type,
                        })
                    }),
                    action_states: stage
                        .actions
                        .iter()
                        .enumerate()
                        .map(|(j, a)| ActionState {
                            action_name: a.name.clone(),
                            latest_execution: rec.and_then(|r| r.actions.get(j).cloned().flatten()),
                        })
                        .collect(),
                    retry_stage_metadata: rec.map(|r| r.retry.clone()).unwrap_or_default(),
                    condition: rec.and_then(|r| r.condition.clone()),
                }
            })
            .collect();
        Ok(PipelineState {
            pipeline_name: pipeline.to_owned(),
            pipeline_version: ps.version,
            stage_states,
        })
    }

    // -------------------------------------------------------------- start

    fn start_execution(
        &mut self,
        pipeline: &str,
        overrides: &BTreeMap<String, String>,
        sources: &[SourceRevisionOverride],
        trigger: ExecutionTrigger,
    ) -> Result<String, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let p = &ps.def.pipeline;
        let mut variables = BTreeMap::new();
        for decl in &p.variables {
            if let Some(d) = &decl.default_value {
                variables.insert(decl.name.clone(), d.clone());
            }
        }
        for (k, v) in overrides {
            if !p.variables.iter().any(|d| &d.name == k) {
                return Err(api(
                    "ValidationException",
                    format!(
                        "variable `{k}` is not declared by pipeline {pipeline} (declared: {})",
                        if p.variables.is_empty() {
                            "none".to_owned()
                        } else {
                            p.variables
                                .iter()
                                .map(|d| d.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                ));
            }
            if v.is_empty() || v.len() > 1000 {
                return Err(api(
                    "ValidationException",
                    format!("variable `{k}`: the value must be 1 to 1000 characters"),
                ));
            }
            variables.insert(k.clone(), v.clone());
        }
        if let Some(missing) = p
            .variables
            .iter()
            .find(|d| !variables.contains_key(&d.name))
        {
            return Err(api(
                "ValidationException",
                format!(
                    "variable `{}` has no default value: give it with --var {}=VALUE",
                    missing.name, missing.name
                ),
            ));
        }
        let mut source_overrides = BTreeMap::new();
        for s in sources {
            let is_source = p
                .stages
                .first()
                .is_some_and(|st| st.actions.iter().any(|a| a.name == s.action_name));
            if !is_source {
                return Err(api(
                    "ValidationException",
                    format!(
                        "sourceRevisions: `{}` is not a source action",
                        s.action_name
                    ),
                ));
            }
            if s.revision_type != "COMMIT_ID" {
                return Err(api(
                    "ValidationException",
                    format!(
                        "sourceRevisions: revisionType {} is not supported by git sources; use COMMIT_ID",
                        s.revision_type
                    ),
                ));
            }
            source_overrides.insert(s.action_name.clone(), s.revision_value.clone());
        }
        let id = uuid::Uuid::new_v4().to_string();
        let seq = ps
            .order
            .last()
            .and_then(|l| self.execs.get(l))
            .map_or(1, |e| e.seq + 1);
        let now = now_rfc3339();
        let rec = ExecRec {
            summary: ExecutionSummary {
                pipeline_execution_id: id.clone(),
                pipeline_name: pipeline.to_owned(),
                pipeline_version: ps.version,
                status: ExecutionStatus::InProgress,
                status_summary: None,
                start_time: now.clone(),
                last_update_time: now,
                trigger,
                execution_mode: ps.mode().as_str().to_owned(),
                execution_type: ExecutionType::Standard,
                rollback_target: None,
                source_revisions: Vec::new(),
                variables,
                stop_reason: None,
                current_stage: None,
            },
            seq,
            stages: p
                .stages
                .iter()
                .map(|s| StageRec {
                    name: s.name.clone(),
                    status: None,
                    retry: RetryMetadata::default(),
                    auto_retried: false,
                    entry_seq: 0,
                    actions: vec![None; s.actions.len()],
                    condition: None,
                })
                .collect(),
            artifacts: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            position: Position::Waiting(0),
            stop: None,
            source_overrides,
            attempts: BTreeMap::new(),
        };
        let name = pipeline.to_owned();
        self.execs.insert(id.clone(), rec);
        if let Some(ps) = self.pipelines.get_mut(&name) {
            ps.order.push(id.clone());
        }
        self.save(&id, false);
        self.publish_exec(&id);
        self.arrive(&id, 0);
        Ok(id)
    }

    fn source_change(&mut self, pipeline: &str, action: &str, commit: &str, detail: &str) {
        let trigger = ExecutionTrigger {
            trigger_type: TriggerType::Webhook,
            trigger_detail: detail.to_owned(),
        };
        let sources = vec![SourceRevisionOverride {
            action_name: action.to_owned(),
            revision_type: "COMMIT_ID".into(),
            revision_value: commit.to_owned(),
        }];
        let r = self.start_execution(pipeline, &BTreeMap::new(), &sources, trigger);
        let env = Envelope {
            identity: "codepipeline.amazonaws.com".into(),
            user_agent: "engine".into(),
            request: Request::StartPipelineExecution {
                pipeline_name: pipeline.to_owned(),
                variables: BTreeMap::new(),
                source_revisions: sources,
            },
        };
        let r = r.map(|id| Reply::Started {
            pipeline_execution_id: id,
        });
        self.audit_call(&env, &r);
    }

    // ---------------------------------------------------------- movement

    /// An execution reaches the boundary in front of stage `i` (or the end).
    fn arrive(&mut self, id: &str, i: usize) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        let Some(ps) = self.pipelines.get(&pipeline) else {
            return;
        };
        let n = ps.def.pipeline.stages.len();
        let is_rollback = self
            .execs
            .get(id)
            .is_some_and(|e| e.summary.execution_type == ExecutionType::Rollback);
        if i >= n || (is_rollback && i > 0) {
            self.finish_exec(id, ExecutionStatus::Succeeded, None);
            return;
        }
        let mode = ps.mode();
        if let Some(e) = self.execs.get_mut(id) {
            e.position = Position::Waiting(i);
        }
        let mut superseded = Vec::new();
        if let Some(ps) = self.pipelines.get_mut(&pipeline) {
            if mode == ExecutionMode::Superseded {
                // One waiter per boundary: the newer execution stays.
                let my_seq = self.execs.get(id).map_or(0, |e| e.seq);
                let mut keep = id.to_owned();
                for w in ps.inbound[i].drain(..) {
                    let w_seq = self.execs.get(&w).map_or(0, |e| e.seq);
                    if w_seq > my_seq {
                        superseded.push(keep);
                        keep = w;
                    } else {
                        superseded.push(w);
                    }
                }
                ps.inbound[i].push_back(keep);
            } else {
                ps.inbound[i].push_back(id.to_owned());
            }
        }
        for s in superseded {
            if let Some(e) = self.execs.get_mut(&s) {
                e.position = Position::Done;
                e.summary.status_summary = Some(format!(
                    "superseded by a newer execution while waiting to enter stage {}",
                    e.stages.get(i).map_or("", |st| st.name.as_str())
                ));
            }
            self.finish_exec(&s, ExecutionStatus::Superseded, None);
        }
        self.save(id, false);
        self.publish_exec(id);
        self.advance(&pipeline);
    }

    /// Lets waiting executions into every stage that can take one.
    fn advance(&mut self, pipeline: &str) {
        loop {
            let mut entered = None;
            if let Some(ps) = self.pipelines.get_mut(pipeline) {
                let parallel = ps.mode() == ExecutionMode::Parallel;
                for i in 0..ps.inbound.len() {
                    if (parallel || ps.locks[i].is_none())
                        && ps.transitions[i].enabled
                        && let Some(id) = ps.inbound[i].pop_front()
                    {
                        entered = Some((id, i));
                        break;
                    }
                }
            }
            match entered {
                Some((id, i)) => self.enter_stage(&id, i),
                None => return,
            }
        }
    }

    fn enter_stage(&mut self, id: &str, i: usize) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        self.entry_counter += 1;
        let seq = self.entry_counter;
        let (parallel, before_entry) = {
            let Some(ps) = self.pipelines.get_mut(&pipeline) else {
                return;
            };
            if ps.mode() != ExecutionMode::Parallel {
                ps.locks[i] = Some(id.to_owned());
            }
            ps.latest[i] = Some(id.to_owned());
            (
                ps.mode() == ExecutionMode::Parallel,
                ps.def.pipeline.stages[i].before_entry.clone(),
            )
        };
        let _ = parallel;
        if let Some(e) = self.execs.get_mut(id) {
            e.position = Position::InStage(i);
            let st = &mut e.stages[i];
            st.status = Some(StageStatus::InProgress);
            st.entry_seq = seq;
            st.condition = None;
            for a in st.actions.iter_mut() {
                *a = None;
            }
        }
        self.stage_changed(id, i);
        match before_entry.and_then(|c| c.conditions.into_iter().next()) {
            Some(cond) => self.check_condition(id, i, "BEFORE_ENTRY", cond),
            None => self.progress_stage(id, i),
        }
    }

    fn check_condition(&mut self, id: &str, i: usize, kind: &'static str, cond: Condition) {
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        e.stages[i].condition = Some(ConditionState {
            condition_type: kind.to_owned(),
            status: "InProgress".into(),
            result: cond.result.clone(),
            rules: Vec::new(),
        });
        let scope = scope_of(e);
        let input = cond
            .rules
            .iter()
            .flat_map(|r| r.input_artifacts.first())
            .next()
            .and_then(|n| e.artifacts.get(n).cloned());
        let rules: Vec<Rule> = cond.rules.clone();
        let tx = self.tx.clone();
        let exec = id.to_owned();
        let artifacts = self.artifacts.clone();
        let work = self
            .ws
            .state_dir
            .join("work")
            .join(format!("cond-{}", uuid::Uuid::new_v4().simple()));
        self.save(id, false);
        tokio::spawn(async move {
            let _ = tokio::fs::create_dir_all(&work).await;
            if let Some(aid) = input {
                let (a, w) = (artifacts.clone(), work.clone());
                let _ = tokio::task::spawn_blocking(move || a.materialize(&aid, &w)).await;
            }
            let results = conditions::evaluate(&rules, &scope, &work).await;
            let _ = tokio::fs::remove_dir_all(&work).await;
            let _ = tx.send(Msg::ConditionDone {
                exec,
                stage: i,
                kind,
                results,
            });
        });
    }

    fn condition_done(
        &mut self,
        id: &str,
        i: usize,
        kind: &'static str,
        results: Vec<conditions::RuleResult>,
    ) {
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        if e.terminal() || e.position != Position::InStage(i) {
            return;
        }
        let passed = results.iter().all(|r| r.passed);
        let failed_rule = results
            .iter()
            .find(|r| !r.passed)
            .map(|r| format!("rule {}: {}", r.rule, r.message));
        let result = e.stages[i]
            .condition
            .as_ref()
            .and_then(|c| c.result.clone());
        e.stages[i].condition = Some(ConditionState {
            condition_type: kind.to_owned(),
            status: if passed { "Succeeded" } else { "Failed" }.into(),
            result: result.clone(),
            rules: results
                .into_iter()
                .map(|r| RuleState {
                    rule_name: r.rule,
                    passed: r.passed,
                    message: r.message,
                })
                .collect(),
        });
        if e.stop.is_some() {
            self.progress_stage(id, i);
            return;
        }
        let reason = failed_rule.unwrap_or_default();
        match (kind, passed, result.as_deref()) {
            (_, true, _) if kind == "BEFORE_ENTRY" => self.progress_stage(id, i),
            (_, true, _) => self.stage_succeeded(id, i),
            ("BEFORE_ENTRY", false, Some("SKIP")) => {
                if let Some(e) = self.execs.get_mut(id) {
                    e.stages[i].status = Some(StageStatus::Skipped);
                }
                self.release(id, i);
                self.stage_changed(id, i);
                self.arrive(id, i + 1);
            }
            ("ON_SUCCESS", false, Some("ROLLBACK")) => {
                self.fail_stage(id, i, format!("onSuccess condition failed ({reason})"));
                self.auto_rollback(id, i);
            }
            ("BEFORE_ENTRY", false, _) => {
                self.fail_stage(id, i, format!("beforeEntry condition failed ({reason})"));
            }
            _ => {
                self.fail_stage(id, i, format!("onSuccess condition failed ({reason})"));
            }
        }
    }

    /// Decides what happens next in a stage: start the next runOrder
    /// group, or finish the stage.
    fn progress_stage(&mut self, id: &str, i: usize) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        let Some(def) = self.pipelines.get(&pipeline).map(|p| p.def.clone()) else {
            return;
        };
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        if e.position != Position::InStage(i) {
            return;
        }
        let st = &e.stages[i];
        let running = st
            .actions
            .iter()
            .flatten()
            .any(|a| a.status == ActionStatus::InProgress);
        if e.stop.is_some() {
            if !running {
                if let Some(e) = self.execs.get_mut(id) {
                    e.stages[i].status = Some(StageStatus::Stopped);
                }
                self.release(id, i);
                self.stage_changed(id, i);
                self.finish_exec(id, ExecutionStatus::Stopped, None);
            }
            return;
        }
        if running {
            return;
        }
        if let Some(failed) = st
            .actions
            .iter()
            .flatten()
            .find(|a| matches!(a.status, ActionStatus::Failed | ActionStatus::Abandoned))
        {
            let why = format!(
                "action {} failed{}",
                failed.action_name,
                failed
                    .summary
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            );
            self.stage_failed(id, i, why);
            return;
        }
        // The first runOrder group with an action still to run.
        let stage = &def.pipeline.stages[i];
        let pending: Vec<usize> = {
            let next_order = stage
                .actions
                .iter()
                .enumerate()
                .filter(|(j, _)| st.actions[*j].is_none())
                .map(|(_, a)| a.run_order)
                .min();
            match next_order {
                Some(o) => stage
                    .actions
                    .iter()
                    .enumerate()
                    .filter(|(j, a)| a.run_order == o && st.actions[*j].is_none())
                    .map(|(j, _)| j)
                    .collect(),
                None => Vec::new(),
            }
        };
        if pending.is_empty() {
            match stage
                .on_success
                .clone()
                .and_then(|c| c.conditions.into_iter().next())
            {
                Some(cond)
                    if e.stages[i]
                        .condition
                        .as_ref()
                        .is_none_or(|c| c.condition_type != "ON_SUCCESS") =>
                {
                    self.check_condition(id, i, "ON_SUCCESS", cond);
                }
                _ => self.stage_succeeded(id, i),
            }
            return;
        }
        for j in pending {
            self.start_action(id, i, j);
        }
        self.save(id, false);
    }

    fn stage_succeeded(&mut self, id: &str, i: usize) {
        if let Some(e) = self.execs.get_mut(id) {
            e.stages[i].status = Some(StageStatus::Succeeded);
            e.stages[i].auto_retried = false;
        }
        self.release(id, i);
        self.stage_changed(id, i);
        self.arrive(id, i + 1);
    }

    /// Every action has ended and one failed: apply `onFailure`.
    fn stage_failed(&mut self, id: &str, i: usize, why: String) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        let Some(ps) = self.pipelines.get(&pipeline) else {
            return;
        };
        let on_failure = ps.def.pipeline.stages[i].on_failure.clone();
        let parallel = ps.mode() == ExecutionMode::Parallel;
        let auto_retried = self.execs.get(id).is_some_and(|e| e.stages[i].auto_retried);
        match on_failure.as_ref().and_then(|f| f.result.as_deref()) {
            Some("RETRY") if !auto_retried => {
                // Nothing runs any more: the stage has failed, and the
                // automatic retry starts from there.
                if let Some(e) = self.execs.get_mut(id) {
                    e.stages[i].status = Some(StageStatus::Failed);
                }
                let mode = on_failure
                    .as_ref()
                    .and_then(|f| f.retry_mode.clone())
                    .unwrap_or_else(|| "FAILED_ACTIONS".into());
                let stage = self.execs[id].stages[i].name.clone();
                let r = self.retry(&pipeline, &stage, Some(id), &mode, true);
                let env = Envelope {
                    identity: "codepipeline.amazonaws.com".into(),
                    user_agent: "engine".into(),
                    request: Request::RetryStageExecution {
                        pipeline_name: pipeline.clone(),
                        stage_name: stage,
                        pipeline_execution_id: Some(id.to_owned()),
                        retry_mode: mode,
                    },
                };
                self.audit_call(&env, &r);
                if r.is_err() {
                    self.fail_stage(id, i, why);
                }
            }
            Some("ROLLBACK") if !parallel => {
                self.fail_stage(id, i, why);
                self.auto_rollback(id, i);
            }
            _ => self.fail_stage(id, i, why),
        }
    }

    fn fail_stage(&mut self, id: &str, i: usize, why: String) {
        if let Some(e) = self.execs.get_mut(id) {
            e.stages[i].status = Some(StageStatus::Failed);
        }
        self.release(id, i);
        self.stage_changed(id, i);
        let name = self
            .execs
            .get(id)
            .map(|e| e.stages[i].name.clone())
            .unwrap_or_default();
        self.finish_exec(
            id,
            ExecutionStatus::Failed,
            Some(format!("stage {name}: {why}")),
        );
    }

    fn auto_rollback(&mut self, id: &str, i: usize) {
        let Some((pipeline, stage)) = self
            .execs
            .get(id)
            .map(|e| (e.summary.pipeline_name.clone(), e.stages[i].name.clone()))
        else {
            return;
        };
        let r = self.rollback(
            &pipeline,
            &stage,
            None,
            TriggerType::AutomatedRollback,
            "codepipeline.amazonaws.com",
        );
        if let Err(e) = &r {
            tracing::info!(pipeline, stage, error = %e, "automatic rollback did not start");
        }
        let env = Envelope {
            identity: "codepipeline.amazonaws.com".into(),
            user_agent: "engine".into(),
            request: Request::RollbackStage {
                pipeline_name: pipeline,
                stage_name: stage,
                target_pipeline_execution_id: None,
            },
        };
        self.audit_call(&env, &r);
    }

    fn release(&mut self, id: &str, i: usize) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        if let Some(ps) = self.pipelines.get_mut(&pipeline)
            && ps.locks[i].as_deref() == Some(id)
        {
            ps.locks[i] = None;
        }
    }

    fn finish_exec(&mut self, id: &str, status: ExecutionStatus, summary: Option<String>) {
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        e.summary.status = status;
        if summary.is_some() {
            e.summary.status_summary = summary;
        }
        e.summary.last_update_time = now_rfc3339();
        if !matches!(e.position, Position::InStage(_)) || status == ExecutionStatus::Succeeded {
            e.position = Position::Done;
        }
        let pipeline = e.summary.pipeline_name.clone();
        if let Some(ps) = self.pipelines.get_mut(&pipeline) {
            for q in ps.inbound.iter_mut() {
                q.retain(|x| x != id);
            }
        }
        self.save(id, false);
        self.publish_exec(id);
        self.advance(&pipeline);
    }

    // ------------------------------------------------------------ actions

    fn start_action(&mut self, id: &str, i: usize, j: usize) {
        let Some(e) = self.execs.get(id) else {
            return;
        };
        let Some(ps) = self.pipelines.get(&e.summary.pipeline_name) else {
            return;
        };
        let def = ps.def.clone();
        let action = def.pipeline.stages[i].actions[j].clone();
        let key = format!("{}/{}", def.pipeline.stages[i].name, action.name);
        let attempt = e.attempts.get(&key).copied().unwrap_or(0) + 1;
        let aeid = uuid::Uuid::new_v4().to_string();
        let now = now_rfc3339();
        let scope = scope_of(e);
        let resolved = vars::resolve_map(&action.configuration, &scope);
        let inputs: Vec<(String, Option<String>)> = action
            .input_artifacts
            .iter()
            .map(|n| (n.clone(), e.artifacts.get(n).cloned()))
            .collect();
        let mut detail = ActionExecutionDetail {
            action_execution_id: aeid.clone(),
            pipeline_execution_id: id.to_owned(),
            stage_name: def.pipeline.stages[i].name.clone(),
            action_name: action.name.clone(),
            attempt,
            status: ActionStatus::InProgress,
            summary: None,
            start_time: now.clone(),
            last_status_change: now.clone(),
            token: None,
            external_execution_id: None,
            error_details: None,
            resolved_configuration: resolved.clone().unwrap_or_default(),
            input_artifacts: inputs
                .iter()
                .map(|(n, a)| ArtifactRef {
                    name: n.clone(),
                    id: a.clone().unwrap_or_default(),
                })
                .collect(),
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            test_report: None,
            phases: Vec::new(),
            approval: None,
            log_lines: 0,
        };
        let source_override = e.source_overrides.get(&action.name).cloned();
        let fail_now = |detail: &ActionExecutionDetail, code: &str, msg: String| ActionDone {
            exec: id.to_owned(),
            stage: i,
            action: j,
            action_execution_id: detail.action_execution_id.clone(),
            outcome: ActionOutcome::failed(code, msg),
            artifacts: Vec::new(),
            lines: 0,
        };
        let early_failure = match (&resolved, inputs.iter().find(|(_, a)| a.is_none())) {
            (Err(msg), _) => Some(fail_now(&detail, "ConfigurationError", msg.clone())),
            (_, Some((name, _))) => Some(fail_now(
                &detail,
                "ConfigurationError",
                format!("input artifact `{name}` was not produced earlier in this execution"),
            )),
            _ => None,
        };
        if let Some(done) = early_failure {
            self.set_action(id, i, j, detail);
            let _ = self.tx.send(Msg::ActionDone(Box::new(done)));
            return;
        }
        let mut action_resolved = action.clone();
        action_resolved.configuration = resolved.unwrap_or_default();
        if action.action_type_id.category == "Approval" {
            let timeout = action
                .timeout_in_minutes
                .map_or(self.ws.approval_timeout, |m| {
                    Duration::from_secs(u64::from(m) * 60)
                });
            let expires = humantime::format_rfc3339_millis(SystemTime::now() + timeout).to_string();
            detail.token = Some(uuid::Uuid::new_v4().to_string());
            detail.approval = Some(ApprovalInfo {
                custom_data: action_resolved.configuration.get("CustomData").cloned(),
                external_entity_link: action_resolved
                    .configuration
                    .get("ExternalEntityLink")
                    .cloned(),
                expires,
                result: None,
            });
            let tx = self.tx.clone();
            let aeid2 = aeid.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                let _ = tx.send(Msg::ApprovalTimeout {
                    action_execution_id: aeid2,
                });
            });
            self.set_action(id, i, j, detail.clone());
            let _ = self
                .events
                .send(EngineEvent::ApprovalPending { action: detail });
            return;
        }
        let provider = match providers::for_action(&action, &self.ws, &self.envs) {
            Ok(p) => p,
            Err(msg) => {
                let done = fail_now(&detail, "ConfigurationError", msg);
                self.set_action(id, i, j, detail);
                let _ = self.tx.send(Msg::ActionDone(Box::new(done)));
                return;
            }
        };
        let timeout = action_timeout(&self.ws, &action_resolved);
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        self.running.insert(
            aeid.clone(),
            Running {
                stop: stop_tx.clone(),
            },
        );
        let job = Job {
            exec: id.to_owned(),
            stage: i,
            action_index: j,
            ctx_base: CtxBase {
                pipeline: def.pipeline.name.clone(),
                execution_id: id.to_owned(),
                stage: def.pipeline.stages[i].name.clone(),
                aeid: aeid.clone(),
                action: action_resolved,
                source_revision: source_override,
                timeout,
            },
            inputs: inputs
                .into_iter()
                .map(|(n, a)| (n, a.unwrap_or_default()))
                .collect(),
            revisions: e
                .summary
                .source_revisions
                .iter()
                .map(|r| r.revision_id.clone())
                .collect(),
        };
        self.set_action(id, i, j, detail);
        let ws = self.ws.clone();
        let artifacts = self.artifacts.clone();
        let events = self.events.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let done = run_job(job, provider, ws, artifacts, events, stop_tx, stop_rx).await;
            let _ = tx.send(Msg::ActionDone(Box::new(done)));
        });
    }

    /// Records an action's detail as the latest in its stage and publishes it.
    fn set_action(&mut self, id: &str, i: usize, j: usize, detail: ActionExecutionDetail) {
        if let Some(e) = self.execs.get_mut(id) {
            let key = format!("{}/{}", detail.stage_name, detail.action_name);
            let a = e.attempts.entry(key).or_insert(0);
            *a = (*a).max(detail.attempt);
            e.stages[i].actions[j] = Some(detail.clone());
            e.summary.last_update_time = detail.last_status_change.clone();
        }
        let r = self.store.batch(|b| b.action_execution(&detail));
        if let Err(err) = r {
            tracing::error!(error = %err, "cannot store an action execution");
        }
        let _ = self
            .events
            .send(EngineEvent::ActionChanged { action: detail });
    }

    fn action_done(&mut self, done: ActionDone) {
        self.running.remove(&done.action_execution_id);
        let ActionDone {
            exec: id,
            stage: i,
            action: j,
            action_execution_id,
            outcome,
            artifacts,
            lines,
        } = done;
        let Some(e) = self.execs.get_mut(&id) else {
            return;
        };
        let Some(Some(current)) = e.stages[i].actions.get(j) else {
            return;
        };
        if current.action_execution_id != action_execution_id {
            return;
        }
        let mut detail = current.clone();
        detail.log_lines = lines;
        if detail.status != ActionStatus::InProgress {
            // Abandoned (or ended at shutdown): keep the verdict, note the log.
            self.set_action(&id, i, j, detail);
            return;
        }
        detail.last_status_change = now_rfc3339();
        detail.summary = outcome.summary.clone();
        detail.error_details = outcome.error.clone();
        detail.external_execution_id = outcome.external_execution_id.clone();
        detail.test_report = outcome.test_report.clone();
        detail.phases = outcome.phases.clone();
        if outcome.status == OutcomeStatus::Succeeded {
            detail.status = ActionStatus::Succeeded;
            detail.output_variables = outcome.output_variables.clone();
            let ns = self
                .pipelines
                .get(&e.summary.pipeline_name)
                .and_then(|p| p.def.pipeline.stages[i].actions[j].namespace.clone());
            if let Some(ns) = ns {
                e.namespaces.insert(ns, outcome.output_variables.clone());
            }
            for (name, art) in &artifacts {
                e.artifacts.insert(name.clone(), art.id.clone());
                detail.output_artifacts.push(ArtifactRef {
                    name: name.clone(),
                    id: art.id.clone(),
                });
            }
            if let Some(rev) = &outcome.source_revision {
                e.summary
                    .source_revisions
                    .retain(|r| r.action_name != rev.action_name);
                e.summary.source_revisions.push(rev.clone());
            }
        } else {
            detail.status = ActionStatus::Failed;
        }
        let now = now_rfc3339();
        let r = self.store.batch(|b| {
            for (name, art) in &artifacts {
                b.artifact(&art.id, art.files, art.bytes, &now)?;
                if outcome.status == OutcomeStatus::Succeeded {
                    b.execution_artifact(&id, name, &art.id, &action_execution_id)?;
                }
            }
            Ok(())
        });
        if let Err(err) = r {
            tracing::error!(error = %err, "cannot index artifacts");
        }
        self.set_action(&id, i, j, detail);
        self.progress_stage(&id, i);
        self.save(&id, false);
        self.publish_exec(&id);
    }

    fn approval_timeout(&mut self, aeid: &str) {
        let found = self.execs.iter().find_map(|(id, e)| {
            e.stages.iter().enumerate().find_map(|(i, s)| {
                s.actions.iter().enumerate().find_map(|(j, a)| {
                    a.as_ref()
                        .filter(|a| {
                            a.action_execution_id == aeid && a.status == ActionStatus::InProgress
                        })
                        .map(|a| (id.clone(), i, j, a.clone()))
                })
            })
        });
        let Some((id, i, j, mut detail)) = found else {
            return;
        };
        detail.status = ActionStatus::Failed;
        detail.token = None;
        detail.last_status_change = now_rfc3339();
        let msg = "the approval timed out: nobody approved or rejected it in time".to_owned();
        detail.summary = Some(msg.clone());
        detail.error_details = Some(ErrorDetails {
            code: "ApprovalTimedOut".into(),
            message: msg,
        });
        self.set_action(&id, i, j, detail);
        self.progress_stage(&id, i);
    }

    // ---------------------------------------------------------- operations

    #[allow(clippy::too_many_arguments)]
    fn put_approval(
        &mut self,
        pipeline: &str,
        stage: &str,
        action: &str,
        token: Option<&str>,
        status: &str,
        summary: &str,
        by: &str,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let i = ps.stage_index(stage)?;
        let Some(j) = ps.def.pipeline.stages[i]
            .actions
            .iter()
            .position(|a| a.name == action)
        else {
            return Err(api(
                "ActionNotFound",
                format!("stage {stage} of {pipeline} has no action `{action}`"),
            ));
        };
        if ps.def.pipeline.stages[i].actions[j].action_type_id.category != "Approval" {
            return Err(api(
                "InvalidApprovalToken",
                format!("{stage}.{action} is not a manual approval"),
            ));
        }
        if !matches!(status, "Approved" | "Rejected") {
            return Err(api(
                "ValidationException",
                format!("status must be Approved or Rejected, not `{status}`"),
            ));
        }
        if summary.chars().count() > 512 {
            return Err(api(
                "ValidationException",
                "the summary is longer than 512 characters",
            ));
        }
        // The pending approval of this action, in any execution.
        let pending = ps.order.iter().rev().find_map(|id| {
            let a = self.execs.get(id)?.stages[i].actions[j].as_ref()?;
            (a.status == ActionStatus::InProgress && a.token.is_some())
                .then(|| (id.clone(), a.clone()))
        });
        let Some((id, mut detail)) = pending else {
            // Answered already, or never asked?
            let latest = ps.order.iter().rev().find_map(|id| {
                self.execs.get(id)?.stages[i].actions[j]
                    .as_ref()
                    .and_then(|a| a.approval.as_ref()?.result.clone())
            });
            return Err(match latest {
                Some(r) if token.is_none() => api(
                    "ApprovalAlreadyCompleted",
                    format!(
                        "{stage}.{action} was already {} by {} at {}",
                        r.status.to_lowercase(),
                        r.by,
                        r.at
                    ),
                ),
                _ => api(
                    "InvalidApprovalToken",
                    format!("{stage}.{action} has no pending approval"),
                ),
            });
        };
        if let Some(t) = token
            && detail.token.as_deref() != Some(t)
        {
            return Err(api(
                "InvalidApprovalToken",
                format!("the token does not match the pending approval of {stage}.{action}"),
            ));
        }
        let now = now_rfc3339();
        detail.token = None;
        detail.last_status_change = now.clone();
        if let Some(ap) = detail.approval.as_mut() {
            ap.result = Some(ApprovalResult {
                status: status.to_owned(),
                summary: summary.to_owned(),
                by: by.to_owned(),
                at: now.clone(),
            });
        }
        if status == "Approved" {
            detail.status = ActionStatus::Succeeded;
            detail.summary = Some(if summary.is_empty() {
                format!("Approved by {by}")
            } else {
                format!("Approved by {by}: {summary}")
            });
        } else {
            detail.status = ActionStatus::Failed;
            let msg = if summary.is_empty() {
                format!("Rejected by {by}")
            } else {
                format!("Rejected by {by}: {summary}")
            };
            detail.summary = Some(msg.clone());
            detail.error_details = Some(ErrorDetails {
                code: "ApprovalRejected".into(),
                message: msg,
            });
        }
        self.set_action(&id, i, j, detail);
        self.progress_stage(&id, i);
        Ok(Reply::ApprovalRecorded { approved_at: now })
    }

    fn stop(
        &mut self,
        pipeline: &str,
        id: Option<&str>,
        abandon: bool,
        reason: &Option<String>,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        if let Some(r) = reason
            && r.chars().count() > 200
        {
            return Err(api(
                "ValidationException",
                "the reason is longer than 200 characters",
            ));
        }
        let id = match id {
            Some(id) => self
                .exec_of(pipeline, id)?
                .summary
                .pipeline_execution_id
                .clone(),
            None => ps
                .order
                .iter()
                .rev()
                .find(|x| self.execs.get(*x).is_some_and(|e| !e.terminal()))
                .cloned()
                .ok_or_else(|| {
                    api(
                        "PipelineExecutionNotStoppable",
                        format!("pipeline {pipeline} has no execution in progress"),
                    )
                })?,
        };
        let e = &self.execs[&id];
        if e.terminal() {
            return Err(api(
                "PipelineExecutionNotStoppable",
                format!("execution {id} is already {}", e.summary.status.as_str()),
            ));
        }
        match (e.stop, abandon) {
            (Some(StopMode::Abandon), _) | (Some(StopMode::Wait), false) => {
                return Err(api(
                    "DuplicatedStopRequest",
                    format!("execution {id} is already stopping"),
                ));
            }
            _ => {}
        }
        let position = e.position;
        if let Some(e) = self.execs.get_mut(&id) {
            e.stop = Some(if abandon {
                StopMode::Abandon
            } else {
                StopMode::Wait
            });
            e.summary.stop_reason = reason.clone();
        }
        match position {
            Position::InStage(i) => {
                // Approvals wait for a person, not for work: they end now.
                // With abandon, so does everything else.
                let ids: Vec<(usize, ActionExecutionDetail)> = self.execs[&id].stages[i]
                    .actions
                    .iter()
                    .enumerate()
                    .filter_map(|(j, a)| Some((j, a.clone()?)))
                    .filter(|(_, a)| {
                        a.status == ActionStatus::InProgress && (abandon || a.token.is_some())
                    })
                    .collect();
                for (j, mut a) in ids {
                    if let Some(r) = self.running.get(&a.action_execution_id) {
                        let _ = r.stop.send(true);
                    }
                    a.status = ActionStatus::Abandoned;
                    a.token = None;
                    a.last_status_change = now_rfc3339();
                    a.summary = Some(format!(
                        "abandoned: the execution was stopped{}",
                        reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ));
                    self.set_action(&id, i, j, a);
                }
                let still = self.execs[&id].stages[i]
                    .actions
                    .iter()
                    .flatten()
                    .any(|a| a.status == ActionStatus::InProgress);
                if still {
                    if let Some(e) = self.execs.get_mut(&id) {
                        e.summary.status = ExecutionStatus::Stopping;
                        e.stages[i].status = Some(StageStatus::Stopping);
                    }
                    self.stage_changed(&id, i);
                    self.save(&id, false);
                    self.publish_exec(&id);
                } else {
                    self.progress_stage(&id, i);
                }
            }
            _ => self.finish_exec(&id, ExecutionStatus::Stopped, None),
        }
        Ok(Reply::Stopped {
            pipeline_execution_id: id,
        })
    }

    fn retry(
        &mut self,
        pipeline: &str,
        stage: &str,
        id: Option<&str>,
        mode: &str,
        automatic: bool,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let i = ps.stage_index(stage)?;
        if !matches!(mode, "FAILED_ACTIONS" | "ALL_ACTIONS") {
            return Err(api(
                "ValidationException",
                format!("retryMode must be FAILED_ACTIONS or ALL_ACTIONS, not `{mode}`"),
            ));
        }
        let latest = ps.latest[i].clone();
        let id = match id {
            Some(id) => self
                .exec_of(pipeline, id)?
                .summary
                .pipeline_execution_id
                .clone(),
            None => latest.clone().ok_or_else(|| {
                api(
                    "StageNotRetryable",
                    format!("no execution has run in stage {stage} yet"),
                )
            })?,
        };
        if latest.as_deref() != Some(id.as_str()) {
            return Err(api(
                "NotLatestPipelineExecution",
                format!(
                    "execution {} is not the latest in stage {stage}: {} entered it since",
                    short(&id),
                    latest.as_deref().map_or("another", short)
                ),
            ));
        }
        let version = ps.version;
        let e = &self.execs[&id];
        if e.summary.pipeline_version != version {
            return Err(api(
                "StageNotRetryable",
                format!(
                    "the pipeline changed (version {} → {version}) since execution {} ran; start a new execution",
                    e.summary.pipeline_version,
                    short(&id)
                ),
            ));
        }
        let st = &e.stages[i];
        let failed: Vec<usize> = st
            .actions
            .iter()
            .enumerate()
            .filter(|(_, a)| {
                a.as_ref().is_some_and(|a| {
                    matches!(a.status, ActionStatus::Failed | ActionStatus::Abandoned)
                })
            })
            .map(|(j, _)| j)
            .collect();
        let running = st
            .actions
            .iter()
            .flatten()
            .any(|a| a.status == ActionStatus::InProgress);
        match st.status {
            Some(StageStatus::Skipped) => {
                return Err(api(
                    "StageNotRetryable",
                    format!("stage {stage} was skipped"),
                ));
            }
            Some(StageStatus::Failed | StageStatus::Stopped) => {}
            Some(StageStatus::InProgress) if mode == "FAILED_ACTIONS" && !failed.is_empty() => {}
            Some(StageStatus::InProgress | StageStatus::Stopping) => {
                return Err(api(
                    "StageNotRetryable",
                    format!(
                        "stage {stage} is in progress{}",
                        if failed.is_empty() {
                            " and no action in it has failed"
                        } else {
                            "; ALL_ACTIONS needs nothing in progress"
                        }
                    ),
                ));
            }
            _ => {
                return Err(api(
                    "StageNotRetryable",
                    format!(
                        "stage {stage} of execution {} has not failed (it is {})",
                        short(&id),
                        st.status.map_or("not started", |s| s.as_str())
                    ),
                ));
            }
        }
        if failed.is_empty() && mode == "FAILED_ACTIONS" {
            return Err(api(
                "StageNotRetryable",
                format!("no action failed in stage {stage}"),
            ));
        }
        if running && mode == "ALL_ACTIONS" {
            return Err(api(
                "StageNotRetryable",
                "ALL_ACTIONS needs nothing in progress in the stage",
            ));
        }
        if e.stop.is_some() && !e.terminal() {
            return Err(api("ConflictException", "the execution is stopping"));
        }
        let lock = &self.pipelines[pipeline].locks[i];
        let parallel = self.pipelines[pipeline].mode() == ExecutionMode::Parallel;
        if !parallel && lock.as_deref().is_some_and(|l| l != id) {
            return Err(api(
                "ConflictException",
                format!("stage {stage} is held by another execution"),
            ));
        }
        if let Some(ps) = self.pipelines.get_mut(pipeline)
            && !parallel
        {
            ps.locks[i] = Some(id.clone());
            for q in ps.inbound.iter_mut() {
                q.retain(|x| x != &id);
            }
        }
        if let Some(e) = self.execs.get_mut(&id) {
            e.summary.status = ExecutionStatus::InProgress;
            e.summary.status_summary = None;
            e.summary.stop_reason = None;
            e.stop = None;
            e.position = Position::InStage(i);
            let st = &mut e.stages[i];
            st.status = Some(StageStatus::InProgress);
            st.condition = None;
            if automatic {
                st.auto_retried = true;
                st.retry.auto_stage_retry_attempt += 1;
                st.retry.latest_retry_trigger = Some("AutomatedStageRetry".into());
            } else {
                st.auto_retried = false;
                st.retry.manual_stage_retry_attempt += 1;
                st.retry.latest_retry_trigger = Some("ManualStageRetry".into());
            }
            if mode == "ALL_ACTIONS" {
                for a in st.actions.iter_mut() {
                    *a = None;
                }
            } else {
                for j in &failed {
                    st.actions[*j] = None;
                }
            }
        }
        self.stage_changed(&id, i);
        self.save(&id, false);
        self.publish_exec(&id);
        if mode == "FAILED_ACTIONS" {
            // The failed actions re-run now, even while siblings still run.
            for j in failed {
                self.start_action(&id, i, j);
            }
            self.save(&id, false);
        } else {
            self.progress_stage(&id, i);
        }
        Ok(Reply::Retried {
            pipeline_execution_id: id,
        })
    }

    fn rollback(
        &mut self,
        pipeline: &str,
        stage: &str,
        target: Option<&str>,
        trigger: TriggerType,
        by: &str,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let i = ps.stage_index(stage)?;
        let unable = |m: String| api("UnableToRollbackStage", m);
        if ps.mode() == ExecutionMode::Parallel {
            return Err(unable("rollback is not available in PARALLEL mode".into()));
        }
        if i == 0 {
            return Err(unable(format!(
                "{stage} is the source stage, which cannot roll back"
            )));
        }
        if let Some(l) = &ps.locks[i] {
            return Err(unable(format!(
                "stage {stage} is in progress (execution {}); roll back when it ends",
                short(l)
            )));
        }
        if let Some(latest) = ps.latest[i].as_ref().and_then(|id| self.execs.get(id))
            && latest.stages[i].status == Some(StageStatus::Skipped)
        {
            return Err(unable(format!(
                "stage {stage} was skipped in its latest execution"
            )));
        }
        let succeeded_here = |e: &ExecRec| {
            e.stages[i].status == Some(StageStatus::Succeeded)
                && e.summary.execution_type == ExecutionType::Standard
        };
        let target = match target {
            Some(t) => {
                let e = self.exec_of(pipeline, t)?;
                if e.summary.execution_type == ExecutionType::Rollback {
                    return Err(unable(format!(
                        "execution {} is itself a rollback",
                        short(t)
                    )));
                }
                if !succeeded_here(e) {
                    return Err(unable(format!(
                        "execution {} did not succeed in stage {stage}",
                        short(t)
                    )));
                }
                if e.summary.pipeline_version != ps.version {
                    return Err(api(
                        "PipelineExecutionOutdated",
                        format!(
                            "execution {} ran pipeline version {}, the pipeline is now version {}",
                            short(t),
                            e.summary.pipeline_version,
                            ps.version
                        ),
                    ));
                }
                e.summary.pipeline_execution_id.clone()
            }
            None => {
                // The latest execution in the stage is the one to undo: the
                // target is the most recent success before it.
                let current = ps.latest[i].clone();
                ps.order
                    .iter()
                    .rev()
                    .filter(|id| Some(*id) != current.as_ref())
                    .filter_map(|id| self.execs.get(id))
                    .filter(|e| e.summary.pipeline_version == ps.version)
                    .find(|e| succeeded_here(e))
                    .map(|e| e.summary.pipeline_execution_id.clone())
                    .ok_or_else(|| {
                        unable(format!(
                            "no earlier execution succeeded in stage {stage} under pipeline version {}",
                            ps.version
                        ))
                    })?
            }
        };
        let t = &self.execs[&target];
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_rfc3339();
        let seq = ps
            .order
            .last()
            .and_then(|l| self.execs.get(l))
            .map_or(1, |e| e.seq + 1);
        let mut rec = ExecRec {
            summary: ExecutionSummary {
                pipeline_execution_id: id.clone(),
                status: ExecutionStatus::InProgress,
                status_summary: Some(format!("rollback of stage {stage} to execution {target}")),
                start_time: now.clone(),
                last_update_time: now,
                trigger: ExecutionTrigger {
                    trigger_type: trigger,
                    trigger_detail: by.to_owned(),
                },
                execution_type: ExecutionType::Rollback,
                rollback_target: Some(target.clone()),
                stop_reason: None,
                current_stage: None,
                ..t.summary.clone()
            },
            seq,
            stages: t
                .stages
                .iter()
                .map(|s| StageRec {
                    status: None,
                    retry: RetryMetadata::default(),
                    auto_retried: false,
                    entry_seq: 0,
                    actions: vec![None; s.actions.len()],
                    condition: None,
                    name: s.name.clone(),
                })
                .collect(),
            artifacts: t.artifacts.clone(),
            namespaces: t.namespaces.clone(),
            position: Position::Waiting(i),
            stop: None,
            source_overrides: BTreeMap::new(),
            attempts: BTreeMap::new(),
        };
        rec.summary.pipeline_version = ps.version;
        self.execs.insert(id.clone(), rec);
        if let Some(ps) = self.pipelines.get_mut(pipeline) {
            ps.order.push(id.clone());
        }
        self.save(&id, false);
        self.publish_exec(&id);
        // The stage is free (checked above): the rollback enters ahead of
        // any waiter.
        self.enter_stage(&id, i);
        Ok(Reply::RolledBack {
            pipeline_execution_id: id,
        })
    }

    fn set_transition(
        &mut self,
        pipeline: &str,
        stage: &str,
        disable: Option<&String>,
        by: &str,
    ) -> Result<Reply, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let i = ps.stage_index(stage)?;
        if i == 0 {
            return Err(api(
                "ValidationException",
                format!("{stage} is the first stage: it has no inbound transition"),
            ));
        }
        if let Some(reason) = disable {
            let ok = !reason.is_empty()
                && reason.chars().count() <= 300
                && reason
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!@ ().*?-".contains(c));
            if !ok {
                return Err(api(
                    "ValidationException",
                    "the reason must be 1 to 300 characters of letters, digits, spaces and !@().*?-",
                ));
            }
        }
        let state = TransitionState {
            enabled: disable.is_none(),
            last_changed_by: Some(by.to_owned()),
            last_changed_at: Some(now_rfc3339()),
            disabled_reason: disable.cloned(),
        };
        if let Some(ps) = self.pipelines.get_mut(pipeline) {
            ps.transitions[i] = state.clone();
        }
        if let Err(e) = self.store.batch(|b| b.transition(pipeline, stage, &state)) {
            return Err(api("InternalError", e.to_string()));
        }
        let _ = self.events.send(EngineEvent::TransitionChanged {
            pipeline_name: pipeline.to_owned(),
            stage_name: stage.to_owned(),
            state,
        });
        self.advance(pipeline);
        Ok(Reply::Done)
    }

    // ------------------------------------------------------ persistence

    fn save(&mut self, id: &str, include_actions: bool) {
        let Some(rec) = self.execs.get_mut(id) else {
            return;
        };
        rec.summary.current_stage = match rec.position {
            Position::Waiting(i) | Position::InStage(i) => {
                rec.stages.get(i).map(|s| s.name.clone())
            }
            Position::Done => None,
        };
        let rec = rec.clone();
        let r = self.store.batch(|b| {
            write_exec(b, &rec)?;
            if include_actions {
                for a in rec.stages.iter().flat_map(|s| s.actions.iter().flatten()) {
                    b.action_execution(a)?;
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            tracing::error!(execution = id, error = %e, "cannot store an execution");
        }
    }

    fn publish_exec(&self, id: &str) {
        if let Some(e) = self.execs.get(id) {
            let _ = self.events.send(EngineEvent::ExecutionChanged {
                execution: e.summary.clone(),
            });
        }
    }

    fn stage_changed(&mut self, id: &str, i: usize) {
        self.save(id, false);
        if let Some(e) = self.execs.get(id)
            && let Some(status) = e.stages[i].status
        {
            let _ = self.events.send(EngineEvent::StageChanged {
                pipeline_name: e.summary.pipeline_name.clone(),
                pipeline_execution_id: id.to_owned(),
                stage_name: e.stages[i].name.clone(),
                status,
            });
        }
    }

    fn audit_call(&mut self, env: &Envelope, result: &Result<Reply, ApiError>) {
        let service = env.user_agent == "engine";
        let event = AuditEvent {
            event_version: "1.09".into(),
            event_id: uuid::Uuid::new_v4().to_string(),
            event_time: now_rfc3339(),
            event_source: "codepipeline.amazonaws.com".into(),
            event_name: env.request.event_name().into(),
            aws_region: "local".into(),
            source_ip_address: if service {
                "codepipeline.amazonaws.com".into()
            } else {
                "127.0.0.1".into()
            },
            user_agent: env.user_agent.clone(),
            user_identity: UserIdentity {
                identity_type: if service { "AWSService" } else { "IAMUser" }.into(),
                principal_id: env.identity.clone(),
                arn: if service {
                    String::new()
                } else {
                    format!("arn:aws:iam::000000000000:user/{}", env.identity)
                },
                account_id: "000000000000".into(),
                user_name: (!service).then(|| env.identity.clone()),
                invoked_by: service.then(|| "codepipeline.amazonaws.com".into()),
            },
            request_parameters: serde_json::to_value(&env.request)
                .unwrap_or(serde_json::Value::Null),
            response_elements: result
                .as_ref()
                .ok()
                .and_then(|r| serde_json::to_value(r).ok()),
            error_code: result
                .as_ref()
                .err()
                .map(|e| format!("{}Exception", e.code.trim_end_matches("Exception"))),
            error_message: result.as_ref().err().map(|e| e.message.clone()),
            event_type: if service {
                "AwsServiceEvent"
            } else {
                "AwsApiCall"
            }
            .into(),
            read_only: false,
        };
        if let Err(e) = self.store.batch(|b| b.audit(&event)) {
            tracing::error!(error = %e, "cannot store an audit event");
        }
        let _ = self.events.send(EngineEvent::Audit { event });
    }
}

fn write_exec(b: &crate::store::Batch<'_>, rec: &ExecRec) -> Result<(), rusqlite::Error> {
    let s = &rec.summary;
    b.execution(
        &s.pipeline_execution_id,
        &s.pipeline_name,
        rec.seq,
        s.status.as_str(),
        s.execution_type.as_str(),
        &s.start_time,
        rec,
    )?;
    for st in &rec.stages {
        if st.status.is_some() {
            b.stage_execution(
                &s.pipeline_execution_id,
                &st.name,
                st.status.map(StageStatus::as_str),
                st,
            )?;
        }
    }
    for (k, v) in &s.variables {
        b.variable(&s.pipeline_execution_id, "variables", k, v)?;
    }
    for (ns, m) in &rec.namespaces {
        for (k, v) in m {
            b.variable(&s.pipeline_execution_id, ns, k, v)?;
        }
    }
    Ok(())
}

/// Marks whatever was running in `rec` as interrupted (Failed).
fn recover_interrupted(rec: &mut ExecRec, now: &str) {
    for st in rec.stages.iter_mut() {
        let mut touched = false;
        for a in st.actions.iter_mut().flatten() {
            if a.status == ActionStatus::InProgress {
                a.status = ActionStatus::Failed;
                a.token = None;
                a.summary = Some(INTERRUPTED.into());
                a.error_details = Some(ErrorDetails {
                    code: "JobFailed".into(),
                    message: INTERRUPTED.into(),
                });
                a.last_status_change = now.to_owned();
                touched = true;
            }
        }
        if matches!(
            st.status,
            Some(StageStatus::InProgress | StageStatus::Stopping)
        ) || touched
        {
            st.status = Some(if st.status == Some(StageStatus::Stopping) {
                StageStatus::Stopped
            } else {
                StageStatus::Failed
            });
        }
    }
    rec.summary.status = if rec.summary.status == ExecutionStatus::Stopping {
        ExecutionStatus::Stopped
    } else {
        ExecutionStatus::Failed
    };
    rec.summary.status_summary = Some(INTERRUPTED.into());
    rec.summary.last_update_time = now.to_owned();
    rec.stop = None;
    if let Position::Waiting(_) = rec.position {
        rec.position = Position::Done;
    }
}

fn scope_of(e: &ExecRec) -> Scope {
    let mut scope: Scope = e.namespaces.clone();
    scope.insert(
        "codepipeline".into(),
        BTreeMap::from([(
            "PipelineExecutionId".to_owned(),
            e.summary.pipeline_execution_id.clone(),
        )]),
    );
    scope.insert("variables".into(), e.summary.variables.clone());
    scope
}

fn action_timeout(ws: &Workspace, action: &crate::model::pipeline::Action) -> Duration {
    if let Some(m) = action.timeout_in_minutes {
        return Duration::from_secs(u64::from(m) * 60);
    }
    let minutes: f64 = match (action.action_type_id.category.as_str(), action.provider()) {
        (_, "CodeBuild") => action
            .configuration
            .get("ProjectName")
            .and_then(|p| ws.projects.get(p))
            .and_then(|p| p.timeout_minutes)
            .unwrap_or(8.0 * 60.0),
        ("Invoke", _) => action
            .configuration
            .get("FunctionName")
            .and_then(|f| ws.functions.get(f))
            .and_then(|f| f.timeout_minutes)
            .unwrap_or(20.0),
        ("Deploy", _) => 5.0 * 24.0 * 60.0,
        ("Source", _) => 60.0,
        _ => 8.0 * 60.0,
    };
    Duration::from_secs_f64(minutes.max(0.0) * 60.0)
}

struct CtxBase {
    pipeline: String,
    execution_id: String,
    stage: String,
    aeid: String,
    action: crate::model::pipeline::Action,
    source_revision: Option<String>,
    timeout: Duration,
}

struct Job {
    exec: String,
    stage: usize,
    action_index: usize,
    ctx_base: CtxBase,
    inputs: Vec<(String, String)>,
    revisions: Vec<String>,
}

async fn run_job(
    job: Job,
    provider: Arc<dyn providers::Provider>,
    ws: Arc<Workspace>,
    artifacts: ArtifactStore,
    events: broadcast::Sender<EngineEvent>,
    stop_tx: Arc<watch::Sender<bool>>,
    stop_rx: watch::Receiver<bool>,
) -> ActionDone {
    let base = job.ctx_base;
    let aeid = base.aeid.clone();
    let work_dir = ws.state_dir.join("work").join(&aeid);
    let cache_dir = ws.state_dir.join("cache").join(sanitize(&format!(
        "{}-{}-{}",
        base.pipeline, base.stage, base.action.name
    )));
    let lines = Arc::new(AtomicU64::new(0));
    let done =
        |outcome: ActionOutcome, artifacts: Vec<(String, StoredArtifact)>, lines: u64| ActionDone {
            exec: job.exec.clone(),
            stage: job.stage,
            action: job.action_index,
            action_execution_id: aeid.clone(),
            outcome,
            artifacts,
            lines,
        };
    let log = {
        let lines = lines.clone();
        let id = aeid.clone();
        match LogWriter::create(&ws.state_dir.join("logs"), &aeid) {
            Ok(w) => w.on_flush(Box::new(move |n| {
                lines.store(n, Ordering::Relaxed);
                let _ = events.send(EngineEvent::LogAppended {
                    action_execution_id: id.clone(),
                    lines: n,
                });
            })),
            Err(e) => {
                return done(
                    ActionOutcome::failed(
                        "JobFailed",
                        format!(
                            "cannot create the action's log in {}: {e}",
                            ws.state_dir.display()
                        ),
                    ),
                    Vec::new(),
                    0,
                );
            }
        }
    };
    // Inputs: a fresh copy of each artifact.
    let mut inputs = Vec::new();
    for (n, (name, id)) in job.inputs.iter().enumerate() {
        let dir = work_dir.join("in").join(sanitize(name));
        let (a, d, i) = (artifacts.clone(), dir.clone(), id.clone());
        let r = tokio::task::spawn_blocking(move || a.materialize(&i, &d)).await;
        match r {
            Ok(Ok(())) => inputs.push(InputArtifact {
                name: name.clone(),
                dir,
                revision: job.revisions.get(n).cloned(),
            }),
            Ok(Err(e)) => {
                return done(
                    ActionOutcome::failed("JobFailed", format!("input artifact {name}: {e}")),
                    Vec::new(),
                    0,
                );
            }
            Err(e) => {
                return done(
                    ActionOutcome::failed("JobFailed", format!("input artifact {name}: {e}")),
                    Vec::new(),
                    0,
                );
            }
        }
    }
    let out_dir = work_dir.join("out");
    if let Err(e) = tokio::fs::create_dir_all(&out_dir).await {
        return done(
            ActionOutcome::failed("JobFailed", format!("{}: {e}", out_dir.display())),
            Vec::new(),
            0,
        );
    }
    let _ = tokio::fs::create_dir_all(&cache_dir).await;
    let timeout = base.timeout;
    let ctx = ActionContext {
        pipeline: base.pipeline,
        execution_id: base.execution_id,
        stage: base.stage,
        action_execution_id: aeid.clone(),
        action: base.action,
        inputs,
        work_dir: out_dir,
        cache_dir,
        workspace: ws.clone(),
        source_revision: base.source_revision,
        stop: stop_rx,
        timeout,
        log: Box::new(log),
    };
    let mut fut = provider.run(ctx);
    let outcome = tokio::select! {
        o = &mut fut => o,
        () = tokio::time::sleep(timeout) => {
            let _ = stop_tx.send(true);
            let _ = fut.await;
            ActionOutcome::failed(
                "JobFailed",
                format!("the action timed out after {}", humantime::format_duration(timeout)),
            )
        }
    };
    let mut stored = Vec::new();
    let mut outcome = outcome;
    if outcome.status == OutcomeStatus::Succeeded {
        for (name, dir) in outcome.output_artifacts.clone() {
            let a = artifacts.clone();
            match tokio::task::spawn_blocking(move || a.ingest(&dir)).await {
                Ok(Ok(s)) => stored.push((name, s)),
                Ok(Err(e)) => {
                    outcome = ActionOutcome::failed(
                        "JobFailed",
                        format!("cannot store output artifact {name}: {e}"),
                    );
                    break;
                }
                Err(e) => {
                    outcome = ActionOutcome::failed(
                        "JobFailed",
                        format!("cannot store output artifact {name}: {e}"),
                    );
                    break;
                }
            }
        }
    }
    let wd = work_dir.clone();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(wd)).await;
    done(outcome, stored, lines.load(Ordering::Relaxed))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where an action execution's log lives.
pub fn log_dir(ws: &Workspace) -> PathBuf {
    ws.state_dir.join("logs")
}
