//! `[aws]` in the user config: the accounts pipedeck shows at once and how
//! often it polls them.
//!
//! ```toml
//! [aws]
//! running_interval_seconds = 3   # pipelines with a running execution (≥ 1)
//! idle_interval_seconds = 60
//! requests_per_second = 5        # per account and region
//!
//! [[aws.accounts]]
//! name = "prod"                  # default: the profile
//! profile = "prod"
//! regions = ["eu-west-1", "us-east-1"]
//! filter = "checkout"            # only pipelines whose name contains it
//! readonly = true
//! protected = ["Prod"]
//! ```

use std::time::Duration;

use crate::aws::AwsTarget;
use crate::aws::account::Intervals;

#[derive(Debug, Clone, Default)]
pub struct AwsConfig {
    pub accounts: Vec<AwsTarget>,
    pub intervals: Option<Intervals>,
}

/// Reads `[aws]`; problems are warnings, never a failure.
pub fn parse(v: &toml::Value, warnings: &mut Vec<String>) -> AwsConfig {
    let mut out = AwsConfig::default();
    let Some(t) = v.as_table() else {
        warnings.push("`aws` must be a table; ignored".into());
        return out;
    };
    let mut iv = Intervals::default();
    let secs = |k: &str| {
        t.get(k)
            .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
    };
    if let Some(s) = secs("running_interval_seconds") {
        iv.running = Duration::from_secs_f64(s.max(1.0));
    }
    if let Some(s) = secs("idle_interval_seconds") {
        iv.idle = Duration::from_secs_f64(s.max(1.0));
    }
    if let Some(s) = secs("requests_per_second") {
        iv.rate = s.max(0.1);
        iv.burst = (s * 2.0).max(1.0);
    }
    out.intervals = Some(iv.clamp());
    let strs = |v: Option<&toml::Value>| -> Vec<String> {
        v.and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (i, a) in t
        .get("accounts")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(a) = a.as_table() else {
            warnings.push(format!("aws.accounts[{i}] must be a table; ignored"));
            continue;
        };
        let s = |k: &str| a.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let profile = s("profile");
        let label = s("name")
            .or(profile.clone())
            .unwrap_or_else(|| format!("account{}", i + 1));
        let mut regions = strs(a.get("regions"));
        if let Some(r) = s("region") {
            regions.push(r);
        }
        let regions: Vec<Option<String>> = if regions.is_empty() {
            vec![None]
        } else {
            regions.into_iter().map(Some).collect()
        };
        for region in regions {
            out.accounts.push(AwsTarget {
                label: label.clone(),
                profile: profile.clone(),
                region,
                endpoint_url: s("endpoint_url"),
                filter: s("filter"),
                readonly: a.get("readonly").and_then(|v| v.as_bool()).unwrap_or(false),
                protected: strs(a.get("protected")),
                no_retries: false,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_expand_by_region() {
        let v: toml::Value = toml::from_str(
            r#"
running_interval_seconds = 0.2
[[accounts]]
profile = "prod"
regions = ["eu-west-1", "us-east-1"]
readonly = true
[[accounts]]
name = "dev"
profile = "dev-admin"
"#,
        )
        .unwrap();
        let mut w = Vec::new();
        let c = parse(&v, &mut w);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.accounts.len(), 3);
        assert_eq!(c.accounts[1].region.as_deref(), Some("us-east-1"));
        assert!(c.accounts[0].readonly);
        assert_eq!(c.accounts[2].label, "dev");
        assert_eq!(c.accounts[2].region, None);
        assert_eq!(
            c.intervals.unwrap().running,
            Duration::from_secs(1),
            "never below 1 s"
        );
    }
}
