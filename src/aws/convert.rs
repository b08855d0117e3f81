//! CodePipeline's SDK shapes → the contract's (`crate::api`). Pure; every
//! absent field becomes the contract's neutral value, never a panic.

use std::collections::BTreeMap;

use aws_sdk_codepipeline::primitives::{DateTime, DateTimeFormat};
use aws_sdk_codepipeline::types as t;

use crate::api::types::{
    ActionStatus, ErrorDetails, ExecutionStatus, ExecutionTrigger, ExecutionType, RetryMetadata,
    SourceRevision, StageStatus, TriggerType,
};
use crate::api::{
    ActionExecutionDetail, ActionState, ArtifactRef, ConditionState, ExecutionSummary,
    InboundExecution, PipelineMetadata, PipelineState, PipelineSummary, RuleState, StageExecution,
    StageState, TransitionState,
};
use crate::model::pipeline as m;

/// RFC 3339, or "" when absent.
pub fn time(dt: Option<&DateTime>) -> String {
    dt.and_then(|d| d.fmt(DateTimeFormat::DateTime).ok())
        .unwrap_or_default()
}

fn u32_of(v: Option<i32>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

pub fn execution_status(s: Option<&str>) -> ExecutionStatus {
    s.and_then(ExecutionStatus::parse)
        .unwrap_or(ExecutionStatus::InProgress)
}

pub fn stage_status(s: &str) -> StageStatus {
    match s {
        "Succeeded" => StageStatus::Succeeded,
        "Failed" => StageStatus::Failed,
        "Stopped" => StageStatus::Stopped,
        "Stopping" => StageStatus::Stopping,
        "Cancelled" => StageStatus::Cancelled,
        "Skipped" => StageStatus::Skipped,
        _ => StageStatus::InProgress,
    }
}

pub fn action_status(s: Option<&str>) -> ActionStatus {
    match s.unwrap_or_default() {
        "Succeeded" => ActionStatus::Succeeded,
        "Failed" => ActionStatus::Failed,
        "Abandoned" => ActionStatus::Abandoned,
        _ => ActionStatus::InProgress,
    }
}

fn execution_type(s: Option<&str>) -> ExecutionType {
    if s == Some("ROLLBACK") {
        ExecutionType::Rollback
    } else {
        ExecutionType::Standard
    }
}

/// AWS names more trigger types than the contract; the nearest is used.
fn trigger(tr: Option<&t::ExecutionTrigger>) -> ExecutionTrigger {
    let kind = tr.and_then(|t| t.trigger_type()).map(|k| k.as_str());
    let trigger_type = match kind.unwrap_or_default() {
        "PollForSourceChanges" | "PutActionRevision" => TriggerType::PollForSourceChanges,
        "Webhook" | "WebhookV2" => TriggerType::Webhook,
        "CloudWatchEvent" => TriggerType::CloudWatchEvent,
        "ManualRollback" => TriggerType::ManualRollback,
        "AutomatedRollback" => TriggerType::AutomatedRollback,
        _ => TriggerType::StartPipelineExecution,
    };
    ExecutionTrigger {
        trigger_type,
        trigger_detail: tr
            .and_then(|t| t.trigger_detail())
            .unwrap_or_default()
            .to_owned(),
    }
}

fn source_revision(r: &t::SourceRevision) -> SourceRevision {
    SourceRevision {
        action_name: r.action_name().to_owned(),
        revision_id: r.revision_id().unwrap_or_default().to_owned(),
        revision_summary: r.revision_summary().map(str::to_owned),
        revision_url: r.revision_url().map(str::to_owned),
    }
}

pub fn pipeline_summary(p: &t::PipelineSummary) -> PipelineSummary {
    PipelineSummary {
        name: p.name().unwrap_or_default().to_owned(),
        version: u32_of(p.version()),
        pipeline_type: p.pipeline_type().map_or("V1", |t| t.as_str()).to_owned(),
        execution_mode: p
            .execution_mode()
            .map_or("SUPERSEDED", |m| m.as_str())
            .to_owned(),
        latest_execution: None,
        pending_approvals: 0,
    }
}

pub fn execution_summary(pipeline: &str, e: &t::PipelineExecutionSummary) -> ExecutionSummary {
    ExecutionSummary {
        pipeline_execution_id: e.pipeline_execution_id().unwrap_or_default().to_owned(),
        pipeline_name: pipeline.to_owned(),
        pipeline_version: 0,
        status: execution_status(e.status().map(|s| s.as_str())),
        status_summary: e.status_summary().map(str::to_owned),
        start_time: time(e.start_time()),
        last_update_time: time(e.last_update_time()),
        trigger: trigger(e.trigger()),
        execution_mode: e
            .execution_mode()
            .map_or("SUPERSEDED", |m| m.as_str())
            .to_owned(),
        execution_type: execution_type(e.execution_type().map(|t| t.as_str())),
        rollback_target: e
            .rollback_metadata()
            .and_then(|r| r.rollback_target_pipeline_execution_id())
            .map(str::to_owned),
        source_revisions: e.source_revisions().iter().map(source_revision).collect(),
        variables: BTreeMap::new(),
        stop_reason: e.stop_trigger().and_then(|s| s.reason()).map(str::to_owned),
        current_stage: None,
    }
}

pub fn execution(e: &t::PipelineExecution) -> ExecutionSummary {
    let pipeline = e.pipeline_name().unwrap_or_default();
    ExecutionSummary {
        pipeline_execution_id: e.pipeline_execution_id().unwrap_or_default().to_owned(),
        pipeline_name: pipeline.to_owned(),
        pipeline_version: u32_of(e.pipeline_version()),
        status: execution_status(e.status().map(|s| s.as_str())),
        status_summary: e.status_summary().map(str::to_owned),
        start_time: String::new(),
        last_update_time: String::new(),
        trigger: trigger(e.trigger()),
        execution_mode: e
            .execution_mode()
            .map_or("SUPERSEDED", |m| m.as_str())
            .to_owned(),
        execution_type: execution_type(e.execution_type().map(|t| t.as_str())),
        rollback_target: e
            .rollback_metadata()
            .and_then(|r| r.rollback_target_pipeline_execution_id())
            .map(str::to_owned),
        source_revisions: e
            .artifact_revisions()
            .iter()
            .map(|r| SourceRevision {
                action_name: r.name().unwrap_or_default().to_owned(),
                revision_id: r.revision_id().unwrap_or_default().to_owned(),
                revision_summary: r.revision_summary().map(str::to_owned),
                revision_url: r.revision_url().map(str::to_owned),
            })
            .collect(),
        variables: e
            .variables()
            .iter()
            .map(|v| {
                (
                    v.name().unwrap_or_default().to_owned(),
                    v.resolved_value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        stop_reason: None,
        current_stage: None,
    }
}

fn error_details(e: Option<&t::ErrorDetails>) -> Option<ErrorDetails> {
    e.map(|e| ErrorDetails {
        code: e.code().unwrap_or_default().to_owned(),
        message: e.message().unwrap_or_default().to_owned(),
    })
}

fn blank_action(pipeline_execution_id: &str, stage: &str, action: &str) -> ActionExecutionDetail {
    ActionExecutionDetail {
        action_execution_id: String::new(),
        pipeline_execution_id: pipeline_execution_id.to_owned(),
        stage_name: stage.to_owned(),
        action_name: action.to_owned(),
        attempt: 1,
        status: ActionStatus::InProgress,
        summary: None,
        start_time: String::new(),
        last_status_change: String::new(),
        token: None,
        external_execution_id: None,
        error_details: None,
        resolved_configuration: BTreeMap::new(),
        input_artifacts: Vec::new(),
        output_artifacts: Vec::new(),
        output_variables: BTreeMap::new(),
        test_report: None,
        approval: None,
        log_lines: 0,
        phases: Vec::new(),
    }
}

fn artifacts(a: &[t::ArtifactDetail]) -> Vec<ArtifactRef> {
    a.iter()
        .map(|a| ArtifactRef {
            name: a.name().unwrap_or_default().to_owned(),
            id: a
                .s3_location()
                .map(|l| {
                    format!(
                        "s3://{}/{}",
                        l.bucket().unwrap_or_default(),
                        l.key().unwrap_or_default()
                    )
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// One `ListActionExecutions` entry.
pub fn action_detail(a: &t::ActionExecutionDetail) -> ActionExecutionDetail {
    let mut d = blank_action(
        a.pipeline_execution_id().unwrap_or_default(),
        a.stage_name().unwrap_or_default(),
        a.action_name().unwrap_or_default(),
    );
    d.action_execution_id = a.action_execution_id().unwrap_or_default().to_owned();
    d.status = action_status(a.status().map(|s| s.as_str()));
    d.start_time = time(a.start_time());
    d.last_status_change = time(a.last_update_time());
    if let Some(i) = a.input() {
        d.resolved_configuration = i
            .resolved_configuration()
            .or(i.configuration())
            .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        d.input_artifacts = artifacts(i.input_artifacts());
    }
    if let Some(o) = a.output() {
        d.output_artifacts = artifacts(o.output_artifacts());
        d.output_variables = o
            .output_variables()
            .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if let Some(r) = o.execution_result() {
            d.external_execution_id = r.external_execution_id().map(str::to_owned);
            d.summary = r.external_execution_summary().map(str::to_owned);
            d.error_details = error_details(r.error_details());
        }
    }
    d
}

/// `actionStates[].latestExecution`, for an action of a stage.
fn action_state(stage: &str, stage_exec: Option<&str>, a: &t::ActionState) -> ActionState {
    let name = a.action_name().unwrap_or_default().to_owned();
    let latest = a.latest_execution().map(|x| {
        let mut d = blank_action(stage_exec.unwrap_or_default(), stage, &name);
        d.action_execution_id = x.action_execution_id().unwrap_or_default().to_owned();
        d.status = action_status(x.status().map(|s| s.as_str()));
        d.summary = x.summary().map(str::to_owned);
        d.last_status_change = time(x.last_status_change());
        d.start_time = d.last_status_change.clone();
        d.token = x.token().map(str::to_owned);
        d.external_execution_id = x.external_execution_id().map(str::to_owned);
        d.error_details = error_details(x.error_details());
        d
    });
    ActionState {
        action_name: name,
        latest_execution: latest,
    }
}

fn stage_execution(e: &t::StageExecution) -> StageExecution {
    StageExecution {
        pipeline_execution_id: e.pipeline_execution_id().to_owned(),
        status: stage_status(e.status().as_str()),
        execution_type: execution_type(e.r#type().map(|t| t.as_str())),
    }
}

fn transition(t: Option<&t::TransitionState>) -> TransitionState {
    TransitionState {
        enabled: t.is_none_or(|t| t.enabled()),
        last_changed_by: t.and_then(|t| t.last_changed_by()).map(str::to_owned),
        last_changed_at: t.and_then(|t| t.last_changed_at()).map(|d| time(Some(d))),
        disabled_reason: t.and_then(|t| t.disabled_reason()).map(str::to_owned),
    }
}

pub fn stage_state(s: &t::StageState) -> StageState {
    let name = s.stage_name().unwrap_or_default().to_owned();
    let latest = s.latest_execution().map(stage_execution);
    let exec_id = latest.as_ref().map(|l| l.pipeline_execution_id.clone());
    let mut inbound: Vec<InboundExecution> = s
        .inbound_executions()
        .iter()
        .chain(s.inbound_execution())
        .map(|e| InboundExecution {
            pipeline_execution_id: e.pipeline_execution_id().to_owned(),
            status: ExecutionStatus::InProgress,
            execution_type: execution_type(e.r#type().map(|t| t.as_str())),
        })
        .collect();
    inbound.dedup_by(|a, b| a.pipeline_execution_id == b.pipeline_execution_id);
    StageState {
        action_states: s
            .action_states()
            .iter()
            .map(|a| action_state(&name, exec_id.as_deref(), a))
            .collect(),
        stage_name: name,
        inbound_executions: inbound,
        inbound_transition_state: transition(s.inbound_transition_state()),
        latest_execution: latest,
        retry_stage_metadata: s
            .retry_stage_metadata()
            .map(|r| RetryMetadata {
                auto_stage_retry_attempt: u32_of(r.auto_stage_retry_attempt()),
                manual_stage_retry_attempt: u32_of(r.manual_stage_retry_attempt()),
                latest_retry_trigger: r.latest_retry_trigger().map(|t| t.as_str().to_owned()),
            })
            .unwrap_or_default(),
        condition: condition_state(s),
    }
}

/// The latest condition evaluated in a stage (onFailure, then onSuccess,
/// then beforeEntry: the later in a stage's life first) with its rules.
fn condition_state(s: &t::StageState) -> Option<ConditionState> {
    let (kind, c) = [
        ("ON_FAILURE", s.on_failure_condition_state()),
        ("ON_SUCCESS", s.on_success_condition_state()),
        ("BEFORE_ENTRY", s.before_entry_condition_state()),
    ]
    .into_iter()
    .find_map(|(k, c)| c.filter(|c| c.latest_execution().is_some()).map(|c| (k, c)))?;
    let latest = c.latest_execution()?;
    let summary = latest.summary().unwrap_or_default();
    Some(ConditionState {
        condition_type: kind.to_owned(),
        status: latest
            .status()
            .map(|x| x.as_str().to_owned())
            .unwrap_or_default(),
        // A result word when the summary is one (the local AWS API's).
        result: matches!(summary, "FAIL" | "SKIP" | "ROLLBACK" | "RETRY")
            .then(|| summary.to_owned()),
        rules: c
            .condition_states()
            .iter()
            .flat_map(|cs| cs.rule_states())
            .map(|r| {
                let x = r.latest_execution();
                RuleState {
                    rule_name: r.rule_name().unwrap_or_default().to_owned(),
                    passed: x
                        .and_then(|x| x.status())
                        .is_some_and(|st| st.as_str() == "Succeeded"),
                    message: x.and_then(|x| x.summary()).unwrap_or_default().to_owned(),
                }
            })
            .collect(),
    })
}

pub fn pipeline_state(
    name: Option<&str>,
    version: Option<i32>,
    stages: &[t::StageState],
) -> PipelineState {
    PipelineState {
        pipeline_name: name.unwrap_or_default().to_owned(),
        pipeline_version: u32_of(version),
        stage_states: stages.iter().map(stage_state).collect(),
    }
}

fn type_id(t: Option<&t::ActionTypeId>) -> m::TypeId {
    m::TypeId {
        category: t
            .map(|t| t.category().as_str())
            .unwrap_or_default()
            .to_owned(),
        owner: t.map(|t| t.owner().as_str()).unwrap_or_default().to_owned(),
        provider: t.map(|t| t.provider()).unwrap_or_default().to_owned(),
        version: t.map(|t| t.version()).unwrap_or_default().to_owned(),
    }
}

fn store(s: &t::ArtifactStore) -> m::ArtifactStore {
    m::ArtifactStore {
        store_type: s.r#type().as_str().to_owned(),
        location: s.location().to_owned(),
        encryption_key: s.encryption_key().map(|k| m::EncryptionKey {
            id: k.id().to_owned(),
            key_type: k.r#type().as_str().to_owned(),
        }),
    }
}

fn globs(includes: &[String], excludes: &[String]) -> m::Globs {
    m::Globs {
        includes: includes.to_vec(),
        excludes: excludes.to_vec(),
    }
}

fn rule(r: &t::RuleDeclaration) -> m::Rule {
    let id = r.rule_type_id();
    m::Rule {
        name: r.name().to_owned(),
        rule_type_id: m::TypeId {
            category: id
                .map(|t| t.category().as_str())
                .unwrap_or_default()
                .to_owned(),
            owner: id
                .and_then(|t| t.owner())
                .map(|o| o.as_str())
                .unwrap_or_default()
                .to_owned(),
            provider: id.map(|t| t.provider()).unwrap_or_default().to_owned(),
            version: id.and_then(|t| t.version()).unwrap_or_default().to_owned(),
        },
        configuration: r
            .configuration()
            .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        input_artifacts: r
            .input_artifacts()
            .iter()
            .map(|i| i.name().to_owned())
            .collect(),
        commands: r.commands().to_vec(),
        region: r.region().map(str::to_owned),
        role_arn: r.role_arn().map(str::to_owned),
        timeout_in_minutes: r.timeout_in_minutes().map(|t| u32_of(Some(t))),
    }
}

fn conditions(c: &[t::Condition]) -> Vec<m::Condition> {
    c.iter()
        .map(|c| m::Condition {
            result: c.result().map(|r| r.as_str().to_owned()),
            rules: c.rules().iter().map(rule).collect(),
        })
        .collect()
}

/// A V2 trigger: its source action and push / pull-request filters.
fn trigger_declaration(tr: &t::PipelineTriggerDeclaration) -> m::Trigger {
    let git = tr.git_configuration();
    m::Trigger {
        provider_type: tr.provider_type().as_str().to_owned(),
        source_action_name: git
            .map(|g| g.source_action_name())
            .unwrap_or_default()
            .to_owned(),
        push: git
            .map(|g| g.push())
            .unwrap_or_default()
            .iter()
            .map(|f| m::PushFilter {
                tags: f.tags().map(|x| globs(x.includes(), x.excludes())),
                branches: f.branches().map(|x| globs(x.includes(), x.excludes())),
                file_paths: f.file_paths().map(|x| globs(x.includes(), x.excludes())),
            })
            .collect(),
        pull_request: git
            .map(|g| g.pull_request())
            .unwrap_or_default()
            .iter()
            .map(|f| m::PullRequestFilter {
                events: f.events().iter().map(|e| e.as_str().to_owned()).collect(),
                branches: f.branches().map(|x| globs(x.includes(), x.excludes())),
                file_paths: f.file_paths().map(|x| globs(x.includes(), x.excludes())),
            })
            .collect(),
    }
}

/// GetPipeline's declaration as the model the screens draw from, with
/// V2 stage conditions (beforeEntry / onSuccess / onFailure and their
/// rules) and triggers, as a local pipeline file gives them.
pub fn declaration(p: &t::PipelineDeclaration) -> m::Pipeline {
    m::Pipeline {
        name: p.name().to_owned(),
        role_arn: Some(p.role_arn().to_owned()).filter(|r| !r.is_empty()),
        artifact_store: p.artifact_store().map(store),
        artifact_stores: p
            .artifact_stores()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), store(v))).collect())
            .unwrap_or_default(),
        stages: p
            .stages()
            .iter()
            .map(|s| m::Stage {
                name: s.name().to_owned(),
                actions: s
                    .actions()
                    .iter()
                    .map(|a| m::Action {
                        name: a.name().to_owned(),
                        action_type_id: type_id(a.action_type_id()),
                        run_order: u32_of(a.run_order()).max(1),
                        configuration: a
                            .configuration()
                            .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                            .unwrap_or_default(),
                        input_artifacts: a
                            .input_artifacts()
                            .iter()
                            .map(|i| i.name().to_owned())
                            .collect(),
                        output_artifacts: a
                            .output_artifacts()
                            .iter()
                            .map(|o| o.name().to_owned())
                            .collect(),
                        namespace: a.namespace().map(str::to_owned),
                        region: a.region().map(str::to_owned),
                        role_arn: a.role_arn().map(str::to_owned),
                        timeout_in_minutes: a.timeout_in_minutes().map(|t| u32_of(Some(t))),
                        commands: a.commands().to_vec(),
                        output_variables: a.output_variables().to_vec(),
                    })
                    .collect(),
                before_entry: s.before_entry().map(|c| m::Conditions {
                    conditions: conditions(c.conditions()),
                }),
                on_success: s.on_success().map(|c| m::Conditions {
                    conditions: conditions(c.conditions()),
                }),
                on_failure: s.on_failure().map(|f| m::FailureConditions {
                    result: f.result().map(|r| r.as_str().to_owned()),
                    retry_mode: f
                        .retry_configuration()
                        .and_then(|r| r.retry_mode())
                        .map(|m| m.as_str().to_owned()),
                    conditions: conditions(f.conditions()),
                }),
            })
            .collect(),
        version: p.version().map(|v| u32_of(Some(v))),
        pipeline_type: p.pipeline_type().map(|t| {
            if t.as_str() == "V2" {
                m::PipelineType::V2
            } else {
                m::PipelineType::V1
            }
        }),
        execution_mode: match p.execution_mode().map(|m| m.as_str()) {
            Some("QUEUED") => m::ExecutionMode::Queued,
            Some("PARALLEL") => m::ExecutionMode::Parallel,
            _ => m::ExecutionMode::Superseded,
        },
        variables: p
            .variables()
            .iter()
            .map(|v| m::VariableDeclaration {
                name: v.name().to_owned(),
                default_value: v.default_value().map(str::to_owned),
                description: v.description().map(str::to_owned),
            })
            .collect(),
        triggers: p.triggers().iter().map(trigger_declaration).collect(),
        disabled_inbound_transitions: Vec::new(),
    }
}

pub fn metadata(name: &str, version: u32, md: Option<&t::PipelineMetadata>) -> PipelineMetadata {
    PipelineMetadata {
        pipeline_name: name.to_owned(),
        pipeline_version: version,
        current_version: version,
        created: time(md.and_then(|m| m.created())),
        updated: time(md.and_then(|m| m.updated())),
    }
}
