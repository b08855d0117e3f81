//! CloudWatch Logs (`Logs_20140328.*`): every action execution's log is a
//! stream named by its action execution id. CodeBuild builds are in
//! `/aws/codebuild/<project>` (the stream is the build id's uuid, as on
//! AWS); every other action is in `/pipedeck/<pipeline>`. A stream's events
//! are its lines, timestamped from the log's time records.

use serde_json::{Value, json};

use super::input::Input;
use super::{AwsError, AwsResult, Caller, Ctx, epoch_secs, token};
use crate::api::{ActionExecutionDetail, LogPage, LogRef, Reply, Request};

const SERVICE: &str = "CloudWatch Logs";

/// AWS's page bounds: 10,000 events or 1 MB (message bytes + 26 per event).
pub const MAX_EVENTS: usize = 10_000;
pub const MAX_BYTES: usize = 1_048_576;

/// One action execution's log, as a stream.
#[derive(Debug, Clone)]
pub struct Stream {
    pub group: String,
    pub name: String,
    pub pipeline: String,
    /// The CodeBuild project for build actions.
    pub project: Option<String>,
    pub action: ActionExecutionDetail,
}

impl Stream {
    fn start_ms(&self) -> i64 {
        epoch_secs(&self.action.start_time).map_or(0, |s| (s * 1000.0) as i64)
    }
    fn end_ms(&self) -> i64 {
        epoch_secs(&self.action.last_status_change).map_or(self.start_ms(), |s| (s * 1000.0) as i64)
    }
}

/// Every action execution of every pipeline, oldest first.
pub async fn streams(ctx: &Ctx, caller: &Caller) -> Result<Vec<Stream>, AwsError> {
    let Reply::Pipelines { pipelines, .. } = ctx.call(caller, Request::list_pipelines()).await?
    else {
        return Err(AwsError::new("InternalFailure", "unexpected reply").with_status(500));
    };
    let mut out = Vec::new();
    for p in pipelines {
        let Reply::Pipeline { pipeline, .. } = ctx
            .call(
                caller,
                Request::GetPipeline {
                    pipeline_name: p.name.clone(),
                    pipeline_version: None,
                },
            )
            .await?
        else {
            continue;
        };
        let Reply::Executions { executions, .. } = ctx
            .call(
                caller,
                Request::ListPipelineExecutions {
                    pipeline_name: p.name.clone(),
                    max_results: Some(1000),
                    next_token: None,
                },
            )
            .await?
        else {
            continue;
        };
        for e in executions.iter().rev() {
            let Reply::ActionExecutions { actions, .. } = ctx
                .call(
                    caller,
                    Request::ListActionExecutions {
                        pipeline_name: p.name.clone(),
                        pipeline_execution_id: e.pipeline_execution_id.clone(),
                        max_results: Some(1000),
                        next_token: None,
                    },
                )
                .await?
            else {
                continue;
            };
            let mut actions = actions;
            actions.sort_by(|a, b| a.start_time.cmp(&b.start_time));
            for a in actions {
                let def = pipeline
                    .stage(&a.stage_name)
                    .and_then(|s| s.actions.iter().find(|x| x.name == a.action_name));
                let project = def
                    .filter(|d| d.action_type_id.provider == "CodeBuild")
                    .map(|d| {
                        d.configuration
                            .get("ProjectName")
                            .cloned()
                            .unwrap_or_else(|| {
                                a.external_execution_id
                                    .as_deref()
                                    .and_then(|x| x.split_once(':'))
                                    .map_or_else(String::new, |(p, _)| p.to_owned())
                            })
                    });
                let mut a = a;
                if let Some(pr) = &project
                    && a.external_execution_id.is_none()
                {
                    // The engine names the build when it ends; it is always
                    // `<project>:<action execution id>` (providers/codebuild.rs).
                    a.external_execution_id = Some(format!("{pr}:{}", a.action_execution_id));
                }
                let group = match &project {
                    Some(pr) => format!("/aws/codebuild/{pr}"),
                    None => format!("/pipedeck/{}", p.name),
                };
                out.push(Stream {
                    group,
                    name: a.action_execution_id.clone(),
                    pipeline: p.name.clone(),
                    project,
                    action: a,
                });
            }
        }
    }
    if let Ok(mut cache) = ctx.log_streams.lock() {
        for s in &out {
            cache.insert(s.name.clone(), (s.group.clone(), s.start_ms()));
        }
    }
    Ok(out)
}

pub async fn call(ctx: &Ctx, caller: &Caller, op: &str, body: &Value) -> AwsResult {
    let i = Input::root(body)?;
    match op {
        "DescribeLogGroups" => describe_log_groups(ctx, caller, i).await,
        "DescribeLogStreams" => describe_log_streams(ctx, caller, i).await,
        "GetLogEvents" => get_log_events(ctx, caller, i).await,
        "FilterLogEvents" => filter_log_events(ctx, caller, i).await,
        "StartLiveTail" => Err(AwsError::not_built(
            SERVICE,
            op,
            ": Live Tail's event stream is not served (the SDKs dial a `stream-` host prefix \
             that a loopback endpoint does not resolve); tail with GetLogEvents and its \
             forward token",
        )),
        _ => Err(AwsError::not_built(SERVICE, op, "")),
    }
}

fn arn(group: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:log-group:{group}",
        super::REGION,
        super::ACCOUNT
    )
}

/// The group name from `logGroupName` or `logGroupIdentifier` (a name or an ARN).
fn group_of(i: Input<'_>) -> Result<String, AwsError> {
    match (i.str_opt("logGroupName")?, i.str_opt("logGroupIdentifier")?) {
        (Some(n), None) => Ok(n.to_owned()),
        (None, Some(id)) => Ok(id
            .strip_prefix("arn:")
            .and_then(|r| r.split_once(":log-group:"))
            .map_or(id, |(_, g)| g.trim_end_matches(":*"))
            .to_owned()),
        (Some(_), Some(_)) => Err(AwsError::new(
            "InvalidParameterException",
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (None, None) => Err(AwsError::new(
            "InvalidParameterException",
            "Either logGroupName or logGroupIdentifier must be given",
        )),
    }
}

fn limit(i: Input<'_>, max: i64, default: usize) -> Result<usize, AwsError> {
    Ok(i.int_opt("limit", 1, max)?.map_or(default, |n| n as usize))
}

async fn describe_log_groups(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let prefix = i.str_opt("logGroupNamePrefix")?.unwrap_or("");
    let pattern = i.str_opt("logGroupNamePattern")?;
    let max = limit(i, 50, 50)?;
    let all = streams(ctx, caller).await?;
    let mut groups: Vec<(&str, i64, u64)> = Vec::new();
    for s in &all {
        match groups.iter_mut().find(|g| g.0 == s.group) {
            Some(g) => g.2 += s.action.log_lines,
            None => groups.push((&s.group, s.start_ms(), s.action.log_lines)),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(b.0));
    groups.retain(|g| g.0.starts_with(prefix) && pattern.is_none_or(|p| g.0.contains(p)));
    let params = format!("DescribeLogGroups|{prefix}|{}", pattern.unwrap_or(""));
    let skip = position(ctx, &params, i)?;
    let page: Vec<Value> = groups
        .iter()
        .skip(skip)
        .take(max)
        .map(|(g, t, _)| {
            json!({
                "logGroupName": g,
                "creationTime": t,
                "metricFilterCount": 0,
                "arn": format!("{}:*", arn(g)),
                "logGroupArn": arn(g),
                "storedBytes": 0,
                "logGroupClass": "STANDARD",
            })
        })
        .collect();
    let next = (skip + page.len() < groups.len())
        .then(|| token::encode(&ctx.token_key, &params, &json!(skip + page.len())));
    Ok(json!({"logGroups": page, "nextToken": next}))
}

fn position(ctx: &Ctx, params: &str, i: Input<'_>) -> Result<usize, AwsError> {
    match i.str_opt("nextToken")? {
        None => Ok(0),
        Some(t) => token::decode(&ctx.token_key, params, t)
            .and_then(|v| v.as_u64())
            .map(|n| n as usize)
            .ok_or_else(|| {
                AwsError::new(
                    "InvalidParameterException",
                    "The specified nextToken is not valid for this request.",
                )
            }),
    }
}

fn not_found(what: &str) -> AwsError {
    AwsError::new(
        "ResourceNotFoundException",
        format!("The specified {what} does not exist."),
    )
}

async fn describe_log_streams(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let group = group_of(i)?;
    let prefix = i.str_opt("logStreamNamePrefix")?.unwrap_or("");
    let order = i
        .enum_opt("orderBy", &["LogStreamName", "LastEventTime"])?
        .unwrap_or("LogStreamName");
    let descending = i.bool_opt("descending")?.unwrap_or(false);
    if order == "LastEventTime" && !prefix.is_empty() {
        return Err(AwsError::new(
            "InvalidParameterException",
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let max = limit(i, 50, 50)?;
    let all = streams(ctx, caller).await?;
    let mut mine: Vec<&Stream> = all.iter().filter(|s| s.group == group).collect();
    if mine.is_empty() {
        return Err(not_found("log group"));
    }
    mine.retain(|s| s.name.starts_with(prefix));
    match order {
        "LastEventTime" => mine.sort_by_key(|s| s.end_ms()),
        _ => mine.sort_by(|a, b| a.name.cmp(&b.name)),
    }
    if descending {
        mine.reverse();
    }
    let params = format!("DescribeLogStreams|{group}|{prefix}|{order}|{descending}");
    let skip = position(ctx, &params, i)?;
    let page: Vec<Value> = mine
        .iter()
        .skip(skip)
        .take(max)
        .map(|s| {
            let has = s.action.log_lines > 0;
            json!({
                "logStreamName": s.name,
                "creationTime": s.start_ms(),
                "firstEventTimestamp": has.then(|| s.start_ms()),
                "lastEventTimestamp": has.then(|| s.end_ms()),
                "lastIngestionTime": has.then(|| s.end_ms()),
                "arn": format!("{}:log-stream:{}", arn(&group), s.name),
                "storedBytes": 0,
            })
        })
        .collect();
    let next = (skip + page.len() < mine.len())
        .then(|| token::encode(&ctx.token_key, &params, &json!(skip + page.len())));
    Ok(json!({"logStreams": page, "nextToken": next}))
}

/// The group and start time of a stream, from the cache or a fresh walk.
async fn stream_info(ctx: &Ctx, caller: &Caller, group: &str, name: &str) -> Result<i64, AwsError> {
    let cached = ctx
        .log_streams
        .lock()
        .ok()
        .and_then(|c| c.get(name).cloned());
    let (g, start) = match cached {
        Some(x) => x,
        None => {
            let all = streams(ctx, caller).await?;
            let s = all
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| not_found("log stream"))?;
            (s.group.clone(), s.start_ms())
        }
    };
    if g != group {
        return Err(not_found("log stream"));
    }
    Ok(start)
}

async fn read(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    start: u64,
    n: u32,
) -> Result<LogPage, AwsError> {
    let r = ctx
        .call(
            caller,
            Request::GetLogEvents {
                log: LogRef::action(name),
                start_line: Some(start),
                limit: n,
            },
        )
        .await;
    match r {
        Ok(Reply::LogEvents { page }) => Ok(page),
        // A stream whose action has written nothing yet has no file.
        Err(e) if e.code == "ResourceNotFoundException" => Ok(LogPage::default()),
        Err(e) => Err(e),
        Ok(r) => {
            Err(AwsError::new("InternalFailure", format!("unexpected {r:?}")).with_status(500))
        }
    }
}

async fn total(ctx: &Ctx, caller: &Caller, name: &str) -> Result<u64, AwsError> {
    Ok(read(ctx, caller, name, 0, 1).await?.total)
}

fn token_at(t: &str) -> Option<(char, u64)> {
    let (dir, n) = t.split_once('/')?;
    let dir = match dir {
        "f" => 'f',
        "b" => 'b',
        _ => return None,
    };
    Some((dir, n.parse().ok()?))
}

fn fwd(n: u64) -> String {
    format!("f/{n:056}")
}

fn back(n: u64) -> String {
    format!("b/{n:056}")
}

/// Events of `page` within `[start, end]` ms, keeping to the 1 MB bound;
/// returns them and how many lines they cover.
fn events(page: &LogPage, fallback: i64, range: (Option<i64>, Option<i64>)) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut used = 0;
    for (k, line) in page.lines.iter().enumerate() {
        let t = page
            .times
            .get(k)
            .copied()
            .flatten()
            .map_or(fallback, |t| t as i64);
        let size = line.len() + 26;
        if bytes + size > MAX_BYTES && used > 0 {
            break;
        }
        bytes += size;
        used += 1;
        if range.0.is_some_and(|s| t < s) || range.1.is_some_and(|e| t >= e) {
            continue;
        }
        out.push(json!({"timestamp": t, "message": line, "ingestionTime": t}));
    }
    (out, used)
}

async fn get_log_events(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let group = group_of(i)?;
    let name = i.str_len("logStreamName", 1, 512)?;
    let n = limit(i, MAX_EVENTS as i64, MAX_EVENTS)? as u64;
    let from_head = i.bool_opt("startFromHead")?.unwrap_or(false);
    let range = (i.millis_opt("startTime")?, i.millis_opt("endTime")?);
    let tok = match i.str_opt("nextToken")? {
        Some(t) => Some(token_at(t).ok_or_else(|| {
            AwsError::new(
                "InvalidParameterException",
                "The specified nextToken is invalid.",
            )
        })?),
        None => None,
    };
    let start_ms = stream_info(ctx, caller, &group, name).await?;
    let total = total(ctx, caller, name).await?;
    // The window [lo, hi) to read.
    let (lo, hi, forward) = match tok {
        Some(('f', at)) => (at.min(total), (at + n).min(total), true),
        Some((_, at)) => (at.min(total).saturating_sub(n), at.min(total), false),
        None if from_head => (0, n.min(total), true),
        None => (total.saturating_sub(n), total, false),
    };
    let page = if hi > lo {
        read(ctx, caller, name, lo, (hi - lo) as u32).await?
    } else {
        LogPage::default()
    };
    let (evs, used) = events(&page, start_ms, range);
    let used = used as u64;
    // A page cut at 1 MB ends early going forward, starts late going back.
    let (first, end) = if forward {
        (lo, lo + used)
    } else {
        (hi - used, hi)
    };
    Ok(json!({
        "events": evs,
        "nextForwardToken": fwd(end),
        "nextBackwardToken": back(first),
    }))
}

/// A CloudWatch Logs filter pattern over unstructured lines: terms that
/// must all appear, `"quoted phrases"`, `?term` (any of), `-term` (none of).
/// Matching is case-sensitive, as on AWS.
#[derive(Debug, Default)]
pub struct Pattern {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

impl Pattern {
    pub fn parse(p: &str) -> Pattern {
        let mut out = Pattern::default();
        let mut rest = p.trim();
        while !rest.is_empty() {
            let (kind, r) = match rest.as_bytes()[0] {
                b'?' => ('?', &rest[1..]),
                b'-' => ('-', &rest[1..]),
                _ => (' ', rest),
            };
            let (term, r) = if let Some(q) = r.strip_prefix('"') {
                match q.find('"') {
                    Some(e) => (&q[..e], &q[e + 1..]),
                    None => (q, ""),
                }
            } else {
                match r.find(char::is_whitespace) {
                    Some(e) => (&r[..e], &r[e..]),
                    None => (r, ""),
                }
            };
            if !term.is_empty() {
                let t = term.to_owned();
                match kind {
                    '?' => out.any.push(t),
                    '-' => out.none.push(t),
                    _ => out.all.push(t),
                }
            }
            rest = r.trim_start();
        }
        out
    }

    pub fn matches(&self, line: &str) -> bool {
        self.all.iter().all(|t| line.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| line.contains(t.as_str())))
            && !self.none.iter().any(|t| line.contains(t.as_str()))
    }
}

async fn filter_log_events(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let group = group_of(i)?;
    let names = i.strings_opt("logStreamNames")?;
    let prefix = i.str_opt("logStreamNamePrefix")?;
    if names.is_some() && prefix.is_some() {
        return Err(AwsError::new(
            "InvalidParameterException",
            "logStreamNames and logStreamNamePrefix are mutually exclusive",
        ));
    }
    let pattern_text = i.str_opt("filterPattern")?.unwrap_or("");
    let pattern = Pattern::parse(pattern_text);
    let range = (i.millis_opt("startTime")?, i.millis_opt("endTime")?);
    let max = limit(i, MAX_EVENTS as i64, MAX_EVENTS)?;
    let all = streams(ctx, caller).await?;
    let mut mine: Vec<&Stream> = all.iter().filter(|s| s.group == group).collect();
    if mine.is_empty() {
        return Err(not_found("log group"));
    }
    if let Some(n) = &names {
        mine.retain(|s| n.contains(&s.name.as_str()));
    }
    if let Some(p) = prefix {
        mine.retain(|s| s.name.starts_with(p));
    }
    let params = format!("FilterLogEvents|{group}|{names:?}|{prefix:?}|{pattern_text}|{range:?}");
    // The position: (stream index, line).
    let (mut si, mut line) = match i.str_opt("nextToken")? {
        Some(t) => {
            let v = token::decode(&ctx.token_key, &params, t).ok_or_else(|| {
                AwsError::new(
                    "InvalidParameterException",
                    "The specified nextToken is invalid.",
                )
            })?;
            (
                v[0].as_u64().unwrap_or(0) as usize,
                v[1].as_u64().unwrap_or(0),
            )
        }
        None => (0, 0),
    };
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut searched = Vec::new();
    'streams: while si < mine.len() {
        let s = mine[si];
        let skip =
            range.1.is_some_and(|e| s.start_ms() >= e) || range.0.is_some_and(|b| s.end_ms() < b);
        let tot = if skip {
            0
        } else {
            total(ctx, caller, &s.name).await?
        };
        while line < tot {
            let page = read(ctx, caller, &s.name, line, 5000).await?;
            if page.lines.is_empty() {
                break;
            }
            for (k, l) in page.lines.iter().enumerate() {
                if out.len() == max || bytes > MAX_BYTES {
                    break 'streams;
                }
                let n = page.start + k as u64;
                line = n + 1;
                let t = page
                    .times
                    .get(k)
                    .copied()
                    .flatten()
                    .map_or(s.start_ms(), |t| t as i64);
                if range.0.is_some_and(|b| t < b)
                    || range.1.is_some_and(|e| t >= e)
                    || !pattern.matches(l)
                {
                    continue;
                }
                bytes += l.len() + 26;
                out.push(json!({
                    "logStreamName": s.name,
                    "timestamp": t,
                    "message": l,
                    "ingestionTime": t,
                    "eventId": format!("{}-{n:012}", s.name),
                }));
            }
        }
        searched.push(json!({"logStreamName": s.name, "searchedCompletely": true}));
        si += 1;
        line = 0;
    }
    let next =
        (si < mine.len()).then(|| token::encode(&ctx.token_key, &params, &json!([si, line])));
    Ok(json!({"events": out, "searchedLogStreams": searched, "nextToken": next}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns() {
        let p = Pattern::parse(r#"ERROR "exit status 1" ?npm ?yarn -ignored"#);
        assert!(p.matches("ERROR: exit status 1 from npm"));
        assert!(!p.matches("ERROR: exit status 1 from make"));
        assert!(!p.matches("ERROR exit status 1 npm ignored"));
        assert!(!p.matches("error: exit status 1 npm"));
        assert!(Pattern::parse("").matches("anything"));
    }

    #[test]
    fn tokens() {
        assert_eq!(token_at(&fwd(42)), Some(('f', 42)));
        assert_eq!(token_at(&back(0)), Some(('b', 0)));
        assert_eq!(token_at("x/1"), None);
        assert_eq!(fwd(1).len(), 58);
    }
}
