//! FluxCD's view of an environment: its Kustomizations, HelmReleases,
//! GitRepositories, OCIRepositories, ImageRepositories and ImagePolicies,
//! read through kube's dynamic API and shown as `flux get` shows them
//! (revision, suspended, the Ready condition and its message; Reconciling
//! and Stalled; the image an ImagePolicy picked). Each kind's CRD may be
//! absent on its own (the image automation controllers are optional); a
//! cluster serving none of them is "Flux not installed", not an error.

mod ops;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

pub use self::ops::{operate, parse_object, reconcile, set_suspended};
use super::{KubeEnvironment, lock};
use crate::api::env::{FluxObject, FluxStatus};

/// A Flux kind: where its API lives and how people name it.
#[derive(Debug)]
pub struct FluxKind {
    pub kind: &'static str,
    pub group: &'static str,
    /// Newest first: the first one the cluster serves is used (Flux 2.6
    /// moved OCIRepository to v1, 2.7 the image APIs).
    pub versions: &'static [&'static str],
    pub plural: &'static str,
    /// What `KIND/NAME` may say instead of the kind (lower case).
    pub aliases: &'static [&'static str],
}

/// The six kinds pipedeck reads, in `flux get all`'s order.
pub const KINDS: [FluxKind; 6] = [
    FluxKind {
        kind: "GitRepository",
        group: "source.toolkit.fluxcd.io",
        versions: &["v1"],
        plural: "gitrepositories",
        aliases: &["gitrepo", "git", "source-git"],
    },
    FluxKind {
        kind: "OCIRepository",
        group: "source.toolkit.fluxcd.io",
        versions: &["v1", "v1beta2"],
        plural: "ocirepositories",
        aliases: &["ocirepo", "oci", "source-oci"],
    },
    FluxKind {
        kind: "Kustomization",
        group: "kustomize.toolkit.fluxcd.io",
        versions: &["v1"],
        plural: "kustomizations",
        aliases: &["ks"],
    },
    FluxKind {
        kind: "HelmRelease",
        group: "helm.toolkit.fluxcd.io",
        versions: &["v2"],
        plural: "helmreleases",
        aliases: &["hr"],
    },
    FluxKind {
        kind: "ImageRepository",
        group: "image.toolkit.fluxcd.io",
        versions: &["v1", "v1beta2"],
        plural: "imagerepositories",
        aliases: &["imagerepo", "image-repository"],
    },
    FluxKind {
        kind: "ImagePolicy",
        group: "image.toolkit.fluxcd.io",
        versions: &["v1", "v1beta2"],
        plural: "imagepolicies",
        aliases: &["image-policy"],
    },
];

/// The kind by its name, plural or alias (any case).
pub fn kind(name: &str) -> Option<&'static FluxKind> {
    let n = name.to_ascii_lowercase();
    KINDS.iter().find(|k| {
        k.kind.eq_ignore_ascii_case(&n) || k.plural == n || k.aliases.contains(&n.as_str())
    })
}

/// The kind's API at `version`.
pub fn resource_at(kind: &FluxKind, version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(kind.group, version, kind.kind),
        kind.plural,
    )
}

/// The kind's API at its newest version.
pub fn resource(name: &str) -> Option<ApiResource> {
    kind(name).map(|k| resource_at(k, k.versions[0]))
}

/// Which version of each kind the cluster serves, by discovery
/// (`/apis/GROUP/VERSION`); a kind none of whose versions is served is
/// left out. Other errors than 404 are errors.
pub async fn discover(
    client: &kube::Client,
) -> Result<Vec<(&'static FluxKind, ApiResource)>, kube::Error> {
    let mut lists: HashMap<String, Option<Vec<String>>> = HashMap::new();
    let mut out = Vec::new();
    for k in &KINDS {
        for v in k.versions {
            let gv = format!("{}/{v}", k.group);
            if !lists.contains_key(&gv) {
                let names = match client.list_api_group_resources(&gv).await {
                    Ok(l) => Some(l.resources.into_iter().map(|r| r.name).collect()),
                    Err(kube::Error::Api(s)) if s.code == 404 => None,
                    Err(e) => return Err(e),
                };
                lists.insert(gv.clone(), names);
            }
            if lists[&gv]
                .as_ref()
                .is_some_and(|n| n.iter().any(|n| n == k.plural))
            {
                out.push((k, resource_at(k, v)));
                break;
            }
        }
    }
    Ok(out)
}

/// `flux get`'s columns for one object.
pub fn status_of(kind: &str, obj: &DynamicObject) -> FluxObject {
    let namespace = obj.metadata.namespace.clone().unwrap_or_default();
    let name = obj.metadata.name.clone().unwrap_or_default();
    let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
    let cond = |t: &str| {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .cloned()
    };
    let suspended = obj.data["spec"]["suspend"].as_bool().unwrap_or(false);
    let revision = match kind {
        "HelmRelease" => status["history"][0]["chartVersion"]
            .as_str()
            .or(status["lastAttemptedRevision"].as_str()),
        "Kustomization" => status["lastAppliedRevision"].as_str(),
        "GitRepository" | "OCIRepository" => status["artifact"]["revision"].as_str(),
        _ => None,
    }
    .map(short_hex);
    let image = (kind == "ImagePolicy")
        .then(|| {
            // v1: latestRef {name, tag, digest}; v1beta2: latestImage.
            let r = &status["latestRef"];
            match (r["name"].as_str(), r["tag"].as_str()) {
                (Some(n), Some(t)) => Some(format!("{n}:{t}")),
                _ => status["latestImage"].as_str().map(str::to_owned),
            }
        })
        .flatten();
    let scan = &status["lastScanResult"];
    let (ready, reason, since, mut message) = match cond("Ready") {
        Some(c) => (
            match c["status"].as_str() {
                Some("True") => Some(true),
                Some("False") => Some(false),
                _ => None,
            },
            c["reason"].as_str().map(str::to_owned),
            c["lastTransitionTime"].as_str().map(str::to_owned),
            c["message"].as_str().unwrap_or_default().to_owned(),
        ),
        None => (
            Some(false),
            None,
            None,
            "waiting to be reconciled".to_owned(),
        ),
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
    FluxObject {
        kind: kind.to_owned(),
        namespace,
        name,
        ready,
        reason,
        since,
        revision,
        message: short_hex(&message),
        suspended,
        image,
        last_scan: scan["scanTime"].as_str().map(str::to_owned),
        tags: scan["tagCount"].as_u64(),
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

/// The objects the environment names (`flux = ["KIND/NS/NAME"]`) as
/// (kind, namespace, name).
fn wanted(env: &KubeEnvironment) -> Vec<(&'static str, String, String)> {
    env.spec
        .flux
        .iter()
        .filter_map(|f| {
            let mut p = f.splitn(3, '/');
            let k = kind(p.next()?)?;
            Some((k.kind, p.next()?.to_owned(), p.next()?.to_owned()))
        })
        .collect()
}

/// Every Flux object of the served kinds: those the environment names, or
/// all in its namespace. `Ok(None)`: one of the kinds went away (its
/// CRD deleted): discover again.
pub async fn read(
    env: &KubeEnvironment,
    client: &kube::Client,
    served: &[(&'static FluxKind, ApiResource)],
) -> Result<Option<FluxStatus>, kube::Error> {
    let wanted = wanted(env);
    let mut objects = Vec::new();
    for (k, ar) in served {
        if wanted.is_empty() {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &env.spec.namespace, ar);
            match api.list(&Default::default()).await {
                Ok(l) => objects.extend(l.items.iter().map(|o| status_of(k.kind, o))),
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
                Err(e) => return Err(e),
            }
            continue;
        }
        for (_, ns, name) in wanted.iter().filter(|(w, _, _)| *w == k.kind) {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
            match api.get_opt(name).await? {
                Some(o) => objects.push(status_of(k.kind, &o)),
                None => objects.push(FluxObject {
                    kind: k.kind.to_owned(),
                    namespace: ns.clone(),
                    name: name.clone(),
                    ready: Some(false),
                    reason: Some("NotFound".into()),
                    since: None,
                    revision: None,
                    message: "not found in the cluster (named in the environment's `flux` list)"
                        .into(),
                    suspended: false,
                    image: None,
                    last_scan: None,
                    tags: None,
                }),
            }
        }
    }
    objects.sort_by(|a, b| {
        (a.rank(), &a.kind, &a.namespace, &a.name).cmp(&(b.rank(), &b.kind, &b.namespace, &b.name))
    });
    Ok(Some(FluxStatus {
        installed: served.iter().map(|(k, _)| k.kind.to_owned()).collect(),
        objects,
        error: None,
    }))
}

/// How often the served kinds are discovered again (Flux installed or
/// upgraded while pipedeck runs).
const REDISCOVER: Duration = Duration::from_secs(60);

/// Reads the Flux objects every 2 s into the summary; a read that fails
/// keeps the last view and says why (`FluxStatus::error`).
pub async fn poll(env: Arc<KubeEnvironment>) {
    let mut served: Option<(Instant, Vec<(&'static FluxKind, ApiResource)>)> = None;
    loop {
        if let Some(client) = env.client() {
            let mut next = None;
            if served
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() > REDISCOVER)
            {
                match discover(&client).await {
                    Ok(s) => served = Some((Instant::now(), s)),
                    Err(e) => next = Some(Err(super::client::describe(&e))),
                }
            }
            if let Some((_, kinds)) = &served
                && next.is_none()
            {
                match read(&env, &client, kinds).await {
                    Ok(Some(status)) => next = Some(Ok(status)),
                    // A kind went away: discover again on the next round.
                    Ok(None) => served = None,
                    Err(e) => next = Some(Err(super::client::describe(&e))),
                }
            }
            let changed = {
                let mut s = lock(&env.state);
                let before = s.flux.clone();
                match next {
                    Some(Ok(status)) => s.flux = Some(status),
                    Some(Err(why)) => {
                        s.flux.get_or_insert_with(FluxStatus::default).error = Some(why);
                    }
                    None => {}
                }
                before != s.flux
            };
            if changed {
                env.changed();
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
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

    #[test]
    fn the_kinds_are_the_contracts() {
        let names: Vec<&str> = KINDS.iter().map(|k| k.kind).collect();
        assert_eq!(names, crate::api::env::FLUX_KINDS);
    }

    #[test]
    fn kinds_by_name_plural_or_alias() {
        assert_eq!(kind("ks").map(|k| k.kind), Some("Kustomization"));
        assert_eq!(kind("GitRepository").map(|k| k.kind), Some("GitRepository"));
        assert_eq!(
            kind("gitrepositories").map(|k| k.kind),
            Some("GitRepository")
        );
        assert_eq!(kind("imagepolicy").map(|k| k.kind), Some("ImagePolicy"));
        assert!(kind("Deployment").is_none());
    }

    #[test]
    fn image_policy_shows_the_picked_image_in_both_versions() {
        let obj = |status: Value| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                "metadata": {"name": "web", "namespace": "shop"}, "spec": {}, "status": status}))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let v1 = status_of(
            "ImagePolicy",
            &obj(
                serde_json::json!({"latestRef": {"name": "ghcr.io/shop/web", "tag": "1.4.2",
                "digest": "sha256:aa"}}),
            ),
        );
        assert_eq!(v1.image.as_deref(), Some("ghcr.io/shop/web:1.4.2"));
        let beta = status_of(
            "ImagePolicy",
            &obj(serde_json::json!({"latestImage": "ghcr.io/shop/web:1.4.1"})),
        );
        assert_eq!(beta.image.as_deref(), Some("ghcr.io/shop/web:1.4.1"));
    }
}
