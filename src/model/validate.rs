//! The structural rules of a CodePipeline definition (reference §1), checked
//! on the model; each finding points into the file through the span map.

use std::collections::{HashMap, HashSet};

use super::codepipeline::{LoadedPipeline, SpanMap};
use super::diag::{Diagnostic, Severity, suggest};
use super::pipeline::{Category, ExecutionMode, Pipeline, PipelineType};

/// Providers the local engine runs, by category. Everything else loads and
/// validates, but gets a warning that it cannot run locally yet.
/// Every provider AWS CodePipeline offers with owner `AWS` (any category):
/// a provider that is none of these but close to one is a typo.
const AWS_PROVIDERS: &[&str] = &[
    "CodeCommit",
    "CodeStarSourceConnection",
    "GitHub",
    "Bitbucket",
    "S3",
    "ECR",
    "CodeBuild",
    "Commands",
    "Manual",
    "CodeDeploy",
    "CodeDeployToECS",
    "CloudFormation",
    "CloudFormationStackSet",
    "CloudFormationStackInstances",
    "ECS",
    "EKS",
    "ElasticBeanstalk",
    "Lambda",
    "StepFunctions",
    "ServiceCatalog",
    "AppConfig",
    "AlexaSkillsKit",
    "OpsWorks",
    "DeviceFarm",
    "Inspector",
    "InspectorScan",
    "EC2",
];

const LOCAL_PROVIDERS: &[(Category, &[&str])] = &[
    (
        Category::Source,
        &[
            "CodeCommit",
            "CodeStarSourceConnection",
            "GitHub",
            "Bitbucket",
        ],
    ),
    (Category::Build, &["CodeBuild"]),
    (Category::Test, &["CodeBuild"]),
    (Category::Approval, &["Manual"]),
    (Category::Invoke, &["Lambda"]),
    (Category::Compute, &["Commands"]),
    (
        Category::Deploy,
        &[
            "CodeDeploy",
            "CodeDeployToECS",
            "ECS",
            "EKS",
            "ElasticBeanstalk",
            "pipedeck",
        ],
    ),
];

const APPROVAL_KEYS: &[&str] = &["NotificationArn", "CustomData", "ExternalEntityLink"];
const NAME_MAX: usize = 100;
const CONFIG_VALUE_MAX: usize = 1000;

struct Ctx<'a> {
    spans: &'a SpanMap,
    out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn push(&mut self, sev: Severity, canon: &str, msg: String, fix: Option<String>) {
        let (path, pos) = self.spans.locate(canon);
        self.out.push(Diagnostic {
            severity: sev,
            pos,
            path,
            message: msg,
            fix,
            file: None,
        });
    }
    fn error(&mut self, canon: &str, msg: String, fix: Option<String>) {
        self.push(Severity::Error, canon, msg, fix);
    }
    fn warn(&mut self, canon: &str, msg: String, fix: Option<String>) {
        self.push(Severity::Warning, canon, msg, fix);
    }
}

/// A value left unresolved by the CloudFormation reader (`«Ref:Env»`): it
/// already has its warning, so the rules that check its spelling skip it.
fn unresolved(s: &str) -> bool {
    s.contains('«')
}

fn valid_name(s: &str) -> bool {
    unresolved(s)
        || !s.is_empty()
            && s.len() <= NAME_MAX
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_'))
}

/// The fix for an invalid name: a template placeholder that was never
/// filled in (`%Name%`, `{{name}}`, `${name}`) gets its own advice.
fn name_fix(s: &str) -> Option<String> {
    let templated = (s.starts_with('%') && s.ends_with('%') && s.len() > 2)
        || s.contains("{{")
        || s.contains("${");
    Some(if templated {
        format!(
            "`{s}` looks like a template placeholder that was never filled in; render the template first"
        )
    } else {
        "use 1–100 letters, digits and . @ - _".into()
    })
}

fn valid_artifact_name(s: &str) -> bool {
    unresolved(s)
        || !s.is_empty()
            && s.len() <= NAME_MAX
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// A `#{Namespace.Variable}` reference found in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub namespace: String,
    pub name: String,
}

/// Finds every `#{ns.name}` reference in `s`.
pub fn variable_refs(s: &str) -> Vec<VarRef> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("#{") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find('}') else { break };
        let inner = &rest[..end];
        if let Some((ns, name)) = inner.split_once('.') {
            let ok = |x: &str| {
                !x.is_empty()
                    && x.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_'))
            };
            if ok(ns) && ok(name) {
                out.push(VarRef {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                });
            }
        }
        rest = &rest[end + 1..];
    }
    out
}

/// Checks one loaded pipeline; returns its errors and warnings.
pub fn validate(lp: &LoadedPipeline) -> Vec<Diagnostic> {
    let mut c = Ctx {
        spans: &lp.spans,
        out: Vec::new(),
    };
    let p = &lp.pipeline;
    pipeline_rules(p, &mut c);
    stage_and_action_rules(p, &mut c);
    artifact_rules(p, &mut c);
    variable_rules(p, &mut c);
    v2_rules(p, &mut c);
    c.out
}

fn pipeline_rules(p: &Pipeline, c: &mut Ctx<'_>) {
    if !p.name.is_empty() && !valid_name(&p.name) {
        c.error(
            "name",
            format!("pipeline name `{}` is not valid", p.name),
            name_fix(&p.name),
        );
    }
    let n = p.stages.len();
    if !(2..=50).contains(&n) {
        c.error(
            "stages",
            format!("a pipeline needs 2 to 50 stages; this one has {n}"),
            (n < 2)
                .then(|| "add a stage after the source stage (for example a Build stage)".into()),
        );
    }
    if p.artifact_store.is_some() && !p.artifact_stores.is_empty() {
        c.error(
            "artifactStores",
            "a pipeline has either artifactStore or artifactStores, not both".into(),
            Some("keep artifactStores for cross-region pipelines, else artifactStore".into()),
        );
    }
    let stage_names: HashSet<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    for (i, t) in p.disabled_inbound_transitions.iter().enumerate() {
        if !stage_names.contains(t.stage_name.as_str()) {
            c.error(
                &format!("disableInboundStageTransitions[{i}].stageName"),
                format!("no stage named `{}`", t.stage_name),
                None,
            );
        }
    }
}

fn stage_and_action_rules(p: &Pipeline, c: &mut Ctx<'_>) {
    let mut stage_names: HashMap<&str, usize> = HashMap::new();
    for (si, stage) in p.stages.iter().enumerate() {
        let sp = format!("stages[{si}]");
        if let Some(first) = stage_names.insert(&stage.name, si) {
            c.error(
                &format!("{sp}.name"),
                format!(
                    "stage name `{}` is used twice (also stages[{first}])",
                    stage.name
                ),
                Some("give every stage a unique name".into()),
            );
        } else if !stage.name.is_empty() && !valid_name(&stage.name) {
            c.error(
                &format!("{sp}.name"),
                format!("stage name `{}` is not valid", stage.name),
                name_fix(&stage.name),
            );
        }
        if stage.actions.is_empty() || stage.actions.len() > 50 {
            c.error(
                &format!("{sp}.actions"),
                format!(
                    "stage `{}` has {} actions; a stage holds 1 to 50",
                    stage.name,
                    stage.actions.len()
                ),
                None,
            );
        }
        let mut action_names: HashMap<&str, usize> = HashMap::new();
        for (ai, a) in stage.actions.iter().enumerate() {
            let ap = format!("{sp}.actions[{ai}]");
            if let Some(first) = action_names.insert(&a.name, ai) {
                c.error(
                    &format!("{ap}.name"),
                    format!(
                        "action name `{}` is used twice in stage `{}` (also actions[{first}])",
                        a.name, stage.name
                    ),
                    None,
                );
            } else if !a.name.is_empty() && !valid_name(&a.name) {
                c.error(
                    &format!("{ap}.name"),
                    format!("action name `{}` is not valid", a.name),
                    name_fix(&a.name),
                );
            }
            if !(1..=999).contains(&a.run_order) {
                c.error(
                    &format!("{ap}.runOrder"),
                    format!("runOrder must be 1 to 999, found {}", a.run_order),
                    None,
                );
            }
            action_type_rules(a, si, &ap, c);
            for (k, v) in &a.configuration {
                if v.chars().count() > CONFIG_VALUE_MAX {
                    c.error(
                        &format!("{ap}.configuration.{k}"),
                        format!(
                            "configuration value is {} characters; AWS allows {CONFIG_VALUE_MAX}",
                            v.chars().count()
                        ),
                        None,
                    );
                }
            }
        }
    }
}

fn action_type_rules(a: &super::pipeline::Action, si: usize, ap: &str, c: &mut Ctx<'_>) {
    let t = &a.action_type_id;
    let Some(cat) = Category::parse(&t.category) else {
        if !t.category.is_empty() {
            c.error(
                &format!("{ap}.actionTypeId.category"),
                format!("unknown action category `{}`", t.category),
                suggest(&t.category, &Category::ALL)
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some(format!("one of {}", Category::ALL.join(", ")))),
            );
        }
        return;
    };
    if !t.owner.is_empty() && !matches!(t.owner.as_str(), "AWS" | "ThirdParty" | "Custom") {
        c.error(
            &format!("{ap}.actionTypeId.owner"),
            format!(
                "owner must be AWS, ThirdParty or Custom, found `{}`",
                t.owner
            ),
            None,
        );
    }
    if si == 0 && cat != Category::Source {
        c.error(
            &format!("{ap}.actionTypeId.category"),
            format!(
                "the first stage may hold only Source actions; `{}` is a {} action",
                a.name, t.category
            ),
            Some("move it to a later stage".into()),
        );
    }
    if si > 0 && cat == Category::Source {
        c.error(
            &format!("{ap}.actionTypeId.category"),
            format!("Source action `{}` must be in the first stage", a.name),
            Some("move it to the first stage".into()),
        );
    }
    if cat == Category::Source {
        if a.output_artifacts.is_empty() {
            c.error(
                &format!("{ap}.outputArtifacts"),
                format!("Source action `{}` must have an output artifact", a.name),
                None,
            );
        }
        if !a.input_artifacts.is_empty() {
            c.error(
                &format!("{ap}.inputArtifacts"),
                format!("Source action `{}` cannot have input artifacts", a.name),
                None,
            );
        }
    }
    if cat == Category::Approval {
        if t.provider == "Manual" {
            for k in a.configuration.keys() {
                if !APPROVAL_KEYS.contains(&k.as_str()) {
                    c.error(
                        &format!("{ap}.configuration.{k}"),
                        format!("`{k}` is not a Manual approval configuration key"),
                        Some(suggest(k, APPROVAL_KEYS).map_or_else(
                            || format!("use {}", APPROVAL_KEYS.join(", ")),
                            |s| format!("did you mean `{s}`?"),
                        )),
                    );
                }
            }
            if let Some(d) = a.configuration.get("CustomData")
                && d.chars().count() > 500
            {
                c.error(
                    &format!("{ap}.configuration.CustomData"),
                    "CustomData of a Manual approval is limited to 500 characters".into(),
                    None,
                );
            }
        }
        if !a.output_artifacts.is_empty() || !a.input_artifacts.is_empty() {
            c.error(
                &format!("{ap}.inputArtifacts"),
                format!("approval action `{}` cannot have artifacts", a.name),
                None,
            );
        }
    } else if a.timeout_in_minutes.is_some() {
        c.warn(
            &format!("{ap}.timeoutInMinutes"),
            "timeoutInMinutes applies only to Manual approval actions; it is ignored here".into(),
            None,
        );
    }
    if let Some(m) = a.timeout_in_minutes
        && !(5..=86_400).contains(&m)
    {
        c.error(
            &format!("{ap}.timeoutInMinutes"),
            format!("timeoutInMinutes must be 5 to 86400, found {m}"),
            None,
        );
    }
    let local = LOCAL_PROVIDERS
        .iter()
        .find(|(k, _)| *k == cat)
        .is_some_and(|(_, ps)| ps.contains(&t.provider.as_str()));
    if !local
        && t.owner == "AWS"
        && !AWS_PROVIDERS.contains(&t.provider.as_str())
        && let Some(near) = suggest(&t.provider, AWS_PROVIDERS)
    {
        c.error(
            &format!("{ap}.actionTypeId.provider"),
            format!(
                "provider `{}` ({} action `{}`) is not an AWS provider",
                t.provider, t.category, a.name
            ),
            Some(format!("did you mean `{near}`?")),
        );
    } else if !local && !t.provider.is_empty() {
        c.warn(
            &format!("{ap}.actionTypeId.provider"),
            format!(
                "provider `{}` ({} action `{}`) cannot run locally yet; a local run fails this action",
                t.provider, t.category, a.name
            ),
            None,
        );
    }
}

/// Position of an action in execution order: (stage, runOrder).
type Slot = (usize, u32);

fn artifact_rules(p: &Pipeline, c: &mut Ctx<'_>) {
    let mut produced: HashMap<&str, (Slot, String)> = HashMap::new();
    for (si, stage) in p.stages.iter().enumerate() {
        for (ai, a) in stage.actions.iter().enumerate() {
            for (oi, o) in a.output_artifacts.iter().enumerate() {
                let op = format!("stages[{si}].actions[{ai}].outputArtifacts[{oi}]");
                if !o.is_empty() && !valid_artifact_name(o) {
                    c.error(
                        &op,
                        format!("artifact name `{o}` is not valid"),
                        name_fix(o).map(|f| f.replace(". @ - _", "- _")),
                    );
                }
                if let Some((_, first)) = produced.get(o.as_str()) {
                    let (first_path, _) = c.spans.locate(first);
                    c.error(
                        &op,
                        format!("output artifact `{o}` is already produced at {first_path}"),
                        Some("output artifact names must be unique in a pipeline".into()),
                    );
                } else {
                    produced.insert(o, ((si, a.run_order), op));
                }
            }
        }
    }
    let names: Vec<&str> = produced.keys().copied().collect();
    for (si, stage) in p.stages.iter().enumerate() {
        for (ai, a) in stage.actions.iter().enumerate() {
            for (ii, input) in a.input_artifacts.iter().enumerate() {
                let ip = format!("stages[{si}].actions[{ai}].inputArtifacts[{ii}]");
                match produced.get(input.as_str()) {
                    None => c.error(
                        &ip,
                        format!("input artifact `{input}` is not produced by any action"),
                        suggest(input, &names).map(|s| format!("did you mean `{s}`?")),
                    ),
                    Some((slot, at)) if *slot >= (si, a.run_order) => {
                        let (at, _) = c.spans.locate(at);
                        c.error(
                            &ip,
                            format!(
                                "input artifact `{input}` is produced at {at}, which does not run before this action"
                            ),
                            Some("an input must come from an earlier stage or a lower runOrder".into()),
                        );
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

fn variable_rules(p: &Pipeline, c: &mut Ctx<'_>) {
    let mut namespaces: HashMap<&str, (Slot, String)> = HashMap::new();
    for (si, stage) in p.stages.iter().enumerate() {
        for (ai, a) in stage.actions.iter().enumerate() {
            if let Some(ns) = &a.namespace {
                let np = format!("stages[{si}].actions[{ai}].namespace");
                if ns == "codepipeline" || ns == "variables" {
                    c.error(&np, format!("namespace `{ns}` is reserved"), None);
                } else if namespaces.contains_key(ns.as_str()) {
                    c.error(
                        &np,
                        format!("namespace `{ns}` is used by more than one action"),
                        Some("namespaces must be unique in a pipeline".into()),
                    );
                } else {
                    namespaces.insert(ns, ((si, a.run_order), np));
                }
            }
        }
    }
    let mut seen_vars = HashSet::new();
    for (vi, v) in p.variables.iter().enumerate() {
        let vp = format!("variables[{vi}]");
        if !seen_vars.insert(v.name.as_str()) {
            c.error(
                &format!("{vp}.name"),
                format!("pipeline variable `{}` is declared twice", v.name),
                None,
            );
        }
        let ok = !v.name.is_empty()
            && v.name.len() <= 128
            && v.name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '@' | '-' | '_'));
        if !ok {
            c.error(
                &format!("{vp}.name"),
                format!("pipeline variable name `{}` is not valid", v.name),
                Some("use 1–128 letters, digits and @ - _".into()),
            );
        }
        if v.default_value.as_deref() == Some("") {
            c.error(
                &format!("{vp}.defaultValue"),
                "a default value cannot be empty".into(),
                None,
            );
        }
    }
    let ns_names: Vec<&str> = namespaces.keys().copied().collect();
    let var_names: Vec<&str> = p.variables.iter().map(|v| v.name.as_str()).collect();
    for (si, stage) in p.stages.iter().enumerate() {
        for (ai, a) in stage.actions.iter().enumerate() {
            let ap = format!("stages[{si}].actions[{ai}]");
            let mut texts: Vec<(String, &str)> = a
                .configuration
                .iter()
                .map(|(k, v)| (format!("{ap}.configuration.{k}"), v.as_str()))
                .collect();
            texts.extend(
                a.commands
                    .iter()
                    .enumerate()
                    .map(|(i, cmd)| (format!("{ap}.commands[{i}]"), cmd.as_str())),
            );
            for (path, text) in texts {
                for r in variable_refs(text) {
                    check_ref(
                        &r,
                        &path,
                        (si, a.run_order),
                        &namespaces,
                        &ns_names,
                        &var_names,
                        c,
                    );
                }
            }
        }
    }
}

fn check_ref(
    r: &VarRef,
    path: &str,
    here: Slot,
    namespaces: &HashMap<&str, (Slot, String)>,
    ns_names: &[&str],
    var_names: &[&str],
    c: &mut Ctx<'_>,
) {
    match r.namespace.as_str() {
        "codepipeline" => {
            if r.name != "PipelineExecutionId" {
                c.warn(
                    path,
                    format!(
                        "`#{{codepipeline.{}}}` is not a CodePipeline variable",
                        r.name
                    ),
                    Some("the codepipeline namespace has PipelineExecutionId".into()),
                );
            }
        }
        "variables" => {
            if !var_names.contains(&r.name.as_str()) {
                c.error(
                    path,
                    format!(
                        "`#{{variables.{}}}` refers to an undeclared pipeline variable",
                        r.name
                    ),
                    Some(suggest(&r.name, var_names).map_or_else(
                        || format!("declare `{}` in the pipeline's variables", r.name),
                        |s| format!("did you mean `{s}`?"),
                    )),
                );
            }
        }
        ns => match namespaces.get(ns) {
            None => c.error(
                path,
                format!(
                    "`#{{{ns}.{}}}` refers to namespace `{ns}`, which no action declares",
                    r.name
                ),
                Some(suggest(ns, ns_names).map_or_else(
                    || {
                        format!(
                            "set `namespace: {ns}` on the action that produces `{}`",
                            r.name
                        )
                    },
                    |s| format!("did you mean `{s}`?"),
                )),
            ),
            Some((slot, at)) if *slot >= here => {
                let (at, _) = c.spans.locate(at);
                c.error(
                    path,
                    format!(
                        "`#{{{ns}.{}}}` refers to {at}, which does not run before this action",
                        r.name
                    ),
                    Some("a variable must come from an earlier stage or a lower runOrder".into()),
                );
            }
            Some(_) => {}
        },
    }
}

fn v2_rules(p: &Pipeline, c: &mut Ctx<'_>) {
    let mut features: Vec<(String, &str)> = Vec::new();
    if !p.triggers.is_empty() {
        features.push(("triggers".into(), "triggers"));
    }
    if !p.variables.is_empty() {
        features.push(("variables".into(), "pipeline variables"));
    }
    if p.execution_mode != ExecutionMode::Superseded {
        features.push((
            "executionMode".into(),
            "QUEUED and PARALLEL execution modes",
        ));
    }
    for (si, s) in p.stages.iter().enumerate() {
        if s.before_entry.is_some() {
            features.push((format!("stages[{si}].beforeEntry"), "stage conditions"));
        }
        if s.on_success.is_some() {
            features.push((format!("stages[{si}].onSuccess"), "stage conditions"));
        }
        if let Some(f) = &s.on_failure {
            features.push((
                format!("stages[{si}].onFailure"),
                "stage onFailure (rollback, retry)",
            ));
            if f.result.as_deref() == Some("RETRY") && !f.conditions.is_empty() {
                c.error(
                    &format!("stages[{si}].onFailure"),
                    "onFailure RETRY cannot be combined with conditions".into(),
                    None,
                );
            }
            if f.result.as_deref() == Some("ROLLBACK")
                && p.execution_mode == ExecutionMode::Parallel
            {
                c.error(
                    &format!("stages[{si}].onFailure.result"),
                    "rollback is not available in PARALLEL execution mode".into(),
                    None,
                );
            }
        }
    }
    match p.pipeline_type {
        Some(PipelineType::V1) => {
            for (path, what) in features {
                c.error(
                    &path,
                    format!("{what} need a V2 pipeline; this one is V1"),
                    Some("set pipelineType to V2".into()),
                );
            }
        }
        None => {
            if let Some((path, what)) = features.first() {
                c.warn(
                    path,
                    format!(
                        "{what} need a V2 pipeline; pipelineType is not set, so it is treated as V2"
                    ),
                    Some("set pipelineType to V2 explicitly".into()),
                );
            }
        }
        Some(PipelineType::V2) => {}
    }
    let sources: Vec<&str> = p
        .stages
        .first()
        .map(|s| s.actions.iter().map(|a| a.name.as_str()).collect())
        .unwrap_or_default();
    for (ti, t) in p.triggers.iter().enumerate() {
        if !sources.contains(&t.source_action_name.as_str()) {
            c.error(
                &format!("triggers[{ti}].gitConfiguration.sourceActionName"),
                format!(
                    "trigger names source action `{}`, which is not in the source stage",
                    t.source_action_name
                ),
                suggest(&t.source_action_name, &sources).map(|s| format!("did you mean `{s}`?")),
            );
        }
        if t.push.len() > 3 || t.pull_request.len() > 3 {
            c.error(
                &format!("triggers[{ti}].gitConfiguration"),
                "a trigger holds at most 3 push and 3 pullRequest filters".into(),
                None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variable_references() {
        let r = variable_refs("x #{SourceVariables.CommitId} y #{variables.env} #{bad");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].namespace, "SourceVariables");
        assert_eq!(r[1].name, "env");
    }
}
