//! A kube client for one kubeconfig context, built off the caller's task
//! (an `exec` user such as `aws eks get-token` runs while the client is
//! built). Exec users never get the terminal (`interactiveMode: Never`):
//! the TUI owns it, and the plugin's stderr comes back in the error.

use kube::config::{ExecInteractiveMode, KubeConfigOptions, Kubeconfig};

use crate::config::workspace::KubernetesSpec;

/// Builds a client for the spec's context, or says why not in a sentence
/// fit for the environment's panel.
pub async fn connect(spec: &KubernetesSpec) -> Result<kube::Client, String> {
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Handle::current();
        rt.block_on(build(&spec))
    })
    .await
    .map_err(|e| format!("building the client failed: {e}"))?
}

async fn build(spec: &KubernetesSpec) -> Result<kube::Client, String> {
    let mut kc = match &spec.kubeconfig {
        Some(p) => {
            Kubeconfig::read_from(p).map_err(|e| format!("kubeconfig {}: {e}", p.display()))?
        }
        None => Kubeconfig::read().map_err(|e| format!("kubeconfig: {e}"))?,
    };
    for user in &mut kc.auth_infos {
        if let Some(exec) = user.auth_info.as_mut().and_then(|a| a.exec.as_mut()) {
            exec.interactive_mode = Some(ExecInteractiveMode::Never);
        }
    }
    if !kc.contexts.iter().any(|c| c.name == spec.context) {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "context `{}` is not in the kubeconfig (it has: {})",
            spec.context,
            known.join(", ")
        ));
    }
    let opts = KubeConfigOptions {
        context: Some(spec.context.clone()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| format!("context `{}`: {e}", spec.context))?;
    config.default_namespace = spec.namespace.clone();
    config.connect_timeout = Some(std::time::Duration::from_secs(5));
    kube::Client::try_from(config).map_err(|e| describe(&e))
}

/// An API error in words: Unauthorized is about EKS access entries, an
/// exec plugin's failure carries its stderr.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 401 => format!(
            "Unauthorized: the API server refused the credentials ({}); on EKS the user needs \
             an access entry for this cluster (aws eks create-access-entry), not only IAM",
            s.message
        ),
        kube::Error::Api(s) if s.code == 403 => format!("Forbidden: {}", s.message),
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        kube::Error::Auth(a) => format!("authentication failed: {a}"),
        other => {
            let mut msg = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                let t = s.to_string();
                if !msg.contains(&t) {
                    msg.push_str(": ");
                    msg.push_str(&t);
                }
                src = s.source();
            }
            msg
        }
    }
}
