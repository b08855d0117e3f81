//! `pipedeck push --aws`: the workspace's pipeline onto AWS CodePipeline.
//! Validates it, refuses a definition that still holds placeholders from a
//! CloudFormation or Terraform import (those pipelines change through their
//! own templates), shows the difference from the pipeline of that name on
//! AWS (GetPipeline), and creates or updates it after a confirmation (the
//! typed name for a protected account).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use aws_sdk_codepipeline::types as t;

use super::account::Account;
use crate::api::ApiError;
use crate::model::pipeline as m;

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::new("InvalidStructureException", e.to_string())
}

/// Every `«…»` placeholder left in the definition, once each.
pub fn placeholders(p: &m::Pipeline) -> Vec<String> {
    let text = serde_json::to_string(p).unwrap_or_default();
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find('«') {
        let after = &rest[i..];
        let Some(j) = after.find('»') else { break };
        let ph = after[..j + '»'.len_utf8()].to_owned();
        if !out.contains(&ph) {
            out.push(ph);
        }
        rest = &after[j..];
    }
    out
}

fn map(c: &BTreeMap<String, String>) -> Option<std::collections::HashMap<String, String>> {
    (!c.is_empty()).then(|| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn store(s: &m::ArtifactStore) -> Result<t::ArtifactStore, ApiError> {
    let mut b = t::ArtifactStore::builder()
        .r#type(t::ArtifactStoreType::from(s.store_type.as_str()))
        .location(&s.location);
    if let Some(k) = &s.encryption_key {
        b = b.encryption_key(
            t::EncryptionKey::builder()
                .id(&k.id)
                .r#type(t::EncryptionKeyType::from(k.key_type.as_str()))
                .build()
                .map_err(bad)?,
        );
    }
    b.build().map_err(bad)
}

/// The model as CodePipeline's declaration (conditions and triggers are
/// not carried yet).
pub fn declaration(
    p: &m::Pipeline,
    version: Option<i32>,
) -> Result<t::PipelineDeclaration, ApiError> {
    let mut stages = Vec::new();
    for s in &p.stages {
        let mut actions = Vec::new();
        for a in &s.actions {
            let ty = t::ActionTypeId::builder()
                .category(t::ActionCategory::from(a.action_type_id.category.as_str()))
                .owner(t::ActionOwner::from(a.action_type_id.owner.as_str()))
                .provider(&a.action_type_id.provider)
                .version(&a.action_type_id.version)
                .build()
                .map_err(bad)?;
            let mut b = t::ActionDeclaration::builder()
                .name(&a.name)
                .action_type_id(ty)
                .run_order(a.run_order as i32)
                .set_configuration(map(&a.configuration))
                .set_namespace(a.namespace.clone())
                .set_region(a.region.clone())
                .set_role_arn(a.role_arn.clone())
                .set_timeout_in_minutes(a.timeout_in_minutes.map(|t| t as i32));
            for i in &a.input_artifacts {
                b = b.input_artifacts(t::InputArtifact::builder().name(i).build().map_err(bad)?);
            }
            for o in &a.output_artifacts {
                b = b.output_artifacts(t::OutputArtifact::builder().name(o).build().map_err(bad)?);
            }
            if !a.commands.is_empty() {
                b = b.set_commands(Some(a.commands.clone()));
            }
            if !a.output_variables.is_empty() {
                b = b.set_output_variables(Some(a.output_variables.clone()));
            }
            actions.push(b.build().map_err(bad)?);
        }
        stages.push(
            t::StageDeclaration::builder()
                .name(&s.name)
                .set_actions(Some(actions))
                .build()
                .map_err(bad)?,
        );
    }
    let mut b = t::PipelineDeclaration::builder()
        .name(&p.name)
        .role_arn(p.role_arn.clone().unwrap_or_default())
        .set_stages(Some(stages))
        .set_version(version)
        .execution_mode(t::ExecutionMode::from(p.execution_mode.as_str()));
    if let Some(s) = &p.artifact_store {
        b = b.artifact_store(store(s)?);
    }
    if !p.artifact_stores.is_empty() {
        let mut m = std::collections::HashMap::new();
        for (k, v) in &p.artifact_stores {
            m.insert(k.clone(), store(v)?);
        }
        b = b.set_artifact_stores(Some(m));
    }
    if let Some(ty) = p.pipeline_type {
        b = b.pipeline_type(t::PipelineType::from(match ty {
            m::PipelineType::V1 => "V1",
            m::PipelineType::V2 => "V2",
        }));
    }
    for v in &p.variables {
        b = b.variables(
            t::PipelineVariableDeclaration::builder()
                .name(&v.name)
                .set_default_value(v.default_value.clone())
                .set_description(v.description.clone())
                .build()
                .map_err(bad)?,
        );
    }
    b.build().map_err(bad)
}

/// Lines of `new` not in `old` (+) and of `old` not in `new` (−), in order.
pub fn diff(old: &str, new: &str) -> Vec<String> {
    let o: Vec<&str> = old.lines().collect();
    let n: Vec<&str> = new.lines().collect();
    // LCS table; definitions are small.
    let mut l = vec![vec![0u32; n.len() + 1]; o.len() + 1];
    for i in (0..o.len()).rev() {
        for j in (0..n.len()).rev() {
            l[i][j] = if o[i] == n[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < o.len() || j < n.len() {
        if i < o.len() && j < n.len() && o[i] == n[j] {
            i += 1;
            j += 1;
        } else if j < n.len() && (i == o.len() || l[i][j + 1] >= l[i + 1][j]) {
            out.push(format!("+ {}", n[j]));
            j += 1;
        } else {
            out.push(format!("- {}", o[i]));
            i += 1;
        }
    }
    out
}

fn comparable(p: &m::Pipeline) -> String {
    let mut p = p.clone();
    p.version = None;
    serde_json::to_string_pretty(&p).unwrap_or_default()
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    Created { version: u32 },
    Updated { version: u32 },
    Unchanged,
    Cancelled,
}

impl Account {
    /// Pushes `p`; `confirm` is asked with the diff and answers whether to
    /// go on (`protected`: the name must be typed).
    pub async fn push(
        &self,
        p: &m::Pipeline,
        confirm: &mut dyn FnMut(&[String], bool) -> bool,
    ) -> Result<Pushed, ApiError> {
        let ph = placeholders(p);
        if !ph.is_empty() {
            return Err(ApiError::new(
                "InvalidStructureException",
                format!(
                    "{} still holds placeholders from its import: {}. Change such a pipeline through its own CloudFormation or Terraform template, not with push",
                    p.name,
                    ph.join(", ")
                ),
            ));
        }
        if self.target.readonly {
            return Err(ApiError::new(
                "ReadOnlyAccount",
                format!(
                    "account {} is read-only in pipedeck's config",
                    self.target.label
                ),
            ));
        }
        let cp = &self.clients.codepipeline;
        let existing = match self.definition(&p.name, None).await {
            Ok((d, md)) => Some((d, md.pipeline_version)),
            Err(e) if e.code == "PipelineNotFoundException" => None,
            Err(e) => return Err(e),
        };
        let changes = match &existing {
            Some((d, _)) => diff(&comparable(d), &comparable(p)),
            None => comparable(p).lines().map(|l| format!("+ {l}")).collect(),
        };
        if existing.is_some() && changes.is_empty() {
            return Ok(Pushed::Unchanged);
        }
        let protected = !self.target.protected.is_empty();
        if !confirm(&changes, protected) {
            return Ok(Pushed::Cancelled);
        }
        match existing {
            None => {
                let decl = declaration(p, None)?;
                let out = self
                    .send("codepipeline", "CreatePipeline", || {
                        cp.create_pipeline().pipeline(decl.clone()).send()
                    })
                    .await?;
                Ok(Pushed::Created {
                    version: out
                        .pipeline()
                        .and_then(|p| p.version())
                        .map_or(1, |v| v as u32),
                })
            }
            Some((_, v)) => {
                let decl = declaration(p, Some(v as i32))?;
                let out = self
                    .send("codepipeline", "UpdatePipeline", || {
                        cp.update_pipeline().pipeline(decl.clone()).send()
                    })
                    .await?;
                self.invalidate(&p.name);
                Ok(Pushed::Updated {
                    version: out
                        .pipeline()
                        .and_then(|p| p.version())
                        .map_or(v + 1, |v| v as u32),
                })
            }
        }
    }
}

/// The terminal's confirmation: the diff, then y/N (or the typed name).
pub fn ask_on_terminal(name: &str, yes: bool) -> impl FnMut(&[String], bool) -> bool + '_ {
    move |changes, protected| {
        for c in changes {
            println!("{c}");
        }
        if yes && !protected {
            return true;
        }
        let prompt = if protected {
            format!("protected account: type the pipeline's name ({name}) to push: ")
        } else {
            format!("push {name}? [y/N] ")
        };
        print!("{prompt}");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() {
            return false;
        }
        let a = line.trim();
        if protected {
            a == name
        } else {
            a.eq_ignore_ascii_case("y") || a.eq_ignore_ascii_case("yes")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_marks_added_and_removed_lines() {
        assert_eq!(diff("a\nb\nc", "a\nc\nd"), ["- b", "+ d"]);
    }
}

/// `pipedeck push --aws [--pipeline NAME] [--yes]`.
#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The workspace's pipeline to push (default: its only one)
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Push without asking (a protected account still asks for the name)
    #[arg(long)]
    pub yes: bool,
}

pub async fn run_cli(
    ws: &crate::config::workspace::Workspace,
    a: &PushArgs,
) -> Result<std::process::ExitCode, String> {
    use std::process::ExitCode;
    let Some(sel) = crate::backend::aws_selection() else {
        return Err("push needs --aws (with --profile / --region, or [[aws.accounts]])".into());
    };
    let Some(target) = sel.targets.first() else {
        return Err("no AWS account selected".into());
    };
    let wp = match &a.pipeline {
        Some(n) => ws.pipelines.iter().find(|p| &p.pipeline.name == n),
        None if ws.pipelines.len() == 1 => ws.pipelines.first(),
        None => None,
    };
    let Some(wp) = wp else {
        let names: Vec<&str> = ws
            .pipelines
            .iter()
            .map(|p| p.pipeline.name.as_str())
            .collect();
        return Err(format!(
            "choose the pipeline with --pipeline (the workspace has: {})",
            names.join(", ")
        ));
    };
    let clients = super::Clients::load(target).await;
    let account = Account::new(target.clone(), clients, sel.intervals);
    let name = wp.pipeline.name.clone();
    let mut ask = ask_on_terminal(&name, a.yes);
    match account.push(&wp.pipeline, &mut ask).await {
        Ok(Pushed::Created { version }) => {
            println!(
                "created {name} (version {version}) in {}",
                account.describe()
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(Pushed::Updated { version }) => {
            println!(
                "updated {name} to version {version} in {}",
                account.describe()
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(Pushed::Unchanged) => {
            println!("{name} on AWS is already this definition");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Pushed::Cancelled) => {
            println!("not pushed");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("pipedeck: {}: {}", e.code, e.message);
            Ok(ExitCode::FAILURE)
        }
    }
}
