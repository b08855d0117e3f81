//! Environments as every backend shows them: a local router with blue and
//! green groups, or a Kubernetes workload with its ReplicaSets, in one
//! shape. No host paths travel here.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// What the TUI and `envs` show for one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSummary {
    pub name: String,
    /// `local` or `kubernetes`.
    pub kind: String,
    /// Where it runs: a URL for a local environment, `context/namespace`
    /// for a cluster.
    pub location: String,
    /// The front URL when there is one (local environments).
    #[serde(default)]
    pub url: String,
    pub strategy: String,
    pub protected: bool,
    /// The variants that exist now (blue / green, or ReplicaSet revisions),
    /// in the backend's order.
    pub variants: Vec<Variant>,
    /// The live variant's label, `None` while traffic is split.
    pub live: Option<String>,
    /// The last successful release.
    pub release: Option<ReleaseInfo>,
    /// What a rollback outside a deployment deploys again (the release
    /// before `release`), where the backend knows it.
    #[serde(default)]
    pub rollback_target: Option<ReleaseInfo>,
    /// The Deploy actions (by name) that land here (`actions = [...]`).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Request metrics over the alarm window, where the backend measures them.
    pub metrics: Option<RequestMetrics>,
    /// The Flux objects in its cluster, where it is a kubernetes
    /// environment whose cluster has been read (`installed` empty: Flux is
    /// not installed there).
    #[serde(default)]
    pub flux: Option<FluxStatus>,
    pub deployment: Option<DeploymentProgress>,
    /// Newest first.
    pub events: Vec<EnvEvent>,
}

impl EnvironmentSummary {
    pub fn variant(&self, label: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.label == label)
    }

    /// Percent of traffic on `label`.
    pub fn weight_of(&self, label: &str) -> u32 {
        self.variant(label).map_or(0, |v| v.weight_percent)
    }

    /// The revision taking production traffic: the live variant's (during
    /// a blue/green termination wait that is the new one, while `release`
    /// still names the old), else the last successful release's.
    pub fn live_revision(&self) -> Option<&str> {
        self.live
            .as_deref()
            .and_then(|l| self.variant(l))
            .or_else(|| {
                self.variants
                    .iter()
                    .filter(|v| v.weight_percent > 0)
                    .max_by_key(|v| v.weight_percent)
            })
            .map(|v| v.revision.as_str())
            .filter(|r| !r.is_empty())
            .or(self.release.as_ref().map(|r| r.revision.as_str()))
    }

    /// What `RollbackEnvironment` goes back to: during a deployment, the
    /// variant traffic flips back to; otherwise the release before the last.
    pub fn rollback_revision(&self) -> Option<&str> {
        match &self.deployment {
            Some(d)
                if matches!(
                    d.status,
                    DeploymentStatus::InProgress | DeploymentStatus::Baking
                ) =>
            {
                self.variants
                    .iter()
                    .find(|v| v.label != d.new_variant)
                    .map(|v| v.revision.as_str())
            }
            _ => self.rollback_target.as_ref().map(|r| r.revision.as_str()),
        }
    }
}

/// Environments in promotion order: the order in which the pipelines'
/// Deploy actions reach them (dev, staging, prod), pipelines by name;
/// environments no action reaches keep their order, after the others.
pub fn promotion_order<'a>(
    envs: &mut [EnvironmentSummary],
    pipelines: impl IntoIterator<Item = &'a crate::model::pipeline::Pipeline>,
) {
    let mut order: Vec<String> = Vec::new();
    for p in pipelines {
        for a in p.stages.iter().flat_map(|s| {
            let mut acts: Vec<_> = s.actions.iter().collect();
            acts.sort_by_key(|a| a.run_order);
            acts
        }) {
            if let Some(e) = envs.iter().find(|e| e.actions.contains(&a.name))
                && !order.contains(&e.name)
            {
                order.push(e.name.clone());
            }
        }
    }
    envs.sort_by_key(|e| {
        order
            .iter()
            .position(|n| *n == e.name)
            .unwrap_or(usize::MAX)
    });
}

/// One version of the workload that runs side by side with others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    /// `blue` / `green`, or a ReplicaSet's revision.
    pub label: String,
    /// The release revision it runs (commit or image tag).
    pub revision: String,
    pub commit_message: Option<String>,
    pub ready: u32,
    pub total: u32,
    pub restarts: u32,
    /// Percent of production traffic it takes.
    pub weight_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseInfo {
    pub id: String,
    pub revision: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetrics {
    pub rps: f64,
    /// Percent of answers that were 5xx.
    pub error_rate: f64,
    pub p99_ms: f64,
}

/// The Flux kinds pipedeck reads, as their CRDs name them.
pub const FLUX_KINDS: [&str; 6] = [
    "GitRepository",
    "OCIRepository",
    "Kustomization",
    "HelmRelease",
    "ImageRepository",
    "ImagePolicy",
];

/// FluxCD in an environment's cluster: the kinds it serves and their
/// objects, as `flux get` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxStatus {
    /// The Flux kinds whose CRDs the cluster serves (`Kustomization`,
    /// `GitRepository`…); empty: Flux is not installed.
    pub installed: Vec<String>,
    /// The objects, the most pressing first (not Ready, reconciling,
    /// suspended, then Ready).
    pub objects: Vec<FluxObject>,
    /// Why the last read failed (the objects are the read before it).
    #[serde(default)]
    pub error: Option<String>,
}

impl FluxStatus {
    pub fn is_installed(&self) -> bool {
        !self.installed.is_empty()
    }

    /// The object the panel header speaks of: the most pressing one.
    pub fn worst(&self) -> Option<&FluxObject> {
        self.objects.first()
    }

    /// The kinds whose CRDs the cluster does not serve.
    pub fn missing(&self) -> Vec<&'static str> {
        FLUX_KINDS
            .into_iter()
            .filter(|k| !self.installed.iter().any(|i| i == k))
            .collect()
    }

    /// How many objects are not Ready (suspended ones aside).
    pub fn not_ready(&self) -> usize {
        self.objects
            .iter()
            .filter(|o| o.ready != Some(true) && !o.suspended)
            .count()
    }
}

/// One Flux object (Kustomization, HelmRelease, GitRepository,
/// OCIRepository, ImageRepository, ImagePolicy): `flux get`'s columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The Ready condition; `None` while it is Unknown (reconciling).
    pub ready: Option<bool>,
    /// Ready's reason (`ReconciliationSucceeded`, `HealthCheckFailed`,
    /// `UpgradeFailed`…) when there is one.
    #[serde(default)]
    pub reason: Option<String>,
    /// When Ready last changed (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// The applied revision, the chart version or the source artifact's.
    pub revision: Option<String>,
    /// Ready's message, Stalled / Reconciling in front when True.
    pub message: String,
    pub suspended: bool,
    /// ImagePolicy: the image it picked, `repository:tag`.
    #[serde(default)]
    pub image: Option<String>,
    /// ImageRepository: when it last scanned (RFC 3339).
    #[serde(default)]
    pub last_scan: Option<String>,
    /// ImageRepository: how many tags the last scan found.
    #[serde(default)]
    pub tags: Option<u64>,
}

impl FluxObject {
    /// `Kustomization/flux-system/apps`: how requests name it.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// The kind as the panel abbreviates it (`ks`, `hr`, `git`…).
    pub fn short_kind(&self) -> &str {
        match self.kind.as_str() {
            "GitRepository" => "git",
            "OCIRepository" => "oci",
            "Kustomization" => "ks",
            "HelmRelease" => "hr",
            "ImageRepository" => "imagerepo",
            "ImagePolicy" => "imagepolicy",
            other => other,
        }
    }

    /// `flux get`'s column between the name and SUSPENDED: the revision,
    /// the image an ImagePolicy picked (`image: repo:tag`), or an
    /// ImageRepository's last scan (`scanned 2026-12-01T15:00:00Z · 14 tags`).
    pub fn detail(&self) -> String {
        if let Some(i) = &self.image {
            return format!("image: {i}");
        }
        if self.last_scan.is_some() || self.tags.is_some() {
            return format!(
                "scanned {} · {} tags",
                self.last_scan.as_deref().unwrap_or("never"),
                self.tags.unwrap_or(0)
            );
        }
        self.revision.clone().unwrap_or_default()
    }

    /// 0 not Ready, 1 reconciling, 2 suspended, 3 Ready: the order the
    /// objects are shown in.
    pub fn rank(&self) -> u8 {
        match (self.ready, self.suspended) {
            (Some(false), _) => 0,
            (None, false) => 1,
            (_, true) => 2,
            (Some(true), false) => 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    InProgress,
    /// Blue/green: traffic shifted, the old variant waits to be retired.
    Baking,
    Succeeded,
    Failed,
    Stopped,
}

/// A deployment's progress as the environment reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentProgress {
    pub id: String,
    pub revision: String,
    pub status: DeploymentStatus,
    /// Lifecycle step: `BeforeInstall`, `Install`, `AfterInstall`,
    /// `AllowTestTraffic`, `AfterAllowTestTraffic`, `BeforeAllowTraffic`,
    /// `AllowTraffic`, `AfterAllowTraffic`, `TerminationWait`, `Done`.
    pub step: String,
    /// The variant being deployed.
    pub new_variant: String,
    /// Percent of production traffic on the new variant.
    pub traffic_percent: u32,
    /// When the next traffic step happens (blue/green: when blue goes).
    pub next_step_at: Option<SystemTime>,
    pub reason: Option<String>,
    pub hooks_run: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvEvent {
    pub at: SystemTime,
    /// `health`, `alarm`, `deploy`, `rollback`, `restart`, `hook`.
    pub kind: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flux_objects_travel_between_host_and_client() {
        let mut s: EnvironmentSummary = serde_json::from_value(serde_json::json!({
            "name": "prod", "kind": "kubernetes", "location": "eks/shop", "strategy": "RollingUpdate",
            "protected": false, "variants": [], "live": null, "release": null,
            "metrics": null, "deployment": null, "events": [],
            // What a host from before the Flux list sent: ignored.
            "sync": {"object": "Kustomization/shop/apps", "ready": true, "revision": null,
                     "message": "", "suspended": false}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.flux, None);
        s.flux = Some(FluxStatus {
            installed: vec!["ImagePolicy".into()],
            objects: vec![FluxObject {
                kind: "ImagePolicy".into(),
                namespace: "shop".into(),
                name: "web".into(),
                ready: Some(true),
                reason: Some("Succeeded".into()),
                since: None,
                revision: None,
                message: "resolved".into(),
                suspended: false,
                image: Some("ghcr.io/shop/web:1.4.2".into()),
                last_scan: None,
                tags: None,
            }],
            error: None,
        });
        let text = serde_json::to_string(&s).unwrap_or_default();
        assert!(
            text.contains(r#""image":"ghcr.io/shop/web:1.4.2""#),
            "{text}"
        );
        let back: EnvironmentSummary =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, s);
        assert_eq!(
            back.flux
                .as_ref()
                .map(FluxStatus::missing)
                .unwrap_or_default()
                .len(),
            5
        );
    }
}
