//! FluxCD's view of an environment: its Kustomizations and HelmReleases,
//! read through kube's dynamic API and shown as `flux get` shows them
//! (revision, suspended, the Ready condition and its message; Reconciling
//! and Stalled). A cluster without the CRDs is "Flux not installed", not
//! an error.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

use super::{KubeEnvironment, lock};
use crate::api::env::SyncStatus;
use crate::api::{ApiError, FluxOperation};
use crate::config::workspace::KubernetesSpec;

/// Kustomization (kustomize.toolkit.fluxcd.io/v1) and HelmRelease
/// (helm.toolkit.fluxcd.io/v2).
pub fn resource(kind: &str) -> Option<ApiResource> {
    let (group, version, plural) = match kind {
        "Kustomization" => ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
        "HelmRelease" => ("helm.toolkit.fluxcd.io", "v2", "helmreleases"),
        _ => return None,
    };
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}

/// `flux get`'s columns for one object.
pub fn status_of(kind: &str, obj: &DynamicObject) -> SyncStatus {
    let ns = obj.metadata.namespace.clone().unwrap_or_default();
    let name = obj.metadata.name.clone().unwrap_or_default();
    let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
    let cond = |t: &str| {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .cloned()
    };
    let suspended = obj.data["spec"]["suspend"].as_bool().unwrap_or(false);
    let revision = if kind == "HelmRelease" {
        status["history"][0]["chartVersion"]
            .as_str()
            .or(status["lastAttemptedRevision"].as_str())
    } else {
        status["lastAppliedRevision"].as_str()
    }
    .map(short_hex);
    let (ready, mut message) = match cond("Ready") {
        Some(c) => (
            match c["status"].as_str() {
                Some("True") => Some(true),
                Some("False") => Some(false),
                _ => None,
            },
            c["message"].as_str().unwrap_or_default().to_owned(),
        ),
        None => (Some(false), "waiting to be reconciled".to_owned()),
    };
    for extra in ["Stalled", "Reconciling"] {
        if let Some(c) = cond(extra)
            && c["status"] == "True"
        {
            message = format!(
                "{extra}: {}{}",
                c["reason"].as_str().unwrap_or_default(),
                if message.is_empty() {
                    String::new()
                } else {
                    format!(" · {message}")
                }
            );
        }
    }
    SyncStatus {
        object: format!("{kind}/{ns}/{name}"),
        ready,
        revision,
        message: short_hex(&message),
        suspended,
    }
}

/// `flux get` truncates 40-128 hex digit runs to 8.
fn short_hex(s: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for ch in s.chars().chain(std::iter::once(' ')) {
        if ch.is_ascii_hexdigit() {
            run.push(ch);
            continue;
        }
        if (40..=128).contains(&run.len()) {
            out.push_str(&run[..8]);
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(ch);
    }
    out.pop();
    out
}

/// Every Flux object of interest, the most pressing first (not Ready,
/// then suspended). `Ok(None)`: Flux is not installed.
pub async fn read(
    env: &KubeEnvironment,
    client: &kube::Client,
) -> Result<Option<Vec<SyncStatus>>, kube::Error> {
    let mut out = Vec::new();
    let mut installed = false;
    let wanted: Vec<(String, String, String)> = env
        .spec
        .flux
        .iter()
        .filter_map(|f| {
            let mut p = f.splitn(3, '/');
            Some((
                p.next()?.to_owned(),
                p.next()?.to_owned(),
                p.next()?.to_owned(),
            ))
        })
        .collect();
    for kind in ["Kustomization", "HelmRelease"] {
        let Some(ar) = resource(kind) else { continue };
        let list = if wanted.is_empty() {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &env.spec.namespace, &ar);
            api.list(&Default::default()).await.map(|l| l.items)
        } else {
            let mut items = Vec::new();
            let mut res = Ok(());
            for (k, ns, name) in wanted.iter().filter(|(k, _, _)| k == kind) {
                let _ = k;
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
                match api.get_opt(name).await {
                    Ok(Some(o)) => items.push(o),
                    Ok(None) => {}
                    Err(e) => {
                        res = Err(e);
                        break;
                    }
                }
            }
            res.map(|()| items)
        };
        match list {
            Ok(items) => {
                installed = true;
                out.extend(items.iter().map(|o| status_of(kind, o)));
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    if !installed {
        return Ok(None);
    }
    out.sort_by_key(|s| (s.ready == Some(true), !s.suspended));
    Ok(Some(out))
}

/// Reads the Flux objects every few seconds into the summary.
pub async fn poll(env: Arc<KubeEnvironment>) {
    loop {
        if let Some(client) = env.client() {
            let next = match read(&env, &client).await {
                Ok(Some(list)) => list.into_iter().next(),
                Ok(None) => None,
                Err(_) => lock(&env.state).sync.clone(),
            };
            let changed = {
                let mut s = lock(&env.state);
                let c = s.sync != next;
                s.sync = next;
                c
            };
            if changed {
                env.changed();
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn flux_api(client: &kube::Client, kind: &str, ns: &str) -> Result<Api<DynamicObject>, String> {
    let ar = resource(kind).ok_or_else(|| format!("`{kind}` is not a Flux kind pipedeck knows"))?;
    Ok(Api::namespaced_with(client.clone(), ns, &ar))
}

/// `flux suspend` / `flux resume`: a merge patch of `spec.suspend`.
pub async fn set_suspended(
    client: &kube::Client,
    kind: &str,
    ns: &str,
    name: &str,
    suspend: bool,
) -> Result<String, String> {
    let api = flux_api(client, kind, ns)?;
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"suspend": suspend}})),
    )
    .await
    .map_err(|e| super::client::describe(&e))?;
    Ok(format!(
        "{kind} {ns}/{name} {}",
        if suspend { "suspended" } else { "resumed" }
    ))
}

/// `flux reconcile`: refused on a suspended object; sets
/// `reconcile.fluxcd.io/requestedAt`, waits until the controller echoes it
/// in `lastHandledReconcileAt`, then reports the Ready condition.
pub async fn reconcile(
    client: &kube::Client,
    kind: &str,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<String, String> {
    let api = flux_api(client, kind, ns)?;
    let obj = api
        .get(name)
        .await
        .map_err(|e| super::client::describe(&e))?;
    if obj.data["spec"]["suspend"].as_bool() == Some(true) {
        return Err(format!("{kind} {ns}/{name}: resource is suspended"));
    }
    let token = jiff::Timestamp::now().to_string();
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"metadata": {"annotations": {
            "reconcile.fluxcd.io/requestedAt": token}}})),
    )
    .await
    .map_err(|e| super::client::describe(&e))?;
    let end = std::time::Instant::now() + timeout;
    loop {
        let obj = api
            .get(name)
            .await
            .map_err(|e| super::client::describe(&e))?;
        if obj.data["status"]["lastHandledReconcileAt"].as_str() == Some(token.as_str()) {
            let s = status_of(kind, &obj);
            return match s.ready {
                Some(true) => Ok(format!("{kind} {ns}/{name} reconciled: {}", s.message)),
                _ if obj.data["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Reconciling" && c["status"] == "True")
                    }) =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                _ => Err(format!("{kind} reconciliation failed: {}", s.message)),
            };
        }
        if std::time::Instant::now() > end {
            return Err(format!(
                "{kind} {ns}/{name}: the controller did not handle the request within {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long a reconcile waits for the controller (`flux reconcile`'s
/// default `--timeout`).
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(300);

/// `Kustomization/NAME`, `ks/NAME`, `HelmRelease/NS/NAME`, `hr/NAME` ->
/// (kind, namespace, name); the environment's namespace when none is given.
pub fn parse_object(
    spec: &KubernetesSpec,
    object: &str,
) -> Result<(String, String, String), String> {
    let parts: Vec<&str> = object.split('/').collect();
    let (kind, ns, name) = match parts.as_slice() {
        [k, n] => (*k, spec.namespace.as_str(), *n),
        [k, ns, n] => (*k, *ns, *n),
        _ => ("", "", ""),
    };
    let kind = match kind.to_ascii_lowercase().as_str() {
        "kustomization" | "kustomizations" | "ks" => "Kustomization",
        "helmrelease" | "helmreleases" | "hr" => "HelmRelease",
        _ => {
            return Err(format!(
                "`{object}`: name a Flux object as KIND/NAME or KIND/NAMESPACE/NAME, KIND \
                 Kustomization (ks) or HelmRelease (hr)"
            ));
        }
    };
    if name.is_empty() || ns.is_empty() {
        return Err(format!(
            "`{object}`: the name (and namespace) may not be empty"
        ));
    }
    Ok((kind.to_owned(), ns.to_owned(), name.to_owned()))
}

/// A Flux operation on one of the environment's objects: those `flux`
/// names, or any in its namespace when it names none. The outcome is one of
/// the environment's events too.
pub async fn operate(
    env: &KubeEnvironment,
    operation: FluxOperation,
    object: &str,
) -> Result<String, ApiError> {
    let invalid = |m: String| ApiError::new("ValidationException", m);
    let (kind, ns, name) = parse_object(&env.spec, object).map_err(invalid)?;
    let full = format!("{kind}/{ns}/{name}");
    if !env.spec.flux.is_empty() && !env.spec.flux.contains(&full) {
        return Err(invalid(format!(
            "{full} is not one of environment {}'s Flux objects ({})",
            env.name,
            env.spec.flux.join(", ")
        )));
    }
    if env.spec.flux.is_empty() && ns != env.spec.namespace {
        return Err(invalid(format!(
            "{full} is outside namespace {} of environment {}; name it in the environment's \
             `flux` list to operate on it",
            env.spec.namespace, env.name
        )));
    }
    let (client, _) = env
        .connected()
        .await
        .map_err(|why| ApiError::new("EnvironmentUnavailable", why))?;
    let r = match operation {
        FluxOperation::Reconcile => reconcile(&client, &kind, &ns, &name, RECONCILE_TIMEOUT).await,
        FluxOperation::Suspend => set_suspended(&client, &kind, &ns, &name, true).await,
        FluxOperation::Resume => set_suspended(&client, &kind, &ns, &name, false).await,
    };
    match r {
        Ok(message) => {
            env.event("flux", message.clone());
            Ok(message)
        }
        Err(e) => {
            env.event(
                "flux",
                format!("flux {} {full} failed: {e}", operation.as_str()),
            );
            let code = if e.ends_with("resource is suspended") {
                "FluxObjectSuspended"
            } else {
                "FluxOperationFailed"
            };
            Err(ApiError::new(code, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_runs_are_cut_like_flux_get() {
        assert_eq!(
            short_hex("Applied revision: main@sha1:67e2c98a0f1b2c3d4e5f67e2c98a0f1b2c3d4e5f"),
            "Applied revision: main@sha1:67e2c98a"
        );
        assert_eq!(short_hex("6.3.5"), "6.3.5");
    }
}
