//! Flux failures as health records: a Kustomization whose health checks
//! failed, a HelmRelease whose install or upgrade failed, in the
//! environments an action deploys to.

use super::HealthEvent;
use crate::api::env::EnvironmentSummary;

/// Ready=False reasons that mean the release did not roll out.
const FAILED: [(&str, &str); 3] = [
    ("Kustomization", "HealthCheckFailed"),
    ("HelmRelease", "UpgradeFailed"),
    ("HelmRelease", "InstallFailed"),
];

/// The `flux` health records of the environments whose `actions` name
/// `action` (the Deploy or EKS action being diagnosed).
pub fn health(envs: &[EnvironmentSummary], action: &str) -> Vec<HealthEvent> {
    envs.iter()
        .filter(|e| e.actions.iter().any(|a| a == action))
        .filter_map(|e| e.flux.as_ref())
        .flat_map(|f| &f.objects)
        .filter(|o| {
            o.ready == Some(false)
                && FAILED
                    .iter()
                    .any(|(k, r)| o.kind == *k && o.reason.as_deref() == Some(*r))
        })
        .map(|o| HealthEvent {
            time: o.since.clone().unwrap_or_default(),
            kind: "flux".into(),
            name: o.id(),
            detail: format!("{}: {}", o.reason.as_deref().unwrap_or_default(), o.message),
            threshold: None,
            measured: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::env::{FluxObject, FluxStatus};
    use crate::diagnose::{Catalogue, Input, diagnose};

    fn env(action: &str, objects: Vec<FluxObject>) -> EnvironmentSummary {
        let mut e: EnvironmentSummary = serde_json::from_value(serde_json::json!({
            "name": "prod", "kind": "kubernetes", "location": "eks/shop", "strategy": "RollingUpdate",
            "protected": false, "variants": [], "live": null, "release": null,
            "actions": [action], "metrics": null, "deployment": null, "events": []}))
        .unwrap_or_else(|e| panic!("{e}"));
        e.flux = Some(FluxStatus {
            installed: vec!["HelmRelease".into(), "Kustomization".into()],
            objects,
            error: None,
        });
        e
    }

    fn object(kind: &str, name: &str, ready: bool, reason: &str, message: &str) -> FluxObject {
        FluxObject {
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
            ready: Some(ready),
            reason: Some(reason.into()),
            since: Some("2026-12-01T15:00:00Z".into()),
            revision: None,
            message: message.into(),
            suspended: false,
            image: None,
            last_scan: None,
            tags: None,
        }
    }

    #[test]
    fn a_failed_helm_upgrade_is_what_diagnosis_names() {
        let envs = vec![env(
            "Deploy-Prod",
            vec![
                object(
                    "HelmRelease",
                    "web",
                    false,
                    "UpgradeFailed",
                    "Helm upgrade failed for release shop/web with chart podinfo@6.3.6: \
                     context deadline exceeded",
                ),
                // Not a rollout failure: no record.
                object("GitRepository", "shop", false, "GitOperationFailed", "auth"),
                object(
                    "Kustomization",
                    "apps",
                    true,
                    "ReconciliationSucceeded",
                    "ok",
                ),
            ],
        )];
        let h = health(&envs, "Deploy-Prod");
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].name, "HelmRelease/shop/web");
        assert!(health(&envs, "Deploy-Staging").is_empty());
        let f = diagnose(
            &Input {
                health: &h,
                ..Input::default()
            },
            &Catalogue::builtin(),
        );
        assert_eq!(f[0].rule, "deploy.flux", "{f:#?}");
        assert_eq!(
            f[0].title,
            "Flux HelmRelease/shop/web failed: UpgradeFailed: Helm upgrade failed for release \
             shop/web with chart podinfo@6.3.6: context deadline exceeded"
        );
    }

    #[test]
    fn a_kustomization_health_check_failure_is_a_record() {
        let envs = vec![env(
            "Deploy-Prod",
            vec![object(
                "Kustomization",
                "apps",
                false,
                "HealthCheckFailed",
                "health check failed after 30s: timeout waiting for: [Deployment/shop/web status: 'InProgress']",
            )],
        )];
        let h = health(&envs, "Deploy-Prod");
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].kind, "flux");
        assert!(
            h[0].detail
                .starts_with("HealthCheckFailed: health check failed"),
            "{h:?}"
        );
    }
}
