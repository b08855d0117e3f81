//! A backend with scripted state, for tests of the TUI loop and the CLI:
//! reads answer from what the test put in, mutations are recorded (and
//! answered as the real engine answers a success), and the test can
//! publish events, fail an operation or make the backend go away.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use super::{Backend, BoxFuture, Events, events_from_broadcast};
use crate::api::env::EnvironmentSummary;
use crate::api::{
    ActionExecutionDetail, ApiError, AuditEvent, EngineEvent, ExecutionSummary, LogPage,
    PipelineState, PipelineSummary, Reply, Request,
};
use crate::model::pipeline::Pipeline;

#[derive(Default)]
pub struct FakeState {
    pub pipelines: Vec<PipelineSummary>,
    pub definitions: BTreeMap<String, Pipeline>,
    pub states: BTreeMap<String, PipelineState>,
    /// Newest first, by pipeline.
    pub executions: BTreeMap<String, Vec<ExecutionSummary>>,
    /// Newest first, by pipeline execution id.
    pub actions: BTreeMap<String, Vec<ActionExecutionDetail>>,
    /// By [`crate::api::LogRef::key`].
    pub logs: BTreeMap<String, Vec<String>>,
    /// Newest first.
    pub audit: Vec<AuditEvent>,
    pub environments: Vec<EnvironmentSummary>,
    /// Operations (by `Request::event_name`) answered with this error.
    pub failures: BTreeMap<String, ApiError>,
    /// Every request received, in order.
    pub calls: Vec<Request>,
    /// Gone: every call fails as a vanished engine's would.
    pub gone: bool,
    /// What EngineInfo says the engine could not write.
    pub store_problem: Option<String>,
    /// ListSourceCommits answers, by [`FakeState::commits_key`].
    pub commits: BTreeMap<String, crate::api::types::SourceCommits>,
}

impl FakeState {
    /// `<execution id>/since-live` or `<execution id>/to-branch-head`.
    pub fn commits_key(execution: &str, range: &crate::api::types::CommitRange) -> String {
        match range {
            crate::api::types::CommitRange::SinceLive { .. } => format!("{execution}/since-live"),
            crate::api::types::CommitRange::ToBranchHead => format!("{execution}/to-branch-head"),
        }
    }
}

/// GetPipeline's metadata for a fake pipeline at `version`.
fn metadata(name: &str, version: u32) -> crate::api::PipelineMetadata {
    crate::api::PipelineMetadata {
        pipeline_name: name.to_owned(),
        pipeline_version: version,
        current_version: version,
        created: "2026-12-01T00:00:00Z".into(),
        updated: "2026-12-01T00:00:00Z".into(),
    }
}

pub struct Fake {
    pub state: Mutex<FakeState>,
    /// Dropped when the fake goes away, which ends every subscription.
    events: Mutex<Option<broadcast::Sender<EngineEvent>>>,
}

impl Default for Fake {
    fn default() -> Self {
        Fake::new(FakeState::default())
    }
}

impl Fake {
    pub fn new(state: FakeState) -> Fake {
        Fake {
            state: Mutex::new(state),
            events: Mutex::new(Some(broadcast::channel(1024).0)),
        }
    }

    /// Publishes an event to every subscriber.
    pub fn publish(&self, e: EngineEvent) {
        if let Ok(g) = self.events.lock()
            && let Some(tx) = g.as_ref()
        {
            let _ = tx.send(e);
        }
    }

    /// Changes the state (a poisoned lock is taken over: tests only).
    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        let mut g = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// The requests received so far, by operation name.
    pub fn call_names(&self) -> Vec<&'static str> {
        self.with(|s| s.calls.iter().map(Request::event_name).collect())
    }

    /// Ends every subscription and fails every later call.
    pub fn go_away(&self) {
        self.with(|s| s.gone = true);
        if let Ok(mut g) = self.events.lock() {
            g.take();
        }
    }

    fn answer(&self, request: &Request) -> Result<Reply, ApiError> {
        self.with(|s| {
            s.calls.push(request.clone());
            if s.gone {
                return Err(ApiError::new("EngineUnreachable", "the engine has gone"));
            }
            if let Some(e) = s.failures.get(request.event_name()) {
                return Err(e.clone());
            }
            let not_found = |what: &str| {
                ApiError::new("PipelineNotFoundException", format!("no pipeline `{what}`"))
            };
            match request {
                Request::ListPipelines { .. } => Ok(Reply::Pipelines {
                    pipelines: s.pipelines.clone(),
                    next_token: None,
                }),
                Request::GetPipeline { pipeline_name, .. } => Ok(Reply::Pipeline {
                    pipeline: Box::new(
                        s.definitions
                            .get(pipeline_name)
                            .cloned()
                            .ok_or_else(|| not_found(pipeline_name))?,
                    ),
                    metadata: metadata(pipeline_name, 1),
                }),
                Request::GetPipelineState { pipeline_name } => Ok(Reply::State {
                    state: s
                        .states
                        .get(pipeline_name)
                        .cloned()
                        .ok_or_else(|| not_found(pipeline_name))?,
                }),
                Request::ListPipelineExecutions {
                    pipeline_name,
                    max_results,
                    ..
                } => Ok(Reply::Executions {
                    next_token: None,
                    executions: s
                        .executions
                        .get(pipeline_name)
                        .map(|v| {
                            v.iter()
                                .take(max_results.unwrap_or(100) as usize)
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
                Request::GetPipelineExecution {
                    pipeline_name,
                    pipeline_execution_id,
                } => s
                    .executions
                    .get(pipeline_name)
                    .and_then(|v| {
                        v.iter()
                            .find(|e| &e.pipeline_execution_id == pipeline_execution_id)
                    })
                    .map(|e| Reply::Execution {
                        execution: e.clone(),
                    })
                    .ok_or_else(|| {
                        ApiError::new(
                            "PipelineExecutionNotFoundException",
                            format!("no execution {pipeline_execution_id}"),
                        )
                    }),
                Request::ListActionExecutions {
                    pipeline_execution_id,
                    ..
                } => Ok(Reply::ActionExecutions {
                    next_token: None,
                    actions: s
                        .actions
                        .get(pipeline_execution_id)
                        .cloned()
                        .unwrap_or_default(),
                }),
                Request::LookupEvents { max_results, .. } => Ok(Reply::Events {
                    next_token: None,
                    events: s
                        .audit
                        .iter()
                        .take(max_results.unwrap_or(50) as usize)
                        .cloned()
                        .collect(),
                }),
                Request::ListEnvironments => Ok(Reply::Environments {
                    environments: s.environments.clone(),
                }),
                Request::GetLogEvents {
                    log,
                    start_line,
                    limit,
                } => {
                    let lines = s.logs.get(&log.key()).ok_or_else(|| {
                        ApiError::new(
                            "ResourceNotFoundException",
                            format!("log {log} does not exist (yet)"),
                        )
                    })?;
                    let total = lines.len() as u64;
                    let start = start_line.unwrap_or(total.saturating_sub(u64::from(*limit)));
                    let page: Vec<String> = lines
                        .iter()
                        .skip(start as usize)
                        .take(*limit as usize)
                        .cloned()
                        .collect();
                    Ok(Reply::LogEvents {
                        page: LogPage {
                            total,
                            start,
                            times: vec![None; page.len()],
                            lines: page,
                        },
                    })
                }
                Request::FilterLogEvents {
                    log,
                    pattern,
                    regex,
                    ..
                } => {
                    // As the engine: a regex when asked, else plain text.
                    let re = if *regex {
                        Some(regex::Regex::new(pattern).map_err(|e| {
                            ApiError::new(
                                "InvalidParameterException",
                                format!("invalid pattern: {e}"),
                            )
                        })?)
                    } else {
                        None
                    };
                    let hit = |x: &str| match &re {
                        Some(re) => re.is_match(x),
                        None => x.contains(pattern.as_str()),
                    };
                    Ok(Reply::LogMatches {
                        lines: s
                            .logs
                            .get(&log.key())
                            .map(|l| {
                                l.iter()
                                    .enumerate()
                                    .filter(|(_, x)| hit(x))
                                    .map(|(i, _)| i as u64)
                                    .collect()
                            })
                            .unwrap_or_default(),
                        truncated: false,
                    })
                }
                Request::StartPipelineExecution { .. } => Ok(Reply::Started {
                    pipeline_execution_id: format!("fake-{:04}", s.calls.len()),
                }),
                Request::StopPipelineExecution {
                    pipeline_execution_id,
                    ..
                } => Ok(Reply::Stopped {
                    pipeline_execution_id: pipeline_execution_id.clone().unwrap_or_default(),
                }),
                Request::RetryStageExecution {
                    pipeline_execution_id,
                    ..
                } => Ok(Reply::Retried {
                    pipeline_execution_id: pipeline_execution_id.clone().unwrap_or_default(),
                }),
                Request::PutApprovalResult { .. } => Ok(Reply::ApprovalRecorded {
                    approved_at: "2026-12-01T00:00:00Z".into(),
                }),
                Request::RollbackStage { .. } => Ok(Reply::RolledBack {
                    pipeline_execution_id: format!("fake-rb-{:04}", s.calls.len()),
                }),
                Request::DisableStageTransition { .. } | Request::EnableStageTransition { .. } => {
                    Ok(Reply::Done)
                }
                Request::RollbackEnvironment { environment_name } => Ok(Reply::Message {
                    message: format!("{environment_name} rolled back"),
                }),
                Request::FluxObject {
                    environment_name,
                    object,
                    operation,
                } => Ok(Reply::Message {
                    message: format!(
                        "{} of {object} in {environment_name} done",
                        operation.as_str()
                    ),
                }),
                Request::UpdatePipeline { pipeline } => {
                    s.definitions
                        .insert(pipeline.name.clone(), (**pipeline).clone());
                    Ok(Reply::Pipeline {
                        pipeline: pipeline.clone(),
                        metadata: metadata(&pipeline.name, 2),
                    })
                }
                Request::ListSourceCommits {
                    pipeline_execution_id,
                    range,
                    ..
                } => s
                    .commits
                    .get(&FakeState::commits_key(pipeline_execution_id, range))
                    .map(|c| Reply::SourceCommits { commits: c.clone() })
                    .ok_or_else(|| {
                        ApiError::new(
                            "RevisionNotFound",
                            format!("no commits for {pipeline_execution_id}"),
                        )
                    }),
                Request::EngineInfo => Ok(Reply::Info {
                    info: crate::api::EngineInfo {
                        workspace: "fake".into(),
                        workspace_root: String::new(),
                        pid: std::process::id(),
                        started: "2026-12-01T00:00:00Z".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        running_executions: 0,
                        store_problem: s.store_problem.clone(),
                    },
                }),
            }
        })
    }
}

impl Backend for Fake {
    fn call(&self, request: Request) -> BoxFuture<'_, Result<Reply, ApiError>> {
        let r = self.answer(&request);
        Box::pin(async move { r })
    }

    fn subscribe(&self) -> BoxFuture<'_, Result<Events, ApiError>> {
        let gone = self.with(|s| s.gone);
        let rx = self
            .events
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(broadcast::Sender::subscribe));
        Box::pin(async move {
            match rx {
                Some(rx) if !gone => Ok(events_from_broadcast(rx)),
                _ => Err(ApiError::new("EngineUnreachable", "the engine has gone")),
            }
        })
    }

    fn describe(&self) -> String {
        "fake backend".into()
    }

    fn hosted(&self) -> bool {
        false
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
