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
    assert_eq!(d.status, pipedeck::api::types::ActionStatus::Succeeded, "{d:?}");
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
