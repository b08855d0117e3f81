//! Git source actions (CodeCommit, CodeStarSourceConnection, GitHub,
//! Bitbucket) read from a local repository the workspace maps. The output
//! artifact is the commit's tree (or, with `OutputArtifactFormat =
//! CODEBUILD_CLONE_REF`, a full clone checked out at the commit); the
//! output variables are the ones AWS names for the provider.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use super::{ActionContext, ActionOutcome, BoxFuture, Provider};
use crate::api::types::SourceRevision;

pub struct GitSource;

impl Provider for GitSource {
    fn run(&self, ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(run(ctx))
    }
}

async fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

async fn run(mut ctx: ActionContext) -> ActionOutcome {
    let cfg = &ctx.action.configuration;
    let name = cfg
        .get("RepositoryName")
        .or_else(|| cfg.get("FullRepositoryId"))
        .or_else(|| cfg.get("Repo"))
        .cloned()
        .unwrap_or_default();
    let Some(repo) = ctx.workspace.repository_for(cfg) else {
        return ActionOutcome::failed(
            "ConfigurationError",
            format!(
                "no local git repository is mapped for repository `{name}`: add \
                 [repositories.\"{name}\"] with path = \"...\" to {}",
                ctx.workspace.root.join("pipedeck.toml").display()
            ),
        );
    };
    let branch = cfg
        .get("BranchName")
        .cloned()
        .or(repo.branch.clone())
        .unwrap_or_else(|| "main".into());
    let wanted = ctx
        .source_revision
        .clone()
        .unwrap_or_else(|| format!("refs/heads/{branch}"));
    ctx.log.line(&format!(
        "[Source] {} {name}: resolving {wanted} in {}",
        ctx.action.provider(),
        repo.path.display()
    ));
    let commit = match git(
        &repo.path,
        &["rev-parse", "--verify", &format!("{wanted}^{{commit}}")],
    )
    .await
    {
        Ok(c) => c.trim().to_owned(),
        Err(e) => {
            ctx.log.line(&format!("[Source] {e}"));
            return ActionOutcome::failed(
                "JobFailed",
                format!(
                    "cannot resolve {wanted} in {}: is the branch `{branch}` there?",
                    repo.path.display()
                ),
            );
        }
    };
    let meta = match git(
        &repo.path,
        &[
            "log",
            "-1",
            "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
            "--format=%an%n%ae%n%ad%n%cd%n%B",
            &commit,
        ],
    )
    .await
    {
        Ok(m) => m,
        Err(e) => return ActionOutcome::failed("JobFailed", e),
    };
    let mut lines = meta.lines();
    let author = lines.next().unwrap_or_default().to_owned();
    let email = lines.next().unwrap_or_default().to_owned();
    let author_date = lines.next().unwrap_or_default().to_owned();
    let committer_date = lines.next().unwrap_or_default().to_owned();
    let message = lines.collect::<Vec<_>>().join("\n").trim().to_owned();
    let Some(out_name) = ctx.action.output_artifacts.first().cloned() else {
        return ActionOutcome::failed(
            "ConfigurationError",
            "a source action needs one output artifact",
        );
    };
    let dest = ctx.work_dir.join("artifact");
    let clone = cfg.get("OutputArtifactFormat").map(String::as_str) == Some("CODEBUILD_CLONE_REF");
    let result = if clone {
        let dest_s = dest.to_string_lossy().into_owned();
        let repo_s = repo.path.to_string_lossy().into_owned();
        match git(Path::new("."), &["clone", "--quiet", &repo_s, &dest_s]).await {
            Ok(_) => git(&dest, &["checkout", "--quiet", &commit])
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    } else {
        extract(&repo.path, &commit, &dest).await
    };
    if let Err(e) = result {
        ctx.log.line(&format!("[Source] {e}"));
        return ActionOutcome::failed("JobFailed", format!("cannot check out {commit}: {e}"));
    }
    let first_line = message.lines().next().unwrap_or_default().to_owned();
    ctx.log.line(&format!(
        "[Source] {} {} by {author} <{email}> on {author_date}: {first_line}",
        &commit[..commit.len().min(12)],
        branch
    ));
    ctx.log.line(&format!("[Source] artifact {out_name} ready"));
    let mut vars = BTreeMap::new();
    vars.insert("CommitId".into(), commit.clone());
    vars.insert("CommitMessage".into(), message.clone());
    vars.insert("BranchName".into(), branch.clone());
    vars.insert("AuthorDate".into(), author_date);
    match ctx.action.provider() {
        "CodeCommit" => {
            vars.insert("RepositoryName".into(), name.clone());
            vars.insert("CommitterDate".into(), committer_date);
        }
        _ => {
            vars.insert("FullRepositoryName".into(), name.clone());
            if let Some(c) = cfg.get("ConnectionArn") {
                vars.insert("ConnectionArn".into(), c.clone());
            }
        }
    }
    ActionOutcome {
        summary: Some(first_line.clone()),
        external_execution_id: Some(commit.clone()),
        output_artifacts: vec![(out_name, dest)],
        output_variables: vars,
        source_revision: Some(SourceRevision {
            action_name: ctx.action.name.clone(),
            revision_id: commit,
            revision_summary: Some(first_line),
            revision_url: None,
        }),
        ..ActionOutcome::succeeded()
    }
}

/// `git archive COMMIT | tar -x -C DEST`.
async fn extract(repo: &Path, commit: &str, dest: &Path) -> Result<(), String> {
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    let out = tokio::process::Command::new("bash")
        .args([
            "-c",
            "set -o pipefail; git -C \"$1\" archive --format=tar \"$2\" | tar -x -C \"$3\"",
            "extract",
        ])
        .arg(repo)
        .arg(commit)
        .arg(dest)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run git archive: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
