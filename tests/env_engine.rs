//! Deploy actions mapped to a local environment, through the engine:
//! deploy, redeploy, roll back, and come back after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use pipedeck::api::types::ExecutionStatus;
use pipedeck::api::{Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVER: &str = "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\nV = open('VERSION').read().strip()\nclass H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        b = V.encode()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(b)))\n        self.end_headers()\n        self.wfile.write(b)\n    def log_message(self, *a):\n        pass\nHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

async fn get(url: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let t = String::from_utf8_lossy(&out).into_owned();
    t.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()
}

async fn envs(h: &pipedeck::engine::EngineHandle) -> Vec<pipedeck::api::env::EnvironmentSummary> {
    for _ in 0..100 {
        if let Reply::Environments { environments } =
            call(h, Request::ListEnvironments).await.unwrap()
            && !environments.is_empty()
        {
            return environments;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("environments did not come up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_deploy_action_deploys_rolls_back_and_survives_a_restart() {
    let deploy = r#"{"name": "Deploy-Dev", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeployToECS", "version": "1"},
        "configuration": {"ApplicationName": "web", "DeploymentGroupName": "dev"},
        "inputArtifacts": [{"name": "Src"}]}"#;
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Deploy", &[deploy.to_owned()], "")],
    );
    let ws = workspace(
        &p,
        "[environments.dev]\nport = 0\ncommand = \"exec python3 server.py\"\nhealth_path = \"/\"\nhealth_interval_ms = 50\nhealthy_threshold = 1\nactions = [\"Deploy-Dev\"]\nauto_rollback = [\"DEPLOYMENT_FAILURE\"]\n",
        &[("server.py", SERVER), ("VERSION", "v1")],
    );
    let h = ws.engine();
    let mut rx = h.subscribe();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    // The deployment's progress was published as engine events.
    let mut changed = 0;
    while let Ok(ev) = rx.try_recv() {
        if matches!(ev, pipedeck::api::EngineEvent::EnvironmentChanged { ref environment_name } if environment_name == "dev")
        {
            changed += 1;
        }
    }
    assert!(changed >= 3, "{changed} EnvironmentChanged events");
    let e = envs(&h).await;
    assert_eq!(e[0].name, "dev");
    assert_eq!(get(&e[0].url).await, "v1");
    let acts = actions(&h, "p", &id).await;
    let d = acts.iter().find(|a| a.action_name == "Deploy-Dev").unwrap();
    assert!(
        d.summary.as_deref().unwrap().contains("deployed"),
        "{:?}",
        d.summary
    );
    // A second release.
    commit(&ws.repo(), &[("VERSION", "v2")], "v2");
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let url = envs(&h).await[0].url.clone();
    assert_eq!(get(&url).await, "v2");
    // Roll the environment back: the previous release comes back.
    let r = call(
        &h,
        Request::RollbackEnvironment {
            environment_name: "dev".into(),
        },
    )
    .await
    .unwrap();
    assert!(matches!(r, Reply::Message { .. }), "{r:?}");
    assert_eq!(get(&url).await, "v1");
    let err = call(
        &h,
        Request::RollbackEnvironment {
            environment_name: "nope".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "EnvironmentNotFound");
    h.shutdown().await;
    // A new engine brings the environment back on its last release.
    let h = ws.engine();
    let mut served = String::new();
    for _ in 0..100 {
        let e = envs(&h).await;
        if e[0].live.is_some()
            && e[0]
                .variant("blue")
                .or(e[0].variant("green"))
                .is_some_and(|g| g.ready > 0)
        {
            served = get(&e[0].url).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, "v1");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_left_by_a_crashed_engine_are_stopped_on_the_next_start() {
    use std::os::unix::process::CommandExt;
    let deploy = r#"{"name": "Deploy-Dev", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeployToECS", "version": "1"},
        "inputArtifacts": [{"name": "Src"}]}"#;
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Deploy", &[deploy.to_owned()], "")],
    );
    let ws = workspace(
        &p,
        "[environments.dev]\nport = 0\ncommand = \"exec python3 server.py\"\nactions = [\"Deploy-Dev\"]\n",
        &[("server.py", SERVER), ("VERSION", "v1")],
    );
    // A replica as a dead engine would have left it: marked with its pid file.
    let logs = ws.load().state_dir.join("envs").join("dev").join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let pid_file = logs.join("dev-blue-0.pid");
    let mut orphan = std::process::Command::new("sleep")
        .arg("60")
        .env("PIPEDECK_PGID_FILE", &pid_file)
        .process_group(0)
        .spawn()
        .unwrap();
    std::fs::write(&pid_file, orphan.id().to_string()).unwrap();
    // An unrelated process with a recycled-looking pid file is left alone.
    let mut bystander = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::fs::write(logs.join("dev-green-0.pid"), bystander.id().to_string()).unwrap();
    let h = ws.engine();
    let _ = envs(&h).await;
    let mut gone = false;
    for _ in 0..100 {
        if orphan.try_wait().unwrap().is_some() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the orphaned replica still runs");
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "a process that is not ours was killed"
    );
    bystander.kill().unwrap();
    let _ = bystander.wait();
    h.shutdown().await;
}

const DEPLOY_D: &str = r#"{"name": "D", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeployToECS", "version": "1"},
    "inputArtifacts": [{"name": "Src"}]}"#;

/// Where `needle` starts in the workspace's pipedeck.toml, as `line:col`.
fn position_of(ws: &Ws, needle: &str) -> String {
    let text = std::fs::read_to_string(ws.root.join("pipedeck.toml")).unwrap();
    let offset = text.find(needle).unwrap();
    let line = text[..offset].matches('\n').count() + 1;
    let col = offset - text[..offset].rfind('\n').map_or(0, |n| n + 1) + 1;
    format!("{line}:{col}")
}

fn load_error(ws: &Ws) -> String {
    match pipedeck::config::workspace::Workspace::load(&ws.root, &ws.data) {
        Ok(_) => panic!("the workspace loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_environment_is_read_by_its_kind_and_local_is_the_default() {
    use pipedeck::config::workspace::EnvSpec;
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Deploy", &[DEPLOY_D.to_owned()], "")],
    );
    let ws = workspace(
        &p,
        "[environments.a]\nport = 0\ncommand = \"true\"\nprotected = true\n\n\
         [environments.b]\nkind = \"local\"\nport = 0\ncommand = \"true\"\nactions = [\"D\"]\n",
        &[("VERSION", "v1")],
    );
    let w = ws.load();
    let (a, b) = (&w.environments["a"], &w.environments["b"]);
    assert_eq!((a.kind(), b.kind()), ("local", "local"));
    assert!(a.protected && a.actions.is_empty());
    assert!(!b.protected && b.actions == ["D"]);
    let EnvSpec::Local(spec) = &b.spec else {
        panic!("b is local")
    };
    assert_eq!((spec.command.as_str(), spec.replicas), ("true", 1));
}

#[test]
fn an_unknown_or_unbuilt_kind_is_refused_at_its_position_with_the_kinds_that_exist() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Deploy", &[DEPLOY_D.to_owned()], "")],
    );
    let file = |ws: &Ws| {
        ws.root
            .canonicalize()
            .unwrap()
            .join("pipedeck.toml")
            .display()
            .to_string()
    };

    // kubernetes is built: its own keys are checked, each at its position.
    let ws = workspace(
        &p,
        "[environments.prod]\nkind = \"kubernetes\"\ncontext = \"eks-prod\"\nworkload = \"web\"\nstrategy = \"Blue\"\n",
        &[("VERSION", "v1")],
    );
    let err = load_error(&ws);
    assert_eq!(
        err,
        format!(
            "{}:{}: environments.prod: unknown strategy `Blue`; one of RollingUpdate, BlueGreen, Canary",
            file(&ws),
            position_of(&ws, "\"Blue\"")
        )
    );
    let ws = workspace(
        &p,
        "[environments.prod]\nkind = \"kubernetes\"\ncontext = \"eks-prod\"\nworkload = \"web\"\nstrategy = \"BlueGreen\"\n",
        &[("VERSION", "v1")],
    );
    let err = load_error(&ws);
    assert_eq!(
        err,
        format!(
            "{}:{}: environments.prod: strategy `BlueGreen` needs `service`, the Service whose selector names the live slot",
            file(&ws),
            position_of(&ws, "\"BlueGreen\"")
        )
    );
    let ws = workspace(
        &p,
        "[environments.prod]\nkind = \"kubernetes\"\ncluster = \"eks-prod\"\n",
        &[("VERSION", "v1")],
    );
    let err = load_error(&ws);
    assert!(
        err.starts_with(&format!("{}:", file(&ws))) && err.contains("unknown field `cluster`"),
        "{err}"
    );

    let ws = workspace(
        &p,
        "[environments.dev]\nport = 0\ncommand = \"true\"\nkind = \"lokal\"\n",
        &[("VERSION", "v1")],
    );
    let err = load_error(&ws);
    assert_eq!(
        err,
        format!(
            "{}:{}: environments.dev: unknown kind `lokal` (did you mean `local`?); the kinds that exist: local, kubernetes",
            file(&ws),
            position_of(&ws, "\"lokal\"")
        )
    );

    // A local environment's own keys are still checked where they stand.
    let ws = workspace(
        &p,
        "[environments.dev]\nport = 0\ncommand = \"true\"\nreplica = 2\n",
        &[("VERSION", "v1")],
    );
    let err = load_error(&ws);
    assert!(
        err.starts_with(&format!(
            "{}:{}: environments.dev: unknown field `replica`",
            file(&ws),
            position_of(&ws, "replica = 2")
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_release_history_is_an_error_shown_and_never_overwritten() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Deploy", &[DEPLOY_D.to_owned()], "")],
    );
    let ws = workspace(
        &p,
        "[environments.dev]\nport = 0\ncommand = \"exec python3 server.py\"\nhealth_path = \"/\"\nhealth_interval_ms = 50\nhealthy_threshold = 1\nactions = [\"D\"]\n",
        &[("server.py", SERVER), ("VERSION", "v1")],
    );
    let file = ws
        .load()
        .state_dir
        .join("envs")
        .join("dev")
        .join("releases.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let corrupt = "[{\"id\": \"d-1\", \"revision\": ";
    std::fs::write(&file, corrupt).unwrap();
    let cause = format!("cannot read {}: ", file.display());

    let h = ws.engine();
    let e = &envs(&h).await[0];
    assert_eq!(e.release, None);
    let first = &e.events[0];
    assert_eq!(first.kind, "error");
    assert!(
        first.message.starts_with(&cause) && first.message.contains("EOF"),
        "the path and the parser's cause: {}",
        first.message
    );
    assert!(
        e.events.iter().any(|ev| ev
            .message
            .starts_with("the last release was not restored: cannot read")),
        "{:?}",
        e.events
    );

    // A deployment still runs, but is not recorded over the file.
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), corrupt);
    // The action's log followed the deployment's progress stream.
    let act = actions(&h, "p", &id)
        .await
        .into_iter()
        .find(|a| a.action_name == "D")
        .unwrap();
    let log = std::fs::read_to_string(
        ws.load()
            .state_dir
            .join("logs")
            .join(format!("{}.log", act.action_execution_id)),
    )
    .unwrap();
    for line in [
        "[Deploy] BeforeInstall: 0% of traffic on blue (",
        "[Deploy] Install: 0% of traffic on blue (",
        "[Deploy] AllowTraffic: 100% of traffic on blue (",
        "[Deploy] health: blue replica 0 is healthy",
        "[Deploy] error: release d-",
        "[Deploy] deployed ",
    ] {
        assert!(log.contains(line), "{line:?} not in\n{log}");
    }
    let e = &envs(&h).await[0];
    assert_eq!(get(&e.url).await, "v1");
    assert!(
        e.events
            .iter()
            .any(|ev| ev.kind == "error" && ev.message.contains("not recorded: cannot read")),
        "{:?}",
        e.events
    );
    let err = call(
        &h,
        Request::RollbackEnvironment {
            environment_name: "dev".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "UnableToRollbackEnvironment");
    assert!(err.message.starts_with(&cause), "{}", err.message);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), corrupt);
    h.shutdown().await;
}

/// An environment of another kind, as a later backend would plug in.
struct FakeCluster;

impl pipedeck::env::iface::Environment for FakeCluster {
    fn name(&self) -> &str {
        "cluster"
    }
    fn kind(&self) -> &'static str {
        "kubernetes"
    }
    fn summary(&self) -> pipedeck::api::env::EnvironmentSummary {
        pipedeck::api::env::EnvironmentSummary {
            name: "cluster".into(),
            kind: "kubernetes".into(),
            location: "eks-prod/web".into(),
            url: String::new(),
            strategy: "RollingUpdate".into(),
            protected: false,
            variants: Vec::new(),
            live: None,
            release: None,
            rollback_target: None,
            actions: Vec::new(),
            metrics: None,
            flux: None,
            deployment: None,
            events: Vec::new(),
        }
    }
    fn deploy(
        &self,
        _: pipedeck::env::iface::ReleaseRequest,
    ) -> pipedeck::env::iface::BoxFuture<
        '_,
        Result<pipedeck::env::iface::Deployment, pipedeck::env::iface::DeployError>,
    > {
        Box::pin(async {
            Err(pipedeck::env::iface::DeployError {
                code: "ConfigurationError",
                message: "not here".into(),
            })
        })
    }
    fn rollback(&self) -> pipedeck::env::iface::BoxFuture<'_, Result<String, String>> {
        Box::pin(async { Ok("undone to revision 3".into()) })
    }
    fn logs(&self) -> Vec<pipedeck::env::iface::EnvLog> {
        Vec::new()
    }
    fn shutdown(&self) -> pipedeck::env::iface::BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[tokio::test]
async fn environments_of_any_kind_are_held_behind_the_one_interface() {
    use pipedeck::env::manager::Environments;
    let factory =
        Environments::given(Environments::new([std::sync::Arc::new(FakeCluster)
            as std::sync::Arc<dyn pipedeck::env::iface::Environment>]));
    let envs = factory(None).await.unwrap();
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Deploy", &[DEPLOY_D.to_owned()], "")],
    );
    let ws = workspace(&p, "", &[("VERSION", "v1")]);
    let s = envs.summaries(&ws.load());
    assert_eq!(
        (s.len(), s[0].kind.as_str(), s[0].location.as_str()),
        (1, "kubernetes", "eks-prod/web")
    );
    assert_eq!(
        envs.rollback("cluster").await.unwrap(),
        "undone to revision 3"
    );
    assert_eq!(
        envs.rollback("nope").await.unwrap_err(),
        "no environment `nope`"
    );
    envs.shutdown().await;
}
