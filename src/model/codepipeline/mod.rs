//! Reads a pipeline from a [`Node`] tree in any of three spellings of the
//! same structure: camelCase (CodePipeline JSON), snake_case (pipedeck's
//! TOML) and PascalCase (CloudFormation `AWS::CodePipeline::Pipeline`
//! properties). Positions of everything read are kept in a [`SpanMap`] under
//! a canonical camelCase path, so validation can point into the file.

use std::collections::HashMap;

use super::diag::{Diagnostic, Pos};
use super::node::Node;
use super::pipeline::Pipeline;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `inputArtifacts`: CodePipeline JSON.
    Camel,
    /// `input_artifacts`: pipedeck TOML.
    Snake,
    /// `InputArtifacts`: CloudFormation.
    Pascal,
    /// `input_artifacts`, with Terraform's singular block names (`stage`,
    /// `action`, `variable`, `trigger`, `condition`, `rule`).
    Terraform,
}

impl Dialect {
    /// Spells a camelCase key in this dialect.
    pub fn key(self, camel: &str) -> String {
        match self {
            Dialect::Camel => camel.to_owned(),
            Dialect::Pascal => {
                let mut c = camel.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }
            Dialect::Terraform => match camel {
                "stages" => "stage".into(),
                "actions" => "action".into(),
                "variables" => "variable".into(),
                "triggers" => "trigger".into(),
                "conditions" => "condition".into(),
                "rules" => "rule".into(),
                _ => Dialect::Snake.key(camel),
            },
            Dialect::Snake => {
                let mut out = String::with_capacity(camel.len() + 4);
                for ch in camel.chars() {
                    if ch.is_ascii_uppercase() {
                        out.push('_');
                        out.push(ch.to_ascii_lowercase());
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
        }
    }
}

/// Positions of the parts of a pipeline, by canonical camelCase path
/// (`stages[1].actions[0].inputArtifacts[0]`), with the path as the file
/// spells it for messages.
#[derive(Debug, Clone, Default)]
pub struct SpanMap {
    map: HashMap<String, (String, Pos)>,
}

impl SpanMap {
    pub fn insert(&mut self, canonical: String, display: String, pos: Pos) {
        self.map.entry(canonical).or_insert((display, pos));
    }

    /// The display path and position of a canonical path; falls back to the
    /// nearest recorded ancestor so a message always has a position.
    pub fn locate(&self, canonical: &str) -> (String, Option<Pos>) {
        let mut p = canonical;
        loop {
            if let Some((d, pos)) = self.map.get(p) {
                let rest = &canonical[p.len()..];
                return (format!("{d}{rest}"), Some(*pos));
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                // Nothing of the path is recorded: the pipeline's own position.
                None => return (canonical.to_owned(), self.map.get("").map(|(_, pos)| *pos)),
            }
        }
    }
}

/// A pipeline read from a file, with where its parts are.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    pub pipeline: Pipeline,
    pub spans: SpanMap,
    pub dialect: Dialect,
}

mod walker;
use walker::{P, Walker};

/// Reads one pipeline from `node` (the pipeline object itself). `prefix` is
/// the display path of `node` in its file (`pipeline`,
/// `Resources.Pipeline.Properties`, or empty); `default_name` names a
/// pipeline that has no name of its own (CloudFormation's logical id).
/// Returns `None` only when `node` is not a map at all.
pub fn read(
    node: &Node,
    dialect: Dialect,
    prefix: &str,
    default_name: Option<&str>,
    diags: &mut Vec<Diagnostic>,
) -> Option<LoadedPipeline> {
    let mut w = Walker {
        dialect,
        diags,
        spans: SpanMap::default(),
    };
    let p = P::root(prefix);
    w.map(node, &p)?;
    let pipeline = w.pipeline(node, &p, default_name);
    Some(LoadedPipeline {
        pipeline,
        spans: w.spans,
        dialect,
    })
}

/// The pipeline object in a CodePipeline JSON or pipedeck TOML document:
/// the `pipeline` member of the `get-pipeline` / `create-pipeline` wrapper,
/// or the document itself. Returns it with its display prefix.
pub fn unwrap_document(root: &Node) -> (&Node, &'static str) {
    match root.get("pipeline") {
        Some(p) if p.as_map().is_some() => (p, "pipeline"),
        _ => (root, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_spell_keys() {
        assert_eq!(Dialect::Snake.key("inputArtifacts"), "input_artifacts");
        assert_eq!(Dialect::Pascal.key("inputArtifacts"), "InputArtifacts");
        assert_eq!(Dialect::Camel.key("roleArn"), "roleArn");
    }

    #[test]
    fn span_map_falls_back_to_the_nearest_ancestor() {
        let mut s = SpanMap::default();
        s.insert(
            "stages[1]".into(),
            "pipeline.stages[1]".into(),
            Pos::new(4, 2),
        );
        let (path, pos) = s.locate("stages[1].actions[0].name");
        assert_eq!(path, "pipeline.stages[1].actions[0].name");
        assert_eq!(pos, Some(Pos::new(4, 2)));
    }
}
