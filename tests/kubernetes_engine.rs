//! A kubernetes environment through the engine and the CLI: a pipeline's
//! Deploy action mapped to it deploys the commit as the image tag, and
//! `pipedeck envs` shows the cluster beside an unreachable one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod kube_support;

use std::time::Duration;

use common::{actions, call, pipeline, stage, start, until_status, workspace};
use k8s_openapi::api::apps::v1::Deployment as KDeployment;
use kube::Api;
use kube_support::{FakeCluster, controller_step, create_deployment, deployment, kubeconfig};
use pipedeck::api::types::ExecutionStatus;
use pipedeck::api::{Reply, Request};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_deploy_action_deploys_to_the_cluster_and_envs_shows_it() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let kc = kubeconfig(dir.path(), &[("dev", &fake.url), ("prod", &down)], &[]);
    let c = kube_support::client(&kc, "dev").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 2, json!({}))).await;
    controller_step(&c, "web", 2, None).await;
    let ctl = {
        let c = c.clone();
        tokio::spawn(async move {
            let api: Api<KDeployment> = Api::namespaced(c.clone(), "shop");
            let mut seen = 0;
            loop {
                if let Ok(d) = api.get("web").await {
                    let g = d.metadata.generation.unwrap_or(0);
                    if g != seen {
                        seen = g;
                        controller_step(&c, "web", 2, None).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    let deploy = r#"{"name": "Deploy-Dev", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "EKS", "version": "1"},
        "configuration": {"ClusterName": "dev"}, "inputArtifacts": [{"name": "Src"}]}"#;
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Deploy", &[deploy.to_owned()], "")],
    );
    let kcs = kc.display().to_string();
    let ws = workspace(
        &p,
        &format!(
            "[environments.dev]\nkind = \"kubernetes\"\ncontext = \"dev\"\nkubeconfig = \"{kcs}\"\nnamespace = \"shop\"\nworkload = \"web\"\nrollout_timeout_seconds = 20\nactions = [\"Deploy-Dev\"]\n\n\
             [environments.prod]\nkind = \"kubernetes\"\ncontext = \"prod\"\nkubeconfig = \"{kcs}\"\nnamespace = \"shop\"\nworkload = \"web\"\nprotected = true\n"
        ),
        &[("VERSION", "v1")],
    );
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let commit = common::git(&ws.repo(), &["rev-parse", "HEAD"]);
    let api: Api<KDeployment> = Api::namespaced(c.clone(), "shop");
    let image = api
        .get("web")
        .await
        .unwrap()
        .spec
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap();
    assert_eq!(image, format!("shop/web:{}", &commit[..12]));
    let acts = actions(&h, "p", &id).await;
    let d = acts.iter().find(|a| a.action_name == "Deploy-Dev").unwrap();
    assert_eq!(
        d.status,
        pipedeck::api::types::ActionStatus::Succeeded,
        "{d:?}"
    );
    let Reply::Environments { environments } = call(&h, Request::ListEnvironments).await.unwrap()
    else {
        panic!("no environments")
    };
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "prod"]);
    assert_eq!(
        environments[0].release.as_ref().unwrap().revision,
        &commit[..12]
    );
    h.shutdown().await;
    // A Flux object in dev's cluster, for `envs` to print as `flux get` does.
    let ks: Api<kube::api::DynamicObject> = Api::namespaced_with(
        c.clone(),
        "shop",
        &pipedeck::env::kubernetes::flux::resource("Kustomization").unwrap(),
    );
    ks.create(
        &Default::default(),
        &serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "shop"}, "spec": {"interval": "5m"}}))
        .unwrap(),
    )
    .await
    .unwrap();

    // The CLI, on its own engine.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipedeck"))
        .arg("envs")
        .env("PIPEDECK_DATA_DIR", &ws.data)
        .env("PIPEDECK_CONFIG", ws.data.join("none.toml"))
        .env("PIPEDECK_WORKSPACE", &ws.root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("dev/shop"), "{text}");
    assert!(
        text.contains(&format!("{} · 100% traffic", &commit[..12])),
        "{text}"
    );
    assert!(text.contains("prod/shop · unreachable"), "{text}");
    assert!(text.contains("error: cluster `prod`:"), "{text}");
    assert!(
        text.contains(
            "Kustomization/shop/apps ready False · suspended False · - · waiting to be reconciled"
        ),
        "{text}"
    );
    // `flux get`: the same object in flux get's columns; the environments it
    // cannot show say why.
    let flux_get = |env: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipedeck"))
            .args(["flux", "get", env])
            .env("PIPEDECK_DATA_DIR", &ws.data)
            .env("PIPEDECK_CONFIG", ws.data.join("none.toml"))
            .env("PIPEDECK_WORKSPACE", &ws.root)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = flux_get("dev");
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("NAME                     REVISION  SUSPENDED  READY  MESSAGE\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "Kustomization/shop/apps            False      False  waiting to be reconciled"
        ),
        "{out}"
    );
    let (ok, out, err) = flux_get("prod");
    assert!(!ok);
    assert!(
        err.contains("pipedeck: cannot read the Flux objects of prod: "),
        "{out}{err}"
    );
    let (ok, _, err) = flux_get("qa");
    assert!(!ok);
    assert!(
        err.contains("there is no environment qa (there are: dev, prod)"),
        "{err}"
    );
    ctl.abort();
}

async fn action_log(
    h: &pipedeck::engine::EngineHandle,
    id: &str,
    action: &str,
) -> (String, String) {
    let a = actions(h, "p", id)
        .await
        .into_iter()
        .find(|a| a.action_name == action)
        .unwrap();
    let Reply::LogEvents { page } = call(
        h,
        Request::GetLogEvents {
            log: pipedeck::api::logs::LogRef::action(a.action_execution_id.clone()),
            start_line: Some(0),
            limit: 500,
        },
    )
    .await
    .unwrap() else {
        panic!("no log")
    };
    (
        page.lines.join("\n"),
        format!("{:?} {:?}", a.status, a.summary),
    )
}

const MANIFEST: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: $IMAGE_REPOSITORY:${IMAGE_TAG}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eks_action_applies_manifests_with_variables_and_waits_for_the_rollout() {
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(
        dir.path(),
        &[(
            "arn:aws:eks:eu-west-1:123456789012:cluster/shop-dev",
            &fake.url,
        )],
        &[],
    );
    let c = kube_support::client(&kc, "arn:aws:eks:eu-west-1:123456789012:cluster/shop-dev").await;
    let ctl = {
        let c = c.clone();
        tokio::spawn(async move {
            let api: Api<KDeployment> = Api::namespaced(c.clone(), "shop");
            let mut seen = 0;
            loop {
                if let Ok(d) = api.get("web").await {
                    let g = d.metadata.generation.unwrap_or(0);
                    if g != seen {
                        seen = g;
                        controller_step(&c, "web", 2, None).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    let vars = r#"[{\"name\": \"IMAGE_TAG\", \"value\": \"v7\"}, {\"name\": \"IMAGE_REPOSITORY\", \"value\": \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/web\"}]"#;
    let eks = format!(
        r#"{{"name": "DeployEKS", "actionTypeId": {{"category": "Deploy", "owner": "AWS", "provider": "EKS", "version": "1"}},
        "configuration": {{"ClusterName": "shop-dev", "Namespace": "shop", "ManifestFiles": "k8s/app.yaml", "EnvironmentVariables": "{vars}"}},
        "inputArtifacts": [{{"name": "Src"}}]}}"#
    );
    let flux_eks = r#"{"name": "DeployFlux", "runOrder": 2, "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "EKS", "version": "1"},
        "configuration": {"ClusterName": "shop-dev", "Namespace": "shop", "ManifestFiles": "k8s/flux.yaml"},
        "inputArtifacts": [{"name": "Src"}]}"#;
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Deploy", &[eks, flux_eks.to_owned()], "")],
    );
    let kcs = kc.display().to_string();
    let flux_owned = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    kustomize.toolkit.fluxcd.io/name: apps\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\nspec:\n  selector: {app: web}\n";
    let ws = workspace(
        &p,
        &format!(
            "[environments.dev]\nkind = \"kubernetes\"\ncontext = \"arn:aws:eks:eu-west-1:123456789012:cluster/shop-dev\"\nkubeconfig = \"{kcs}\"\nnamespace = \"shop\"\nworkload = \"web\"\nrollout_timeout_seconds = 20\n"
        ),
        &[("k8s/app.yaml", MANIFEST), ("k8s/flux.yaml", flux_owned)],
    );
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Failed).await;
    let (log, status) = action_log(&h, &id, "DeployEKS").await;
    assert!(status.starts_with("Succeeded"), "{status}\n{log}");
    for line in [
        "Logging in to Amazon EKS cluster.",
        "Replacing environment variable IMAGE_TAG with v7 in k8s/app.yaml",
        "Replacing environment variable IMAGE_REPOSITORY with 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web in k8s/app.yaml",
        "Applying Kubernetes manifests.",
        "deployment.apps/web serverside-applied",
        "service/web serverside-applied",
        "Resources to watch: [ web ]",
        "Running command: kubectl rollout status -w deployment.apps/web -n shop",
        "deployment \"web\" successfully rolled out",
        "Action completed.",
    ] {
        assert!(log.contains(line), "missing {line:?} in\n{log}");
    }
    let api: Api<KDeployment> = Api::namespaced(c.clone(), "shop");
    let image = api
        .get("web")
        .await
        .unwrap()
        .spec
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap();
    assert_eq!(image, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:v7");
    // The Flux-labelled object is refused before anything changes.
    let (log, status) = action_log(&h, &id, "DeployFlux").await;
    assert!(status.starts_with("Failed"), "{status}");
    assert!(
        log.contains("service/web is managed by Flux (Kustomization/flux-system/apps)")
            && log.contains("flux reconcile kustomization apps -n flux-system"),
        "{log}"
    );
    h.shutdown().await;
    ctl.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_reconcile_suspend_and_resume_go_through_the_engine_into_the_audit_trail() {
    use pipedeck::api::FluxOperation;
    let fake = FakeCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &[("dev", &fake.url)], &[]);
    let c = kube_support::client(&kc, "dev").await;
    create_deployment(&c, deployment("web", "web", "shop/web:v1", 1, json!({}))).await;
    controller_step(&c, "web", 1, None).await;
    let ar = pipedeck::env::kubernetes::flux::resource("Kustomization").unwrap();
    let ks: Api<kube::api::DynamicObject> = Api::namespaced_with(c.clone(), "shop", &ar);
    ks.create(
        &kube::api::PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "shop"}, "spec": {"interval": "10m"}}))
        .unwrap(),
    )
    .await
    .unwrap();
    // The kustomize-controller's part: echo the request, report Ready.
    let ctl = {
        let ks = ks.clone();
        tokio::spawn(async move {
            loop {
                let o = ks.get("apps").await.unwrap();
                let asked = o
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("reconcile.fluxcd.io/requestedAt").cloned());
                if let Some(t) = asked
                    && o.data["status"]["lastHandledReconcileAt"].as_str() != Some(t.as_str())
                {
                    ks.patch_status("apps", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(json!({"status": {
                        "lastHandledReconcileAt": t, "lastAppliedRevision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
                        "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                                        "message": "Applied revision: main@sha1:0123456789abcdef0123456789abcdef01234567"}]}})))
                        .await
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let deploy = r#"{"name": "Deploy-Dev", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "EKS", "version": "1"},
        "configuration": {"ClusterName": "dev"}, "inputArtifacts": [{"name": "Src"}]}"#;
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Deploy", &[deploy.to_owned()], "")],
    );
    let kcs = kc.display().to_string();
    let ws = workspace(
        &p,
        &format!(
            "[environments.dev]\nkind = \"kubernetes\"\ncontext = \"dev\"\nkubeconfig = \"{kcs}\"\nnamespace = \"shop\"\nworkload = \"web\"\nprotected = true\n"
        ),
        &[("VERSION", "v1")],
    );
    let h = ws.engine();
    // The environments start with the engine, on their own.
    for _ in 0..200 {
        if let Ok(Reply::Environments { environments }) = call(&h, Request::ListEnvironments).await
            && !environments.is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let flux = |object: &str, operation| Request::FluxObject {
        environment_name: "dev".into(),
        object: object.into(),
        operation,
    };
    let say = |r: Result<Reply, pipedeck::api::ApiError>| match r {
        Ok(Reply::Message { message }) => Ok(message),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err((e.code, e.message)),
    };
    assert_eq!(
        say(call(&h, flux("ks/apps", FluxOperation::Suspend)).await),
        Ok("Kustomization shop/apps suspended".into())
    );
    assert_eq!(ks.get("apps").await.unwrap().data["spec"]["suspend"], true);
    let (code, message) =
        say(call(&h, flux("Kustomization/apps", FluxOperation::Reconcile)).await).unwrap_err();
    assert_eq!(code, "FluxObjectSuspended");
    assert!(message.ends_with("resource is suspended"), "{message}");
    assert_eq!(
        say(call(&h, flux("Kustomization/shop/apps", FluxOperation::Resume)).await),
        Ok("Kustomization shop/apps resumed".into())
    );
    let reconciled = say(call(&h, flux("ks/apps", FluxOperation::Reconcile)).await).unwrap();
    assert_eq!(
        reconciled,
        "Kustomization shop/apps reconciled: Applied revision: main@sha1:01234567"
    );
    // Bad names and other namespaces are refused before the cluster is asked.
    let (code, message) =
        say(call(&h, flux("Bucket/apps", FluxOperation::Reconcile)).await).unwrap_err();
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("KIND one of Kustomization (ks), HelmRelease (hr), GitRepository"),
        "{message}"
    );
    let (_, message) =
        say(call(&h, flux("ks/flux-system/infra", FluxOperation::Suspend)).await).unwrap_err();
    assert!(
        message.contains("outside namespace shop of environment dev"),
        "{message}"
    );
    let (code, _) = say(call(
        &h,
        Request::FluxObject {
            environment_name: "staging".into(),
            object: "ks/apps".into(),
            operation: FluxOperation::Suspend,
        },
    )
    .await)
    .unwrap_err();
    assert_eq!(code, "EnvironmentNotFound");

    // Every one is in the audit trail, with its outcome.
    let Reply::Events { events, .. } = call(&h, Request::lookup_events(20)).await.unwrap() else {
        panic!("no events")
    };
    let trail: Vec<(String, Option<String>)> = events
        .iter()
        .rev()
        .filter(|e| e.event_name.contains("Flux"))
        .map(|e| (e.event_name.clone(), e.error_code.clone()))
        .collect();
    let s = |x: &str| x.to_owned();
    assert_eq!(
        trail,
        [
            (s("SuspendFluxObject"), None),
            (
                s("ReconcileFluxObject"),
                Some(s("FluxObjectSuspendedException"))
            ),
            (s("ResumeFluxObject"), None),
            (s("ReconcileFluxObject"), None),
            (s("ReconcileFluxObject"), Some(s("ValidationException"))),
            (s("SuspendFluxObject"), Some(s("ValidationException"))),
            (
                s("SuspendFluxObject"),
                Some(s("EnvironmentNotFoundException"))
            ),
        ]
    );
    let audited = events
        .iter()
        .find(|e| e.event_name == "ReconcileFluxObject" && e.error_code.is_none())
        .unwrap();
    assert_eq!(audited.request_parameters["object"], "ks/apps");
    // The environment's own events say what was done.
    let Reply::Environments { environments } = call(&h, Request::ListEnvironments).await.unwrap()
    else {
        panic!("no environments")
    };
    assert!(
        environments[0]
            .events
            .iter()
            .any(|e| e.kind == "flux" && e.message == "Kustomization shop/apps suspended"),
        "{:?}",
        environments[0].events
    );
    // Read-only: refused like every mutation.
    h.set_readonly();
    let (code, message) = say(call(&h, flux("ks/apps", FluxOperation::Suspend)).await).unwrap_err();
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains("`SuspendFluxObject` is refused"),
        "{message}"
    );
    assert_eq!(ks.get("apps").await.unwrap().data["spec"]["suspend"], false);
    h.shutdown().await;

    // The CLI, on its own engine.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipedeck"))
        .args(["flux", "suspend", "dev", "hr/web"])
        .env("PIPEDECK_DATA_DIR", &ws.data)
        .env("PIPEDECK_CONFIG", ws.data.join("none.toml"))
        .env("PIPEDECK_WORKSPACE", &ws.root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("helmreleases") && err.contains("not found"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipedeck"))
        .args(["flux", "suspend", "dev", "ks/apps"])
        .env("PIPEDECK_DATA_DIR", &ws.data)
        .env("PIPEDECK_CONFIG", ws.data.join("none.toml"))
        .env("PIPEDECK_WORKSPACE", &ws.root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Kustomization shop/apps suspended"
    );
    assert_eq!(ks.get("apps").await.unwrap().data["spec"]["suspend"], true);
    ctl.abort();
}
