//! Loading a definition file of any supported format: detect the format,
//! parse it with positions, read the model, validate.

use std::path::Path;

use serde::Serialize;

use super::buildspec::{self, Buildspec};
use super::cfn::{self, CfnOptions};
use super::codepipeline::{self, Dialect, LoadedPipeline};
use super::diag::{Diagnostic, Pos};
use super::node::Node;
use super::source::{self, SourceText};
use super::terraform::{TfOptions, TfSource, report as tf};
use super::validate;
use super::{json, toml, yaml};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    CodepipelineJson,
    PipedeckToml,
    Cloudformation,
    Buildspec,
    Terraform,
    Unknown,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::CodepipelineJson => "codepipeline-json",
            Format::PipedeckToml => "pipedeck-toml",
            Format::Cloudformation => "cloudformation",
            Format::Buildspec => "buildspec",
            Format::Terraform => "terraform",
            Format::Unknown => "unknown",
        }
    }
}

/// Values that loading needs from the user (CloudFormation parameters and
/// pseudo parameters; Terraform variables).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub params: std::collections::BTreeMap<String, String>,
    pub terraform: TfOptions,
}

impl LoadOptions {
    /// CloudFormation options: `AWS::Region`, `AWS::AccountId`,
    /// `AWS::StackName`, `AWS::Partition` and `AWS::URLSuffix` given as
    /// params set the pseudo parameters; the rest are template parameters.
    fn cfn(&self) -> CfnOptions {
        let mut o = CfnOptions::default();
        for (k, v) in &self.params {
            let slot = match k.as_str() {
                "AWS::Region" => &mut o.region,
                "AWS::AccountId" => &mut o.account_id,
                "AWS::StackName" => &mut o.stack_name,
                "AWS::Partition" => &mut o.partition,
                "AWS::URLSuffix" => &mut o.url_suffix,
                _ => {
                    o.params.insert(k.clone(), v.clone());
                    continue;
                }
            };
            v.clone_into(slot);
        }
        o
    }
}

/// Everything learned from one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub file: String,
    pub format: Format,
    pub pipelines: Vec<LoadedPipeline>,
    /// The buildspec, when the file is one.
    pub buildspec: Option<Buildspec>,
    /// Inline buildspecs of CloudFormation `AWS::CodeBuild::Project`s, by
    /// project name, for the pipeline actions whose `ProjectName` names them.
    pub project_buildspecs: std::collections::BTreeMap<String, Buildspec>,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileReport {
    pub fn ok(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// The errors as one line, `path: message; …` (what an API answer
    /// says of an invalid declaration); `None` when there are none.
    pub fn error_summary(&self) -> Option<String> {
        let errors: Vec<String> = self
            .errors()
            .map(|d| {
                if d.path.is_empty() {
                    d.message.clone()
                } else {
                    format!("{}: {}", d.path, d.message)
                }
            })
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    fn failed(file: String, format: Format, d: Diagnostic) -> Self {
        FileReport {
            file,
            format,
            pipelines: Vec::new(),
            buildspec: None,
            project_buildspecs: std::collections::BTreeMap::new(),
            diagnostics: vec![d],
        }
    }
}

pub fn load_path(path: &Path, opts: &LoadOptions) -> FileReport {
    if path.is_dir() {
        return tf::load_dir(path, &opts.terraform);
    }
    let file = path.display().to_string();
    match source::read_file(path) {
        Ok(text) => load_text(&file, &text, opts),
        Err(e) => {
            let pos = e.pos();
            FileReport::failed(
                file,
                Format::Unknown,
                Diagnostic::error(pos, "", e.to_string()),
            )
        }
    }
}

pub fn load_bytes(file: &str, bytes: &[u8], opts: &LoadOptions) -> FileReport {
    match source::decode(bytes) {
        Ok(text) => load_text(file, &text, opts),
        Err(e) => FileReport::failed(
            file.to_owned(),
            Format::Unknown,
            Diagnostic::error(e.pos(), "", e.to_string()),
        ),
    }
}

enum Syntax {
    Json,
    Yaml,
    Toml,
}

fn syntax_of(file: &str, text: &str) -> Syntax {
    let lower = file.to_ascii_lowercase();
    let name = lower.trim_end_matches(".tpl").trim_end_matches(".template");
    if name.ends_with(".toml") {
        Syntax::Toml
    } else if name.ends_with(".json") {
        Syntax::Json
    } else if name.ends_with(".yml") || name.ends_with(".yaml") {
        Syntax::Yaml
    } else if text.trim_start().starts_with(['{', '[']) {
        Syntax::Json
    } else {
        Syntax::Yaml
    }
}

pub fn load_text(file: &str, src: &SourceText, opts: &LoadOptions) -> FileReport {
    if tf::is_tf_name(file) {
        let dir = Path::new(file).parent().unwrap_or(Path::new(""));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let source = TfSource {
            name: file.to_owned(),
            text: src.text.clone(),
        };
        return tf::load(file, &[source], dir, &[], false, &opts.terraform);
    }
    let file = file.to_owned();
    let syntax = syntax_of(&file, &src.text);
    let parsed = match syntax {
        Syntax::Json => json::parse(&src.text),
        Syntax::Yaml => yaml::parse(&src.text),
        Syntax::Toml => toml::parse(&src.text),
    };
    let root = match parsed {
        Ok(n) => n,
        Err(e) => {
            let what = match syntax {
                Syntax::Json => "JSON",
                Syntax::Yaml => "YAML",
                Syntax::Toml => "TOML",
            };
            let format = match syntax {
                Syntax::Toml => Format::PipedeckToml,
                _ => Format::Unknown,
            };
            return FileReport::failed(
                file,
                format,
                Diagnostic::error(Some(e.pos), "", format!("{what} syntax: {}", e.message)),
            );
        }
    };
    let mut report = FileReport {
        file,
        format: Format::Unknown,
        pipelines: Vec::new(),
        buildspec: None,
        project_buildspecs: std::collections::BTreeMap::new(),
        diagnostics: Vec::new(),
    };
    match syntax {
        Syntax::Toml => {
            report.format = Format::PipedeckToml;
            report.pipelines = read_pipeline(&root, Dialect::Snake, &mut report.diagnostics);
        }
        _ => classify(&root, opts, &mut report),
    }
    for lp in &report.pipelines {
        report.diagnostics.extend(validate::validate(lp));
    }
    report.diagnostics.sort_by_key(|d| (d.pos, d.severity));
    report.diagnostics.dedup();
    report
}

fn read_pipeline(
    root: &Node,
    dialect: Dialect,
    diags: &mut Vec<Diagnostic>,
) -> Vec<LoadedPipeline> {
    let (node, prefix) = codepipeline::unwrap_document(root);
    codepipeline::read(node, dialect, prefix, None, diags)
        .into_iter()
        .collect()
}

fn classify(root: &Node, opts: &LoadOptions, report: &mut FileReport) {
    let diags = &mut report.diagnostics;
    if root.get("pipeline").is_some() || root.get("stages").is_some() {
        report.format = Format::CodepipelineJson;
        report.pipelines = read_pipeline(root, Dialect::Camel, diags);
    } else if cfn::is_template(root) {
        report.format = Format::Cloudformation;
        let template = cfn::resolve(root, &opts.cfn());
        diags.extend(template.diagnostics);
        for cp in &template.pipelines {
            report.pipelines.extend(codepipeline::read(
                &cp.properties,
                Dialect::Pascal,
                &cp.path,
                Some(&cp.logical_id),
                diags,
            ));
        }
        let wanted: Vec<&str> = report
            .pipelines
            .iter()
            .flat_map(|p| p.pipeline.stages.iter())
            .flat_map(|s| s.actions.iter())
            .filter_map(|a| a.configuration.get("ProjectName").map(String::as_str))
            .collect();
        for project in &template.projects {
            let Some((spec, pos)) = &project.buildspec else {
                continue;
            };
            if !wanted.contains(&project.name.as_str())
                && !wanted.contains(&project.logical_id.as_str())
            {
                continue;
            }
            let prefix = format!(
                "Resources.{}.Properties.Source.BuildSpec",
                project.logical_id
            );
            let shift = |d: Diagnostic| embedded(d, *pos, &prefix);
            match buildspec::parse_str(spec) {
                Ok(lb) => {
                    diags.extend(lb.diagnostics.into_iter().map(shift));
                    report
                        .project_buildspecs
                        .insert(project.name.clone(), lb.buildspec);
                }
                Err(errs) => diags.extend(errs.into_iter().map(shift)),
            }
        }
    } else if buildspec::looks_like_buildspec(root) {
        report.format = Format::Buildspec;
        match buildspec::from_node(root) {
            Ok(lb) => {
                diags.extend(lb.diagnostics);
                report.buildspec = Some(lb.buildspec);
            }
            Err(errs) => diags.extend(errs),
        }
    } else {
        diags.push(unrecognised(root.pos));
    }
}

/// Moves a diagnostic of a buildspec embedded in a template string that
/// starts at `at` to the template's own lines and columns. A block scalar
/// (`BuildSpec: |`) starts at its first content line, and every later line
/// has the same indentation, so lines add and columns shift by `at`'s.
fn embedded(mut d: Diagnostic, at: Pos, prefix: &str) -> Diagnostic {
    if let Some(p) = d.pos {
        d.pos = Some(Pos::new(
            (at.line + p.line.saturating_sub(1)) as usize,
            (p.column + at.column.saturating_sub(1)) as usize,
        ));
    }
    d.path = if d.path.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{}", d.path)
    };
    d
}

fn unrecognised(pos: Pos) -> Diagnostic {
    Diagnostic::error(
        Some(pos),
        "",
        "not a definition pipedeck knows: expected CodePipeline JSON (with `pipeline` or `stages`), \
         a CloudFormation template (with `Resources`), a buildspec (with `version` and `phases`), \
         or pipedeck TOML (a .toml file)",
    )
}
