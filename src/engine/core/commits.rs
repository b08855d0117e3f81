//! `ListSourceCommits`: the commits of an execution's source repository
//! over a range, read with `git log` on a blocking task (never on the
//! actor). The actor only works out the range: the execution's revision,
//! its repository and branch, and for an approval the release live in the
//! environment the pipeline deploys to next.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::sync::oneshot;

use super::{Engine, api};
use crate::api::types::{CommitRange, SourceCommit, SourceCommits};
use crate::api::{ApiError, Envelope, Reply, Request};

/// What the blocking task needs.
struct Range {
    action: String,
    repo: PathBuf,
    /// Excluded; `None`: from the root.
    from: Option<String>,
    /// A commit or a branch name.
    to: String,
    environment: Option<String>,
    limit: usize,
}

impl Engine {
    pub(super) fn source_commits(
        &mut self,
        env: Envelope,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    ) {
        match self.commit_range(&env.request) {
            Ok(range) => {
                tokio::task::spawn_blocking(move || {
                    let _ =
                        reply.send(git_log(&range).map(|commits| Reply::SourceCommits { commits }));
                });
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn commit_range(&self, request: &Request) -> Result<Range, ApiError> {
        let Request::ListSourceCommits {
            pipeline_name,
            pipeline_execution_id,
            range,
            max_results,
        } = request
        else {
            return Err(api("InternalError", "not a ListSourceCommits request"));
        };
        let exec = self.exec_of(pipeline_name, pipeline_execution_id)?;
        let def = &self.pipeline(pipeline_name)?.def.pipeline;
        let Some(rev) = exec.summary.source_revisions.first() else {
            return Err(api(
                "SourceRevisionNotFound",
                format!("execution {pipeline_execution_id} has no source revision yet"),
            ));
        };
        let source = def
            .stages
            .iter()
            .flat_map(|s| &s.actions)
            .find(|a| a.name == rev.action_name);
        let repo = source
            .and_then(|a| self.ws.repository_for(&a.configuration))
            .ok_or_else(|| {
                api(
                    "RepositoryNotFound",
                    format!(
                        "source action {} is not mapped to a local git repository \
                         ([repositories.NAME] in pipedeck.toml)",
                        rev.action_name
                    ),
                )
            })?;
        let limit = max_results.unwrap_or(50).clamp(1, 500) as usize;
        let (from, to, environment) = match range {
            CommitRange::ToBranchHead => {
                let branch = source
                    .and_then(|a| a.configuration.get("BranchName").cloned())
                    .or(repo.branch.clone())
                    .unwrap_or_else(|| "main".into());
                (Some(rev.revision_id.clone()), branch, None)
            }
            CommitRange::SinceLive { stage_name } => {
                let (environment, live) = self.live_after(def, stage_name)?;
                (live, rev.revision_id.clone(), Some(environment))
            }
        };
        Ok(Range {
            action: rev.action_name.clone(),
            repo: repo.path,
            from,
            to,
            environment,
            limit,
        })
    }

    /// The environment the first Deploy action at or after `stage` lands
    /// in, and the revision live there (`None`: nothing yet).
    fn live_after(
        &self,
        def: &crate::model::pipeline::Pipeline,
        stage: &str,
    ) -> Result<(String, Option<String>), ApiError> {
        let at = def
            .stages
            .iter()
            .position(|s| s.name == stage)
            .ok_or_else(|| api("StageNotFound", format!("no stage `{stage}`")))?;
        let mapped = def.stages[at..]
            .iter()
            .flat_map(|s| {
                let mut acts: Vec<_> = s.actions.iter().collect();
                acts.sort_by_key(|a| a.run_order);
                acts
            })
            .find_map(|a| {
                self.ws
                    .environments
                    .iter()
                    .find(|(_, e)| e.actions.contains(&a.name))
                    .map(|(n, _)| n.clone())
            })
            .ok_or_else(|| {
                api(
                    "EnvironmentNotFound",
                    format!(
                        "no Deploy action at or after stage {stage} is mapped to an environment"
                    ),
                )
            })?;
        let live = match self.envs.get() {
            Some(Ok(envs)) => envs
                .summaries(&self.ws)
                .into_iter()
                .find(|e| e.name == mapped)
                .and_then(|e| e.live_revision().map(str::to_owned)),
            Some(Err(e)) => return Err(api("EnvironmentsUnavailable", e.clone())),
            None => None,
        };
        Ok((mapped, live))
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    let o = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_owned())
    }
}

/// `git log FROM..TO`, newest first, one more than the limit to tell a cut.
fn git_log(r: &Range) -> Result<SourceCommits, ApiError> {
    let resolve = |what: &str| {
        git(
            &r.repo,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{what}^{{commit}}"),
            ],
        )
        .map(|s| s.trim().to_owned())
        .map_err(|_| {
            api(
                "RevisionNotFound",
                format!("{} has no commit `{what}`", r.repo.display()),
            )
        })
    };
    let to = resolve(&r.to)?;
    let from = r.from.as_deref().map(resolve).transpose()?;
    let spec = match &from {
        Some(f) => format!("{f}..{to}"),
        None => to.clone(),
    };
    let n = format!("-n{}", r.limit + 1);
    let out = git(
        &r.repo,
        &["log", &n, "--format=%H%x1f%an%x1f%aI%x1f%s", &spec, "--"],
    )
    .map_err(|e| api("GitFailed", format!("git log {spec}: {e}")))?;
    let mut commits: Vec<SourceCommit> = out
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\u{1f}');
            Some(SourceCommit {
                commit_id: f.next()?.to_owned(),
                author: f.next()?.to_owned(),
                date: f.next()?.to_owned(),
                message: f.next().unwrap_or("").to_owned(),
            })
        })
        .collect();
    let truncated = commits.len() > r.limit;
    commits.truncate(r.limit);
    Ok(SourceCommits {
        action_name: r.action.clone(),
        from,
        to,
        environment: r.environment.clone(),
        commits,
        truncated,
    })
}
