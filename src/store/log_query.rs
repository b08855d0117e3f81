//! Answers `GetLogEvents` and `FilterLogEvents` from a workspace's log
//! files. Blocking: callers run it on a blocking task, never on the engine
//! actor or the UI thread.

use std::io;
use std::path::{Path, PathBuf};

use super::logs::{LogReader, read_times, time_of};
use crate::api::{ApiError, LogPage, LogRef, Reply, Request};

/// Most lines one read returns, and most matches one search returns.
pub const MAX_PAGE: u32 = 10_000;
pub const MAX_MATCHES: u32 = 100_000;

/// Where a log lives: an action's in `<state>/logs/<id>.log`; an
/// environment replica's output in `<state>/envs/<env>/logs/<file>.log`.
fn location(state_dir: &Path, log: &LogRef) -> Result<(PathBuf, String), ApiError> {
    let safe = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && s != "." && s != "..";
    match log {
        LogRef::Action {
            action_execution_id,
        } if safe(action_execution_id) => Ok((state_dir.join("logs"), action_execution_id.clone())),
        LogRef::Environment {
            environment_name,
            file,
        } if safe(environment_name) && safe(file) => Ok((
            state_dir.join("envs").join(environment_name).join("logs"),
            file.clone(),
        )),
        LogRef::Stream { .. } => Err(ApiError::new(
            "ValidationException",
            format!("{log} is a CloudWatch Logs stream; this workspace keeps its logs locally"),
        )),
        _ => Err(ApiError::new(
            "ValidationException",
            format!("`{log}` is not a log reference"),
        )),
    }
}

fn open(state_dir: &Path, log: &LogRef) -> Result<(LogReader, PathBuf, String), ApiError> {
    let (dir, id) = location(state_dir, log)?;
    match LogReader::open(&dir, &id) {
        Ok(r) => Ok((r, dir, id)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ApiError::new(
            "ResourceNotFoundException",
            format!("log {log} does not exist (yet)"),
        )),
        Err(e) => Err(read_error(log, &e)),
    }
}

fn read_error(log: &LogRef, e: &io::Error) -> ApiError {
    ApiError::new("InternalError", format!("reading log {log}: {e}"))
}

/// Lines `start .. start + limit`; `start` `None` is the last `limit`.
pub fn read_page(
    state_dir: &Path,
    log: &LogRef,
    start: Option<u64>,
    limit: u32,
) -> Result<LogPage, ApiError> {
    let (mut r, dir, id) = open(state_dir, log)?;
    let limit = u64::from(limit.min(MAX_PAGE));
    let total = r.len();
    let start = start.unwrap_or_else(|| total.saturating_sub(limit));
    let lines = r.read(start, limit).map_err(|e| read_error(log, &e))?;
    // Environment outputs have no time index; a missing one is not an error.
    let ts = match read_times(&dir, &id) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(read_error(log, &e)),
    };
    let times = (0..lines.len() as u64)
        .map(|i| time_of(&ts, start + i))
        .collect();
    Ok(LogPage {
        total,
        start,
        lines,
        times,
    })
}

/// Line numbers (0-based) matching `pattern`, streaming the log in chunks.
pub fn search(
    state_dir: &Path,
    log: &LogRef,
    pattern: &str,
    regex: bool,
    limit: u32,
) -> Result<(Vec<u64>, bool), ApiError> {
    let re = if regex {
        Some(regex::Regex::new(pattern).map_err(|e| {
            ApiError::new("InvalidParameterException", format!("invalid pattern: {e}"))
        })?)
    } else {
        None
    };
    let limit = limit.min(MAX_MATCHES) as usize;
    let (mut r, _, _) = open(state_dir, log)?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < r.len() {
        let chunk = r.read(at, 50_000).map_err(|e| read_error(log, &e))?;
        if chunk.is_empty() {
            break;
        }
        for (i, l) in chunk.iter().enumerate() {
            let hit = match &re {
                Some(re) => re.is_match(l),
                None => l.contains(pattern),
            };
            if hit {
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(at + i as u64);
            }
        }
        at += chunk.len() as u64;
    }
    Ok((out, false))
}

/// The answer to a log read (see [`Request::is_log_read`]).
pub fn answer(state_dir: &Path, request: &Request) -> Result<Reply, ApiError> {
    match request {
        Request::GetLogEvents {
            log,
            start_line,
            limit,
        } => Ok(Reply::LogEvents {
            page: read_page(state_dir, log, *start_line, *limit)?,
        }),
        Request::FilterLogEvents {
            log,
            pattern,
            regex,
            limit,
        } => {
            let (lines, truncated) = search(
                state_dir,
                log,
                pattern,
                *regex,
                limit.unwrap_or(MAX_MATCHES),
            )?;
            Ok(Reply::LogMatches { lines, truncated })
        }
        other => Err(ApiError::new(
            "InternalError",
            format!("{} is not a log read", other.event_name()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_cannot_leave_the_state_dir() {
        let d = Path::new("/tmp/x");
        for bad in ["../etc", "a/b", "", ".."] {
            assert!(location(d, &LogRef::action(bad)).is_err(), "{bad}");
        }
        assert!(
            location(
                d,
                &LogRef::Environment {
                    environment_name: "..".into(),
                    file: "x".into()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn a_missing_log_is_named() {
        let d = tempfile::tempdir().unwrap();
        let e = read_page(d.path(), &LogRef::action("nope"), None, 10).unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException");
        assert!(e.message.contains("nope"), "{}", e.message);
    }
}
