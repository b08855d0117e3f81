// MOVE TO src/api/
//! Requests and replies the TUI and remote backends need (issue 12), kept
//! here until they move into `src/api/`: `RequestAddition`'s variants join
//! `Request`, `ReplyAddition`'s join `Reply`, and `LogRef`,
//! `PipelineMetadata` go beside them. The paged list variants are the
//! existing ones with `max_results`/`next_token` added (the fields to add
//! to `Request::ListPipelines`, `ListPipelineExecutions`,
//! `ListActionExecutions`, `LookupEvents` and to the replies `Pipelines`,
//! `Executions`, `ActionExecutions`, `Events`). Until then the engine
//! answers them through `EngineHandle::request_addition`.
//!
//! This file imports only `crate::api` and `crate::model`, as `src/api/`
//! may.

use serde::{Deserialize, Serialize};

use crate::api::{ActionExecutionDetail, AuditEvent, ExecutionSummary, PipelineSummary};
use crate::model::pipeline::Pipeline;

/// Where a log is: an action execution's, or an environment replica's
/// output. A remote backend adds its own kinds (a CloudWatch stream).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum LogRef {
    #[serde(rename_all = "camelCase")]
    ActionExecution { action_execution_id: String },
    /// `file` is the replica's log name as the environment lists it
    /// (without `.log`).
    #[serde(rename_all = "camelCase")]
    Environment {
        environment_name: String,
        file: String,
    },
}

impl LogRef {
    /// The TUI's log keys today: `env/<env>/<file>` or an action
    /// execution id.
    pub fn parse(key: &str) -> LogRef {
        match key.strip_prefix("env/").and_then(|r| r.split_once('/')) {
            Some((env, file)) => LogRef::Environment {
                environment_name: env.to_owned(),
                file: file.to_owned(),
            },
            None => LogRef::ActionExecution {
                action_execution_id: key.to_owned(),
            },
        }
    }

    /// The inverse of [`LogRef::parse`].
    pub fn key(&self) -> String {
        match self {
            LogRef::ActionExecution {
                action_execution_id,
            } => action_execution_id.clone(),
            LogRef::Environment {
                environment_name,
                file,
            } => format!("env/{environment_name}/{file}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum RequestAddition {
    /// The pipeline's declaration as the backend has it (CodePipeline's
    /// GetPipeline). `None`: the current version.
    #[serde(rename_all = "camelCase")]
    GetPipeline {
        pipeline_name: String,
        pipeline_version: Option<u32>,
    },
    /// Lines of a log (CloudWatch Logs' GetLogEvents, by line number):
    /// `start_line` `None` reads the last `limit` lines.
    #[serde(rename_all = "camelCase")]
    GetLogEvents {
        log: LogRef,
        start_line: Option<u64>,
        limit: u32,
    },
    /// The lines of a log that contain `pattern` (or match it as a
    /// regular expression), at most `limit` of them.
    #[serde(rename_all = "camelCase")]
    FilterLogEvents {
        log: LogRef,
        pattern: String,
        #[serde(default)]
        regex: bool,
        limit: u32,
    },
    /// `Request::ListPipelines` with paging.
    #[serde(rename_all = "camelCase")]
    ListPipelines {
        max_results: Option<u32>,
        next_token: Option<String>,
    },
    /// `Request::ListPipelineExecutions` with paging.
    #[serde(rename_all = "camelCase")]
    ListPipelineExecutions {
        pipeline_name: String,
        max_results: Option<u32>,
        next_token: Option<String>,
    },
    /// `Request::ListActionExecutions` with paging (newest first).
    #[serde(rename_all = "camelCase")]
    ListActionExecutions {
        pipeline_name: String,
        pipeline_execution_id: String,
        max_results: Option<u32>,
        next_token: Option<String>,
    },
    /// `Request::LookupEvents` with paging.
    #[serde(rename_all = "camelCase")]
    LookupEvents {
        max_results: Option<u32>,
        next_token: Option<String>,
    },
}

impl RequestAddition {
    /// The CloudTrail `eventName` (all of these are reads: not audited).
    pub fn event_name(&self) -> &'static str {
        match self {
            RequestAddition::GetPipeline { .. } => "GetPipeline",
            RequestAddition::GetLogEvents { .. } => "GetLogEvents",
            RequestAddition::FilterLogEvents { .. } => "FilterLogEvents",
            RequestAddition::ListPipelines { .. } => "ListPipelines",
            RequestAddition::ListPipelineExecutions { .. } => "ListPipelineExecutions",
            RequestAddition::ListActionExecutions { .. } => "ListActionExecutions",
            RequestAddition::LookupEvents { .. } => "LookupEvents",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ReplyAddition {
    Pipeline {
        pipeline: Box<Pipeline>,
        metadata: PipelineMetadata,
    },
    /// Lines `start .. start + lines.len()` of a log of `total` lines;
    /// `times[i]` is when line `start + i` reached the disk (unix ms),
    /// where known.
    #[serde(rename_all = "camelCase")]
    LogEvents {
        total: u64,
        start: u64,
        lines: Vec<String>,
        times: Vec<Option<u64>>,
    },
    /// Matching line numbers (0-based, ascending) in a log of `total`
    /// lines; `truncated` when more lines match than `limit`.
    #[serde(rename_all = "camelCase")]
    LogMatches {
        total: u64,
        matches: Vec<u64>,
        truncated: bool,
    },
    #[serde(rename_all = "camelCase")]
    Pipelines {
        pipelines: Vec<PipelineSummary>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Executions {
        executions: Vec<ExecutionSummary>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    ActionExecutions {
        actions: Vec<ActionExecutionDetail>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Events {
        events: Vec<AuditEvent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
}

/// GetPipeline's `metadata`: which version this is and when it was
/// stored (`updated`), and when the pipeline's first version was
/// (`created`), RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineMetadata {
    pub pipeline_name: String,
    pub pipeline_version: u32,
    /// The version the engine runs new executions with.
    pub current_version: u32,
    pub created: String,
    pub updated: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn log_keys_round_trip() {
        for key in ["0f3c-aeid", "env/web/blue-1", "env/web/a/b"] {
            assert_eq!(LogRef::parse(key).key(), key);
        }
        assert_eq!(
            LogRef::parse("env/web/blue-1"),
            LogRef::Environment {
                environment_name: "web".into(),
                file: "blue-1".into()
            }
        );
        let json = serde_json::to_string(&RequestAddition::GetLogEvents {
            log: LogRef::parse("abc"),
            start_line: None,
            limit: 10,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"op":"getLogEvents","log":{"type":"actionExecution","actionExecutionId":"abc"},"startLine":null,"limit":10}"#
        );
    }
}
