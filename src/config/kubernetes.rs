//! `[environments.NAME]` with `kind = "kubernetes"`: its keys, their
//! defaults and the rules a spec that parsed must still keep (each error
//! names its key, so the workspace reader can point at it).

use std::path::PathBuf;

use serde::Deserialize;

/// `kind = "kubernetes"`: a Deployment (or a blue/green pair of them, or a
/// stable / canary pair) in one namespace of the cluster a kubeconfig
/// context names.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSpec {
    /// The kubeconfig context (its cluster and user).
    pub context: String,
    /// The kubeconfig file; `$KUBECONFIG` or `~/.kube/config` otherwise.
    pub kubeconfig: Option<PathBuf>,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The Deployment's name; for `BlueGreen` the pair is `NAME-blue` and
    /// `NAME-green`, for `Canary` `NAME` (stable) and `NAME-canary`.
    pub workload: Option<String>,
    /// Or a label selector (`app=web`) picking the Deployments.
    pub selector: Option<String>,
    /// `RollingUpdate`, `BlueGreen` or `Canary` (by replica ratio).
    #[serde(default = "rolling_update")]
    pub strategy: String,
    /// Canary: the canary's share of the replicas at each step, in percent,
    /// increasing; after the last step the release is promoted to the
    /// stable Deployment (a last step of 100 says so explicitly).
    #[serde(default = "canary_steps")]
    pub canary_steps: Vec<u32>,
    /// Canary: how long each step below 100% runs (alarms watched) before
    /// the next.
    #[serde(default = "canary_interval")]
    pub canary_interval_seconds: u64,
    /// BlueGreen: the Service whose selector names the live slot. Canary:
    /// the Service selecting both Deployments (checked before a deploy).
    pub service: Option<String>,
    /// BlueGreen: the pod label that tells the slots apart.
    #[serde(default = "slot_label")]
    pub slot_label: String,
    /// The container whose image a release sets (the first otherwise).
    pub container: Option<String>,
    /// The image repository a release's revision is the tag of
    /// (`repo:REVISION`); the container's current repository otherwise.
    pub image: Option<String>,
    /// DEPLOYMENT_FAILURE (a rollout that fails or crash-loops) and
    /// DEPLOYMENT_STOP_ON_ALARM (an alarm fires) roll back.
    #[serde(default)]
    pub auto_rollback: Vec<String>,
    /// Restarts of a new pod that count as a failed rollout.
    #[serde(default = "crashloop_restarts")]
    pub crashloop_restarts: u32,
    /// How long a deploy waits for its rollout (kubectl's progress deadline
    /// still decides first).
    #[serde(default = "rollout_timeout")]
    pub rollout_timeout_seconds: u64,
    /// BlueGreen: how long the old slot stays up after the flip.
    #[serde(default)]
    pub termination_wait_seconds: u64,
    /// Alarm when more than this percent of the new pods' answers are 5xx
    /// (the same alarms as a local environment's).
    pub alarm_5xx_percent: Option<f64>,
    /// Alarm when the new pods' p99 latency exceeds this.
    pub alarm_p99_ms: Option<u64>,
    #[serde(default = "alarm_window")]
    pub alarm_window_seconds: u64,
    /// With an alarm: the path the new pods are probed on, through the API
    /// server's pod proxy.
    #[serde(default = "probe_path")]
    pub probe_path: String,
    /// The pods' port for the probes (the container's first port otherwise).
    pub probe_port: Option<u16>,
    /// Probe requests per second.
    #[serde(default = "probe_rps")]
    pub probe_rps: u32,
    /// The Flux objects that reconcile it (`Kustomization/flux-system/apps`,
    /// `HelmRelease/shop/web`, `GitRepository/flux-system/shop`, any of
    /// the six kinds); all in the namespace when absent.
    #[serde(default)]
    pub flux: Vec<String>,
}

/// The `auto_rollback` events a kubernetes environment knows.
pub const ROLLBACK_EVENTS: [&str; 2] = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"];

impl KubernetesSpec {
    /// Whether `auto_rollback` names `event`.
    pub fn rolls_back_on(&self, event: &str) -> bool {
        self.auto_rollback.iter().any(|x| x == event)
    }

    /// Whether an alarm is defined.
    pub fn has_alarm(&self) -> bool {
        self.alarm_5xx_percent.is_some() || self.alarm_p99_ms.is_some()
    }

    /// What is wrong with a spec that parsed: (key, message).
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        const STRATEGIES: [&str; 3] = ["RollingUpdate", "BlueGreen", "Canary"];
        if !STRATEGIES.contains(&self.strategy.as_str()) {
            return Err((
                "strategy",
                format!(
                    "unknown strategy `{}`; one of {}",
                    self.strategy,
                    STRATEGIES.join(", ")
                ),
            ));
        }
        if self.workload.is_none() && self.selector.is_none() {
            return Err((
                "",
                "needs `workload` (a Deployment name) or `selector` (a label selector)".into(),
            ));
        }
        if self.strategy == "BlueGreen" && self.service.is_none() {
            return Err((
                "strategy",
                "strategy `BlueGreen` needs `service`, the Service whose selector names the live \
                 slot"
                    .into(),
            ));
        }
        for (strategy, pair) in [
            ("BlueGreen", "WORKLOAD-blue and WORKLOAD-green"),
            ("Canary", "WORKLOAD (stable) and WORKLOAD-canary"),
        ] {
            if self.strategy == strategy && self.workload.is_none() {
                return Err((
                    "strategy",
                    format!("strategy `{strategy}` needs `workload` (the pair is {pair})"),
                ));
            }
        }
        if self.canary_steps.is_empty() {
            return Err((
                "canary_steps",
                "needs at least one step (percent of the replicas, e.g. [10, 50, 100])".into(),
            ));
        }
        for w in self.canary_steps.windows(2) {
            if w[1] <= w[0] {
                return Err((
                    "canary_steps",
                    format!("steps must increase ({} then {})", w[0], w[1]),
                ));
            }
        }
        if let Some(s) = self.canary_steps.iter().find(|s| !(1..=100).contains(*s)) {
            return Err((
                "canary_steps",
                format!("step {s}: a step is a percent between 1 and 100"),
            ));
        }
        for x in &self.auto_rollback {
            if !ROLLBACK_EVENTS.contains(&x.as_str()) {
                return Err((
                    "auto_rollback",
                    format!(
                        "unknown event `{x}`; kubernetes environments know {}",
                        ROLLBACK_EVENTS.join(", ")
                    ),
                ));
            }
        }
        if self.rolls_back_on("DEPLOYMENT_STOP_ON_ALARM") && !self.has_alarm() {
            return Err((
                "auto_rollback",
                "DEPLOYMENT_STOP_ON_ALARM needs an alarm: `alarm_5xx_percent` or `alarm_p99_ms`"
                    .into(),
            ));
        }
        if !self.probe_path.starts_with('/') {
            return Err(("probe_path", "must start with `/`".into()));
        }
        if self.has_alarm() && !(1..=100).contains(&self.probe_rps) {
            return Err(("probe_rps", "must be between 1 and 100".into()));
        }
        for f in &self.flux {
            let parts: Vec<&str> = f.split('/').collect();
            if !matches!(parts.as_slice(), [k, ns, n]
                if crate::api::env::FLUX_KINDS.contains(k) && !ns.is_empty() && !n.is_empty())
            {
                return Err((
                    "flux",
                    format!(
                        "`{f}`: name a Flux object as KIND/NAMESPACE/NAME, KIND one of {}",
                        crate::api::env::FLUX_KINDS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn default_namespace() -> String {
    "default".into()
}
fn rolling_update() -> String {
    "RollingUpdate".into()
}
fn slot_label() -> String {
    "slot".into()
}
fn crashloop_restarts() -> u32 {
    3
}
fn rollout_timeout() -> u64 {
    600
}
fn canary_steps() -> Vec<u32> {
    vec![10, 50, 100]
}
fn canary_interval() -> u64 {
    60
}
fn alarm_window() -> u64 {
    10
}
fn probe_path() -> String {
    "/".into()
}
fn probe_rps() -> u32 {
    5
}

#[cfg(test)]
mod tests {
    use super::KubernetesSpec;

    fn check(extra: &str) -> Result<(), (&'static str, String)> {
        let spec: KubernetesSpec =
            toml::from_str(&format!("context = \"c\"\nworkload = \"web\"\n{extra}"))
                .unwrap_or_else(|e| panic!("{e}"));
        spec.check()
    }

    #[test]
    fn canary_steps_and_alarm_rollbacks_are_checked_by_key() {
        assert_eq!(check("strategy = \"Canary\""), Ok(()));
        assert_eq!(
            check("canary_steps = [50, 10]"),
            Err(("canary_steps", "steps must increase (50 then 10)".into()))
        );
        assert_eq!(
            check("canary_steps = [0, 10]").map_err(|e| e.0),
            Err("canary_steps")
        );
        assert_eq!(
            check("canary_steps = []").map_err(|e| e.0),
            Err("canary_steps")
        );
        assert_eq!(
            check("auto_rollback = [\"DEPLOYMENT_STOP_ON_ALARM\"]"),
            Err((
                "auto_rollback",
                "DEPLOYMENT_STOP_ON_ALARM needs an alarm: `alarm_5xx_percent` or `alarm_p99_ms`"
                    .into()
            ))
        );
        assert_eq!(
            check("auto_rollback = [\"DEPLOYMENT_STOP_ON_ALARM\"]\nalarm_5xx_percent = 5.0"),
            Ok(())
        );
        assert_eq!(
            check("alarm_p99_ms = 300\nprobe_path = \"health\"").map_err(|e| e.0),
            Err("probe_path")
        );
        assert_eq!(
            check("auto_rollback = [\"ON_ALARM\"]"),
            Err((
                "auto_rollback",
                "unknown event `ON_ALARM`; kubernetes environments know DEPLOYMENT_FAILURE, \
                 DEPLOYMENT_STOP_ON_ALARM"
                    .into()
            ))
        );
    }
}
