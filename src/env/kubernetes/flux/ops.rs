//! Flux operations on one object of any of the six kinds: `flux reconcile`
//! (refused on a suspended object), `flux suspend` / `flux resume`.

use std::time::Duration;

use kube::api::{Api, DynamicObject};

use super::super::KubeEnvironment;
use super::{discover, kind, status_of};
use crate::api::{ApiError, FluxOperation};
use crate::config::workspace::KubernetesSpec;

/// The object's API at the version the cluster serves.
async fn flux_api(
    client: &kube::Client,
    kind_name: &str,
    ns: &str,
) -> Result<Api<DynamicObject>, String> {
    let k = kind(kind_name)
        .ok_or_else(|| format!("`{kind_name}` is not a Flux kind pipedeck knows"))?;
    let served = discover(client)
        .await
        .map_err(|e| super::super::client::describe(&e))?;
    let (_, ar) = served
        .iter()
        .find(|(s, _)| s.kind == k.kind)
        .ok_or_else(|| {
            format!(
                "this cluster does not serve {} ({}/{}): that part of Flux is not installed",
                k.kind,
                k.group,
                k.versions.join(" or ")
            )
        })?;
    Ok(Api::namespaced_with(client.clone(), ns, ar))
}

/// `flux suspend` / `flux resume`: a merge patch of `spec.suspend`.
pub async fn set_suspended(
    client: &kube::Client,
    kind: &str,
    ns: &str,
    name: &str,
    suspend: bool,
) -> Result<String, String> {
    let api = flux_api(client, kind, ns).await?;
    let after = api
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"suspend": suspend}})),
        )
        .await
        .map_err(|e| super::super::client::describe(&e))?;
    // A CRD without `spec.suspend` (ImagePolicy before Flux 2.7) prunes
    // the field: the patch "succeeds" and changes nothing.
    if after.data["spec"]["suspend"].as_bool().unwrap_or(false) != suspend {
        return Err(format!(
            "{kind} {ns}/{name} cannot be {}: this version of its CRD has no spec.suspend",
            if suspend { "suspended" } else { "resumed" }
        ));
    }
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
    let api = flux_api(client, kind, ns).await?;
    let obj = api
        .get(name)
        .await
        .map_err(|e| super::super::client::describe(&e))?;
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
    .map_err(|e| super::super::client::describe(&e))?;
    let end = std::time::Instant::now() + timeout;
    loop {
        let obj = api
            .get(name)
            .await
            .map_err(|e| super::super::client::describe(&e))?;
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
    let (kind_name, ns, name) = match parts.as_slice() {
        [k, n] => (*k, spec.namespace.as_str(), *n),
        [k, ns, n] => (*k, *ns, *n),
        _ => ("", "", ""),
    };
    let Some(kind) = kind(kind_name).map(|k| k.kind) else {
        return Err(format!(
            "`{object}`: name a Flux object as KIND/NAME or KIND/NAMESPACE/NAME, KIND one of \
             Kustomization (ks), HelmRelease (hr), GitRepository (gitrepo), OCIRepository \
             (ocirepo), ImageRepository (imagerepo), ImagePolicy"
        ));
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
