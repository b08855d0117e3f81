//! Starting executions: by request, or on a source change.

use std::collections::BTreeMap;

use super::state::{ExecRec, Position, StageRec};
use super::{Engine, api};
use crate::api::types::{
    ExecutionStatus, ExecutionTrigger, ExecutionType, RetryMetadata, SourceRevisionOverride,
    TriggerType,
};
use crate::api::{ApiError, Envelope, ExecutionSummary, Reply, Request};
use crate::store::now_rfc3339;

impl Engine {
    pub(super) fn start_execution(
        &mut self,
        pipeline: &str,
        overrides: &BTreeMap<String, String>,
        sources: &[SourceRevisionOverride],
        trigger: ExecutionTrigger,
    ) -> Result<String, ApiError> {
        let ps = self.pipeline(pipeline)?;
        let p = &ps.def.pipeline;
        let mut variables = BTreeMap::new();
        for decl in &p.variables {
            if let Some(d) = &decl.default_value {
                variables.insert(decl.name.clone(), d.clone());
            }
        }
        for (k, v) in overrides {
            if !p.variables.iter().any(|d| &d.name == k) {
                return Err(api(
                    "ValidationException",
                    format!(
                        "variable `{k}` is not declared by pipeline {pipeline} (declared: {})",
                        if p.variables.is_empty() {
                            "none".to_owned()
                        } else {
                            p.variables
                                .iter()
                                .map(|d| d.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                ));
            }
            if v.is_empty() || v.len() > 1000 {
                return Err(api(
                    "ValidationException",
                    format!("variable `{k}`: the value must be 1 to 1000 characters"),
                ));
            }
            variables.insert(k.clone(), v.clone());
        }
        if let Some(missing) = p
            .variables
            .iter()
            .find(|d| !variables.contains_key(&d.name))
        {
            return Err(api(
                "ValidationException",
                format!(
                    "variable `{}` has no default value: give it with --var {}=VALUE",
                    missing.name, missing.name
                ),
            ));
        }
        let mut source_overrides = BTreeMap::new();
        for s in sources {
            let is_source = p
                .stages
                .first()
                .is_some_and(|st| st.actions.iter().any(|a| a.name == s.action_name));
            if !is_source {
                return Err(api(
                    "ValidationException",
                    format!(
                        "sourceRevisions: `{}` is not a source action",
                        s.action_name
                    ),
                ));
            }
            if s.revision_type != "COMMIT_ID" {
                return Err(api(
                    "ValidationException",
                    format!(
                        "sourceRevisions: revisionType {} is not supported by git sources; use COMMIT_ID",
                        s.revision_type
                    ),
                ));
            }
            source_overrides.insert(s.action_name.clone(), s.revision_value.clone());
        }
        let id = uuid::Uuid::new_v4().to_string();
        let seq = ps
            .order
            .last()
            .and_then(|l| self.execs.get(l))
            .map_or(1, |e| e.seq + 1);
        let now = now_rfc3339();
        let rec = ExecRec {
            summary: ExecutionSummary {
                pipeline_execution_id: id.clone(),
                pipeline_name: pipeline.to_owned(),
                pipeline_version: ps.version,
                status: ExecutionStatus::InProgress,
                status_summary: None,
                start_time: now.clone(),
                last_update_time: now,
                trigger,
                execution_mode: ps.mode().as_str().to_owned(),
                execution_type: ExecutionType::Standard,
                rollback_target: None,
                source_revisions: Vec::new(),
                variables,
                stop_reason: None,
                current_stage: None,
            },
            seq,
            stages: p
                .stages
                .iter()
                .map(|s| StageRec {
                    name: s.name.clone(),
                    status: None,
                    retry: RetryMetadata::default(),
                    auto_retried: false,
                    entry_seq: 0,
                    actions: vec![None; s.actions.len()],
                    condition: None,
                })
                .collect(),
            artifacts: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            position: Position::Waiting(0),
            stop: None,
            source_overrides,
            attempts: BTreeMap::new(),
            stages_apart: false,
        };
        let name = pipeline.to_owned();
        self.execs.insert(id.clone(), rec);
        if let Some(ps) = self.pipelines.get_mut(&name) {
            ps.order.push(id.clone());
        }
        self.save_new(&id)?;
        self.publish_exec(&id);
        self.arrive(&id, 0);
        Ok(id)
    }

    pub(super) fn source_change(
        &mut self,
        pipeline: &str,
        action: &str,
        commit: &str,
        detail: &str,
    ) {
        let trigger = ExecutionTrigger {
            trigger_type: TriggerType::Webhook,
            trigger_detail: detail.to_owned(),
        };
        let sources = vec![SourceRevisionOverride {
            action_name: action.to_owned(),
            revision_type: "COMMIT_ID".into(),
            revision_value: commit.to_owned(),
        }];
        let r = self.start_execution(pipeline, &BTreeMap::new(), &sources, trigger);
        let env = Envelope {
            identity: "codepipeline.amazonaws.com".into(),
            user_agent: "engine".into(),
            request: Request::StartPipelineExecution {
                pipeline_name: pipeline.to_owned(),
                variables: BTreeMap::new(),
                source_revisions: sources,
            },
        };
        let r = r.map(|id| Reply::Started {
            pipeline_execution_id: id,
        });
        self.audit_call(&env, &r);
    }
}
