//! Pure health rules: a Deployment's rollout as `kubectl rollout status`
//! judges it (kubectl `pkg/polymorphichelpers/rollout_status.go`, stricter
//! than kube-runtime's `is_deployment_completed`), and a pod's status and
//! problem as k9s shows them (waiting and terminated reasons; an OOM loop
//! is CrashLoopBackOff plus its last OOMKilled).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Where a rollout is, in kubectl's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// `deployment "web" successfully rolled out`, `Waiting for …`.
    pub message: String,
    pub done: bool,
    /// `deployment "web" exceeded its progress deadline`.
    pub failed: Option<String>,
}

/// `kubectl rollout status` for one Deployment, one evaluation.
pub fn rollout(d: &Deployment) -> Rollout {
    let name = d.metadata.name.clone().unwrap_or_default();
    let waiting = |message: String| Rollout {
        message,
        done: false,
        failed: None,
    };
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(st) = &d.status else {
        return waiting("Waiting for deployment spec update to be observed...".into());
    };
    if generation > st.observed_generation.unwrap_or(0) {
        return waiting("Waiting for deployment spec update to be observed...".into());
    }
    let progress_deadline = st.conditions.iter().flatten().any(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if progress_deadline {
        let msg = format!("deployment \"{name}\" exceeded its progress deadline");
        return Rollout {
            message: msg.clone(),
            done: false,
            failed: Some(msg),
        };
    }
    let updated = st.updated_replicas.unwrap_or(0);
    let replicas = st.replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    if let Some(want) = d.spec.replicas
        && updated < want
    {
        return waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {want} new \
             replicas have been updated..."
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending \
             termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} \
             updated replicas are available..."
        ));
    }
    Rollout {
        message: format!("deployment \"{name}\" successfully rolled out"),
        done: true,
        failed: None,
    }
}

/// A ReplicaSet's `deployment.kubernetes.io/revision`.
pub fn revision_of(rs: &ReplicaSet) -> Option<u64> {
    rs.metadata
        .annotations
        .as_ref()?
        .get("deployment.kubernetes.io/revision")?
        .parse()
        .ok()
}

/// The tag (or digest) of an image reference: `shop/web:v2` -> `v2`.
pub fn image_tag(image: &str) -> &str {
    if let Some((_, d)) = image.split_once('@') {
        return d;
    }
    match image.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag,
        _ => "latest",
    }
}

/// The repository of an image reference: `shop/web:v2` -> `shop/web`.
pub fn image_repo(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

/// A pod as k9s shows it, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHealth {
    pub name: String,
    /// `Running`, `ImagePullBackOff`, `CrashLoopBackOff`, `Terminating`…
    pub status: String,
    pub ready: bool,
    pub restarts: u32,
    /// One line naming the problem (`None` when the pod is fine).
    pub problem: Option<String>,
    /// A container in CrashLoopBackOff (its last lines are worth fetching).
    pub crashing: Option<String>,
}

/// k9s's Phase rules for one pod, plus the problem sentence.
pub fn pod(p: &Pod) -> PodHealth {
    let name = p.metadata.name.clone().unwrap_or_default();
    let st = p.status.clone().unwrap_or_default();
    let mut status = st
        .reason
        .clone()
        .or(st.phase.clone())
        .unwrap_or_else(|| "Pending".into());
    let statuses: &[ContainerStatus] = st.container_statuses.as_deref().unwrap_or_default();
    let restarts = statuses.iter().map(|c| c.restart_count.max(0) as u32).sum();
    let ready = !statuses.is_empty() && statuses.iter().all(|c| c.ready);
    let limit_of = |container: &str| {
        p.spec
            .as_ref()?
            .containers
            .iter()
            .find(|c| c.name == container)?
            .resources
            .as_ref()?
            .limits
            .as_ref()?
            .get("memory")
            .map(|q| q.0.clone())
    };
    let mut problem = None;
    let mut crashing = None;
    for init in st.init_container_statuses.iter().flatten() {
        if let Some(w) = init.state.as_ref().and_then(|s| s.waiting.as_ref())
            && let Some(r) = &w.reason
        {
            status = format!("Init:{r}");
        }
    }
    for c in statuses.iter().rev() {
        let state = c.state.clone().unwrap_or_default();
        let last_terminated = c.last_state.as_ref().and_then(|s| s.terminated.clone());
        if let Some(w) = &state.waiting {
            let reason = w.reason.clone().unwrap_or_else(|| "Waiting".into());
            status = reason.clone();
            let msg = w.message.clone().unwrap_or_default();
            problem = Some(match reason.as_str() {
                "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull" => {
                    let detail = if msg.is_empty() {
                        String::new()
                    } else {
                        format!(": {msg}")
                    };
                    format!("pod {name}: {reason}: image {}{detail}", c.image)
                }
                "CrashLoopBackOff" => {
                    crashing = Some(c.name.clone());
                    let last = match &last_terminated {
                        Some(t) if t.reason.as_deref() == Some("OOMKilled") => format!(
                            "last OOMKilled (memory limit {})",
                            limit_of(&c.name).unwrap_or_else(|| "none set".into())
                        ),
                        Some(t) => format!("last exit code {}", t.exit_code),
                        None => "no exit recorded".into(),
                    };
                    format!(
                        "pod {name}: CrashLoopBackOff: container {} restarted {} times, {last}",
                        c.name, c.restart_count
                    )
                }
                "ContainerCreating" | "PodInitializing" => continue,
                _ if msg.is_empty() => format!("pod {name}: {reason}"),
                _ => format!("pod {name}: {reason}: {msg}"),
            });
            break;
        }
        if let Some(t) = &state.terminated {
            status = match (&t.reason, t.signal) {
                (Some(r), _) => r.clone(),
                (None, Some(s)) if s != 0 => format!("Signal:{s}"),
                _ => format!("ExitCode:{}", t.exit_code),
            };
            if t.reason.as_deref() == Some("OOMKilled") {
                problem = Some(format!(
                    "pod {name}: OOMKilled: container {} (memory limit {})",
                    c.name,
                    limit_of(&c.name).unwrap_or_else(|| "none set".into())
                ));
            } else if t.exit_code != 0 {
                problem = Some(format!(
                    "pod {name}: container {} exited with code {}",
                    c.name, t.exit_code
                ));
            }
            break;
        }
        if state.running.is_some() && !c.ready && problem.is_none() {
            problem = Some(format!(
                "pod {name}: container {} is running but not ready (readiness probe)",
                c.name
            ));
        }
    }
    if p.metadata.deletion_timestamp.is_some() {
        status = "Terminating".into();
        problem = None;
    }
    PodHealth {
        name,
        status,
        ready,
        restarts,
        problem,
        crashing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": status,
        }))
        .unwrap_or_default()
    }

    #[test]
    fn rollout_follows_kubectl_in_its_order() {
        let r = |g, s| rollout(&dep(g, s)).message;
        assert_eq!(
            r(2, json!({"observedGeneration": 1})),
            "Waiting for deployment spec update to be observed..."
        );
        assert_eq!(
            r(
                2,
                json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1})
            ),
            "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated..."
        );
        assert_eq!(
            r(
                2,
                json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3})
            ),
            "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination..."
        );
        assert_eq!(
            r(
                2,
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2})
            ),
            "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available..."
        );
        let done = rollout(&dep(
            2,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        ));
        assert!(done.done && done.message == "deployment \"web\" successfully rolled out");
        let stuck = rollout(&dep(
            2,
            json!({"observedGeneration": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        ));
        assert_eq!(
            stuck.failed.as_deref(),
            Some("deployment \"web\" exceeded its progress deadline")
        );
    }

    #[test]
    fn pod_problems_are_named_as_k9s_shows_them() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "web", "resources": {"limits": {"memory": "64Mi"}}}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "web", "image": "shop/web:v2", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]},
        }))
        .unwrap_or_default();
        let h = pod(&p);
        assert_eq!(h.status, "OOMKilled");
        assert_eq!(
            h.problem.as_deref(),
            Some("pod web-1: OOMKilled: container web (memory limit 64Mi)")
        );
        assert_eq!(image_tag("shop/web:v2"), "v2");
        assert_eq!(image_tag("localhost:5000/web"), "latest");
        assert_eq!(image_repo("localhost:5000/web:v3"), "localhost:5000/web");
    }
}
