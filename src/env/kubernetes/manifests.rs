//! Manifests from an input artifact (the EKS action's kubectl mode):
//! `$NAME` / `${NAME}` replaced for the declared variables only, each
//! object applied server-side (field manager `pipedeck`), objects Flux
//! manages refused, then each applied Deployment waited for as `kubectl
//! rollout status -w` waits.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment as KDeployment;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use serde_json::Value;

use super::{client, deploy, health};

/// `text` with each declared `$NAME` / `${NAME}` replaced; the names that
/// occurred, in declaration order.
pub fn substitute(text: &str, vars: &[(String, String)]) -> (String, Vec<String>) {
    let mut out = text.to_owned();
    let mut used = Vec::new();
    // Longer names first, so `$IMAGE` does not eat `$IMAGE_TAG`.
    let mut order: Vec<&(String, String)> = vars.iter().collect();
    order.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (name, value) in order {
        let braced = format!("${{{name}}}");
        let mut hit = out.contains(&braced);
        out = out.replace(&braced, value);
        let bare = format!("${name}");
        let mut rebuilt = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&bare) {
            let after = &rest[i + bare.len()..];
            let continues = after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            rebuilt.push_str(&rest[..i]);
            if continues {
                rebuilt.push_str(&bare);
            } else {
                rebuilt.push_str(value);
                hit = true;
            }
            rest = after;
        }
        rebuilt.push_str(rest);
        out = rebuilt;
        if hit {
            used.push(name.clone());
        }
    }
    used.sort_by_key(|n| vars.iter().position(|(v, _)| v == n));
    (out, used)
}

/// The objects of a YAML (or JSON) file, empty documents skipped.
pub fn parse(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    Ok(docs
        .into_iter()
        .filter(|d| !d.is_null())
        .flat_map(|d| {
            if d["kind"] == "List" {
                d["items"].as_array().cloned().unwrap_or_default()
            } else {
                vec![d]
            }
        })
        .collect())
}

/// An applied object: `deployment.apps/web`.
#[derive(Debug, Clone)]
pub struct Applied {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

/// Applies every object server-side; refuses (before anything changes)
/// objects Flux manages.
pub async fn apply_all(
    client: &kube::Client,
    namespace: &str,
    objects: &[Value],
    log: &mut (dyn FnMut(String) + Send),
) -> Result<Vec<Applied>, String> {
    let mut planned = Vec::new();
    for obj in objects {
        let av = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if av.is_empty() || kind.is_empty() || name.is_empty() {
            return Err("a manifest object needs apiVersion, kind and metadata.name".into());
        }
        let (group, version) = av.split_once('/').unwrap_or(("", av));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| format!("{av} {kind}: {}", client::describe(&e)))?;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace)
            .to_owned();
        let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
            Api::namespaced_with(client.clone(), &ns, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        };
        let typed: DynamicObject =
            serde_json::from_value(obj.clone()).map_err(|e| format!("{kind}/{name}: {e}"))?;
        let existing = api
            .get_opt(name)
            .await
            .map_err(|e| format!("{kind}/{name}: {}", client::describe(&e)))?;
        for meta in existing
            .iter()
            .map(|o| &o.metadata)
            .chain([&typed.metadata])
        {
            if let Some(owner) = deploy::flux_owner(meta) {
                let (fk, fns, fname) = {
                    let mut p = owner.splitn(3, '/');
                    (
                        p.next().unwrap_or_default().to_ascii_lowercase(),
                        p.next().unwrap_or_default().to_owned(),
                        p.next().unwrap_or_default().to_owned(),
                    )
                };
                return Err(format!(
                    "{}/{name} is managed by Flux ({owner}): pipedeck never applies or patches \
                     it, Flux would revert the change; change its source and reconcile instead \
                     (flux reconcile {fk} {fname} -n {fns})",
                    kind.to_ascii_lowercase()
                ));
            }
        }
        let short = if ar.group.is_empty() {
            ar.kind.to_ascii_lowercase()
        } else {
            format!("{}.{}", ar.kind.to_ascii_lowercase(), ar.group)
        };
        planned.push((api, typed, short, ns, kind.to_owned(), name.to_owned()));
    }
    let mut applied = Vec::new();
    for (api, typed, short, ns, kind, name) in planned {
        api.patch(
            &name,
            &PatchParams::apply(deploy::FIELD_MANAGER).force(),
            &Patch::Apply(&typed),
        )
        .await
        .map_err(|e| format!("{short}/{name}: {}", client::describe(&e)))?;
        log(format!("{short}/{name} serverside-applied"));
        applied.push(Applied {
            kind,
            name,
            namespace: ns,
        });
    }
    Ok(applied)
}

/// `kubectl rollout status -w` for each applied Deployment.
pub async fn wait_deployments(
    client: &kube::Client,
    applied: &[Applied],
    timeout: Duration,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), String> {
    for a in applied.iter().filter(|a| a.kind == "Deployment") {
        log(format!(
            "Running command: kubectl rollout status -w deployment.apps/{} -n {}",
            a.name, a.namespace
        ));
        let api: Api<KDeployment> = Api::namespaced(client.clone(), &a.namespace);
        let deadline = Instant::now() + timeout;
        let mut said = String::new();
        loop {
            let d = api
                .get(&a.name)
                .await
                .map_err(|e| format!("deployment {}: {}", a.name, client::describe(&e)))?;
            let r = health::rollout(&d);
            if r.message != said {
                said = r.message.clone();
                log(r.message.clone());
            }
            if let Some(f) = r.failed {
                return Err(f);
            }
            if r.done {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "deployment \"{}\" did not finish within {} s: {said}",
                    a.name,
                    timeout.as_secs()
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(150)) => {}
                _ = stop.changed() => return Err("stopped".into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_names_are_replaced_whole() {
        let vars = vec![
            ("IMAGE".to_owned(), "shop/web".to_owned()),
            ("IMAGE_TAG".to_owned(), "v2".to_owned()),
        ];
        let (out, used) = substitute("image: $IMAGE:${IMAGE_TAG} # $IMAGEX $HOME", &vars);
        assert_eq!(out, "image: shop/web:v2 # $IMAGEX $HOME");
        assert_eq!(used, ["IMAGE", "IMAGE_TAG"]);
    }

    #[test]
    fn documents_and_lists_are_objects() {
        let docs =
            parse("a: 1\nkind: X\n---\n---\nkind: List\nitems:\n- kind: Pod\n- kind: Service\n")
                .unwrap();
        let kinds: Vec<&str> = docs
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(kinds, ["X", "Pod", "Service"]);
    }
}
