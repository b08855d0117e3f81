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
