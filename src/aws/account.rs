//! One account and region behind the contract: every call goes through the
//! account's request budget (throttling backs off with jitter and is
//! retried), and reads are answered from a cache the poller keeps fresh, so
//! the screens' refreshes do not become AWS calls.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codepipeline::error::{ProvideErrorMetadata, SdkError};
use tokio::time::Instant;

use super::budget::Budget;
use super::convert;
use super::errors::{self, Ctx};
use super::{AwsTarget, Clients};
use crate::api::{
    ActionExecutionDetail, ApiError, ExecutionSummary, PipelineMetadata, PipelineState,
    PipelineSummary,
};
use crate::model::pipeline::Pipeline;

/// How often things are read.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// GetPipelineState of a pipeline with a running execution (≥ 1 s).
    pub running: Duration,
    /// GetPipelineState of an idle pipeline.
    pub idle: Duration,
    /// ListPipelines.
    pub list: Duration,
    /// Calls per second of the account's budget, and its burst.
    pub rate: f64,
    pub burst: f64,
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals {
            running: Duration::from_secs(3),
            idle: Duration::from_secs(60),
            list: Duration::from_secs(300),
            rate: 5.0,
            burst: 10.0,
        }
    }
}

impl Intervals {
    pub fn clamp(mut self) -> Self {
        self.running = self.running.max(Duration::from_secs(1));
        self.idle = self.idle.max(self.running);
        self
    }
}

struct Timed<T> {
    at: Instant,
    value: T,
}

fn timed<T>(value: T) -> Timed<T> {
    Timed {
        at: Instant::now(),
        value,
    }
}

#[derive(Default)]
pub(crate) struct Cache {
    list: Option<Timed<Vec<PipelineSummary>>>,
    states: HashMap<String, Timed<PipelineState>>,
    /// First pages, by pipeline.
    executions: HashMap<String, Timed<Vec<ExecutionSummary>>>,
    definitions: HashMap<(String, u32), (Pipeline, PipelineMetadata)>,
    /// By pipeline execution id.
    actions: HashMap<String, Timed<Vec<ActionExecutionDetail>>>,
    /// Every action execution seen, by id (the logs need its build id).
    pub(crate) by_aeid: HashMap<String, ActionExecutionDetail>,
}

pub struct Account {
    pub target: AwsTarget,
    pub clients: Clients,
    pub budget: Arc<Budget>,
    /// CloudTrail LookupEvents: at most 2 calls/s per account and region.
    pub trail_budget: Arc<Budget>,
    pub intervals: Intervals,
    pub(crate) cache: Mutex<Cache>,
    /// The caller's account id (STS), once known.
    pub account_id: Mutex<Option<String>>,
    /// The last error of a background read, for the header.
    pub last_error: Mutex<Option<ApiError>>,
}

fn is_running(s: &PipelineState) -> bool {
    s.stage_states.iter().any(|st| {
        st.latest_execution.as_ref().is_some_and(|l| {
            matches!(
                l.status,
                crate::api::types::StageStatus::InProgress
                    | crate::api::types::StageStatus::Stopping
            )
        }) || !st.inbound_executions.is_empty()
    })
}

impl Account {
    pub fn new(target: AwsTarget, clients: Clients, intervals: Intervals) -> Account {
        let intervals = intervals.clamp();
        Account {
            target,
            clients,
            budget: Arc::new(Budget::new(intervals.rate, intervals.burst)),
            trail_budget: Arc::new(Budget::new(2.0, 2.0)),
            intervals,
            cache: Mutex::new(Cache::default()),
            account_id: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    pub(crate) fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        match self.cache.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn ctx<'a>(&'a self, service: &'a str, operation: &'a str) -> Ctx<'a> {
        Ctx {
            service,
            operation,
            profile: self.clients.profile.as_deref(),
            region: &self.clients.region,
        }
    }

    /// One AWS call through `budget`: waits its turn, and on throttling
    /// pauses every caller of the account (jittered, doubling) and tries
    /// again, up to 4 times.
    pub async fn send_with<T, E, F, Fut>(
        &self,
        budget: &Budget,
        service: &'static str,
        operation: &'static str,
        f: F,
    ) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut attempt = 0;
        loop {
            budget.acquire().await;
            match f().await {
                Ok(v) => {
                    budget.succeeded();
                    return Ok(v);
                }
                Err(e) => {
                    let api = errors::from_sdk(self.ctx(service, operation), &e);
                    if errors::is_throttling(&api.code) && attempt < 3 {
                        attempt += 1;
                        let pause = budget.throttled();
                        tracing::info!(?pause, operation, "throttled; backing off");
                        continue;
                    }
                    return Err(api);
                }
            }
        }
    }

    pub async fn send<T, E, F, Fut>(
        &self,
        service: &'static str,
        operation: &'static str,
        f: F,
    ) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.send_with(&self.budget, service, operation, f).await
    }

    /// Every pipeline (all pages), filtered by the account's filter.
    pub async fn fetch_pipelines(&self) -> Result<Vec<PipelineSummary>, ApiError> {
        let cp = &self.clients.codepipeline;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let t = token.clone();
            let page = self
                .send("codepipeline", "ListPipelines", || {
                    cp.list_pipelines().set_next_token(t.clone()).send()
                })
                .await?;
            out.extend(
                page.pipelines()
                    .iter()
                    .map(convert::pipeline_summary)
                    .filter(|p| {
                        self.target
                            .filter
                            .as_deref()
                            .is_none_or(|f| p.name.contains(f))
                    }),
            );
            match page.next_token() {
                Some(n) if !n.is_empty() && Some(n) != token.as_deref() => {
                    token = Some(n.to_owned())
                }
                _ => break,
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        self.cache().list = Some(timed(out.clone()));
        Ok(out)
    }

    /// The pipeline list, from the cache while fresh, with each pipeline's
    /// latest execution from the executions cache (read once if missing).
    pub async fn pipelines(&self) -> Result<Vec<PipelineSummary>, ApiError> {
        let cached = {
            let c = self.cache();
            c.list
                .as_ref()
                .filter(|l| l.at.elapsed() < self.intervals.list)
                .map(|l| l.value.clone())
        };
        let mut list = match cached {
            Some(l) => l,
            None => self.fetch_pipelines().await?,
        };
        for p in &mut list {
            let latest = self.executions(&p.name).await;
            match latest {
                Ok(e) => p.latest_execution = e.into_iter().next(),
                // moto and restricted roles: the list still shows.
                Err(e) => tracing::debug!(pipeline = %p.name, %e, "no executions"),
            }
            if let Some(s) = self.cache().states.get(&p.name) {
                p.pending_approvals = s
                    .value
                    .stage_states
                    .iter()
                    .flat_map(|s| &s.action_states)
                    .filter(|a| {
                        a.latest_execution.as_ref().is_some_and(|x| {
                            x.token.is_some()
                                && x.status == crate::api::types::ActionStatus::InProgress
                        })
                    })
                    .count() as u32;
            }
        }
        Ok(list)
    }

    pub async fn fetch_state(&self, name: &str) -> Result<PipelineState, ApiError> {
        let cp = &self.clients.codepipeline;
        let out = self
            .send("codepipeline", "GetPipelineState", || {
                cp.get_pipeline_state().name(name).send()
            })
            .await?;
        let state = convert::pipeline_state(
            out.pipeline_name().or(Some(name)),
            out.pipeline_version(),
            out.stage_states(),
        );
        let mut c = self.cache();
        for s in &state.stage_states {
            for a in &s.action_states {
                if let Some(x) = &a.latest_execution
                    && !x.action_execution_id.is_empty()
                {
                    c.by_aeid
                        .entry(x.action_execution_id.clone())
                        .and_modify(|d| {
                            d.status = x.status;
                            d.token = x.token.clone();
                            d.summary = x.summary.clone().or(d.summary.take());
                        })
                        .or_insert_with(|| x.clone());
                }
            }
        }
        c.states.insert(name.to_owned(), timed(state.clone()));
        Ok(state)
    }

    /// The state the poller last read (or read now if there is none).
    pub async fn state(&self, name: &str) -> Result<PipelineState, ApiError> {
        let cached = self.cache().states.get(name).and_then(|s| {
            let max = if is_running(&s.value) {
                self.intervals.running
            } else {
                self.intervals.idle
            };
            (s.at.elapsed() < max).then(|| s.value.clone())
        });
        match cached {
            Some(s) => Ok(s),
            None => self.fetch_state(name).await,
        }
    }

    /// The first page of executions (up to 50), cached until the poller
    /// sees the pipeline change (or for the idle interval).
    pub async fn executions(&self, name: &str) -> Result<Vec<ExecutionSummary>, ApiError> {
        let running = self
            .cache()
            .states
            .get(name)
            .is_some_and(|s| is_running(&s.value));
        let max = if running {
            self.intervals.running * 2
        } else {
            self.intervals.idle
        };
        if let Some(e) = self
            .cache()
            .executions
            .get(name)
            .filter(|e| e.at.elapsed() < max)
        {
            return Ok(e.value.clone());
        }
        let (list, _) = self.fetch_executions(name, Some(50), None).await?;
        self.cache()
            .executions
            .insert(name.to_owned(), timed(list.clone()));
        Ok(list)
    }

    pub async fn fetch_executions(
        &self,
        name: &str,
        max: Option<u32>,
        token: Option<String>,
    ) -> Result<(Vec<ExecutionSummary>, Option<String>), ApiError> {
        let cp = &self.clients.codepipeline;
        let max = max.map(|m| m.clamp(1, 100) as i32);
        let out = self
            .send("codepipeline", "ListPipelineExecutions", || {
                cp.list_pipeline_executions()
                    .pipeline_name(name)
                    .set_max_results(max)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
        let list = out
            .pipeline_execution_summaries()
            .iter()
            .map(|e| convert::execution_summary(name, e))
            .collect();
        Ok((list, out.next_token().map(str::to_owned)))
    }

    pub async fn definition(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<(Pipeline, PipelineMetadata), ApiError> {
        if let Some(v) = version
            && let Some(d) = self.cache().definitions.get(&(name.to_owned(), v))
        {
            return Ok(d.clone());
        }
        // The current version: known from the state or the list, so a
        // cached declaration is used when that version is cached.
        if version.is_none() {
            let known = {
                let c = self.cache();
                c.states
                    .get(name)
                    .map(|s| s.value.pipeline_version)
                    .or_else(|| {
                        c.list.as_ref().and_then(|l| {
                            l.value.iter().find(|p| p.name == name).map(|p| p.version)
                        })
                    })
            };
            if let Some(v) = known
                && let Some(d) = self.cache().definitions.get(&(name.to_owned(), v))
            {
                return Ok(d.clone());
            }
        }
        let cp = &self.clients.codepipeline;
        let v = version.map(|v| v as i32);
        let out = self
            .send("codepipeline", "GetPipeline", || {
                cp.get_pipeline().name(name).set_version(v).send()
            })
            .await?;
        let Some(decl) = out.pipeline() else {
            return Err(ApiError::new(
                "PipelineNotFoundException",
                format!("GetPipeline answered no declaration for {name}"),
            ));
        };
        let p = convert::declaration(decl);
        let ver = p.version.unwrap_or(1);
        let md = convert::metadata(name, ver, out.metadata());
        self.cache()
            .definitions
            .insert((name.to_owned(), ver), (p.clone(), md.clone()));
        Ok((p, md))
    }

    pub async fn execution(&self, name: &str, id: &str) -> Result<ExecutionSummary, ApiError> {
        let cp = &self.clients.codepipeline;
        let out = self
            .send("codepipeline", "GetPipelineExecution", || {
                cp.get_pipeline_execution()
                    .pipeline_name(name)
                    .pipeline_execution_id(id)
                    .send()
            })
            .await?;
        let Some(e) = out.pipeline_execution() else {
            return Err(ApiError::new(
                "PipelineExecutionNotFoundException",
                format!("no execution {id} of {name}"),
            ));
        };
        let mut s = convert::execution(e);
        // Times are only in the summaries.
        if let Some(sum) = self.cache().executions.get(name).and_then(|l| {
            l.value
                .iter()
                .find(|x| x.pipeline_execution_id == id)
                .cloned()
        }) {
            s.start_time = sum.start_time;
            s.last_update_time = sum.last_update_time;
            s.source_revisions = if s.source_revisions.is_empty() {
                sum.source_revisions
            } else {
                s.source_revisions
            };
        }
        if s.pipeline_name.is_empty() {
            s.pipeline_name = name.to_owned();
        }
        Ok(s)
    }

    /// Every action execution of an execution (all pages), newest first;
    /// cached for a finished execution.
    pub async fn action_executions(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Vec<ActionExecutionDetail>, ApiError> {
        if let Some(a) = self
            .cache()
            .actions
            .get(id)
            .filter(|a| a.at.elapsed() < self.intervals.running)
        {
            return Ok(a.value.clone());
        }
        let cp = &self.clients.codepipeline;
        let filter = aws_sdk_codepipeline::types::ActionExecutionFilter::builder()
            .pipeline_execution_id(id)
            .build();
        let mut out: Vec<ActionExecutionDetail> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let t = token.clone();
            let f = filter.clone();
            let page = self
                .send("codepipeline", "ListActionExecutions", || {
                    cp.list_action_executions()
                        .pipeline_name(name)
                        .filter(f.clone())
                        .set_next_token(t.clone())
                        .send()
                })
                .await?;
            out.extend(
                page.action_execution_details()
                    .iter()
                    .map(convert::action_detail),
            );
            match page.next_token() {
                Some(n) if !n.is_empty() && Some(n) != token.as_deref() => {
                    token = Some(n.to_owned())
                }
                _ => break,
            }
        }
        // Attempts: the oldest run of an action in this execution is 1.
        let mut seen: HashMap<(String, String), u32> = HashMap::new();
        for a in out.iter_mut().rev() {
            let n = seen
                .entry((a.stage_name.clone(), a.action_name.clone()))
                .or_insert(0);
            *n += 1;
            a.attempt = *n;
        }
        let mut c = self.cache();
        for a in &out {
            let token = c
                .by_aeid
                .get(&a.action_execution_id)
                .and_then(|d| d.token.clone());
            let mut a = a.clone();
            if a.status == crate::api::types::ActionStatus::InProgress {
                a.token = token;
            }
            c.by_aeid.insert(a.action_execution_id.clone(), a);
        }
        c.actions.insert(id.to_owned(), timed(out.clone()));
        Ok(out)
    }

    /// After a mutation: the pipeline's state and lists are read again.
    pub fn invalidate(&self, name: &str) {
        let mut c = self.cache();
        // Stale, not gone: the poller compares the next read with it.
        match Instant::now().checked_sub(Duration::from_secs(3600)) {
            Some(old) => {
                if let Some(s) = c.states.get_mut(name) {
                    s.at = old;
                }
            }
            None => {
                c.states.remove(name);
            }
        }
        c.executions.remove(name);
        c.actions.clear();
    }

    /// The poller saw a change: lists and action executions are stale.
    pub fn changed(&self, name: &str) {
        let mut c = self.cache();
        c.executions.remove(name);
        c.actions.clear();
    }

    pub fn is_running(&self, name: &str) -> bool {
        self.cache()
            .states
            .get(name)
            .is_some_and(|s| is_running(&s.value))
    }

    pub fn state_age(&self, name: &str) -> Option<Duration> {
        self.cache().states.get(name).map(|s| s.at.elapsed())
    }

    pub fn cached_state(&self, name: &str) -> Option<PipelineState> {
        self.cache().states.get(name).map(|s| s.value.clone())
    }

    pub fn list_age(&self) -> Option<Duration> {
        self.cache().list.as_ref().map(|l| l.at.elapsed())
    }

    pub fn cached_names(&self) -> Vec<String> {
        self.cache()
            .list
            .as_ref()
            .map(|l| l.value.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default()
    }

    pub fn action(&self, aeid: &str) -> Option<ActionExecutionDetail> {
        self.cache().by_aeid.get(aeid).cloned()
    }

    /// The account id for the header (STS GetCallerIdentity, once).
    pub async fn whoami(&self) -> Result<String, ApiError> {
        if let Some(id) = self.account_id.lock().ok().and_then(|g| g.clone()) {
            return Ok(id);
        }
        let sts = &self.clients.sts;
        let out = self
            .send("sts", "GetCallerIdentity", || {
                sts.get_caller_identity().send()
            })
            .await?;
        let id = out.account().unwrap_or("?").to_owned();
        if let Ok(mut g) = self.account_id.lock() {
            *g = Some(id.clone());
        }
        Ok(id)
    }

    pub fn set_error(&self, e: Option<ApiError>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = e;
        }
    }

    /// `prod · 123456789012 · eu-west-1` for the header.
    pub fn describe(&self) -> String {
        let id = self
            .account_id
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_else(|| "account ?".into());
        let profile = self.clients.profile.as_deref().unwrap_or("default");
        let mut s = format!("AWS {}", self.target.label);
        if profile != self.target.label {
            s.push_str(&format!(" (profile {profile})"));
        }
        s.push_str(&format!(" · {id} · {}", self.clients.region));
        if self.target.readonly {
            s.push_str(" · read-only");
        }
        if let Some(n) = self.note() {
            s.push_str(&format!(" · {n}"));
        }
        s
    }

    /// Why this account's updates are slow or stale (`None`: normal).
    pub fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.budget.slowed() {
            parts.push("updates slowed (throttled)".to_owned());
        }
        if let Some(e) = self.last_error.lock().ok().and_then(|g| g.clone()) {
            parts.push(format!("stale: {}", e.code));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}
