//! `pipedeck flux get ENV`: a kubernetes environment's Flux objects as
//! `flux get all` lists them, the most pressing first.

use std::process::ExitCode;

use clap::Args;
use color_eyre::eyre::Result;

use super::common::print_json;
use super::status::read_envs;
use crate::api::env::FluxStatus;
use crate::config::workspace::Workspace;

#[derive(Args, Debug)]
pub struct FluxGetArgs {
    /// The kubernetes environment (e.g. prod)
    pub environment: String,
    /// The objects as JSON (the kinds installed, the objects, the read error)
    #[arg(long)]
    pub json: bool,
}

pub async fn flux_get(ws: Workspace, a: FluxGetArgs) -> Result<ExitCode> {
    let list = match read_envs(&ws).await? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let Some(e) = list.iter().find(|e| e.name == a.environment) else {
        let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
        eprintln!(
            "pipedeck: there is no environment {} (there are: {})",
            a.environment,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
        return Ok(ExitCode::FAILURE);
    };
    if e.kind != "kubernetes" {
        eprintln!(
            "pipedeck: {} is a {} environment: Flux objects are read from kubernetes environments",
            e.name, e.kind
        );
        return Ok(ExitCode::FAILURE);
    }
    let Some(f) = &e.flux else {
        let why: Vec<&str> = e
            .events
            .iter()
            .filter(|ev| ev.kind == "error")
            .map(|ev| ev.message.as_str())
            .collect();
        eprintln!(
            "pipedeck: the Flux objects of {} have not been read yet{}",
            e.name,
            if why.is_empty() {
                String::new()
            } else {
                format!(": {}", why.join("; "))
            }
        );
        return Ok(ExitCode::FAILURE);
    };
    if a.json {
        print_json(f);
        return Ok(ExitCode::SUCCESS);
    }
    // A read that failed: what was read before it, if anything, and why.
    if let Some(why) = &f.error {
        eprintln!(
            "pipedeck: cannot read the Flux objects of {}: {why}",
            e.name
        );
        if f.is_installed() {
            print!("{}", table(f));
        }
        return Ok(ExitCode::FAILURE);
    }
    print!("{}", table(f));
    Ok(ExitCode::SUCCESS)
}

/// `flux get`'s columns: NAME (KIND/NAMESPACE/NAME), REVISION (or the
/// image an ImagePolicy picked, or an ImageRepository's last scan),
/// SUSPENDED, READY, MESSAGE; then what cannot be shown.
fn table(f: &FluxStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if !f.is_installed() {
        out.push_str("Flux is not installed in this cluster\n");
        return out;
    }
    let rows: Vec<[String; 5]> = f
        .objects
        .iter()
        .map(|o| {
            [
                o.id(),
                o.detail(),
                if o.suspended { "True" } else { "False" }.to_owned(),
                o.ready
                    .map_or("Unknown", |r| if r { "True" } else { "False" })
                    .to_owned(),
                o.message.clone(),
            ]
        })
        .collect();
    let head = ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"].map(str::to_owned);
    let mut width = [0usize; 4];
    for r in std::iter::once(&head).chain(&rows) {
        for (w, c) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&head).chain(&rows) {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3]
        );
    }
    if f.objects.is_empty() {
        out.push_str("no Flux objects\n");
    }
    let missing = f.missing();
    if !missing.is_empty() {
        let _ = writeln!(out, "not installed: {}", missing.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::env::FluxObject;

    fn object(kind: &str, name: &str, ready: Option<bool>) -> FluxObject {
        FluxObject {
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
            ready,
            reason: None,
            since: None,
            revision: Some("main@sha1:67e2c98a".into()),
            message: "Applied revision: main@sha1:67e2c98a".into(),
            suspended: false,
            image: None,
            last_scan: None,
            tags: None,
        }
    }

    #[test]
    fn the_table_is_flux_gets_columns_aligned() {
        let mut policy = object("ImagePolicy", "web", Some(true));
        policy.image = Some("ghcr.io/shop/web:1.4.2".into());
        policy.message = "resolved".into();
        let f = FluxStatus {
            installed: vec!["Kustomization".into(), "ImagePolicy".into()],
            objects: vec![object("Kustomization", "apps", None), policy],
            error: None,
        };
        assert_eq!(
            table(&f),
            "NAME                     REVISION                       SUSPENDED  READY    MESSAGE\n\
             Kustomization/shop/apps  main@sha1:67e2c98a             False      Unknown  Applied revision: main@sha1:67e2c98a\n\
             ImagePolicy/shop/web     image: ghcr.io/shop/web:1.4.2  False      True     resolved\n\
             not installed: GitRepository, OCIRepository, HelmRelease, ImageRepository\n"
        );
    }

    #[test]
    fn no_crd_at_all_is_flux_not_installed() {
        assert_eq!(
            table(&FluxStatus::default()),
            "Flux is not installed in this cluster\n"
        );
    }
}
