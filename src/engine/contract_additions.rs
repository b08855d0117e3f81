// MOVE TO src/api/
//! Requests and replies the TUI and remote backends need (issue 12) that
//! `src/api/` does not have yet, kept here until they move there:
//!
//! - `GetPipeline` with `pipeline_version` (`None`: the current one) and
//!   the reply's `metadata` (versions, created/updated): add the field to
//!   `Request::GetPipeline` (serde default) and `metadata` to
//!   `Reply::Pipeline`.
//! - nextToken paging: add `max_results`/`next_token` to
//!   `Request::ListPipelines` (a unit variant today),
//!   `next_token` to `ListPipelineExecutions`, `ListActionExecutions`
//!   (and `max_results`) and `LookupEvents`, and `next_token` (serde
//!   default, skipped when `None`) to the replies `Pipelines`,
//!   `Executions`, `ActionExecutions` and `Events`.
//!
//! Until then the engine answers them through
//! `EngineHandle::request_addition`. This file imports only `crate::api`
//! and `crate::model`, as `src/api/` may.

use serde::{Deserialize, Serialize};

use crate::api::{ActionExecutionDetail, AuditEvent, ExecutionSummary, PipelineSummary};
use crate::model::pipeline::Pipeline;

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
    fn additions_speak_the_contract_s_json() {
        let json = serde_json::to_string(&RequestAddition::ListPipelineExecutions {
            pipeline_name: "p".into(),
            max_results: Some(2),
            next_token: None,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"op":"listPipelineExecutions","pipelineName":"p","maxResults":2,"nextToken":null}"#
        );
        let reply = ReplyAddition::Executions {
            executions: Vec::new(),
            next_token: None,
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"kind":"executions","executions":[]}"#
        );
    }
}
