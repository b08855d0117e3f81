//! What a local environment is declared with and reports: its settings,
//! the hooks of a revision, a deployment's state and a group's health.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::env::router::Color;

/// How an environment is declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvConfig {
    pub name: String,
    /// The stable front port (0: any free port, for tests).
    pub port: u16,
    /// The test listener's port for blue/green (0: any free port).
    pub test_port: Option<u16>,
    pub replicas: u32,
    /// Run in the revision's directory with `$PORT` set (bash).
    pub command: String,
    pub health_path: String,
    pub health_interval: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// Alarms: 5xx percent and p99 over `alarm_window`.
    pub max_error_rate: Option<f64>,
    pub max_p99: Option<Duration>,
    pub alarm_window: Duration,
    /// `AllAtOnce`, a CodeDeploy canary / linear name, or `BlueGreen`.
    pub strategy: String,
    pub rollback_on_failure: bool,
    pub rollback_on_alarm: bool,
    /// Blue/green: how long the old group stays up after the shift.
    pub termination_wait: Duration,
    /// Multiplies CodeDeploy's waits (1/60: minutes become seconds).
    pub time_scale: f64,
    /// How long new replicas may take to become healthy.
    pub ready_timeout: Duration,
    /// Requests per second the environment sends to its own front port
    /// (`GET /`), so alarms have traffic to judge on a quiet machine.
    pub synthetic_rps: u32,
    /// The router's idle timeout.
    pub idle_timeout: Duration,
    /// How long a group that lost its traffic may finish the requests it
    /// is answering before its replicas are stopped (an ALB target group's
    /// deregistration delay).
    pub deregistration_delay: Duration,
}

/// Hooks from the revision's `appspec.yml` (commands run in the revision).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    pub before_install: Vec<String>,
    pub after_install: Vec<String>,
    pub after_allow_test_traffic: Vec<String>,
    pub before_allow_traffic: Vec<String>,
    pub after_allow_traffic: Vec<String>,
}

pub use crate::api::env::{DeploymentProgress, DeploymentStatus, EnvEvent};

/// A deployment as the environment tracks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentState {
    pub id: String,
    pub revision: String,
    pub status: DeploymentStatus,
    /// Lifecycle step: `BeforeInstall`, `Install`, `AfterInstall`,
    /// `AllowTestTraffic`, `AfterAllowTestTraffic`, `BeforeAllowTraffic`,
    /// `AllowTraffic`, `AfterAllowTraffic`, `TerminationWait`, `Done`.
    pub step: String,
    pub new_color: Color,
    /// Percent of production traffic on the new revision.
    pub traffic_percent: u32,
    /// When the next traffic step happens (blue/green: when blue goes).
    pub next_step_at: Option<SystemTime>,
    pub reason: Option<String>,
    pub hooks_run: Vec<String>,
}

impl DeploymentState {
    /// As every kind of environment reports a deployment.
    pub fn progress(&self) -> DeploymentProgress {
        DeploymentProgress {
            id: self.id.clone(),
            revision: self.revision.clone(),
            status: self.status,
            step: self.step.clone(),
            new_variant: self.new_color.as_str().to_owned(),
            traffic_percent: self.traffic_percent,
            next_step_at: self.next_step_at,
            reason: self.reason.clone(),
            hooks_run: self.hooks_run.clone(),
        }
    }
}

/// A group as shown: revision, replicas healthy / total, restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub revision: String,
    pub healthy: u32,
    pub total: u32,
    pub restarts: u32,
}
