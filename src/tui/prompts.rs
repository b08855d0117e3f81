//! What a key asks before it acts, and the answers that decide it: the
//! environment rollback prompt (naming the release it goes back to), `y`
//! (copy an id), `r` on a failed stage whose branch has moved on, and the
//! commits an approval lets through.

use crate::api::ApiError;
use crate::api::types::{CommitRange, SourceCommits};
use crate::tui::app::modals::{Modal, Pending, retry};
use crate::tui::app::screens::approvals::Commits;
use crate::tui::app::{App, Effect};

/// `r` on a failed stage asked the backend for the commits between the
/// execution's revision and its branch's head: newer ones make it ask
/// whether to release them instead; none (or no answer) retries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryCheck {
    pub pipeline: String,
    pub stage: String,
    pub retry_mode: String,
    pub execution: String,
}

impl App {
    /// `b` on an environment (and `:rollback ENV`): the confirmation, or
    /// why there is nothing to go back to.
    pub(crate) fn ask_rollback_env(&mut self, env: String) {
        let nothing = self
            .snap
            .envs
            .iter()
            .find(|e| e.name == env)
            .is_some_and(|e| e.rollback_revision().is_none() && e.kind == "local");
        if nothing {
            self.toast(
                format!("{env} has no earlier successful release to roll back to"),
                true,
            );
        } else {
            self.confirm(Pending::RollbackEnv { env });
        }
    }

    /// `f` (reconcile) / `z` (suspend or resume) on the selected Flux
    /// object of an environment: the confirmation, or why not.
    pub(crate) fn ask_flux(
        &mut self,
        env: String,
        object: Option<&crate::api::env::FluxObject>,
        reconcile: bool,
    ) {
        use crate::api::FluxOperation as F;
        let Some(sync) = object else {
            self.toast(
                format!("{env} shows no Flux object (not a kubernetes environment, or Flux is not installed in its cluster)"),
                true,
            );
            return;
        };
        let operation = match (reconcile, sync.suspended) {
            (true, true) => {
                self.toast(
                    format!("{} is suspended: resume it first (z)", sync.id()),
                    true,
                );
                return;
            }
            (true, false) => F::Reconcile,
            (false, true) => F::Resume,
            (false, false) => F::Suspend,
        };
        self.confirm(Pending::Flux {
            env,
            object: sync.id(),
            operation,
        });
    }

    /// The rollback prompt names the release it goes back to.
    pub(crate) fn rollback_env_text(&self, env: &str) -> String {
        let Some(e) = self.snap.envs.iter().find(|e| e.name == env) else {
            return format!("Roll back environment {env}?");
        };
        let live = e.live_revision().unwrap_or("nothing");
        let deploying = e.deployment.as_ref().filter(|d| {
            matches!(
                d.status,
                crate::api::env::DeploymentStatus::InProgress
                    | crate::api::env::DeploymentStatus::Baking
            )
        });
        match (deploying, e.rollback_revision()) {
            (Some(d), Some(back)) => format!(
                "Roll back environment {env} to release {back}? Deployment {} of {} stops \
                 and traffic flips back to {back}.",
                d.id, d.revision
            ),
            (Some(d), None) => format!(
                "Roll back environment {env}? Deployment {} of {} stops and traffic flips back.",
                d.id, d.revision
            ),
            (None, Some(back)) => format!(
                "Roll back environment {env} to release {back}? It is deployed again in place \
                 of {live}."
            ),
            (None, None) => format!(
                "Roll back environment {env} (live {live}) to its previous release, as its \
                 backend keeps it?"
            ),
        }
    }

    /// `y`: the id on the terminal's clipboard (OSC 52), or why not.
    pub(crate) fn copy(&mut self, id: Option<String>, none: &str) -> Vec<Effect> {
        match id.filter(|i| !i.is_empty()) {
            Some(id) => {
                self.toast(format!("copied {id}"), false);
                vec![Effect::Copy(id)]
            }
            None => {
                self.toast(none, true);
                Vec::new()
            }
        }
    }

    /// `r` / `R` on a stage: a newer commit a later execution carries asks
    /// at once; otherwise the backend is asked for the branch's head first
    /// (the answer, `on_commits`, asks or retries).
    pub(crate) fn ask_retry(
        &mut self,
        pipeline: String,
        stage: String,
        retry_mode: String,
    ) -> Vec<Effect> {
        if let Some((revision, newer)) = self.newer_revision(self.sel_stage) {
            self.confirm(Pending::Release {
                pipeline,
                stage,
                retry_mode,
                revision,
                newer,
            });
            return Vec::new();
        }
        let failed = self
            .state()
            .and_then(|s| s.stage_states.iter().find(|x| x.stage_name == stage))
            .and_then(|s| s.latest_execution.as_ref())
            .filter(|l| l.status == crate::api::types::StageStatus::Failed)
            .map(|l| l.pipeline_execution_id.clone());
        match failed {
            Some(execution) => {
                self.retry_check = Some(RetryCheck {
                    pipeline: pipeline.clone(),
                    stage,
                    retry_mode,
                    execution: execution.clone(),
                });
                vec![Effect::Commits {
                    pipeline,
                    execution,
                    range: CommitRange::ToBranchHead,
                }]
            }
            None => vec![retry(pipeline, stage, retry_mode)],
        }
    }

    /// Commits came back: into the approval modal, or to decide a retry.
    pub(crate) fn on_commits(
        &mut self,
        execution: String,
        range: CommitRange,
        result: Result<SourceCommits, ApiError>,
    ) -> Vec<Effect> {
        match range {
            CommitRange::SinceLive { .. } => {
                if let Some(Modal::Approve(a)) = &mut self.modal
                    && a.execution == execution
                {
                    a.commits = match result {
                        Ok(c) => Commits::Loaded(c),
                        Err(e) => Commits::Unavailable(e.message),
                    };
                }
                Vec::new()
            }
            CommitRange::ToBranchHead => {
                let Some(check) = self.retry_check.take_if(|c| c.execution == execution) else {
                    return Vec::new();
                };
                match result {
                    Ok(c) if !c.commits.is_empty() => {
                        let newer = c.commits[0].commit_id.clone();
                        let revision = c.from.clone().unwrap_or_default();
                        self.confirm(Pending::Release {
                            pipeline: check.pipeline,
                            stage: check.stage,
                            retry_mode: check.retry_mode,
                            revision,
                            newer,
                        });
                        Vec::new()
                    }
                    Ok(_) => vec![retry(check.pipeline, check.stage, check.retry_mode)],
                    Err(e) => {
                        // Not knowing the branch must not stop a retry; say why.
                        if e.code != "UnsupportedOperation" {
                            self.toast(
                                format!(
                                    "retrying without checking the branch for newer commits: {}",
                                    e.message
                                ),
                                false,
                            );
                        }
                        vec![retry(check.pipeline, check.stage, check.retry_mode)]
                    }
                }
            }
        }
    }
}
