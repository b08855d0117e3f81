//! The pipeline model written as CodePipeline's `PipelineDeclaration` JSON
//! (camelCase, what `aws codepipeline get-pipeline` prints), so that what
//! the API answers reads back through `pipedeck validate` and
//! `update-pipeline --cli-input-json`.

use serde_json::{Map, Value, json};

use crate::model::pipeline::{
    Action, Condition, Conditions, FailureConditions, Globs, Pipeline, Rule, Stage, Trigger, TypeId,
};

fn obj(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        let empty = match &v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            m.insert(k.to_owned(), v);
        }
    }
    Value::Object(m)
}

fn type_id(t: &TypeId) -> Value {
    json!({"category": t.category, "owner": t.owner, "provider": t.provider, "version": t.version})
}

fn rule_type_id(t: &TypeId) -> Value {
    // RuleTypeId has no owner-less form; category is always Rule.
    json!({"category": t.category, "owner": t.owner, "provider": t.provider, "version": t.version})
}

fn artifacts(names: &[String]) -> Value {
    Value::Array(names.iter().map(|n| json!({"name": n})).collect())
}

fn action(a: &Action) -> Value {
    obj(vec![
        ("name", json!(a.name)),
        ("actionTypeId", type_id(&a.action_type_id)),
        ("runOrder", json!(a.run_order)),
        ("configuration", json!(a.configuration)),
        ("commands", json!(a.commands)),
        ("outputArtifacts", artifacts(&a.output_artifacts)),
        ("inputArtifacts", artifacts(&a.input_artifacts)),
        ("outputVariables", json!(a.output_variables)),
        ("roleArn", json!(a.role_arn)),
        ("region", json!(a.region)),
        ("namespace", json!(a.namespace)),
        ("timeoutInMinutes", json!(a.timeout_in_minutes)),
    ])
}

fn rule(r: &Rule) -> Value {
    obj(vec![
        ("name", json!(r.name)),
        ("ruleTypeId", rule_type_id(&r.rule_type_id)),
        ("configuration", json!(r.configuration)),
        ("commands", json!(r.commands)),
        ("inputArtifacts", artifacts(&r.input_artifacts)),
        ("roleArn", json!(r.role_arn)),
        ("region", json!(r.region)),
        ("timeoutInMinutes", json!(r.timeout_in_minutes)),
    ])
}

fn condition(c: &Condition) -> Value {
    obj(vec![
        ("result", json!(c.result)),
        ("rules", Value::Array(c.rules.iter().map(rule).collect())),
    ])
}

fn conditions(c: &Conditions) -> Value {
    json!({"conditions": c.conditions.iter().map(condition).collect::<Vec<_>>()})
}

fn failure(f: &FailureConditions) -> Value {
    obj(vec![
        ("result", json!(f.result)),
        (
            "retryConfiguration",
            f.retry_mode
                .as_ref()
                .map_or(Value::Null, |m| json!({"retryMode": m})),
        ),
        (
            "conditions",
            Value::Array(f.conditions.iter().map(condition).collect()),
        ),
    ])
}

fn stage(s: &Stage) -> Value {
    obj(vec![
        ("name", json!(s.name)),
        (
            "actions",
            Value::Array(s.actions.iter().map(action).collect()),
        ),
        (
            "beforeEntry",
            s.before_entry.as_ref().map_or(Value::Null, conditions),
        ),
        (
            "onSuccess",
            s.on_success.as_ref().map_or(Value::Null, conditions),
        ),
        (
            "onFailure",
            s.on_failure.as_ref().map_or(Value::Null, failure),
        ),
    ])
}

fn globs(g: Option<&Globs>) -> Value {
    g.map_or(Value::Null, |g| {
        obj(vec![
            ("includes", json!(g.includes)),
            ("excludes", json!(g.excludes)),
        ])
    })
}

fn trigger(t: &Trigger) -> Value {
    let push: Vec<Value> = t
        .push
        .iter()
        .map(|p| {
            obj(vec![
                ("tags", globs(p.tags.as_ref())),
                ("branches", globs(p.branches.as_ref())),
                ("filePaths", globs(p.file_paths.as_ref())),
            ])
        })
        .collect();
    let pr: Vec<Value> = t
        .pull_request
        .iter()
        .map(|p| {
            obj(vec![
                ("events", json!(p.events)),
                ("branches", globs(p.branches.as_ref())),
                ("filePaths", globs(p.file_paths.as_ref())),
            ])
        })
        .collect();
    json!({
        "providerType": t.provider_type,
        "gitConfiguration": obj(vec![
            ("sourceActionName", json!(t.source_action_name)),
            ("push", Value::Array(push)),
            ("pullRequest", Value::Array(pr)),
        ]),
    })
}

/// `pipeline` of GetPipeline at `version`.
pub fn declaration(p: &Pipeline, version: u32) -> Value {
    let store = |s: &crate::model::pipeline::ArtifactStore| {
        obj(vec![
            ("type", json!(s.store_type)),
            ("location", json!(s.location)),
            (
                "encryptionKey",
                s.encryption_key
                    .as_ref()
                    .map_or(Value::Null, |k| json!({"id": k.id, "type": k.key_type})),
            ),
        ])
    };
    let role = p.role_arn.clone().unwrap_or_else(|| {
        format!(
            "arn:aws:iam::{}:role/pipedeck-local-{}",
            super::ACCOUNT,
            p.name
        )
    });
    let artifact_store = match (&p.artifact_store, p.artifact_stores.is_empty()) {
        (Some(s), _) => store(s),
        (None, true) => json!({"type": "S3", "location": "pipedeck-local-artifacts"}),
        (None, false) => Value::Null,
    };
    let stores: Map<String, Value> = p
        .artifact_stores
        .iter()
        .map(|(k, v)| (k.clone(), store(v)))
        .collect();
    let variables: Vec<Value> = p
        .variables
        .iter()
        .map(|v| {
            obj(vec![
                ("name", json!(v.name)),
                ("defaultValue", json!(v.default_value)),
                ("description", json!(v.description)),
            ])
        })
        .collect();
    obj(vec![
        ("name", json!(p.name)),
        ("roleArn", json!(role)),
        ("artifactStore", artifact_store),
        ("artifactStores", Value::Object(stores)),
        ("stages", Value::Array(p.stages.iter().map(stage).collect())),
        ("version", json!(version)),
        ("executionMode", json!(p.execution_mode.as_str())),
        (
            "pipelineType",
            json!(match p.effective_type() {
                crate::model::pipeline::PipelineType::V1 => "V1",
                crate::model::pipeline::PipelineType::V2 => "V2",
            }),
        ),
        ("variables", Value::Array(variables)),
        (
            "triggers",
            Value::Array(p.triggers.iter().map(trigger).collect()),
        ),
    ])
}

/// CreatePipeline / UpdatePipeline / DeletePipeline. The definition in the
/// body is read and validated like `pipedeck validate` does (an invalid one
/// is refused with `InvalidStructureException` listing the problems), but a
/// running engine cannot take a new definition yet: nothing is written and
/// the answer says what is missing.
pub fn check_update(ctx: &super::Ctx, op: &str, i: super::input::Input<'_>) -> super::AwsResult {
    use super::AwsError;
    if op == "DeletePipeline" {
        let name = i.str_len("name", 1, 100)?;
        return Err(AwsError::not_built(
            "CodePipeline",
            op,
            &format!(
                ": the engine cannot drop pipeline {name} while it runs (needs \
                 Request::DeletePipeline in src/api and the engine); remove its file from the \
                 workspace and restart instead"
            ),
        ));
    }
    let p = i.value("pipeline").ok_or_else(|| {
        AwsError::validation(
            "1 validation error detected: Value null at 'pipeline' failed to satisfy constraint: \
             Member must not be null",
        )
    })?;
    let text = serde_json::json!({ "pipeline": p }).to_string();
    let report = crate::model::load::load_bytes(
        "pipeline",
        text.as_bytes(),
        &crate::model::load::LoadOptions::default(),
    );
    let errors: Vec<String> = report
        .errors()
        .map(|d| {
            if d.path.is_empty() {
                d.message.clone()
            } else {
                format!("{}: {}", d.path, d.message)
            }
        })
        .collect();
    if !errors.is_empty() {
        return Err(AwsError::new(
            "InvalidStructureException",
            format!("the pipeline is not valid: {}", errors.join("; ")),
        ));
    }
    let _ = ctx;
    Err(AwsError::not_built(
        "CodePipeline",
        op,
        ": the definition is valid, but the running engine cannot take a new or changed \
         pipeline yet (needs Request::UpdatePipeline / CreatePipeline in src/api and a reload \
         in the engine); nothing was written",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::load::{LoadOptions, load_bytes, load_path};

    /// What get-pipeline prints reads back as the same pipeline.
    #[test]
    fn declarations_read_back_as_the_same_model() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in [
            "assets/demo/pipeline.json",
            "assets/example-pipeline.json",
            "assets/example-pipeline.toml",
        ] {
            let r = load_path(&root.join(file), &LoadOptions::default());
            assert!(r.ok(), "{file}: {:?}", r.diagnostics);
            let p = &r.pipelines[0].pipeline;
            let text = serde_json::json!({ "pipeline": declaration(p, 3) }).to_string();
            let back = load_bytes(
                "get-pipeline.json",
                text.as_bytes(),
                &LoadOptions::default(),
            );
            let errors: Vec<_> = back.errors().collect();
            assert!(errors.is_empty(), "{file}: {errors:?}\n{text}");
            let q = &back.pipelines[0].pipeline;
            assert_eq!(q.stages, p.stages, "{file}");
            assert_eq!(q.variables, p.variables, "{file}");
            assert_eq!(q.triggers, p.triggers, "{file}");
            assert_eq!(q.execution_mode, p.execution_mode, "{file}");
            assert_eq!(q.effective_type(), p.effective_type(), "{file}");
            assert_eq!(q.version, Some(3));
        }
    }
}
