//! `strategy = "Canary"` by replica ratio, without a mesh: two
//! Deployments, `WORKLOAD` (stable) and `WORKLOAD-canary`, whose pods one
//! Service selects by a label they share, so the canary's share of the
//! ready replicas is its share of the traffic. Each step of
//! `canary_steps` scales the canary (the release's image) to its share of
//! the total and the stable down by as many, then waits
//! `canary_interval_seconds`; after the last step the release is promoted:
//! the stable Deployment gets the image and all the replicas, and the
//! canary goes to zero. Aborting (a failure, an alarm, `b`) puts the stable
//! back to the total and the canary to zero; the stable's template is not
//! touched before the promotion, so nothing else needs undoing.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::Deployment as KDeployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::Patch;
use serde_json::json;

use super::client;
use super::deploy::{Run, apply_params, scale_params, undo, with_image};
use crate::api::env::DeploymentStatus;
use crate::config::workspace::KubernetesSpec;

/// The annotation on the canary Deployment that remembers the total
/// replicas while a canary runs (the stable has fewer then).
pub const TOTAL_ANNOTATION: &str = "pipedeck.dev/canary-total";

/// The stable and canary Deployments' names.
pub fn names(spec: &KubernetesSpec) -> (String, String) {
    let w = spec.workload.clone().unwrap_or_default();
    (w.clone(), format!("{w}-canary"))
}

/// The canary's replicas at `weight` percent of `total`: the nearest whole
/// number, ties up, at least one while the weight is above zero (as a
/// replica-based canary does without traffic routing).
pub fn canary_replicas(total: i32, weight: u32) -> i32 {
    if weight == 0 || total <= 0 {
        return 0;
    }
    let c = (i64::from(total) * i64::from(weight) + 50) / 100;
    (c as i32).clamp(1, total)
}

/// The total replicas: remembered on a canary that is up, else the
/// stable's.
fn total_of(stable: &KDeployment, canary: &KDeployment) -> i32 {
    let up = canary.spec.replicas.unwrap_or(0) > 0;
    let remembered = canary
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TOTAL_ANNOTATION))
        .and_then(|v| v.parse::<i32>().ok());
    match remembered {
        Some(t) if up && t > 0 => t,
        _ => stable.spec.replicas.unwrap_or(1).max(1),
    }
}

fn pod_labels(d: &KDeployment) -> std::collections::BTreeMap<String, String> {
    d.spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// Refuses a setup whose traffic share would not follow the replicas: the
/// Service must select the pods of both Deployments.
async fn check_service(
    client: &kube::Client,
    spec: &KubernetesSpec,
    stable: &KDeployment,
    canary: &KDeployment,
) -> Result<(), String> {
    let Some(name) = &spec.service else {
        return Ok(());
    };
    let api: Api<Service> = Api::namespaced(client.clone(), &spec.namespace);
    let svc = api
        .get(name)
        .await
        .map_err(|e| format!("reading Service {name}: {}", client::describe(&e)))?;
    let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
    for d in [stable, canary] {
        let labels = pod_labels(d);
        if let Some((k, v)) = selector.iter().find(|(k, v)| labels.get(*k) != Some(*v)) {
            return Err(format!(
                "Service {name} selects {k}={v}, which the pods of {} do not carry: a canary \
                 needs one Service selecting both Deployments by a shared label",
                d.metadata.name.clone().unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// Puts the stable back to the total and the canary to zero.
pub async fn abort(client: &kube::Client, spec: &KubernetesSpec) -> Result<String, String> {
    let (stable_name, canary_name) = names(spec);
    let api: Api<KDeployment> = Api::namespaced(client.clone(), &spec.namespace);
    let (stable, canary) = match (api.get(&stable_name).await, api.get(&canary_name).await) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Err(client::describe(&e)),
    };
    let total = total_of(&stable, &canary);
    // Capacity first: the stable comes back before the canary goes.
    scale(&api, &stable_name, total).await?;
    scale(&api, &canary_name, 0).await?;
    Ok(format!(
        "canary {canary_name} scaled to 0, {stable_name} back to {total} replicas"
    ))
}

async fn scale(api: &Api<KDeployment>, name: &str, replicas: i32) -> Result<(), String> {
    let body = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name}, "spec": {"replicas": replicas}});
    api.patch(name, &scale_params(), &Patch::Apply(&body))
        .await
        .map(|_| ())
        .map_err(|e| format!("scaling {name} to {replicas}: {}", client::describe(&e)))
}

impl Run {
    pub(super) async fn canary(self: std::sync::Arc<Self>) {
        let (stable_name, canary_name) = names(&self.env.spec);
        let fail = |me: &Self, msg: String| {
            me.event("deploy", msg.clone());
            me.report(me.progress(DeploymentStatus::Failed, "Install", "canary", 0, Some(msg)));
        };
        let api = self.api();
        let (stable, canary) = match (api.get(&stable_name).await, api.get(&canary_name).await) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                return fail(
                    &self,
                    format!(
                        "strategy Canary needs Deployments {stable_name} and {canary_name}: {}",
                        client::describe(&e)
                    ),
                );
            }
        };
        if let Err(e) = check_service(&self.client, &self.env.spec, &stable, &canary).await {
            return fail(&self, e);
        }
        let total = total_of(&stable, &canary);
        let template = match with_image(
            &self.env.spec,
            &canary,
            &self.release.revision,
            &self.release.id,
        ) {
            Ok(t) => t,
            Err(e) => return fail(&self, e.message),
        };
        let steps: Vec<u32> = self
            .env
            .spec
            .canary_steps
            .iter()
            .copied()
            .filter(|w| *w < 100)
            .collect();
        for weight in steps {
            let c = canary_replicas(total, weight);
            self.event(
                "deploy",
                format!(
                    "canary step {weight}%: {canary_name} to {c} of {total} replicas with {}, \
                     {stable_name} to {}",
                    self.release.revision,
                    total - c
                ),
            );
            let body = json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": canary_name, "annotations": {TOTAL_ANNOTATION: total.to_string()}},
                "spec": {"replicas": c, "template": template},
            });
            if let Err(e) = api
                .patch(&canary_name, &apply_params(), &Patch::Apply(&body))
                .await
            {
                let why = format!("apply of {canary_name} failed: {}", client::describe(&e));
                return self.abort_with(why, "DEPLOYMENT_FAILURE").await;
            }
            if let Err(why) = self.wait_rollout(&canary_name).await {
                return self.abort_with(why, "DEPLOYMENT_FAILURE").await;
            }
            if let Err(why) = scale(&api, &stable_name, total - c).await {
                return self.abort_with(why, "DEPLOYMENT_FAILURE").await;
            }
            if let Err(why) = self.wait_rollout(&stable_name).await {
                return self.abort_with(why, "DEPLOYMENT_FAILURE").await;
            }
            let share = (c * 100 / total.max(1)) as u32;
            let wait = Duration::from_secs(self.env.spec.canary_interval_seconds);
            let mut p = self.progress(
                DeploymentStatus::InProgress,
                &format!("Canary{weight}Percent"),
                "canary",
                share,
                None,
            );
            p.next_step_at = Some(SystemTime::now() + wait);
            self.report(p);
            if let Err(why) = self.bake(wait, &canary_name).await {
                let event = if why.starts_with("alarm") {
                    "DEPLOYMENT_STOP_ON_ALARM"
                } else {
                    "DEPLOYMENT_FAILURE"
                };
                return self.abort_with(why, event).await;
            }
        }
        // Promotion: the stable runs the release on every replica.
        self.event(
            "deploy",
            format!(
                "promoting {}: {stable_name} to {total} replicas with it",
                self.release.revision
            ),
        );
        self.report(self.progress(DeploymentStatus::InProgress, "Promote", "stable", 100, None));
        let stable_template = match with_image(
            &self.env.spec,
            &stable,
            &self.release.revision,
            &self.release.id,
        ) {
            Ok(t) => t,
            Err(e) => return self.abort_with(e.message, "DEPLOYMENT_FAILURE").await,
        };
        let body = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": stable_name},
            "spec": {"replicas": total, "template": stable_template},
        });
        if let Err(e) = api
            .patch(&stable_name, &apply_params(), &Patch::Apply(&body))
            .await
        {
            let why = format!("apply of {stable_name} failed: {}", client::describe(&e));
            return self.abort_with(why, "DEPLOYMENT_FAILURE").await;
        }
        if let Err(why) = self.wait_rollout(&stable_name).await {
            // The stable's template changed: undo it as well.
            let mut why = why;
            if self.env.spec.rolls_back_on("DEPLOYMENT_FAILURE") {
                match undo(&self.client, &self.env.spec.namespace, &stable_name).await {
                    Ok(m) => why = format!("{why}; {m}"),
                    Err(e) => why = format!("{why}; the rollback failed: {e}"),
                }
            }
            return self.abort_with(why, "DEPLOYMENT_FAILURE").await;
        }
        if let Err(e) = scale(&api, &canary_name, 0).await {
            self.event("deploy", format!("{e} (the release is promoted)"));
        }
        self.report(self.progress(DeploymentStatus::Succeeded, "Done", "stable", 100, None));
    }

    /// Ends a canary that failed (or was stopped): rolled back when
    /// `auto_rollback` names `event` (always when stopped), else left as it
    /// is, saying so.
    async fn abort_with(&self, why: String, event: &str) {
        let stopped = why == "stopped";
        let reason;
        if stopped || self.env.spec.rolls_back_on(event) {
            if !stopped {
                self.event("rollback", format!("automatic rollback: {why}"));
            }
            match abort(&self.client, &self.env.spec).await {
                Ok(m) => {
                    self.event("rollback", m.clone());
                    reason = if stopped {
                        format!("rolled back: {m}")
                    } else {
                        format!("{why}; {m}")
                    };
                }
                Err(e) => {
                    self.event("rollback", format!("rollback failed: {e}"));
                    reason = format!("{why}; the rollback failed: {e}");
                }
            }
        } else {
            reason = format!("{why}; the canary is left as it is (auto_rollback has no {event})");
        }
        let status = if stopped {
            DeploymentStatus::Stopped
        } else {
            DeploymentStatus::Failed
        };
        self.report(self.progress(status, "Install", "canary", 0, Some(reason)));
    }
}

#[cfg(test)]
mod tests {
    use super::canary_replicas;

    #[test]
    fn replica_ratios_round_to_the_nearest_with_at_least_one_canary() {
        assert_eq!(canary_replicas(10, 10), 1);
        assert_eq!(canary_replicas(10, 41), 4);
        assert_eq!(canary_replicas(10, 45), 5, "ties round up");
        assert_eq!(canary_replicas(4, 10), 1, "never zero above 0%");
        assert_eq!(canary_replicas(4, 50), 2);
        assert_eq!(canary_replicas(3, 100), 3);
        assert_eq!(canary_replicas(3, 0), 0);
    }
}
