//! The pipeline model, named as AWS CodePipeline names things. JSON, TOML and
//! CloudFormation all load into these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    pub role_arn: Option<String>,
    pub artifact_store: Option<ArtifactStore>,
    /// `artifactStores`: one store per region, for cross-region actions.
    pub artifact_stores: BTreeMap<String, ArtifactStore>,
    pub stages: Vec<Stage>,
    pub version: Option<u32>,
    /// As declared; `None` means the file did not say (AWS's default is V1).
    pub pipeline_type: Option<PipelineType>,
    pub execution_mode: ExecutionMode,
    pub variables: Vec<VariableDeclaration>,
    pub triggers: Vec<Trigger>,
    /// From CloudFormation's `DisableInboundStageTransitions`.
    pub disabled_inbound_transitions: Vec<DisabledTransition>,
}

impl Pipeline {
    /// The pipeline type that applies: the declared one, else V1.
    pub fn effective_type(&self) -> PipelineType {
        self.pipeline_type.unwrap_or(PipelineType::V1)
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PipelineType {
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionMode {
    #[default]
    Superseded,
    Queued,
    Parallel,
}

impl ExecutionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Superseded => "SUPERSEDED",
            ExecutionMode::Queued => "QUEUED",
            ExecutionMode::Parallel => "PARALLEL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactStore {
    /// `S3` on AWS.
    pub store_type: String,
    pub location: String,
    pub encryption_key: Option<EncryptionKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionKey {
    pub id: String,
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableDeclaration {
    pub name: String,
    pub default_value: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisabledTransition {
    pub stage_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub actions: Vec<Action>,
    pub before_entry: Option<Conditions>,
    pub on_success: Option<Conditions>,
    pub on_failure: Option<FailureConditions>,
}

impl Stage {
    /// The distinct runOrder values of this stage, ascending.
    pub fn run_orders(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.actions.iter().map(|a| a.run_order).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureConditions {
    /// `ROLLBACK`, `FAIL`, `RETRY` or `SKIP` as written.
    pub result: Option<String>,
    /// `FAILED_ACTIONS` or `ALL_ACTIONS` when result is RETRY.
    pub retry_mode: Option<String>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub result: Option<String>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub rule_type_id: TypeId,
    pub configuration: BTreeMap<String, String>,
    pub input_artifacts: Vec<String>,
    pub commands: Vec<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
    pub timeout_in_minutes: Option<u32>,
}

/// `actionTypeId` / `ruleTypeId`: category, owner, provider, version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeId {
    pub category: String,
    pub owner: String,
    pub provider: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Category {
    Source,
    Build,
    Test,
    Deploy,
    Approval,
    Invoke,
    Compute,
}

impl Category {
    pub const ALL: [&'static str; 7] = [
        "Source", "Build", "Test", "Deploy", "Approval", "Invoke", "Compute",
    ];

    pub fn parse(s: &str) -> Option<Category> {
        Some(match s {
            "Source" => Category::Source,
            "Build" => Category::Build,
            "Test" => Category::Test,
            "Deploy" => Category::Deploy,
            "Approval" => Category::Approval,
            "Invoke" => Category::Invoke,
            "Compute" => Category::Compute,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub name: String,
    pub action_type_id: TypeId,
    /// 1–999; 1 when the file leaves it out.
    pub run_order: u32,
    /// Configuration values are strings on AWS; structured values found in a
    /// file are kept as their JSON text.
    pub configuration: BTreeMap<String, String>,
    pub input_artifacts: Vec<String>,
    pub output_artifacts: Vec<String>,
    pub namespace: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
    pub timeout_in_minutes: Option<u32>,
    /// `Compute` (Commands) actions.
    pub commands: Vec<String>,
    pub output_variables: Vec<String>,
}

impl Action {
    pub fn category(&self) -> Option<Category> {
        Category::parse(&self.action_type_id.category)
    }

    pub fn provider(&self) -> &str {
        &self.action_type_id.provider
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub provider_type: String,
    pub source_action_name: String,
    pub push: Vec<PushFilter>,
    pub pull_request: Vec<PullRequestFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Globs {
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PushFilter {
    pub tags: Option<Globs>,
    pub branches: Option<Globs>,
    pub file_paths: Option<Globs>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PullRequestFilter {
    pub events: Vec<String>,
    pub branches: Option<Globs>,
    pub file_paths: Option<Globs>,
}
