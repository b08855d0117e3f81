//! Reads answered from the actor's state: GetPipeline of any stored
//! version and the paged lists. Paging follows AWS: `maxResults` and
//! `nextToken` in, a `nextToken` out while more remain. A token is opaque
//! to clients (hex of its kind and the last item returned), so a page
//! stays put when newer items arrive in front of it.

use super::{Engine, api};
use crate::api::{ApiError, ExecutionSummary, PipelineMetadata, Reply};

/// The summary of a stored execution record; the rest is skipped.
#[derive(serde::Deserialize)]
struct SummaryOf {
    summary: ExecutionSummary,
}

impl Engine {
    /// ListPipelines, a page at a time.
    pub(super) fn list_pipelines_page(
        &self,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let max = page_size(max_results, 1000, 1000);
        let after = open_token(next_token, "pipelines")?;
        let all = self.list_pipelines();
        let start = after.map_or(0, |name| {
            all.iter().position(|p| p.name > name).unwrap_or(all.len())
        });
        let (pipelines, next_token) = page(all, start, max, |p| token("pipelines", &p.name));
        Ok(Reply::Pipelines {
            pipelines,
            next_token,
        })
    }

    /// ListPipelineExecutions, newest first, a page at a time: one indexed
    /// read of the page (and one more row, to tell whether more remain),
    /// with the in-memory summary for what the engine holds (it is never
    /// older than the store's).
    pub(super) fn executions_page(
        &self,
        pipeline_name: &str,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Reply, ApiError> {
        self.pipeline(pipeline_name)?;
        let max = page_size(max_results, 100, 1000);
        let before = match open_token(next_token, "executions")? {
            Some(seq) => Some(seq.parse::<i64>().map_err(|_| invalid_token())?),
            None => None,
        };
        let internal = |e: crate::store::StoreError| api("InternalError", e.to_string());
        let rows = self
            .store
            .executions_before(pipeline_name, before, (max + 1) as u32)
            .map_err(internal)?;
        let mut newest_first = Vec::with_capacity(rows.len());
        for row in rows {
            let summary = match self.execs.get(&row.id) {
                Some(e) => e.summary.clone(),
                None => match self.store.decode::<SummaryOf>(&row.record) {
                    Ok(s) => s.summary,
                    Err(e) => {
                        tracing::error!(execution = row.id, error = %e, "skipping a stored execution");
                        continue;
                    }
                },
            };
            newest_first.push((row.seq, summary));
        }
        let (items, next_token) = page(newest_first, 0, max, |(seq, _)| {
            token("executions", &seq.to_string())
        });
        let executions = items.into_iter().map(|(_, s)| s).collect();
        Ok(Reply::Executions {
            executions,
            next_token,
        })
    }

    /// ListActionExecutions of one execution, newest first, a page at a time.
    pub(super) fn action_executions_page(
        &self,
        pipeline_name: &str,
        pipeline_execution_id: &str,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let all = self.action_executions(pipeline_name, pipeline_execution_id)?;
        let max = page_size(max_results, 100, 1000);
        let start = match open_token(next_token, "actions")? {
            Some(last) => {
                all.iter()
                    .position(|a| a.action_execution_id == last)
                    .ok_or_else(invalid_token)?
                    + 1
            }
            None => 0,
        };
        let (actions, next_token) = page(all, start, max, |a| {
            token("actions", &a.action_execution_id)
        });
        Ok(Reply::ActionExecutions {
            actions,
            next_token,
        })
    }

    /// LookupEvents over the audit trail, newest first, a page at a time.
    pub(super) fn events_page(
        &self,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let max = page_size(max_results, 50, 10_000);
        let limit = u32::try_from(max + 1).unwrap_or(u32::MAX);
        let internal = |e: crate::store::StoreError| api("InternalError", e.to_string());
        let mut events = match open_token(next_token, "events")? {
            Some(last) => self
                .store
                .audit_before(limit, &last)
                .map_err(internal)?
                .ok_or_else(invalid_token)?,
            None => self.store.audit(limit).map_err(internal)?,
        };
        let next_token = (events.len() > max).then(|| {
            events.truncate(max);
            token("events", &events[max - 1].event_id)
        });
        Ok(Reply::Events { events, next_token })
    }

    pub(super) fn get_pipeline(&self, name: &str, version: Option<u32>) -> Result<Reply, ApiError> {
        let ps = self.pipeline(name)?;
        let v = version.unwrap_or(ps.version);
        let stored = self
            .store
            .pipeline_definition(name, v)
            .map_err(|e| api("InternalError", e.to_string()))?;
        let Some((definition, updated, created)) = stored else {
            return Err(api(
                "PipelineVersionNotFound",
                format!(
                    "pipeline {name} has no version {v} (the current one is {})",
                    ps.version
                ),
            ));
        };
        let pipeline = if v == ps.version {
            ps.def.pipeline.clone()
        } else {
            serde_json::from_str(&definition).map_err(|e| {
                api(
                    "InternalError",
                    format!("version {v} of pipeline {name} is stored but does not decode: {e}"),
                )
            })?
        };
        Ok(Reply::Pipeline {
            pipeline: Box::new(pipeline),
            metadata: PipelineMetadata {
                pipeline_name: name.to_owned(),
                pipeline_version: v,
                current_version: ps.version,
                created,
                updated,
            },
        })
    }
}

/// `maxResults`: `default` when not given, within 1 ..= `max`.
fn page_size(asked: Option<u32>, default: u32, max: u32) -> usize {
    asked.unwrap_or(default).clamp(1, max) as usize
}

/// Items `start ..` up to `max`, and a token naming the last one when
/// more remain.
fn page<T>(
    all: Vec<T>,
    start: usize,
    max: usize,
    token_of: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let rest: Vec<T> = all.into_iter().skip(start).collect();
    let more = rest.len() > max;
    let items: Vec<T> = rest.into_iter().take(max).collect();
    let next = if more {
        items.last().map(token_of)
    } else {
        None
    };
    (items, next)
}

fn token(kind: &str, cursor: &str) -> String {
    format!("{kind}:{cursor}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cursor inside a token of `kind` (`None` for the first page).
fn open_token(token: Option<&str>, kind: &str) -> Result<Option<String>, ApiError> {
    let Some(t) = token else {
        return Ok(None);
    };
    if t.is_empty() || !t.len().is_multiple_of(2) || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid_token());
    }
    let bytes: Vec<u8> = (0..t.len())
        .step_by(2)
        .filter_map(|i| t.get(i..i + 2))
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    let text = String::from_utf8(bytes).map_err(|_| invalid_token())?;
    match text.split_once(':') {
        Some((k, cursor)) if k == kind => Ok(Some(cursor.to_owned())),
        _ => Err(invalid_token()),
    }
}

fn invalid_token() -> ApiError {
    api(
        "InvalidNextToken",
        "the nextToken was not issued by this list (pass the one its last page returned)",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_opaque_and_checked() {
        let t = token("events", "é-1");
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            open_token(Some(&t), "events").unwrap().as_deref(),
            Some("é-1")
        );
        assert_eq!(open_token(None, "events").unwrap(), None);
        for bad in ["", "zz", "abc", &token("actions", "x")] {
            assert_eq!(
                open_token(Some(bad), "events").unwrap_err().code,
                "InvalidNextToken",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_page_names_its_last_item_only_when_more_remain() {
        let (items, next) = page(vec![1, 2, 3], 0, 2, |n| n.to_string());
        assert_eq!((items, next.as_deref()), (vec![1, 2], Some("2")));
        let (items, next) = page(vec![1, 2, 3], 2, 2, |n| n.to_string());
        assert_eq!((items, next), (vec![3], None));
        let (items, next) = page(vec![1, 2], 0, 2, |n| n.to_string());
        assert_eq!((items, next), (vec![1, 2], None));
    }
}
