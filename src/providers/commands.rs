//! Invoke (Lambda) and Compute (Commands) actions run local commands in the
//! same one-shell runner as CodeBuild, so they stream logs, honour stop and
//! timeout (the whole process group is killed) and mask secrets alike.
//!
//! - Lambda: `[functions.NAME] command = "..."` in pipedeck.toml runs for
//!   `FunctionName`; `UserParameters` is in `$PIPEDECK_USER_PARAMETERS`.
//!   Output variables: `KEY=VALUE` lines the command appends to
//!   `$PIPEDECK_OUTPUT_VARIABLES`.
//! - Commands: the action's `commands` run in the primary input; the names
//!   in `outputVariables` are exported from the shell, and output
//!   artifacts hold the working directory's files.

use std::collections::BTreeMap;

use super::codebuild_local::{self, BuildRequest, Status};
use super::{ActionContext, ActionOutcome, BoxFuture, OutcomeStatus, Provider};
use crate::model::buildspec::{
    Buildspec, BuildspecVersion, Command, Env, OnFailure, Phase, Phases,
};

pub struct LambdaCommand;
pub struct Commands;

fn spec(commands: Vec<String>, exported: Vec<String>) -> Buildspec {
    Buildspec {
        version: BuildspecVersion::V0_2,
        run_as: None,
        env: Env {
            exported_variables: exported,
            ..Env::default()
        },
        proxy: None,
        batch: None,
        phases: Phases {
            install: None,
            pre_build: None,
            build: Some(Phase {
                run_as: None,
                on_failure: OnFailure::Abort,
                runtime_versions: Vec::new(),
                commands: commands
                    .into_iter()
                    .enumerate()
                    .map(|(i, text)| Command {
                        text,
                        line: i as u32 + 1,
                    })
                    .collect(),
                finally: Vec::new(),
            }),
            post_build: None,
        },
        reports: Vec::new(),
        artifacts: None,
        cache: None,
    }
}

fn failed_summary(report: &codebuild_local::BuildReport, what: &str) -> String {
    let cmd = report
        .phases
        .iter()
        .find_map(|p| p.failed_command.clone())
        .map(|(c, code)| format!(": `{c}` exited with {code}"))
        .unwrap_or_default();
    match report.status {
        Status::TimedOut => format!("{what} timed out{cmd}"),
        Status::Stopped => format!("{what} stopped"),
        _ => format!("{what} failed{cmd}"),
    }
}

impl Provider for LambdaCommand {
    fn run(&self, mut ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(async move {
            let name = ctx
                .action
                .configuration
                .get("FunctionName")
                .cloned()
                .unwrap_or_default();
            let Some(f) = ctx.workspace.functions.get(&name).cloned() else {
                let msg = format!(
                    "no local command is mapped for Lambda function `{name}`: add \
                     [functions.\"{name}\"] command = \"...\" to {}",
                    ctx.workspace.root.join("pipedeck.toml").display()
                );
                ctx.log.line(&format!("[Lambda] {msg}"));
                return ActionOutcome::failed("ConfigurationError", msg);
            };
            let dir = match ctx.inputs.first() {
                Some(i) => i.dir.clone(),
                None => ctx.work_dir.join("function"),
            };
            let _ = tokio::fs::create_dir_all(&dir).await;
            let vars_file = ctx.work_dir.join("output-variables");
            let req = BuildRequest {
                spec: spec(
                    vec![workspace_relative(&f.command, &ctx.workspace.root)],
                    Vec::new(),
                ),
                src_dir: dir,
                secondary_sources: ctx
                    .inputs
                    .iter()
                    .skip(1)
                    .map(|i| (i.name.clone(), i.dir.clone()))
                    .collect(),
                builtins: vec![
                    ("AWS_LAMBDA_FUNCTION_NAME".into(), name.clone()),
                    (
                        "PIPEDECK_USER_PARAMETERS".into(),
                        ctx.action
                            .configuration
                            .get("UserParameters")
                            .cloned()
                            .unwrap_or_default(),
                    ),
                    (
                        "PIPEDECK_OUTPUT_VARIABLES".into(),
                        vars_file.to_string_lossy().into_owned(),
                    ),
                    (
                        "CODEPIPELINE_JOB_ID".into(),
                        ctx.action_execution_id.clone(),
                    ),
                ],
                overrides: Vec::new(),
                secrets: Vec::new(),
                timeout: Some(ctx.remaining()),
                pgid_file: Some(ctx.work_dir.with_file_name("pgid")),
            };
            ctx.log
                .line(&format!("[Lambda] invoking {name} as `{}`", f.command));
            let report = match codebuild_local::run(&req, &mut *ctx.log, &mut ctx.stop).await {
                Ok(r) => r,
                Err(e) => return ActionOutcome::failed("JobFailed", e.to_string()),
            };
            if report.status != Status::Succeeded {
                return ActionOutcome::failed("JobFailed", failed_summary(&report, &name));
            }
            let mut vars = BTreeMap::new();
            if let Ok(text) = tokio::fs::read_to_string(&vars_file).await {
                for line in text.lines() {
                    if let Some((k, v)) = line.split_once('=') {
                        vars.insert(k.trim().to_owned(), v.to_owned());
                    }
                }
            }
            ActionOutcome {
                summary: Some(format!("{name} succeeded")),
                external_execution_id: Some(ctx.action_execution_id.clone()),
                output_variables: vars,
                ..ActionOutcome::succeeded()
            }
        })
    }
}

impl Provider for Commands {
    fn run(&self, mut ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(async move {
            if ctx.action.commands.is_empty() {
                return ActionOutcome::failed(
                    "ConfigurationError",
                    "a Commands action needs `commands`",
                );
            }
            let dir = match ctx.inputs.first() {
                Some(i) => i.dir.clone(),
                None => ctx.work_dir.join("src"),
            };
            let _ = tokio::fs::create_dir_all(&dir).await;
            let req = BuildRequest {
                spec: spec(
                    ctx.action.commands.clone(),
                    ctx.action.output_variables.clone(),
                ),
                src_dir: dir.clone(),
                secondary_sources: ctx
                    .inputs
                    .iter()
                    .skip(1)
                    .map(|i| (i.name.clone(), i.dir.clone()))
                    .collect(),
                builtins: vec![(
                    "CODEBUILD_BUILD_ID".into(),
                    format!("commands:{}", ctx.action_execution_id),
                )],
                overrides: Vec::new(),
                secrets: Vec::new(),
                timeout: Some(ctx.remaining()),
                pgid_file: Some(ctx.work_dir.with_file_name("pgid")),
            };
            let report = match codebuild_local::run(&req, &mut *ctx.log, &mut ctx.stop).await {
                Ok(r) => r,
                Err(e) => return ActionOutcome::failed("JobFailed", e.to_string()),
            };
            if report.status != Status::Succeeded {
                return ActionOutcome::failed("JobFailed", failed_summary(&report, "Commands"));
            }
            ActionOutcome {
                status: OutcomeStatus::Succeeded,
                summary: Some(format!(
                    "{} command(s) succeeded",
                    ctx.action.commands.len()
                )),
                external_execution_id: Some(ctx.action_execution_id.clone()),
                output_variables: report.exported.into_iter().collect(),
                output_artifacts: ctx
                    .action
                    .output_artifacts
                    .iter()
                    .map(|n| (n.clone(), dir.clone()))
                    .collect(),
                ..ActionOutcome::succeeded()
            }
        })
    }
}

/// A `[functions]` command that starts with a relative path
/// (`./scripts/deploy.sh`, `scripts/x`) names a file of the workspace, as a
/// user writing pipedeck.toml means: it runs by its absolute path (in the
/// artifact's folder, as before). Anything else is left to the shell.
fn workspace_relative(command: &str, root: &std::path::Path) -> String {
    let trimmed = command.trim_start();
    let first = trimmed.split_whitespace().next().unwrap_or("");
    if first.is_empty() || first.starts_with('/') || !first.contains('/') {
        return command.to_owned();
    }
    let path = root.join(first);
    if !path.exists() {
        return command.to_owned();
    }
    let rest = &trimmed[first.len()..];
    let p = path.to_string_lossy();
    format!("'{}'{rest}", p.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::workspace_relative;

    #[test]
    fn a_relative_command_is_resolved_against_the_workspace() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("scripts")).unwrap();
        std::fs::write(d.path().join("scripts/deploy.sh"), "echo hi").unwrap();
        let got = workspace_relative("./scripts/deploy.sh --fast", d.path());
        assert_eq!(
            got,
            format!(
                "'{}' --fast",
                d.path().join("./scripts/deploy.sh").display()
            )
        );
        assert_eq!(workspace_relative("echo ./x", d.path()), "echo ./x");
        assert_eq!(workspace_relative("./missing.sh", d.path()), "./missing.sh");
    }
}
