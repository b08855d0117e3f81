//! Log reads and searches by log reference (GetLogEvents,
//! FilterLogEvents). They read files, so they run on a blocking task and
//! answer from there, never on the actor.

use std::io;
use std::path::{Path, PathBuf};

use tokio::sync::oneshot;

use super::{Engine, api};
use crate::api::ApiError;
use crate::engine::contract_additions::{LogRef, ReplyAddition};
use crate::store::logs::{LogReader, read_times, time_of};

/// Lines per GetLogEvents page and matches per FilterLogEvents, at most
/// (CloudWatch Logs' limit).
pub const MAX_LOG_LIMIT: u32 = 10_000;

type Answer = oneshot::Sender<Result<ReplyAddition, ApiError>>;

impl Engine {
    /// Where a log is on this machine: an action's in
    /// `<state>/logs/<id>.log`, an environment replica's output in
    /// `<state>/envs/<env>/logs/<file>.log`. A reference never leads out
    /// of those directories.
    pub(super) fn log_location(&self, log: &LogRef) -> Result<(PathBuf, String), ApiError> {
        match log {
            LogRef::ActionExecution {
                action_execution_id,
            } => {
                plain_name("action execution id", action_execution_id)?;
                Ok((self.ws.state_dir.join("logs"), action_execution_id.clone()))
            }
            LogRef::Environment {
                environment_name,
                file,
            } => {
                if !self.ws.environments.contains_key(environment_name) {
                    return Err(api(
                        "EnvironmentNotFound",
                        format!(
                            "workspace {} has no environment `{environment_name}` (environments: {})",
                            self.ws.name,
                            self.ws
                                .environments
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                plain_name("environment log", file)?;
                Ok((
                    self.ws
                        .state_dir
                        .join("envs")
                        .join(environment_name)
                        .join("logs"),
                    file.clone(),
                ))
            }
        }
    }

    pub(super) fn get_log_events(
        &self,
        log: LogRef,
        start_line: Option<u64>,
        limit: u32,
        reply: Answer,
    ) {
        let at = match (self.log_location(&log), checked_limit(limit)) {
            (Ok(at), Ok(())) => at,
            (Err(e), _) | (_, Err(e)) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        tokio::task::spawn_blocking(move || {
            let _ = reply.send(read_page(&at.0, &at.1, &log, start_line, limit));
        });
    }

    pub(super) fn filter_log_events(
        &self,
        log: LogRef,
        pattern: String,
        regex: bool,
        limit: u32,
        reply: Answer,
    ) {
        let at = match (self.log_location(&log), checked_limit(limit)) {
            (Ok(at), Ok(())) => at,
            (Err(e), _) | (_, Err(e)) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if pattern.is_empty() {
            let _ = reply.send(Err(api("ValidationException", "the pattern is empty")));
            return;
        }
        let matcher = if regex {
            match regex::Regex::new(&pattern) {
                Ok(re) => Some(re),
                Err(e) => {
                    let _ = reply.send(Err(api(
                        "ValidationException",
                        format!("the pattern is not a valid regular expression: {e}"),
                    )));
                    return;
                }
            }
        } else {
            None
        };
        tokio::task::spawn_blocking(move || {
            let hit = |l: &str| match &matcher {
                Some(re) => re.is_match(l),
                None => l.contains(pattern.as_str()),
            };
            let _ = reply.send(search(&at.0, &at.1, &log, &hit, limit));
        });
    }
}

fn checked_limit(limit: u32) -> Result<(), ApiError> {
    if (1..=MAX_LOG_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(api(
            "ValidationException",
            format!("limit must be 1 to {MAX_LOG_LIMIT}, not {limit}"),
        ))
    }
}

/// A name that is one path component of ours: not empty, no separator,
/// not hidden, not `..`.
fn plain_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.chars().count() <= 200;
    if ok {
        Ok(())
    } else {
        Err(api(
            "ValidationException",
            format!("`{name}` is not a valid {what}"),
        ))
    }
}

fn read_error(log: &LogRef, e: &io::Error) -> ApiError {
    if e.kind() == io::ErrorKind::NotFound {
        api(
            "ResourceNotFound",
            format!(
                "there is no log {} (nothing was written to it yet)",
                log.key()
            ),
        )
    } else {
        api(
            "InternalError",
            format!("the log {} cannot be read: {e}", log.key()),
        )
    }
}

fn read_page(
    dir: &Path,
    id: &str,
    log: &LogRef,
    start_line: Option<u64>,
    limit: u32,
) -> Result<ReplyAddition, ApiError> {
    let mut r = LogReader::open(dir, id).map_err(|e| read_error(log, &e))?;
    let total = r.len();
    let count = u64::from(limit);
    let start = start_line.unwrap_or_else(|| total.saturating_sub(count));
    let lines = r.read(start, count).map_err(|e| read_error(log, &e))?;
    let ts = read_times(dir, id).map_err(|e| read_error(log, &e))?;
    let times = (0..lines.len() as u64)
        .map(|i| time_of(&ts, start + i))
        .collect();
    Ok(ReplyAddition::LogEvents {
        total,
        start,
        lines,
        times,
    })
}

/// Line numbers (0-based) for which `hit` holds, streaming the log in
/// chunks; at most `limit`.
fn search(
    dir: &Path,
    id: &str,
    log: &LogRef,
    hit: &dyn Fn(&str) -> bool,
    limit: u32,
) -> Result<ReplyAddition, ApiError> {
    let mut r = LogReader::open(dir, id).map_err(|e| read_error(log, &e))?;
    let total = r.len();
    let mut matches = Vec::new();
    let mut truncated = false;
    let mut at = 0;
    'scan: while at < total {
        let chunk = r.read(at, 50_000).map_err(|e| read_error(log, &e))?;
        if chunk.is_empty() {
            break;
        }
        for (i, l) in chunk.iter().enumerate() {
            if hit(l) {
                if matches.len() == limit as usize {
                    truncated = true;
                    break 'scan;
                }
                matches.push(at + i as u64);
            }
        }
        at += chunk.len() as u64;
    }
    Ok(ReplyAddition::LogMatches {
        total,
        matches,
        truncated,
    })
}
