//! Persistence: every change is written through to the store, then published.

use super::Engine;
use super::state::{ExecRec, Position};
use crate::api::types::StageStatus;
use crate::api::{ApiError, AuditEvent, EngineEvent, Envelope, Reply, UserIdentity};
use crate::store::now_rfc3339;

impl Engine {
    pub(super) fn save(&mut self, id: &str, include_actions: bool) {
        let Some(rec) = self.execs.get_mut(id) else {
            return;
        };
        rec.summary.current_stage = match rec.position {
            Position::Waiting(i) | Position::InStage(i) => {
                rec.stages.get(i).map(|s| s.name.clone())
            }
            Position::Done => None,
        };
        let rec = rec.clone();
        let r = self.store.batch(|b| {
            write_exec(b, &rec)?;
            if include_actions {
                for a in rec.stages.iter().flat_map(|s| s.actions.iter().flatten()) {
                    b.action_execution(a)?;
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            tracing::error!(execution = id, error = %e, "cannot store an execution");
        }
    }

    pub(super) fn publish_exec(&self, id: &str) {
        if let Some(e) = self.execs.get(id) {
            let _ = self.events.send(EngineEvent::ExecutionChanged {
                execution: e.summary.clone(),
            });
        }
    }

    pub(super) fn stage_changed(&mut self, id: &str, i: usize) {
        self.save(id, false);
        if let Some(e) = self.execs.get(id)
            && let Some(status) = e.stages[i].status
        {
            let _ = self.events.send(EngineEvent::StageChanged {
                pipeline_name: e.summary.pipeline_name.clone(),
                pipeline_execution_id: id.to_owned(),
                stage_name: e.stages[i].name.clone(),
                status,
            });
        }
    }

    pub(super) fn audit_call(&mut self, env: &Envelope, result: &Result<Reply, ApiError>) {
        let service = env.user_agent == "engine";
        let event = AuditEvent {
            event_version: "1.09".into(),
            event_id: uuid::Uuid::new_v4().to_string(),
            event_time: now_rfc3339(),
            event_source: "codepipeline.amazonaws.com".into(),
            event_name: env.request.event_name().into(),
            aws_region: "local".into(),
            source_ip_address: if service {
                "codepipeline.amazonaws.com".into()
            } else {
                "127.0.0.1".into()
            },
            user_agent: env.user_agent.clone(),
            user_identity: UserIdentity {
                identity_type: if service { "AWSService" } else { "IAMUser" }.into(),
                principal_id: env.identity.clone(),
                arn: if service {
                    String::new()
                } else {
                    format!("arn:aws:iam::000000000000:user/{}", env.identity)
                },
                account_id: "000000000000".into(),
                user_name: (!service).then(|| env.identity.clone()),
                invoked_by: service.then(|| "codepipeline.amazonaws.com".into()),
            },
            request_parameters: serde_json::to_value(&env.request)
                .unwrap_or(serde_json::Value::Null),
            response_elements: result
                .as_ref()
                .ok()
                .and_then(|r| serde_json::to_value(r).ok()),
            error_code: result
                .as_ref()
                .err()
                .map(|e| format!("{}Exception", e.code.trim_end_matches("Exception"))),
            error_message: result.as_ref().err().map(|e| e.message.clone()),
            event_type: if service {
                "AwsServiceEvent"
            } else {
                "AwsApiCall"
            }
            .into(),
            read_only: false,
        };
        if let Err(e) = self.store.batch(|b| b.audit(&event)) {
            tracing::error!(error = %e, "cannot store an audit event");
        }
        let _ = self.events.send(EngineEvent::Audit { event });
    }
}

pub(super) fn write_exec(
    b: &crate::store::Batch<'_>,
    rec: &ExecRec,
) -> Result<(), rusqlite::Error> {
    let s = &rec.summary;
    b.execution(
        &s.pipeline_execution_id,
        &s.pipeline_name,
        rec.seq,
        s.status.as_str(),
        s.execution_type.as_str(),
        &s.start_time,
        rec,
    )?;
    for st in &rec.stages {
        if st.status.is_some() {
            b.stage_execution(
                &s.pipeline_execution_id,
                &st.name,
                st.status.map(StageStatus::as_str),
                st,
            )?;
        }
    }
    for (k, v) in &s.variables {
        b.variable(&s.pipeline_execution_id, "variables", k, v)?;
    }
    for (ns, m) in &rec.namespaces {
        for (k, v) in m {
            b.variable(&s.pipeline_execution_id, ns, k, v)?;
        }
    }
    Ok(())
}
