//! The AWS backend: the same contract over real CodePipeline, CodeBuild,
//! CloudWatch Logs and CloudTrail, for one or several accounts and
//! regions at once.
//!
//! Design: one [`Account`] per (profile, region), each with its own request
//! budget, cache and poller; this backend fans `ListPipelines` (and the
//! audit trail) out to all of them and routes every other request by
//! pipeline name. With one account names are AWS's own; with several they
//! are `<label>:<region>/<name>`, which gives the Pipelines screen its
//! account and region columns without changing it. An account that fails
//! is left out of the list (its error is in the header) and never blocks
//! the others.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use super::{Backend, BoxFuture, Events, events_from_broadcast};
use crate::api::{ApiError, AuditEvent, EngineEvent, EngineInfo, Reply, Request};
use crate::aws::account::{Account, Intervals};
use crate::aws::{AwsTarget, Clients, poller};

pub struct AwsBackend {
    accounts: Vec<(String, Arc<Account>)>,
    state_dir: PathBuf,
    events: broadcast::Sender<EngineEvent>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    polling: std::sync::atomic::AtomicBool,
    /// Open logs being followed: last read (unix ms) by action execution id.
    followers: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
    audit: Mutex<Option<(tokio::time::Instant, Vec<AuditEvent>)>>,
    identity: String,
    user_agent: String,
    started: String,
}

/// The workspace of `--aws` outside a workspace: only its state dir is
/// used (the log mirror and the local audit trail of AWS operations).
pub fn workspace(data_dir: &std::path::Path) -> crate::config::workspace::Workspace {
    crate::config::workspace::Workspace {
        root: data_dir.join("aws"),
        name: "aws".into(),
        state_dir: data_dir.join("aws"),
        pipelines: Vec::new(),
        repositories: Default::default(),
        projects: Default::default(),
        functions: Default::default(),
        secrets: Default::default(),
        identity: std::env::var("USER").unwrap_or_else(|_| "pipedeck".into()),
        approval_timeout: std::time::Duration::from_secs(7 * 24 * 3600),
        poll_interval: std::time::Duration::from_secs(2),
        triggers: false,
        environments: Default::default(),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// How often the status task compares the accounts' condition.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// The header's line: every account's [`Account::describe`].
fn describe_of(accounts: &[(String, Arc<Account>)]) -> String {
    accounts
        .iter()
        .map(|(_, a)| a.describe())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Each account whose updates are slow or stale (named when there are
/// several), `None` when all are normal.
fn note_of(accounts: &[(String, Arc<Account>)]) -> Option<String> {
    let several = accounts.len() > 1;
    let notes: Vec<String> = accounts
        .iter()
        .filter_map(|(_, a)| {
            a.note().map(|n| {
                if several {
                    format!("{}/{}: {n}", a.target.label, a.clients.region)
                } else {
                    n
                }
            })
        })
        .collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

fn route_error(name: &str) -> ApiError {
    ApiError::new(
        "PipelineNotFoundException",
        format!(
            "no account holds a pipeline named {name} (with several accounts, names are <account>:<region>/<pipeline>)"
        ),
    )
}

impl AwsBackend {
    /// Loads the clients of every target (no call is made yet) and starts
    /// their pollers.
    pub async fn connect(
        targets: &[AwsTarget],
        intervals: Intervals,
        state_dir: PathBuf,
        user_agent: &str,
    ) -> AwsBackend {
        let mut accounts = Vec::new();
        for t in targets {
            let clients = Clients::load(t).await;
            accounts.push((t.clone(), clients));
        }
        let b = AwsBackend::with_clients(accounts, intervals, state_dir, user_agent);
        // The header's account ids (STS GetCallerIdentity), all accounts at
        // once, never waiting more than 3 s for one that does not answer.
        let mut set = tokio::task::JoinSet::new();
        for a in b.accounts() {
            let a = a.clone();
            set.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(3), a.whoami()).await;
            });
        }
        while set.join_next().await.is_some() {}
        b
    }

    /// Built from ready clients (tests: mocks, moto, the local AWS API).
    pub fn with_clients(
        accounts: Vec<(AwsTarget, Clients)>,
        intervals: Intervals,
        state_dir: PathBuf,
        user_agent: &str,
    ) -> AwsBackend {
        let several = accounts.len() > 1;
        let accounts: Vec<(String, Arc<Account>)> = accounts
            .into_iter()
            .map(|(t, c)| {
                let prefix = if several {
                    format!("{}:{}/", t.label, c.region)
                } else {
                    String::new()
                };
                (prefix, Arc::new(Account::new(t, c, intervals)))
            })
            .collect();
        let (events, _) = broadcast::channel(4096);
        AwsBackend {
            accounts,
            state_dir,
            events,
            tasks: Mutex::new(Vec::new()),
            polling: std::sync::atomic::AtomicBool::new(false),
            followers: Arc::new(Mutex::new(HashMap::new())),
            audit: Mutex::new(None),
            identity: std::env::var("USER").unwrap_or_else(|_| "pipedeck".into()),
            user_agent: user_agent.to_owned(),
            started: now_rfc3339(),
        }
    }

    /// Starts one poller per account, once: the first subscriber does
    /// (the TUI and `--follow` need events; one-shot commands do not).
    pub fn start_pollers(&self) {
        if self.polling.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for (prefix, a) in &self.accounts {
            let (a, p, tx) = (a.clone(), prefix.clone(), self.events.clone());
            tasks.push(tokio::spawn(async move {
                // The header's account id first, then the states.
                if let Err(e) = a.whoami().await {
                    tracing::warn!(%e, "GetCallerIdentity");
                }
                poller::run(a, p, tx).await;
            }));
        }
        // The header and footer learn when updates slow down (throttling,
        // an account that stops answering) and when they are normal again.
        let (accounts, tx) = (self.accounts.clone(), self.events.clone());
        tasks.push(tokio::spawn(async move {
            let status =
                |accounts: &[(String, Arc<Account>)]| (describe_of(accounts), note_of(accounts));
            let mut last = status(&accounts);
            loop {
                tokio::time::sleep(STATUS_EVERY).await;
                let now = status(&accounts);
                if now != last {
                    let _ = tx.send(EngineEvent::BackendStatus {
                        description: now.0.clone(),
                        note: now.1.clone(),
                    });
                    last = now;
                }
            }
        }));
    }

    /// What the footer says about updates (see [`note_of`]).
    pub fn note(&self) -> Option<String> {
        note_of(&self.accounts)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts.iter().map(|(_, a)| a)
    }

    /// Calls made so far, all accounts.
    pub fn calls(&self) -> u64 {
        self.accounts()
            .map(|a| a.budget.calls() + a.trail_budget.calls())
            .sum()
    }

    /// The account of a pipeline name as the screens know it, and the
    /// name as AWS knows it.
    fn route<'a>(
        &'a self,
        name: &'a str,
    ) -> Result<(&'a str, &'a Arc<Account>, &'a str), ApiError> {
        if let [(p, a)] = self.accounts.as_slice() {
            return Ok((p, a, name));
        }
        self.accounts
            .iter()
            .find_map(|(p, a)| name.strip_prefix(p.as_str()).map(|n| (p.as_str(), a, n)))
            .ok_or_else(|| route_error(name))
    }

    fn account_of_action(&self, aeid: &str) -> Option<&Arc<Account>> {
        self.accounts()
            .find(|a| a.action(aeid).is_some())
            .or_else(|| self.accounts().next())
    }

    /// The account whose log `log` is (an action's, else the first).
    fn account_of_log(&self, log: &crate::api::LogRef) -> Result<&Arc<Account>, ApiError> {
        match log {
            crate::api::LogRef::Action {
                action_execution_id,
            } => self.account_of_action(action_execution_id),
            _ => self.accounts().next(),
        }
        .ok_or_else(|| ApiError::new("InternalError", "no AWS account"))
    }

    /// Every account's pipelines, those of unreachable accounts left out.
    async fn list(&self) -> Result<Reply, ApiError> {
        let mut set = tokio::task::JoinSet::new();
        for (i, (p, a)) in self.accounts.iter().enumerate() {
            let (p, a) = (p.clone(), a.clone());
            set.spawn(async move { (i, p, a.pipelines().await, a) });
        }
        let mut parts = Vec::new();
        let mut first_err = None;
        while let Some(r) = set.join_next().await {
            let Ok((i, p, r, a)) = r else { continue };
            match r {
                Ok(list) => {
                    a.set_error(None);
                    parts.push((i, p, list));
                }
                Err(e) => {
                    tracing::warn!(account = %a.target.label, %e, "ListPipelines");
                    a.set_error(Some(e.clone()));
                    first_err.get_or_insert(e);
                }
            }
        }
        if parts.is_empty()
            && let Some(e) = first_err
        {
            return Err(e);
        }
        parts.sort_by_key(|(i, _, _)| *i);
        let mut pipelines = Vec::new();
        for (_, p, list) in parts {
            for mut s in list {
                s.name = format!("{p}{}", s.name);
                if let Some(x) = s.latest_execution.as_mut() {
                    x.pipeline_name = s.name.clone();
                }
                pipelines.push(s);
            }
        }
        Ok(Reply::Pipelines {
            pipelines,
            next_token: None,
        })
    }

    async fn audit_events(&self, max: u32) -> Result<Vec<AuditEvent>, ApiError> {
        if let Some((at, ev)) = self.audit.lock().ok().and_then(|g| g.clone())
            && at.elapsed() < Duration::from_secs(30)
        {
            return Ok(ev);
        }
        // LookupEvents pages hold 50 events at 2 calls/s: the screen gets
        // the newest 100 per account.
        let want = max.min(100);
        let mut all = Vec::new();
        let mut first_err = None;
        for a in self.accounts() {
            match a.pipeline_events(want, None).await {
                Ok((ev, _)) => all.extend(ev),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
            all.extend(self.failed_build_trails(a).await);
        }
        if all.is_empty()
            && let Some(e) = first_err
        {
            return Err(e);
        }
        all.sort_by(|a, b| b.event_time.cmp(&a.event_time));
        if let Ok(mut g) = self.audit.lock() {
            *g = Some((tokio::time::Instant::now(), all.clone()));
        }
        Ok(all)
    }

    /// The failed calls of the build sessions of recently failed CodeBuild
    /// actions (the newest 3), for the diagnosis, which reads the audit
    /// trail; while they may still be arriving, a record says so.
    async fn failed_build_trails(&self, a: &Account) -> Vec<AuditEvent> {
        let mut failed: Vec<_> = a
            .cache()
            .by_aeid
            .values()
            .filter(|d| {
                d.status == crate::api::types::ActionStatus::Failed
                    && d.external_execution_id
                        .as_deref()
                        .is_some_and(|x| x.contains(':'))
            })
            .cloned()
            .collect();
        failed.sort_by(|x, y| y.last_status_change.cmp(&x.last_status_change));
        let ids: Vec<String> = failed
            .iter()
            .take(3)
            .filter_map(|d| d.external_execution_id.clone())
            .collect();
        let Ok(builds) = a.builds(&ids).await else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for b in builds {
            match a.build_trail(&b, now_ms() as i64).await {
                Ok((events, findings)) => {
                    out.extend(events);
                    for f in findings
                        .into_iter()
                        .filter(|f| f.rule == "aws.cloudtrail_arriving")
                    {
                        out.push(arriving_record(&b.id, &f.title, &f.fix));
                    }
                }
                Err(e) => tracing::warn!(%e, "LookupEvents for build {}", b.id),
            }
        }
        out
    }

    fn record(&self, req: &Request, result: &Result<Reply, ApiError>) {
        let line = serde_json::json!({
            "eventTime": now_rfc3339(),
            "eventSource": "codepipeline.amazonaws.com",
            "eventName": req.event_name(),
            "userAgent": self.user_agent,
            "identity": self.identity,
            "requestParameters": req,
            "errorCode": result.as_ref().err().map(|e| e.code.clone()),
            "errorMessage": result.as_ref().err().map(|e| e.message.clone()),
        });
        let path = self.state_dir.join("aws").join("audit.jsonl");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            std::fs::create_dir_all(self.state_dir.join("aws"))?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(f, "{line}")
        };
        if let Err(e) = write() {
            tracing::warn!(%e, "writing {}", path.display());
        }
    }

    /// A log read while its build runs starts (or keeps alive) a follower
    /// that publishes `LogAppended`; it stops when the build ends or the
    /// log has not been read for a minute (the view closed).
    fn touch_follower(&self, account: &Arc<Account>, aeid: &str) {
        let running = account
            .action(aeid)
            .is_some_and(|d| d.status == crate::api::types::ActionStatus::InProgress);
        let mut f = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = f.get(aeid) {
            t.store(now_ms(), Ordering::Relaxed);
            return;
        }
        if !running {
            return;
        }
        let last = Arc::new(AtomicU64::new(now_ms()));
        f.insert(aeid.to_owned(), last.clone());
        let keep = move || now_ms().saturating_sub(last.load(Ordering::Relaxed)) < 60_000;
        let every = account.intervals.running.min(Duration::from_secs(2));
        let fut = crate::aws::logs::follow(
            account.clone(),
            self.state_dir.clone(),
            aeid.to_owned(),
            every,
            self.events.clone(),
            keep,
        );
        let (map, id) = (self.followers.clone(), aeid.to_owned());
        let task = tokio::spawn(async move {
            let mode = fut.await;
            tracing::info!(?mode, "log follower of {id} ended");
            map.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    async fn answer(&self, request: Request) -> Result<Reply, ApiError> {
        match &request {
            Request::ListPipelines { .. } => self.list().await,
            Request::GetPipelineState { pipeline_name } => {
                let (p, a, n) = self.route(pipeline_name)?;
                let mut state = a.state(n).await?;
                state.pipeline_name = format!("{p}{n}");
                Ok(Reply::State { state })
            }
            Request::GetPipeline {
                pipeline_name,
                pipeline_version,
            } => {
                let (p, a, n) = self.route(pipeline_name)?;
                let (mut pipeline, mut metadata) = a.definition(n, *pipeline_version).await?;
                pipeline.name = format!("{p}{n}");
                metadata.pipeline_name = pipeline.name.clone();
                Ok(Reply::Pipeline {
                    pipeline: Box::new(pipeline),
                    metadata,
                })
            }
            Request::ListPipelineExecutions {
                pipeline_name,
                max_results,
                next_token,
            } => {
                let (p, a, n) = self.route(pipeline_name)?;
                let (mut executions, next_token) = if next_token.is_none() {
                    let mut l = a.executions(n).await?;
                    l.truncate(max_results.unwrap_or(50) as usize);
                    (l, None)
                } else {
                    a.fetch_executions(n, *max_results, next_token.clone())
                        .await?
                };
                for e in &mut executions {
                    e.pipeline_name = format!("{p}{n}");
                }
                Ok(Reply::Executions {
                    executions,
                    next_token,
                })
            }
            Request::GetPipelineExecution {
                pipeline_name,
                pipeline_execution_id,
            } => {
                let (p, a, n) = self.route(pipeline_name)?;
                let mut execution = a.execution(n, pipeline_execution_id).await?;
                execution.pipeline_name = format!("{p}{n}");
                Ok(Reply::Execution { execution })
            }
            Request::ListActionExecutions {
                pipeline_name,
                pipeline_execution_id,
                ..
            } => {
                let (_, a, n) = self.route(pipeline_name)?;
                let mut actions = a.action_executions(n, pipeline_execution_id).await?;
                // Phases for the Logs screen's headers: one BatchGetBuilds
                // for every CodeBuild action of the page.
                let ids: Vec<String> = actions
                    .iter()
                    .filter_map(|d| d.external_execution_id.clone())
                    .filter(|x| x.contains(':') && !x.contains('/'))
                    .collect();
                if let Ok(builds) = a.builds(&ids).await {
                    for d in &mut actions {
                        if let Some(b) = builds
                            .iter()
                            .find(|b| Some(&b.id) == d.external_execution_id.as_ref())
                        {
                            d.phases = b.phases.clone();
                        }
                    }
                }
                Ok(Reply::ActionExecutions {
                    actions,
                    next_token: None,
                })
            }
            Request::GetLogEvents {
                log,
                start_line,
                limit,
            } => {
                let a = self.account_of_log(log)?;
                let page = a
                    .read_stream(&self.state_dir, log, *start_line, *limit)
                    .await?;
                if let crate::api::LogRef::Action {
                    action_execution_id,
                } = log
                {
                    self.touch_follower(a, action_execution_id);
                }
                Ok(Reply::LogEvents { page })
            }
            Request::FilterLogEvents {
                log,
                pattern,
                regex,
                limit,
            } => {
                let a = self.account_of_log(log)?;
                let (lines, truncated) = a
                    .search_stream(
                        &self.state_dir,
                        log,
                        pattern,
                        *regex,
                        limit.unwrap_or(crate::store::log_query::MAX_MATCHES),
                    )
                    .await?;
                Ok(Reply::LogMatches { lines, truncated })
            }
            Request::LookupEvents {
                max_results,
                next_token: _,
            } => {
                let mut events = self.audit_events(max_results.unwrap_or(50)).await?;
                events.truncate(max_results.unwrap_or(50) as usize);
                Ok(Reply::Events {
                    events,
                    next_token: None,
                })
            }
            Request::EngineInfo => Ok(Reply::Info {
                info: EngineInfo {
                    workspace: self.describe(),
                    workspace_root: String::new(),
                    pid: std::process::id(),
                    started: self.started.clone(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    running_executions: 0,
                    store_problem: None,
                },
            }),
            Request::ListEnvironments => Ok(Reply::Environments {
                environments: Vec::new(),
            }),
            Request::RollbackEnvironment { environment_name } => Err(ApiError::new(
                "UnsupportedOperation",
                format!(
                    "{environment_name}: environments are local; on AWS, roll back with RollbackStage"
                ),
            )),
            Request::ListSourceCommits { .. } => Err(ApiError::new(
                "UnsupportedOperation",
                "the commits between releases are not available on AWS: CodePipeline does not \
                 read the repository (the execution's revision and its summary are shown instead)",
            )),
            Request::FluxObject {
                environment_name, ..
            } => Err(ApiError::new(
                "UnsupportedOperation",
                format!(
                    "{environment_name}: Flux objects belong to a workspace's kubernetes environments"
                ),
            )),
            mutating => {
                let name = pipeline_of(mutating).unwrap_or_default();
                let (_, a, n) = self.route(name)?;
                let req = rename(mutating, n);
                let result = a.mutate(&req).await;
                a.invalidate(n);
                if let Ok(mut g) = self.audit.lock() {
                    *g = None;
                }
                self.record(mutating, &result);
                result
            }
        }
    }
}

/// An audit record that tells the diagnosis CloudTrail may not have
/// everything yet.
fn arriving_record(build: &str, title: &str, fix: &str) -> AuditEvent {
    AuditEvent {
        event_version: "1.08".into(),
        event_id: format!("pipedeck-arriving-{build}"),
        event_time: now_rfc3339(),
        event_source: "cloudtrail.amazonaws.com".into(),
        event_name: "LookupEvents".into(),
        aws_region: String::new(),
        source_ip_address: String::new(),
        user_agent: "pipedeck".into(),
        user_identity: crate::api::UserIdentity {
            identity_type: "AWSService".into(),
            principal_id: String::new(),
            arn: String::new(),
            account_id: String::new(),
            user_name: Some("pipedeck".into()),
            invoked_by: None,
        },
        request_parameters: serde_json::Value::Null,
        response_elements: None,
        error_code: Some("CloudTrailEventsMayStillBeArriving".into()),
        error_message: Some(format!("{title}: {fix}")),
        event_type: "AwsApiCall".into(),
        read_only: true,
    }
}

fn pipeline_of(r: &Request) -> Option<&str> {
    match r {
        Request::StartPipelineExecution { pipeline_name, .. }
        | Request::StopPipelineExecution { pipeline_name, .. }
        | Request::RetryStageExecution { pipeline_name, .. }
        | Request::PutApprovalResult { pipeline_name, .. }
        | Request::RollbackStage { pipeline_name, .. }
        | Request::DisableStageTransition { pipeline_name, .. }
        | Request::EnableStageTransition { pipeline_name, .. } => Some(pipeline_name),
        _ => None,
    }
}

/// The request with the pipeline's name as AWS knows it.
fn rename(r: &Request, name: &str) -> Request {
    let mut r = r.clone();
    match &mut r {
        Request::StartPipelineExecution { pipeline_name, .. }
        | Request::StopPipelineExecution { pipeline_name, .. }
        | Request::RetryStageExecution { pipeline_name, .. }
        | Request::PutApprovalResult { pipeline_name, .. }
        | Request::RollbackStage { pipeline_name, .. }
        | Request::DisableStageTransition { pipeline_name, .. }
        | Request::EnableStageTransition { pipeline_name, .. } => *pipeline_name = name.to_owned(),
        _ => {}
    }
    r
}

impl Backend for AwsBackend {
    fn call(&self, request: Request) -> BoxFuture<'_, Result<Reply, ApiError>> {
        Box::pin(self.answer(request))
    }

    fn subscribe(&self) -> BoxFuture<'_, Result<Events, ApiError>> {
        Box::pin(async move {
            let rx = self.events.subscribe();
            self.start_pollers();
            Ok(events_from_broadcast(rx))
        })
    }

    fn describe(&self) -> String {
        describe_of(&self.accounts)
    }

    fn hosted(&self) -> bool {
        false
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for t in self
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..)
            {
                t.abort();
            }
        })
    }
}

impl Drop for AwsBackend {
    fn drop(&mut self) {
        for t in self
            .tasks
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}
