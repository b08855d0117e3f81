//! The one interface every kind of environment implements: what it shows,
//! how a release is deployed to it (with its progress as a stream), how it
//! is rolled back, which logs it keeps, and how it goes down. The engine,
//! the Deploy provider and the `envs` views only see this; `local` (router
//! and processes, [`super::local`]) implements it today and `kubernetes`
//! (a Deployment or Argo Rollout, its ReplicaSets as variants) will.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use tokio::sync::{mpsc, watch};

use crate::api::env::{DeploymentProgress, DeploymentStatus, EnvEvent, EnvironmentSummary};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An environment, whatever runs it.
pub trait Environment: Send + Sync {
    /// Its name in the workspace (`[environments.NAME]`).
    fn name(&self) -> &str;

    /// `local`, later `kubernetes`.
    fn kind(&self) -> &'static str;

    /// What the TUI and `envs` show now.
    fn summary(&self) -> EnvironmentSummary;

    /// Starts deploying a release. Refused before anything changes (the
    /// revision cannot be staged, its appspec is wrong); otherwise the
    /// deployment runs on its own and reports on the returned stream.
    fn deploy(&self, release: ReleaseRequest) -> BoxFuture<'_, Result<Deployment, DeployError>>;

    /// Rolls back: the deployment in progress is stopped with traffic sent
    /// back, else the previous successful release comes back. The answer
    /// says what happened.
    fn rollback(&self) -> BoxFuture<'_, Result<String, String>>;

    /// The logs it keeps (a local environment: each replica's output).
    fn logs(&self) -> Vec<EnvLog>;

    /// `flux reconcile` / `suspend` / `resume` of one of its Flux objects
    /// (`Kustomization/NAME`, `HelmRelease/NAMESPACE/NAME`). Only
    /// environments a GitOps controller reconciles have them.
    fn flux(
        &self,
        operation: crate::api::FluxOperation,
        object: &str,
    ) -> BoxFuture<'_, Result<String, crate::api::ApiError>> {
        let message = format!(
            "environment {} is of kind {}: `flux {} {object}` needs a kubernetes environment",
            self.name(),
            self.kind(),
            operation.as_str()
        );
        Box::pin(async move { Err(crate::api::ApiError::new("UnsupportedOperation", message)) })
    }

    /// Goes down with pipedeck.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// A release to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRequest {
    /// The deployment's id (`d-1a2b3c4d`).
    pub id: String,
    /// The revision it deploys (a commit, an image tag).
    pub revision: String,
    /// The revision's files (the deploy action's input artifact); the
    /// environment copies what it keeps.
    pub source: PathBuf,
}

/// Why a deployment did not start, with the action error code it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployError {
    /// `ConfigurationError` (the release is wrong) or `JobFailed`.
    pub code: &'static str,
    pub message: String,
}

/// What a deployment reports while it runs, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployUpdate {
    /// Its step or traffic changed.
    Progress(DeploymentProgress),
    /// Something the environment recorded (health, alarm, hook, rollback).
    Event(EnvEvent),
    /// The last update: the final state (Succeeded, Failed or Stopped).
    Finished(DeploymentProgress),
}

/// A deployment that runs: follow [`Deployment::updates`] until
/// [`DeployUpdate::Finished`].
pub struct Deployment {
    pub updates: mpsc::UnboundedReceiver<DeployUpdate>,
    stop: watch::Sender<bool>,
}

impl Deployment {
    /// A deployment reporting on `updates`; `stop` is set by [`Self::stop`].
    pub fn new(updates: mpsc::UnboundedReceiver<DeployUpdate>, stop: watch::Sender<bool>) -> Self {
        Deployment { updates, stop }
    }

    /// Asks the environment to stop it (traffic goes back): it still ends
    /// with [`DeployUpdate::Finished`], as Stopped.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

/// Whether a deployment status is final.
pub fn is_terminal(s: DeploymentStatus) -> bool {
    matches!(
        s,
        DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped
    )
}

/// A log an environment keeps. `LogRef::Environment { environment_name,
/// file }` names it in a log read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvLog {
    /// The log's name in the environment (`dev-blue-0`).
    pub file: String,
    /// What it is (`blue replica 0`).
    pub label: String,
}
