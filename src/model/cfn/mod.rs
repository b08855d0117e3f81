//! CloudFormation templates: find every `AWS::CodePipeline::Pipeline` (and
//! the `AWS::CodeBuild::Project`s its actions name), and resolve the
//! intrinsic functions that can be resolved without a stack. What cannot be
//! resolved becomes a visible placeholder such as `«ImportValue:SharedRole»`
//! and a warning, never an error. Resolved values keep the position of the
//! expression they came from, so messages point into the template.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::diag::{Diagnostic, Pos};
use super::node::{Node, Value};

#[derive(Debug, Clone)]
pub struct CfnOptions {
    /// Parameter values (`--param Name=Value`); they win over defaults.
    pub params: BTreeMap<String, String>,
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
    pub partition: String,
    pub url_suffix: String,
}

impl Default for CfnOptions {
    fn default() -> Self {
        CfnOptions {
            params: BTreeMap::new(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            stack_name: "pipedeck-local".into(),
            partition: "aws".into(),
            url_suffix: "amazonaws.com".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CfnPipeline {
    pub logical_id: String,
    /// The resolved `Properties` map.
    pub properties: Node,
    /// Display path of `properties` (`Resources.Pipeline.Properties`).
    pub path: String,
}

#[derive(Debug, Clone)]
pub struct CfnProject {
    pub logical_id: String,
    /// The resolved `Name` property, else the logical id.
    pub name: String,
    /// An inline `Source.BuildSpec` (YAML or JSON text) and where it is.
    pub buildspec: Option<(String, Pos)>,
}

#[derive(Debug, Clone, Default)]
pub struct CfnTemplate {
    pub pipelines: Vec<CfnPipeline>,
    pub projects: Vec<CfnProject>,
    pub diagnostics: Vec<Diagnostic>,
}

/// True for a template: `AWSTemplateFormatVersion`, or `Resources` whose
/// entries have a `Type`.
pub fn is_template(root: &Node) -> bool {
    root.get("AWSTemplateFormatVersion").is_some()
        || root
            .get("Resources")
            .and_then(Node::as_map)
            .is_some_and(|m| m.iter().any(|(_, r)| r.get("Type").is_some()))
}

const PIPELINE: &str = "AWS::CodePipeline::Pipeline";
const PSEUDO: [&str; 8] = [
    "AWS::AccountId",
    "AWS::NoValue",
    "AWS::NotificationARNs",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];
const PROJECT: &str = "AWS::CodeBuild::Project";

pub fn resolve(root: &Node, opts: &CfnOptions) -> CfnTemplate {
    let mut r = Resolver::new(root, opts);
    let mut out = CfnTemplate::default();
    let resources = root.get("Resources").and_then(Node::as_map).unwrap_or(&[]);
    for (id, res) in resources {
        let ty = res.get("Type").and_then(Node::as_str).unwrap_or("");
        if ty != PIPELINE && ty != PROJECT {
            continue;
        }
        if let Some(cond) = res.get("Condition").and_then(Node::as_str)
            && r.condition(cond, res.pos) == Some(false)
        {
            continue;
        }
        let path = format!("Resources.{}.Properties", id.name);
        if ty == PIPELINE {
            let props = match res.get("Properties") {
                Some(p) => r
                    .resolve(p, &path)
                    .unwrap_or(Node::new(Value::Map(Vec::new()), p.pos)),
                None => Node::new(Value::Map(Vec::new()), res.pos),
            };
            out.pipelines.push(CfnPipeline {
                logical_id: id.name.clone(),
                properties: props,
                path,
            });
        } else {
            out.projects.push(r.project(&id.name, res, &path));
        }
    }
    if out.pipelines.is_empty() {
        let pos = root.get("Resources").map_or(root.pos, |n| n.pos);
        r.diags.push(Diagnostic::error(
            Some(pos),
            "Resources",
            format!("no {PIPELINE} resource in this template"),
        ));
    }
    for name in opts.params.keys() {
        if !r.params.contains_key(name.as_str()) {
            r.diags.push(Diagnostic::warning(
                None,
                "Parameters",
                format!("--param {name}: the template has no parameter `{name}`"),
            ));
        }
    }
    out.diagnostics = r.diags;
    out
}

struct Resolver<'t> {
    opts: &'t CfnOptions,
    params: HashMap<&'t str, &'t Node>,
    resources: HashSet<&'t str>,
    mappings: Option<&'t Node>,
    conditions: HashMap<&'t str, &'t Node>,
    cond_values: HashMap<String, Option<bool>>,
    evaluating: Vec<String>,
    warned: HashSet<String>,
    diags: Vec<Diagnostic>,
}

/// A short-form tag (`!Sub`) as the long-form function name (`Fn::Sub`).
fn tag_function(tag: &str) -> Option<String> {
    let name = tag.strip_prefix('!')?;
    Some(match name {
        "Ref" | "Condition" => name.to_owned(),
        _ => format!("Fn::{name}"),
    })
}

/// The function name and argument of an intrinsic, in either form.
fn as_intrinsic(n: &Node) -> Option<(String, Node)> {
    if let Some(f) = n.tag.as_deref().and_then(tag_function) {
        let mut arg = n.clone();
        arg.tag = None;
        return Some((f, arg));
    }
    match n.as_map() {
        Some([(k, v)]) if k.name == "Ref" || k.name.starts_with("Fn::") => {
            Some((k.name.clone(), v.clone()))
        }
        _ => None,
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn is_placeholder(s: &str) -> bool {
    s.contains('«')
}

mod resolver;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{json, yaml};

    fn template(text: &str) -> CfnTemplate {
        resolve(&yaml::parse(text).unwrap(), &CfnOptions::default())
    }

    fn props(t: &CfnTemplate) -> &Node {
        &t.pipelines[0].properties
    }

    fn pipeline_with(props: &str) -> String {
        format!(
            "AWSTemplateFormatVersion: '2010-09-09'\nParameters:\n  Env:\n    Type: String\n    Default: dev\n  Subnets:\n    Type: CommaDelimitedList\n    Default: a,b\nConditions:\n  IsProd: !Equals [!Ref Env, prod]\n  NotProd: !Not [!Condition IsProd]\nMappings:\n  Sizes:\n    dev:\n      Cpu: '256'\nResources:\n  Bucket:\n    Type: AWS::S3::Bucket\n  Pipeline:\n    Type: AWS::CodePipeline::Pipeline\n    Properties:\n{props}"
        )
    }

    #[test]
    fn short_forms_equal_long_forms() {
        let y = template(&pipeline_with(
            "      A: !Ref Env\n      B: !Sub '${Env}-x'\n      C: !Join ['-', [a, !Ref Env]]\n",
        ));
        let j = resolve(
            &json::parse(r#"{"Parameters": {"Env": {"Type": "String", "Default": "dev"}}, "Resources": {"Pipeline": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {"A": {"Ref": "Env"}, "B": {"Fn::Sub": "${Env}-x"}, "C": {"Fn::Join": ["-", ["a", {"Ref": "Env"}]]}}}}}"#).unwrap(),
            &CfnOptions::default(),
        );
        for k in ["A", "B", "C"] {
            assert_eq!(
                props(&y).get(k).unwrap().scalar_text(),
                props(&j).get(k).unwrap().scalar_text(),
                "{k}"
            );
        }
        assert_eq!(props(&y).get("C").unwrap().as_str(), Some("a-dev"));
    }

    #[test]
    fn sub_in_both_forms_with_pseudo_parameters_and_escape() {
        let t = template(&pipeline_with(
            "      A: !Sub 'arn:${AWS::Partition}:s3:::${Bucket}-${AWS::Region}-${!Literal}'\n      B: !Sub ['${X}/${Env}', {X: !Ref AWS::AccountId}]\n",
        ));
        assert_eq!(
            props(&t).get("A").unwrap().as_str(),
            Some("arn:aws:s3:::Bucket-us-east-1-${Literal}")
        );
        assert_eq!(
            props(&t).get("B").unwrap().as_str(),
            Some("123456789012/dev")
        );
    }

    #[test]
    fn select_split_getazs_base64() {
        let t = template(&pipeline_with(
            "      A: !Select [1, !Split [',', 'x,y,z']]\n      B: !Select [0, !GetAZs '']\n      C: !Base64 'hi'\n      D: !Select [1, !Ref Subnets]\n",
        ));
        assert_eq!(props(&t).get("A").unwrap().as_str(), Some("y"));
        assert_eq!(props(&t).get("B").unwrap().as_str(), Some("us-east-1a"));
        assert_eq!(props(&t).get("C").unwrap().as_str(), Some("aGk="));
        assert_eq!(props(&t).get("D").unwrap().as_str(), Some("b"));
    }

    #[test]
    fn find_in_map_and_if_over_evaluable_conditions() {
        let t = template(&pipeline_with(
            "      A: !FindInMap [Sizes, !Ref Env, Cpu]\n      B: !If [IsProd, big, small]\n      C: !If [NotProd, yes-ok, no]\n",
        ));
        assert_eq!(props(&t).get("A").unwrap().as_str(), Some("256"));
        assert_eq!(props(&t).get("B").unwrap().as_str(), Some("small"));
        assert_eq!(props(&t).get("C").unwrap().as_str(), Some("yes-ok"));
    }

    #[test]
    fn params_given_by_the_user_override_defaults() {
        let mut opts = CfnOptions::default();
        opts.params.insert("Env".into(), "prod".into());
        let root = yaml::parse(&pipeline_with("      B: !If [IsProd, big, small]\n")).unwrap();
        let t = resolve(&root, &opts);
        assert_eq!(props(&t).get("B").unwrap().as_str(), Some("big"));
    }

    #[test]
    fn no_value_removes_the_key() {
        let t = template(&pipeline_with(
            "      A: !If [IsProd, x, !Ref AWS::NoValue]\n      B: [1, !Ref AWS::NoValue]\n",
        ));
        assert!(props(&t).get("A").is_none());
        assert_eq!(props(&t).get("B").unwrap().as_seq().unwrap().len(), 1);
    }

    #[test]
    fn getatt_importvalue_and_getparam_become_placeholders_with_one_warning_each() {
        let t = template(&pipeline_with(
            "      A: !GetAtt Bucket.Arn\n      B: !ImportValue SharedRoleArn\n      C: { 'Fn::GetParam': [Out, params.json, Key] }\n      D: !ImportValue SharedRoleArn\n",
        ));
        let p = props(&t);
        assert_eq!(p.get("A").unwrap().as_str(), Some("«GetAtt:Bucket.Arn»"));
        assert_eq!(
            p.get("B").unwrap().as_str(),
            Some("«ImportValue:SharedRoleArn»")
        );
        assert_eq!(
            p.get("C").unwrap().as_str(),
            Some("«GetParam:Out,params.json,Key»")
        );
        assert_eq!(t.diagnostics.len(), 3, "{:#?}", t.diagnostics);
        assert!(t.diagnostics.iter().all(|d| !d.is_error()));
        assert_eq!(
            t.diagnostics[0].path,
            "Resources.Pipeline.Properties.A.Fn::GetAtt"
        );
    }

    #[test]
    fn an_unevaluable_condition_gives_a_placeholder() {
        let root = yaml::parse(
            "Conditions:\n  C: !Equals [!ImportValue X, y]\nResources:\n  P:\n    Type: AWS::CodePipeline::Pipeline\n    Properties:\n      A: !If [C, a, b]\n",
        )
        .unwrap();
        let t = resolve(&root, &CfnOptions::default());
        assert_eq!(props(&t).get("A").unwrap().as_str(), Some("«If:C»"));
    }

    #[test]
    fn an_unevaluable_condition_value_is_a_placeholder_not_a_removed_key() {
        let root = yaml::parse(
            "Conditions:\n  C: !Equals [!ImportValue X, y]\nResources:\n  P:\n    Type: AWS::CodePipeline::Pipeline\n    Properties:\n      A: !Condition C\n",
        )
        .unwrap();
        let t = resolve(&root, &CfnOptions::default());
        assert_eq!(props(&t).get("A").unwrap().as_str(), Some("«Condition:C»"));
    }

    #[test]
    fn resolved_values_keep_the_position_of_their_expression() {
        let t = template(&pipeline_with("      A: !Ref Env\n"));
        assert_eq!(props(&t).get("A").unwrap().pos.line, 22);
    }

    #[test]
    fn several_pipelines_and_a_codebuild_inline_buildspec() {
        let t = template(
            "Resources:\n  A:\n    Type: AWS::CodePipeline::Pipeline\n    Properties: {Name: a}\n  B:\n    Type: AWS::CodePipeline::Pipeline\n    Properties: {Name: b}\n  Proj:\n    Type: AWS::CodeBuild::Project\n    Properties:\n      Name: !Sub '${AWS::StackName}-build'\n      Source:\n        Type: CODEPIPELINE\n        BuildSpec: |\n          version: 0.2\n          phases:\n            build:\n              commands: [make]\n",
        );
        assert_eq!(t.pipelines.len(), 2);
        assert_eq!(t.projects[0].name, "pipedeck-local-build");
        let (spec, pos) = t.projects[0].buildspec.as_ref().unwrap();
        assert!(spec.starts_with("version: 0.2"));
        assert_eq!((pos.line, pos.column), (15, 11));
    }

    #[test]
    fn malformed_intrinsics_are_errors_not_panics() {
        let t = template(&pipeline_with(
            "      A: !Join [only-one]\n      B: !Select [5, [a]]\n      C: !FindInMap [Sizes, nope, Cpu]\n",
        ));
        let errors: Vec<_> = t.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 3, "{errors:#?}");
    }

    #[test]
    fn a_self_referring_condition_is_an_error() {
        let t = template(
            "Conditions:\n  A: !Condition A\nResources:\n  P:\n    Type: AWS::CodePipeline::Pipeline\n    Properties:\n      X: !If [A, a, b]\n",
        );
        assert!(
            t.diagnostics
                .iter()
                .any(|d| d.message.contains("refers to itself"))
        );
    }

    #[test]
    fn a_template_without_a_pipeline_is_an_error() {
        let t = template("Resources:\n  B:\n    Type: AWS::S3::Bucket\n");
        assert!(
            t.diagnostics[0]
                .message
                .contains("no AWS::CodePipeline::Pipeline")
        );
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
