//! CodePipeline's `EKS` deploy action (Deploy / AWS / EKS): `ClusterName`
//! names a `kubernetes` environment (by name, or by its kubeconfig
//! context, an EKS context ARN ending in `cluster/NAME` included).
//! Kubectl mode (`ManifestFiles`) substitutes the declared variables,
//! applies server-side and waits like `kubectl rollout status -w`, with
//! AWS's log lines; Helm mode runs `helm` when it is installed.

use std::time::Duration;

use super::{ActionContext, ActionOutcome, BoxFuture, Provider};
use crate::config::workspace::{EnvSpec, KubernetesSpec, Workspace};
use crate::env::kubernetes::{client, manifests};

pub struct Eks;

/// Whether an EKS action is run by this provider (a mode is configured).
pub fn has_mode(cfg: &std::collections::BTreeMap<String, String>) -> bool {
    cfg.contains_key("ManifestFiles") || cfg.contains_key("HelmReleaseName")
}

/// The environment `ClusterName` names.
pub fn environment_for(ws: &Workspace, cluster: &str) -> Option<(String, KubernetesSpec)> {
    let kube = ws.environments.iter().filter_map(|(n, e)| match &e.spec {
        EnvSpec::Kubernetes(k) => Some((n, k)),
        EnvSpec::Local(_) => None,
    });
    let mut by_context = None;
    for (name, spec) in kube {
        if name == cluster {
            return Some((name.clone(), spec.clone()));
        }
        if spec.context == cluster || spec.context.ends_with(&format!("cluster/{cluster}")) {
            by_context.get_or_insert((name.clone(), spec.clone()));
        }
    }
    by_context
}

/// `EnvironmentVariables` from the configuration: a JSON list of
/// `{name, value}` (as the action declares them) or a JSON object.
fn variables(ctx: &ActionContext) -> Result<Vec<(String, String)>, String> {
    let Some(raw) = ctx.action.configuration.get("EnvironmentVariables") else {
        return Ok(Vec::new());
    };
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| format!("EnvironmentVariables is not JSON: {e}"))?;
    // `name` / `value`, or AWS's `Name` / `Value`.
    let pick = |o: &serde_json::Value, k: &str| {
        let upper = format!("{}{}", k[..1].to_ascii_uppercase(), &k[1..]);
        o.get(k)
            .or(o.get(&upper))
            .and_then(|x| x.as_str())
            .map(str::to_owned)
    };
    match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| match (pick(i, "name"), pick(i, "value")) {
                (Some(n), Some(v)) => Ok((n, v)),
                _ => Err(format!("EnvironmentVariables: {i} needs name and value")),
            })
            .collect(),
        serde_json::Value::Object(m) => Ok(m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect()),
        _ => Err("EnvironmentVariables must be a list of {name, value}".into()),
    }
}

impl Provider for Eks {
    fn run(&self, ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(run(ctx))
    }
}

async fn run(mut ctx: ActionContext) -> ActionOutcome {
    let fail = |ctx: &mut ActionContext, code: &str, msg: String| {
        ctx.log.line(&format!("[Container] {msg}"));
        ActionOutcome::failed(code, msg)
    };
    let cfg = ctx.action.configuration.clone();
    let Some(cluster) = cfg.get("ClusterName").cloned() else {
        return fail(
            &mut ctx,
            "ConfigurationError",
            "the EKS action needs ClusterName".into(),
        );
    };
    let Some((env, spec)) = environment_for(&ctx.workspace, &cluster) else {
        let msg = format!(
            "ClusterName `{cluster}` is not mapped: add an [environments.{cluster}] table with \
             kind = \"kubernetes\" and the kubeconfig context of that cluster to {}",
            ctx.workspace.root.join("pipedeck.toml").display()
        );
        return fail(&mut ctx, "ConfigurationError", msg);
    };
    let namespace = cfg
        .get("Namespace")
        .cloned()
        .unwrap_or(spec.namespace.clone());
    let Some(input) = ctx.inputs.first().cloned() else {
        return fail(
            &mut ctx,
            "ConfigurationError",
            "the EKS action needs an input artifact".into(),
        );
    };
    let vars = match variables(&ctx) {
        Ok(v) => v,
        Err(e) => return fail(&mut ctx, "ConfigurationError", e),
    };
    ctx.log.line("Logging in to Amazon EKS cluster.");
    ctx.log.line(&format!(
        "Using kubeconfig context {} (environment {env}) for cluster {cluster}",
        spec.context
    ));
    if let Some(release) = cfg.get("HelmReleaseName").cloned() {
        return helm(ctx, &spec, &namespace, &release, &input.dir).await;
    }
    let files: Vec<String> = cfg["ManifestFiles"]
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let mut objects = Vec::new();
    for f in &files {
        let path = input.dir.join(f);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    &mut ctx,
                    "ConfigurationError",
                    format!("ManifestFiles: {f}: {e}"),
                );
            }
        };
        let (text, used) = manifests::substitute(&text, &vars);
        for n in used {
            let value = vars
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            ctx.log.line(&format!(
                "Replacing environment variable {n} with {value} in {f}"
            ));
        }
        match manifests::parse(&text) {
            Ok(o) => objects.extend(o),
            Err(e) => return fail(&mut ctx, "ConfigurationError", format!("{f}: {e}")),
        }
    }
    let kube = match client::connect(&spec).await {
        Ok(c) => c,
        Err(e) => return fail(&mut ctx, "JobFailed", format!("cluster {cluster}: {e}")),
    };
    ctx.log.line("Applying Kubernetes manifests.");
    ctx.log.line(&format!(
        "Running command: kubectl apply --server-side --field-manager=pipedeck -f {} -n {namespace}",
        files.join(",")
    ));
    let mut lines = Vec::new();
    let applied = {
        let mut log = |l: String| lines.push(l);
        manifests::apply_all(&kube, &namespace, &objects, &mut log).await
    };
    for l in lines.drain(..) {
        ctx.log.line(&l);
    }
    let applied = match applied {
        Ok(a) => a,
        Err(e) => return fail(&mut ctx, "JobFailed", e),
    };
    let watched: Vec<&str> = applied
        .iter()
        .filter(|a| a.kind == "Deployment")
        .map(|a| a.name.as_str())
        .collect();
    ctx.log
        .line(&format!("Resources to watch: [ {} ]", watched.join(", ")));
    let timeout = Duration::from_secs(spec.rollout_timeout_seconds.max(1));
    let mut stop = ctx.stop.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let wait = {
        let kube = kube.clone();
        let applied = applied.clone();
        tokio::spawn(async move {
            let mut log = move |l: String| {
                let _ = tx.send(l);
            };
            manifests::wait_deployments(&kube, &applied, timeout, &mut stop, &mut log).await
        })
    };
    while let Some(l) = rx.recv().await {
        ctx.log.line(&l);
    }
    match wait.await {
        Ok(Ok(())) => {
            ctx.log.line("Action completed.");
            let mut out = ActionOutcome::succeeded();
            out.summary = Some(format!(
                "applied {} object(s) to {cluster} ({namespace}); rolled out: {}",
                applied.len(),
                watched.join(", ")
            ));
            out
        }
        Ok(Err(e)) => fail(&mut ctx, "JobFailed", e),
        Err(e) => fail(&mut ctx, "JobFailed", e.to_string()),
    }
}

async fn helm(
    mut ctx: ActionContext,
    spec: &KubernetesSpec,
    namespace: &str,
    release: &str,
    dir: &std::path::Path,
) -> ActionOutcome {
    let cfg = ctx.action.configuration.clone();
    let Some(chart) = cfg.get("HelmChartLocation") else {
        let msg = "Helm mode needs HelmChartLocation".to_owned();
        ctx.log.line(&msg);
        return ActionOutcome::failed("ConfigurationError", msg);
    };
    let helm = crate::proc::on_path("helm");
    let Some(helm) = helm else {
        let msg = "Helm mode needs the `helm` command, which is not installed (not on PATH); \
                   install helm 3, or use ManifestFiles (kubectl mode)"
            .to_owned();
        ctx.log.line(&msg);
        return ActionOutcome::failed("JobFailed", msg);
    };
    let chart_dir = dir.join(chart);
    let mut cmd = tokio::process::Command::new(helm);
    cmd.args(["upgrade", "--install", release])
        .arg(&chart_dir)
        .args(["-n", namespace, "--kube-context", &spec.context, "--wait"]);
    if let Some(k) = &spec.kubeconfig {
        cmd.arg("--kubeconfig").arg(k);
    }
    for v in cfg
        .get("HelmValuesFiles")
        .into_iter()
        .flat_map(|v| v.split(','))
    {
        cmd.arg("-f").arg(chart_dir.join(v.trim()));
    }
    ctx.log.line(&format!(
        "Running command: helm upgrade --install {release} {chart} -n {namespace}"
    ));
    match cmd.output().await {
        Ok(o) => {
            for l in String::from_utf8_lossy(&o.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&o.stderr).lines())
            {
                ctx.log.line(l);
            }
            if o.status.success() {
                ctx.log.line("Action completed.");
                ActionOutcome::succeeded()
            } else {
                ActionOutcome::failed("JobFailed", format!("helm failed with {}", o.status))
            }
        }
        Err(e) => ActionOutcome::failed("JobFailed", format!("helm: {e}")),
    }
}
