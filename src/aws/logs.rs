//! CodeBuild logs from CloudWatch Logs. The build id comes from the action
//! execution (`externalExecutionId`); BatchGetBuilds gives the exact log
//! group and stream (never guessed: projects can set their own) and the
//! phases. Lines are mirrored into the local log store's format
//! (`store::logs`: `.log` + line index + flush times) under
//! `<state dir>/aws/<account>/<region>/logs/`, so paging, search, next error
//! and memory behave as for local logs, and a reopened log starts from the
//! cache: the forward token is kept beside it (`.cwl`).
//!
//! Backfill and follow use GetLogEvents by AWS's token rule: the first call
//! `startFromHead=true` without a token, then the last `nextForwardToken`
//! (with `startFromHead=true`), until the token that comes back is the one
//! sent. While the build runs a Live Tail session on the stream (one per
//! open log, closed with the view) says when lines arrive, and the mirror
//! then reads them by the token rule, so no line is doubled at the seam
//! between backfill and tail; where Live Tail is unavailable or refused,
//! the follower polls GetLogEvents instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;

use super::account::Account;
use crate::api::types::PhaseState;
use crate::api::{ApiError, LogPage, LogRef};
use crate::providers::codebuild_local::LogSink;
use crate::store::log_query;
use crate::store::logs::LogWriter;

/// What BatchGetBuilds says about a build.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildInfo {
    pub id: String,
    pub group: Option<String>,
    pub stream: Option<String>,
    pub complete: bool,
    pub status: Option<String>,
    pub phases: Vec<PhaseState>,
    /// `PHASE: status code: message` of each failed phase's contexts.
    pub failures: Vec<String>,
    pub service_role: Option<String>,
    /// The log group's ARN (for Live Tail), from the stream's ARN.
    pub group_arn: Option<String>,
    /// Unix milliseconds.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

pub fn build_info(b: &aws_sdk_codebuild::types::Build) -> BuildInfo {
    let ms =
        |d: Option<&aws_sdk_codebuild::primitives::DateTime>| d.and_then(|d| d.to_millis().ok());
    BuildInfo {
        id: b.id().unwrap_or_default().to_owned(),
        group: b.logs().and_then(|l| l.group_name()).map(str::to_owned),
        stream: b.logs().and_then(|l| l.stream_name()).map(str::to_owned),
        complete: b.build_complete(),
        status: b.build_status().map(|s| s.as_str().to_owned()),
        phases: b
            .phases()
            .iter()
            .map(|p| PhaseState {
                phase_type: p
                    .phase_type()
                    .map(|t| t.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                phase_status: p.phase_status().map(|s| s.as_str().to_owned()),
                duration_ms: p
                    .duration_in_seconds()
                    .and_then(|d| u64::try_from(d).ok())
                    .unwrap_or(0)
                    * 1000,
            })
            .collect(),
        failures: b
            .phases()
            .iter()
            .filter(|p| p.phase_status().is_some_and(|s| s.as_str() != "SUCCEEDED"))
            .flat_map(|p| {
                let ty = p
                    .phase_type()
                    .map(|t| t.as_str())
                    .unwrap_or_default()
                    .to_owned();
                p.contexts().iter().map(move |c| {
                    format!(
                        "{ty}: {}: {}",
                        c.status_code().unwrap_or_default(),
                        c.message().unwrap_or_default()
                    )
                })
            })
            .collect(),
        service_role: b.service_role().map(str::to_owned),
        group_arn: b
            .logs()
            .and_then(|l| l.cloud_watch_logs_arn())
            .map(|a| a.split(":log-stream:").next().unwrap_or(a).to_owned()),
        start_ms: ms(b.start_time()),
        end_ms: ms(b.end_time()),
    }
}

/// The file id of a stream's mirror: a hash (group and stream names hold
/// `/`), stable across runs.
pub fn mirror_id(group: &str, stream: &str) -> String {
    let h = sha2::Sha256::digest(format!("{group}\n{stream}").as_bytes());
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("cwl-{hex}")
}

impl Account {
    /// The mirror's state dir (it holds `logs/`).
    pub fn mirror_dir(&self, state_dir: &Path) -> PathBuf {
        let safe = |s: &str| s.replace(['/', '\\', '.'], "_");
        state_dir
            .join("aws")
            .join(safe(&self.target.label))
            .join(safe(&self.clients.region))
    }

    pub async fn builds(&self, ids: &[String]) -> Result<Vec<BuildInfo>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let cb = &self.clients.codebuild;
        let ids = ids.to_vec();
        let out = self
            .send("codebuild", "BatchGetBuilds", || {
                cb.batch_get_builds().set_ids(Some(ids.clone())).send()
            })
            .await?;
        Ok(out.builds().iter().map(build_info).collect())
    }

    /// The stream of an action execution's build, with the build.
    pub async fn stream_of(&self, aeid: &str) -> Result<(String, String, BuildInfo), ApiError> {
        let Some(a) = self.action(aeid) else {
            return Err(ApiError::new(
                "ActionExecutionNotFoundException",
                format!(
                    "action execution {aeid} is not known yet: open its execution first (ListActionExecutions)"
                ),
            ));
        };
        let Some(build) = a.external_execution_id.clone() else {
            return Err(ApiError::new(
                "ResourceNotFoundException",
                format!(
                    "{}/{} has no external execution: only CodeBuild actions have a log here{}",
                    a.stage_name,
                    a.action_name,
                    a.summary
                        .as_deref()
                        .map(|s| format!(" (summary: {s})"))
                        .unwrap_or_default()
                ),
            ));
        };
        let info = self
            .builds(std::slice::from_ref(&build))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ApiError::new(
                    "ResourceNotFoundException",
                    format!("BatchGetBuilds does not know build {build}"),
                )
            })?;
        match (&info.group, &info.stream) {
            (Some(g), Some(s)) => Ok((g.clone(), s.clone(), info)),
            _ => Err(ApiError::new(
                "ResourceNotFoundException",
                format!(
                    "build {build} has no CloudWatch Logs stream yet (it is created while the build provisions, or the project logs to S3 only)"
                ),
            )),
        }
    }

    /// Brings the mirror of a stream up to date (at most `max_pages`
    /// GetLogEvents pages); returns the lines now mirrored.
    pub async fn sync_stream(
        &self,
        state_dir: &Path,
        group: &str,
        stream: &str,
        max_pages: u32,
    ) -> Result<u64, ApiError> {
        let dir = self.mirror_dir(state_dir).join("logs");
        let id = mirror_id(group, stream);
        let token_file = dir.join(format!("{id}.cwl"));
        let io = |e: std::io::Error| ApiError::new("InternalError", format!("log mirror: {e}"));
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut token = std::fs::read_to_string(&token_file)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let mut writer = LogWriter::create(&dir, &id).map_err(io)?;
        let logs = &self.clients.logs;
        for _ in 0..max_pages {
            let sent = token.clone();
            let out = self
                .send("logs", "GetLogEvents", || {
                    logs.get_log_events()
                        .log_group_name(group)
                        .log_stream_name(stream)
                        .start_from_head(true)
                        .set_next_token(sent.clone())
                        .send()
                })
                .await?;
            for e in out.events() {
                let m = e.message().unwrap_or_default();
                writer.line(m.strip_suffix('\n').unwrap_or(m));
            }
            writer.flush();
            if let Some(err) = writer.error() {
                return Err(ApiError::new("InternalError", format!("log mirror: {err}")));
            }
            let next = out.next_forward_token().map(str::to_owned);
            if let Some(n) = &next {
                std::fs::write(&token_file, n).map_err(io)?;
            }
            // The token rule: the same token back means the end for now.
            if next.is_none() || next == sent {
                break;
            }
            token = next;
        }
        Ok(writer.lines())
    }

    /// A window of a mirrored stream, synced first (once per `min_gap`).
    pub async fn read_stream(
        &self,
        state_dir: &Path,
        log: &LogRef,
        start: Option<u64>,
        limit: u32,
    ) -> Result<LogPage, ApiError> {
        let (group, stream) = self.resolve_log(log).await?;
        self.sync_stream(state_dir, &group, &stream, 50).await?;
        let dir = self.mirror_dir(state_dir);
        let mirrored = LogRef::action(mirror_id(&group, &stream));
        tokio::task::spawn_blocking(move || log_query::read_page(&dir, &mirrored, start, limit))
            .await
            .map_err(|e| ApiError::new("InternalError", e.to_string()))?
    }

    pub async fn search_stream(
        &self,
        state_dir: &Path,
        log: &LogRef,
        pattern: &str,
        regex: bool,
        limit: u32,
    ) -> Result<(Vec<u64>, bool), ApiError> {
        let (group, stream) = self.resolve_log(log).await?;
        self.sync_stream(state_dir, &group, &stream, 50).await?;
        let dir = self.mirror_dir(state_dir);
        let mirrored = LogRef::action(mirror_id(&group, &stream));
        let pattern = pattern.to_owned();
        tokio::task::spawn_blocking(move || {
            log_query::search(&dir, &mirrored, &pattern, regex, limit)
        })
        .await
        .map_err(|e| ApiError::new("InternalError", e.to_string()))?
    }

    /// An action's log is its build's stream; a stream is itself.
    pub async fn resolve_log(&self, log: &LogRef) -> Result<(String, String), ApiError> {
        match log {
            LogRef::Stream {
                log_group_name,
                log_stream_name,
            } => Ok((log_group_name.clone(), log_stream_name.clone())),
            LogRef::Action {
                action_execution_id,
            } => {
                let (g, s, _) = self.stream_of(action_execution_id).await?;
                Ok((g, s))
            }
            LogRef::Environment { .. } => Err(ApiError::new(
                "ValidationException",
                format!("{log}: AWS accounts have no local environments"),
            )),
        }
    }
}

/// How a log was followed (for the tests and the log file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowMode {
    LiveTail,
    Polling,
}

/// Follows a running build's log until the build is complete (then one
/// last sync), publishing the line count after each sync that added lines.
/// Ends early when `keep` says the view is gone (which closes the Live
/// Tail session: sessions are billed per minute).
pub async fn follow(
    account: std::sync::Arc<Account>,
    state_dir: PathBuf,
    aeid: String,
    every: Duration,
    tx: tokio::sync::broadcast::Sender<crate::api::EngineEvent>,
    keep: impl Fn() -> bool + Send + 'static,
) -> FollowMode {
    let Ok((group, stream, info)) = account.stream_of(&aeid).await else {
        return FollowMode::Polling;
    };
    let tail = Tail {
        group,
        stream,
        group_arn: info.group_arn.clone(),
        complete: info.complete,
    };
    // The build's end (or a build that can no longer be read) ends it.
    let done = {
        let (account, aeid) = (account.clone(), aeid.clone());
        move || {
            let (account, aeid) = (account.clone(), aeid.clone());
            async move {
                account
                    .stream_of(&aeid)
                    .await
                    .map_or(true, |(_, _, b)| b.complete)
            }
        }
    };
    tail_stream(account, state_dir, aeid, tail, every, tx, keep, done).await
}

/// A followed stream: where it is, its group's ARN (Live Tail needs it)
/// and whether its build was already complete.
#[derive(Debug, Clone)]
pub struct Tail {
    pub group: String,
    pub stream: String,
    pub group_arn: Option<String>,
    pub complete: bool,
}

/// The follower itself: one Live Tail session on the stream (new lines are
/// then read with GetLogEvents, the mirror's one way in), or, where Live
/// Tail is refused or unavailable, GetLogEvents every `every`. `done` says
/// the build is complete; `keep` that the view still reads the log.
#[allow(clippy::too_many_arguments)]
pub async fn tail_stream<F>(
    account: std::sync::Arc<Account>,
    state_dir: PathBuf,
    aeid: String,
    tail: Tail,
    every: Duration,
    tx: tokio::sync::broadcast::Sender<crate::api::EngineEvent>,
    keep: impl Fn() -> bool + Send + 'static,
    done: impl Fn() -> F,
) -> FollowMode
where
    F: std::future::Future<Output = bool>,
{
    let Tail {
        group,
        stream,
        group_arn,
        complete,
    } = tail;
    let mut last = 0;
    let sync = || {
        let (account, state_dir) = (account.clone(), state_dir.clone());
        let (group, stream) = (group.clone(), stream.clone());
        async move { account.sync_stream(&state_dir, &group, &stream, 20).await }
    };
    let publish = |n: u64, last: &mut u64| {
        if n != *last {
            *last = n;
            let _ = tx.send(crate::api::EngineEvent::LogAppended {
                action_execution_id: aeid.clone(),
                lines: n,
            });
        }
    };
    if let Ok(n) = sync().await {
        publish(n, &mut last);
    }
    if complete {
        return FollowMode::Polling;
    }
    // Live Tail first.
    if let Some(arn) = group_arn {
        let started = account
            .clients
            .logs
            .start_live_tail()
            .log_group_identifiers(arn)
            .log_stream_names(stream.clone())
            .send()
            .await;
        match started {
            Ok(mut out) => {
                tracing::info!(%aeid, "following with Live Tail");
                let mut ticks = 0u32;
                loop {
                    let next = tokio::time::timeout(every * 5, out.response_stream.recv()).await;
                    let fresh = match next {
                        Ok(Ok(Some(
                            aws_sdk_cloudwatchlogs::types::StartLiveTailResponseStream::SessionUpdate(u),
                        ))) => !u.session_results().is_empty(),
                        Ok(Ok(Some(_))) => false,
                        // The session ended (3 hours, or the server closed
                        // it): the polling below takes over.
                        Ok(Ok(None)) | Ok(Err(_)) => break,
                        Err(_) => true,
                    };
                    ticks += 1;
                    if (fresh || ticks.is_multiple_of(10))
                        && let Ok(n) = sync().await
                    {
                        publish(n, &mut last);
                    }
                    if !keep() {
                        // Dropping the stream closes the session.
                        return FollowMode::LiveTail;
                    }
                    if ticks.is_multiple_of(10) && done().await {
                        if let Ok(n) = sync().await {
                            publish(n, &mut last);
                        }
                        return FollowMode::LiveTail;
                    }
                }
            }
            Err(e) => {
                let e = super::errors::from_sdk(account.ctx("logs", "StartLiveTail"), &e);
                tracing::info!(%aeid, %e, "Live Tail refused; polling GetLogEvents");
            }
        }
    }
    loop {
        match sync().await {
            Ok(n) => publish(n, &mut last),
            Err(e) => tracing::warn!(%e, "following {aeid}"),
        }
        if !keep() {
            return FollowMode::Polling;
        }
        if done().await {
            // The lines written as it ended.
            if let Ok(n) = sync().await {
                publish(n, &mut last);
            }
            return FollowMode::Polling;
        }
        tokio::time::sleep(every).await;
    }
}
