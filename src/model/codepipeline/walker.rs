//! The walker: one pass over a pipeline tree, building the model and the
//! [`SpanMap`], reporting wrong kinds, missing fields and unknown keys.

use std::collections::{BTreeMap, HashMap};

use crate::model::diag::{Diagnostic, Pos, suggest};
use crate::model::node::{Node, Value};
use crate::model::pipeline::{
    Action, ArtifactStore, Condition, Conditions, DisabledTransition, EncryptionKey, ExecutionMode,
    FailureConditions, Globs, Pipeline, PipelineType, PullRequestFilter, PushFilter, Rule, Stage,
    Trigger, TypeId, VariableDeclaration,
};

use super::*;

#[derive(Clone)]
pub(super) struct P {
    canon: String,
    disp: String,
}

impl P {
    pub(super) fn root(prefix: &str) -> P {
        P {
            canon: String::new(),
            disp: prefix.to_owned(),
        }
    }
}

pub(super) struct Walker<'d> {
    pub(super) dialect: Dialect,
    pub(super) diags: &'d mut Vec<Diagnostic>,
    pub(super) spans: SpanMap,
}

fn join(base: &str, seg: &str) -> String {
    if base.is_empty() {
        seg.to_owned()
    } else {
        format!("{base}.{seg}")
    }
}

impl Walker<'_> {
    fn key(&self, p: &P, camel: &str) -> P {
        P {
            canon: join(&p.canon, camel),
            disp: join(&p.disp, &self.dialect.key(camel)),
        }
    }

    /// A key whose spelling is the user's (configuration keys, regions).
    fn raw_key(p: &P, name: &str) -> P {
        P {
            canon: join(&p.canon, name),
            disp: join(&p.disp, name),
        }
    }

    fn index(p: &P, i: usize) -> P {
        P {
            canon: format!("{}[{i}]", p.canon),
            disp: format!("{}[{i}]", p.disp),
        }
    }

    fn record(&mut self, p: &P, pos: Pos) {
        self.spans.insert(p.canon.clone(), p.disp.clone(), pos);
    }

    fn error(&mut self, p: &P, pos: Pos, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(Some(pos), p.disp.clone(), msg));
    }

    pub(super) fn map<'n>(&mut self, node: &'n Node, p: &P) -> Option<&'n Node> {
        self.record(p, node.pos);
        if node.as_map().is_some() {
            Some(node)
        } else {
            self.error(
                p,
                node.pos,
                format!("expected a map here, found {}", node.kind()),
            );
            None
        }
    }

    /// Warns about keys not in `known` (camelCase), suggesting the closest.
    fn check_keys(&mut self, node: &Node, p: &P, known: &[&str], ignored: &[&str]) {
        let Some(entries) = node.as_map() else { return };
        let spelled: Vec<String> = known.iter().map(|k| self.dialect.key(k)).collect();
        let ignored: Vec<String> = ignored.iter().map(|k| self.dialect.key(k)).collect();
        let candidates: Vec<&str> = spelled.iter().map(String::as_str).collect();
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        for (k, _) in entries {
            if let Some(first) = seen.insert(&k.name, k.pos) {
                self.diags.push(Diagnostic::error(
                    Some(k.pos),
                    join(&p.disp, &k.name),
                    format!("duplicate key `{}` (first at {first})", k.name),
                ));
                continue;
            }
            if candidates.contains(&k.name.as_str()) || ignored.contains(&k.name) {
                continue;
            }
            let mut d = Diagnostic::warning(
                Some(k.pos),
                join(&p.disp, &k.name),
                format!("unknown key `{}`; it is ignored", k.name),
            );
            if let Some(s) = suggest(&k.name, &candidates) {
                d = d.with_fix(format!("did you mean `{s}`?"));
            }
            self.diags.push(d);
        }
    }

    fn field<'n>(&mut self, node: &'n Node, p: &P, camel: &str) -> Option<(&'n Node, P)> {
        let key = self.dialect.key(camel);
        let (_, v) = node.as_map()?.iter().find(|(k, _)| k.name == key)?;
        let cp = self.key(p, camel);
        // A field's path points at its value, where a fix goes.
        self.spans
            .map
            .insert(cp.canon.clone(), (cp.disp.clone(), v.pos));
        Some((v, cp))
    }

    fn text(&mut self, node: &Node, p: &P) -> Option<String> {
        match node.scalar_text() {
            Some(s) => Some(s),
            None => {
                self.error(
                    p,
                    node.pos,
                    format!("expected a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn opt_str(&mut self, node: &Node, p: &P, camel: &str) -> Option<String> {
        let (v, cp) = self.field(node, p, camel)?;
        if v.value == Value::Null {
            return None;
        }
        self.text(v, &cp)
    }

    fn req_str(&mut self, node: &Node, p: &P, camel: &str, what: &str) -> String {
        if let Some(s) = self.opt_str(node, p, camel) {
            return s;
        }
        if self.field(node, p, camel).is_none() {
            self.error(
                p,
                node.pos,
                format!("{what} is missing `{}`", self.dialect.key(camel)),
            );
        }
        String::new()
    }

    fn opt_u32(&mut self, node: &Node, p: &P, camel: &str) -> Option<u32> {
        let (v, cp) = self.field(node, p, camel)?;
        let text = v.scalar_text()?;
        match text.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    &cp,
                    v.pos,
                    format!("expected a whole number, found `{text}`"),
                );
                None
            }
        }
    }

    fn list<'n>(&mut self, node: &'n Node, p: &P, camel: &str) -> Vec<(&'n Node, P)> {
        let Some((v, cp)) = self.field(node, p, camel) else {
            return Vec::new();
        };
        match &v.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let ip = Self::index(&cp, i);
                    self.record(&ip, n.pos);
                    (n, ip)
                })
                .collect(),
            Value::Null => Vec::new(),
            _ => {
                self.error(&cp, v.pos, format!("expected a list, found {}", v.kind()));
                Vec::new()
            }
        }
    }

    fn str_list(&mut self, node: &Node, p: &P, camel: &str) -> Vec<String> {
        self.list(node, p, camel)
            .into_iter()
            .filter_map(|(n, ip)| self.text(n, &ip))
            .collect()
    }

    /// Artifact lists: `[{"name": "X"}]`, or plain `["X"]` (TOML shorthand).
    fn artifacts(&mut self, node: &Node, p: &P, camel: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (n, ip) in self.list(node, p, camel) {
            if n.as_map().is_some() {
                self.check_keys(n, &ip, &["name"], &[]);
                let name = self.req_str(n, &ip, "name", "an artifact");
                // The artifact path itself points at its name.
                if let Some((v, _)) = self.field(n, &ip, "name") {
                    self.spans
                        .map
                        .insert(ip.canon.clone(), (ip.disp.clone(), v.pos));
                }
                out.push(name);
            } else if let Some(s) = self.text(n, &ip) {
                out.push(s);
            }
        }
        out
    }

    fn configuration(&mut self, node: &Node, p: &P, camel: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some((v, cp)) = self.field(node, p, camel) else {
            return out;
        };
        if v.value == Value::Null {
            return out;
        }
        let Some(entries) = self.map(v, &cp).and_then(Node::as_map) else {
            return out;
        };
        for (k, val) in entries {
            let kp = Self::raw_key(&cp, &k.name);
            self.record(&kp, val.pos);
            let text = match &val.value {
                Value::Null => String::new(),
                Value::Seq(_) | Value::Map(_) => val.to_json().to_string(),
                _ => val.scalar_text().unwrap_or_default(),
            };
            out.insert(k.name.clone(), text);
        }
        out
    }

    fn type_id(&mut self, node: &Node, p: &P, camel: &str, what: &str) -> TypeId {
        let Some((v, cp)) = self.field(node, p, camel) else {
            self.error(
                p,
                node.pos,
                format!("{what} is missing `{}`", self.dialect.key(camel)),
            );
            return TypeId {
                category: String::new(),
                owner: String::new(),
                provider: String::new(),
                version: String::new(),
            };
        };
        if self.map(v, &cp).is_some() {
            self.check_keys(v, &cp, &["category", "owner", "provider", "version"], &[]);
        }
        let what = self.dialect.key(camel);
        TypeId {
            category: self.req_str(v, &cp, "category", &format!("`{what}`")),
            owner: self.req_str(v, &cp, "owner", &format!("`{what}`")),
            provider: self.req_str(v, &cp, "provider", &format!("`{what}`")),
            version: self.req_str(v, &cp, "version", &format!("`{what}`")),
        }
    }

    pub(super) fn pipeline(&mut self, node: &Node, p: &P, default_name: Option<&str>) -> Pipeline {
        self.check_keys(
            node,
            p,
            &[
                "name",
                "roleArn",
                "artifactStore",
                "artifactStores",
                "stages",
                "version",
                "pipelineType",
                "executionMode",
                "variables",
                "triggers",
                "disableInboundStageTransitions",
            ],
            &["tags", "restartExecutionOnUpdate"],
        );
        let name = match (self.opt_str(node, p, "name"), default_name) {
            (Some(n), _) => n,
            (None, Some(d)) => d.to_owned(),
            (None, None) => self.req_str(node, p, "name", "the pipeline"),
        };
        let pipeline_type = self
            .opt_str(node, p, "pipelineType")
            .and_then(|t| match t.as_str() {
                "V1" => Some(PipelineType::V1),
                "V2" => Some(PipelineType::V2),
                other => {
                    let (v, cp) = self.field(node, p, "pipelineType")?;
                    self.error(
                        &cp,
                        v.pos,
                        format!("pipelineType must be V1 or V2, found `{other}`"),
                    );
                    None
                }
            });
        let execution_mode = match self.opt_str(node, p, "executionMode").as_deref() {
            None | Some("SUPERSEDED") => ExecutionMode::Superseded,
            Some("QUEUED") => ExecutionMode::Queued,
            Some("PARALLEL") => ExecutionMode::Parallel,
            Some(other) => {
                if let Some((v, cp)) = self.field(node, p, "executionMode") {
                    self.error(
                        &cp,
                        v.pos,
                        format!(
                            "executionMode must be SUPERSEDED, QUEUED or PARALLEL, found `{other}`"
                        ),
                    );
                }
                ExecutionMode::Superseded
            }
        };
        let artifact_store = self
            .field(node, p, "artifactStore")
            .and_then(|(v, cp)| self.artifact_store(v, &cp));
        let artifact_stores = self.artifact_stores(node, p);
        let stages = self
            .list(node, p, "stages")
            .into_iter()
            .filter_map(|(n, sp)| self.stage(n, &sp))
            .collect();
        if self.field(node, p, "stages").is_none() {
            self.error(
                p,
                node.pos,
                format!("the pipeline has no `{}`", self.dialect.key("stages")),
            );
        }
        let variables = self
            .list(node, p, "variables")
            .into_iter()
            .filter_map(|(n, vp)| {
                self.map(n, &vp)?;
                self.check_keys(n, &vp, &["name", "defaultValue", "description"], &[]);
                Some(VariableDeclaration {
                    name: self.req_str(n, &vp, "name", "a pipeline variable"),
                    default_value: self.opt_str(n, &vp, "defaultValue"),
                    description: self.opt_str(n, &vp, "description"),
                })
            })
            .collect();
        let triggers = self
            .list(node, p, "triggers")
            .into_iter()
            .filter_map(|(n, tp)| self.trigger(n, &tp))
            .collect();
        let disabled_inbound_transitions = self
            .list(node, p, "disableInboundStageTransitions")
            .into_iter()
            .filter_map(|(n, tp)| {
                self.map(n, &tp)?;
                self.check_keys(n, &tp, &["stageName", "reason"], &[]);
                Some(DisabledTransition {
                    stage_name: self.req_str(n, &tp, "stageName", "a disabled transition"),
                    reason: self.req_str(n, &tp, "reason", "a disabled transition"),
                })
            })
            .collect();
        Pipeline {
            name,
            role_arn: self.opt_str(node, p, "roleArn"),
            artifact_store,
            artifact_stores,
            stages,
            version: self.opt_u32(node, p, "version"),
            pipeline_type,
            execution_mode,
            variables,
            triggers,
            disabled_inbound_transitions,
        }
    }

    fn artifact_store(&mut self, v: &Node, p: &P) -> Option<ArtifactStore> {
        self.map(v, p)?;
        self.check_keys(v, p, &["type", "location", "encryptionKey"], &[]);
        let encryption_key = self.field(v, p, "encryptionKey").and_then(|(k, kp)| {
            self.map(k, &kp)?;
            self.check_keys(k, &kp, &["id", "type"], &[]);
            Some(EncryptionKey {
                id: self.req_str(k, &kp, "id", "the encryption key"),
                key_type: self.opt_str(k, &kp, "type").unwrap_or_else(|| "KMS".into()),
            })
        });
        Some(ArtifactStore {
            store_type: self.opt_str(v, p, "type").unwrap_or_else(|| "S3".into()),
            location: self.req_str(v, p, "location", "the artifact store"),
            encryption_key,
        })
    }

    /// `artifactStores`: a map of region → store (JSON) or a list of
    /// `{Region, ArtifactStore}` (CloudFormation).
    fn artifact_stores(&mut self, node: &Node, p: &P) -> BTreeMap<String, ArtifactStore> {
        let mut out = BTreeMap::new();
        let Some((v, cp)) = self.field(node, p, "artifactStores") else {
            return out;
        };
        match &v.value {
            Value::Map(entries) => {
                for (k, store) in entries {
                    let kp = Self::raw_key(&cp, &k.name);
                    if let Some(s) = self.artifact_store(store, &kp) {
                        out.insert(k.name.clone(), s);
                    }
                }
            }
            Value::Seq(_) => {
                for (item, ip) in self.list(node, p, "artifactStores") {
                    if self.map(item, &ip).is_none() {
                        continue;
                    }
                    self.check_keys(item, &ip, &["region", "artifactStore"], &[]);
                    let region = self.req_str(item, &ip, "region", "an artifact store entry");
                    if let Some(s) = self
                        .field(item, &ip, "artifactStore")
                        .and_then(|(s, sp)| self.artifact_store(s, &sp))
                    {
                        out.insert(region, s);
                    }
                }
            }
            _ => self.error(
                &cp,
                v.pos,
                format!("expected a map of region to store, found {}", v.kind()),
            ),
        }
        out
    }

    fn stage(&mut self, node: &Node, p: &P) -> Option<Stage> {
        self.map(node, p)?;
        self.check_keys(
            node,
            p,
            &["name", "actions", "beforeEntry", "onSuccess", "onFailure"],
            &["blockers"],
        );
        let name = self.req_str(node, p, "name", "a stage");
        if self.field(node, p, "actions").is_none() {
            self.error(
                p,
                node.pos,
                format!("stage `{name}` has no `{}`", self.dialect.key("actions")),
            );
        }
        let actions = self
            .list(node, p, "actions")
            .into_iter()
            .filter_map(|(n, ap)| self.action(n, &ap))
            .collect();
        let before_entry = self
            .field(node, p, "beforeEntry")
            .and_then(|(v, cp)| self.conditions(v, &cp));
        let on_success = self
            .field(node, p, "onSuccess")
            .and_then(|(v, cp)| self.conditions(v, &cp));
        let on_failure = self.field(node, p, "onFailure").and_then(|(v, cp)| {
            self.map(v, &cp)?;
            self.check_keys(v, &cp, &["result", "retryConfiguration", "conditions"], &[]);
            let retry_mode = self
                .field(v, &cp, "retryConfiguration")
                .and_then(|(r, rp)| {
                    self.map(r, &rp)?;
                    self.check_keys(r, &rp, &["retryMode"], &[]);
                    self.opt_str(r, &rp, "retryMode")
                });
            Some(FailureConditions {
                result: self.opt_str(v, &cp, "result"),
                retry_mode,
                conditions: self.condition_list(v, &cp),
            })
        });
        Some(Stage {
            name,
            actions,
            before_entry,
            on_success,
            on_failure,
        })
    }

    fn conditions(&mut self, v: &Node, p: &P) -> Option<Conditions> {
        self.map(v, p)?;
        self.check_keys(v, p, &["conditions"], &[]);
        Some(Conditions {
            conditions: self.condition_list(v, p),
        })
    }

    fn condition_list(&mut self, v: &Node, p: &P) -> Vec<Condition> {
        self.list(v, p, "conditions")
            .into_iter()
            .filter_map(|(c, cp)| {
                self.map(c, &cp)?;
                self.check_keys(c, &cp, &["result", "rules"], &[]);
                let rules = self
                    .list(c, &cp, "rules")
                    .into_iter()
                    .filter_map(|(r, rp)| self.rule(r, &rp))
                    .collect();
                Some(Condition {
                    result: self.opt_str(c, &cp, "result"),
                    rules,
                })
            })
            .collect()
    }

    fn rule(&mut self, node: &Node, p: &P) -> Option<Rule> {
        self.map(node, p)?;
        self.check_keys(
            node,
            p,
            &[
                "name",
                "ruleTypeId",
                "configuration",
                "inputArtifacts",
                "commands",
                "region",
                "roleArn",
                "timeoutInMinutes",
            ],
            &[],
        );
        Some(Rule {
            name: self.req_str(node, p, "name", "a rule"),
            rule_type_id: self.type_id(node, p, "ruleTypeId", "a rule"),
            configuration: self.configuration(node, p, "configuration"),
            input_artifacts: self.artifacts(node, p, "inputArtifacts"),
            commands: self.str_list(node, p, "commands"),
            region: self.opt_str(node, p, "region"),
            role_arn: self.opt_str(node, p, "roleArn"),
            timeout_in_minutes: self.opt_u32(node, p, "timeoutInMinutes"),
        })
    }

    fn action(&mut self, node: &Node, p: &P) -> Option<Action> {
        self.map(node, p)?;
        self.check_keys(
            node,
            p,
            &[
                "name",
                "actionTypeId",
                "runOrder",
                "configuration",
                "inputArtifacts",
                "outputArtifacts",
                "namespace",
                "region",
                "roleArn",
                "timeoutInMinutes",
                "commands",
                "outputVariables",
            ],
            &["environmentVariables"],
        );
        Some(Action {
            name: self.req_str(node, p, "name", "an action"),
            action_type_id: self.type_id(node, p, "actionTypeId", "an action"),
            run_order: self.opt_u32(node, p, "runOrder").unwrap_or(1),
            configuration: self.configuration(node, p, "configuration"),
            input_artifacts: self.artifacts(node, p, "inputArtifacts"),
            output_artifacts: self.artifacts(node, p, "outputArtifacts"),
            namespace: self.opt_str(node, p, "namespace"),
            region: self.opt_str(node, p, "region"),
            role_arn: self.opt_str(node, p, "roleArn"),
            timeout_in_minutes: self.opt_u32(node, p, "timeoutInMinutes"),
            commands: self.str_list(node, p, "commands"),
            output_variables: self.str_list(node, p, "outputVariables"),
        })
    }

    fn globs(&mut self, node: &Node, p: &P, camel: &str) -> Option<Globs> {
        let (v, cp) = self.field(node, p, camel)?;
        self.map(v, &cp)?;
        self.check_keys(v, &cp, &["includes", "excludes"], &[]);
        Some(Globs {
            includes: self.str_list(v, &cp, "includes"),
            excludes: self.str_list(v, &cp, "excludes"),
        })
    }

    fn trigger(&mut self, node: &Node, p: &P) -> Option<Trigger> {
        self.map(node, p)?;
        self.check_keys(node, p, &["providerType", "gitConfiguration"], &[]);
        let provider_type = self.req_str(node, p, "providerType", "a trigger");
        let Some((git, gp)) = self.field(node, p, "gitConfiguration") else {
            self.error(
                p,
                node.pos,
                format!(
                    "a trigger is missing `{}`",
                    self.dialect.key("gitConfiguration")
                ),
            );
            return None;
        };
        self.map(git, &gp)?;
        self.check_keys(git, &gp, &["sourceActionName", "push", "pullRequest"], &[]);
        let push = self
            .list(git, &gp, "push")
            .into_iter()
            .filter_map(|(f, fp)| {
                self.map(f, &fp)?;
                self.check_keys(f, &fp, &["tags", "branches", "filePaths"], &[]);
                Some(PushFilter {
                    tags: self.globs(f, &fp, "tags"),
                    branches: self.globs(f, &fp, "branches"),
                    file_paths: self.globs(f, &fp, "filePaths"),
                })
            })
            .collect();
        let pull_request = self
            .list(git, &gp, "pullRequest")
            .into_iter()
            .filter_map(|(f, fp)| {
                self.map(f, &fp)?;
                self.check_keys(f, &fp, &["events", "branches", "filePaths"], &[]);
                Some(PullRequestFilter {
                    events: self.str_list(f, &fp, "events"),
                    branches: self.globs(f, &fp, "branches"),
                    file_paths: self.globs(f, &fp, "filePaths"),
                })
            })
            .collect();
        Some(Trigger {
            provider_type,
            source_action_name: self.req_str(git, &gp, "sourceActionName", "a trigger"),
            push,
            pull_request,
        })
    }
}
