//! Stage conditions (V2): `beforeEntry`, `onSuccess`, `onFailure` rules
//! that make sense on one machine: VariableCheck, Commands and
//! DeploymentWindow. A condition passes only if all its rules pass.
//! Rules that need AWS (CloudWatchAlarm, CodeBuild, LambdaInvoke) fail
//! with a message that says so, rather than passing silently.

use std::path::Path;
use std::process::Stdio;

use regex::Regex;

use super::vars::{Scope, resolve};
use crate::model::pipeline::Rule;

/// The outcome of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    pub rule: String,
    pub passed: bool,
    pub message: String,
}

/// Evaluates every rule (all are reported, even after one fails).
pub async fn evaluate(rules: &[Rule], scope: &Scope, cwd: &Path) -> Vec<RuleResult> {
    let mut out = Vec::new();
    for rule in rules {
        let (passed, message) = match rule.rule_type_id.provider.as_str() {
            "VariableCheck" => variable_check(rule, scope),
            "DeploymentWindow" => deployment_window(rule, std::time::SystemTime::now()),
            "Commands" => commands(rule, scope, cwd).await,
            other => (
                false,
                format!(
                    "the {other} rule needs AWS and is not evaluated locally; \
                     use VariableCheck, Commands or DeploymentWindow"
                ),
            ),
        };
        out.push(RuleResult {
            rule: rule.name.clone(),
            passed,
            message,
        });
    }
    out
}

fn variable_check(rule: &Rule, scope: &Scope) -> (bool, String) {
    let cfg = &rule.configuration;
    let (Some(var), Some(value)) = (cfg.get("Variable"), cfg.get("Value")) else {
        return (
            false,
            "VariableCheck needs `Variable` and `Value` in its configuration".into(),
        );
    };
    let actual = match resolve(var, scope) {
        Ok(v) => v,
        Err(e) => return (false, e),
    };
    let op = cfg.get("Operator").map_or("EQ", String::as_str);
    let passed = match op {
        "EQ" => actual == *value,
        "NE" => actual != *value,
        "CONTAINS" => actual.contains(value.as_str()),
        "MATCHES" => match Regex::new(value) {
            Ok(r) => r.is_match(&actual),
            Err(e) => return (false, format!("Value is not a valid regex: {e}")),
        },
        other => {
            return (
                false,
                format!("unknown Operator `{other}` (EQ, NE, CONTAINS or MATCHES)"),
            );
        }
    };
    (
        passed,
        format!(
            "{var} = `{actual}` {op} `{value}`: {}",
            if passed { "true" } else { "false" }
        ),
    )
}

async fn commands(rule: &Rule, scope: &Scope, cwd: &Path) -> (bool, String) {
    if rule.commands.is_empty() {
        return (false, "the Commands rule lists no commands".into());
    }
    for cmd in &rule.commands {
        let cmd = match resolve(cmd, scope) {
            Ok(c) => c,
            Err(e) => return (false, e),
        };
        let out = tokio::process::Command::new("bash")
            .args(["-c", &cmd])
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await;
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let last = err.lines().last().unwrap_or("").trim();
                return (
                    false,
                    format!(
                        "`{cmd}` exited with {}{}",
                        o.status.code().unwrap_or(-1),
                        if last.is_empty() {
                            String::new()
                        } else {
                            format!(": {last}")
                        }
                    ),
                );
            }
            Err(e) => return (false, format!("`{cmd}` did not start: {e}")),
        }
    }
    (
        true,
        format!("{} command(s) succeeded", rule.commands.len()),
    )
}

fn deployment_window(rule: &Rule, now: std::time::SystemTime) -> (bool, String) {
    let Some(cron) = rule.configuration.get("Cron") else {
        return (
            false,
            "DeploymentWindow needs `Cron` in its configuration".into(),
        );
    };
    let tz = rule
        .configuration
        .get("TimeZone")
        .map_or("UTC", String::as_str);
    let offset = match tz_offset_minutes(tz) {
        Some(o) => o,
        None => {
            return (
                false,
                format!(
                    "TimeZone `{tz}`: only UTC and fixed offsets (+HH:MM) are supported locally"
                ),
            );
        }
    };
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        + offset * 60;
    match cron_matches(cron, secs) {
        Ok(true) => (true, format!("now is inside the window `{cron}` ({tz})")),
        Ok(false) => (false, format!("now is outside the window `{cron}` ({tz})")),
        Err(e) => (false, format!("Cron `{cron}`: {e}")),
    }
}

fn tz_offset_minutes(tz: &str) -> Option<i64> {
    match tz {
        "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Z" => return Some(0),
        _ => {}
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    Some(sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?))
}

/// Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Whether the minute containing `secs` (local seconds since the epoch)
/// matches a Quartz cron expression (`sec min hour dom month dow [year]`;
/// `dow` 1 = Sunday … 7 = Saturday, as CodePipeline's rule uses).
pub fn cron_matches(expr: &str, secs: i64) -> Result<bool, String> {
    let f: Vec<&str> = expr.split_whitespace().collect();
    if !(6..=7).contains(&f.len()) {
        return Err(format!(
            "expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), found {}",
            f.len()
        ));
    }
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let dow = (days + 4).rem_euclid(7) as u32 + 1; // 1970-01-01 was a Thursday.
    let minute = (tod / 60 % 60) as u32;
    let hour = (tod / 3600) as u32;
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let ok = field(f[1], minute, 0, 59, &[])?
        && field(f[2], hour, 0, 23, &[])?
        && field(f[3], day, 1, 31, &[])?
        && field(f[4], month, 1, 12, &MONTHS)?
        && field(f[5], dow, 1, 7, &DAYS)?
        && match f.get(6) {
            Some(y) => field(y, u32::try_from(year).unwrap_or(0), 1970, 2199, &[])?,
            None => true,
        };
    Ok(ok)
}

fn field(spec: &str, v: u32, lo: u32, hi: u32, names: &[&str]) -> Result<bool, String> {
    let num = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + lo);
        }
        let n: u32 = s
            .parse()
            .map_err(|_| format!("`{s}` is not a number or a name"))?;
        if n < lo || n > hi {
            return Err(format!("{n} is outside {lo}-{hi}"));
        }
        Ok(n)
    };
    for part in spec.split(',') {
        if part.contains(['L', 'W', '#'])
            && part.len() > 1
            && !names.iter().any(|n| part.contains(n))
        {
            return Err(format!("`{part}`: L, W and # are not supported locally"));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("`{s}` is not a step"))?
                    .max(1),
            ),
            None => (part, 1),
        };
        let (a, b) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((x, y)) => (num(x)?, num(y)?),
                None if step > 1 => (num(r)?, hi),
                None => {
                    let n = num(r)?;
                    (n, n)
                }
            },
        };
        if a <= v && v <= b && (v - a).is_multiple_of(step) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_weekday_business_hours() {
        // 2026-11-26 was a Thursday; 10:30 UTC.
        let t = 1_764_153_000 + 365 * 86_400; // 2026-11-26T10:30:00Z
        let (y, m, d) = civil_from_days(t / 86_400);
        assert_eq!((y, m, d), (2026, 11, 26));
        assert!(cron_matches("0 * 9-17 ? * MON-FRI *", t).unwrap());
        assert!(!cron_matches("0 * 9-17 ? * SAT,SUN *", t).unwrap());
        assert!(!cron_matches("0 * 0-8 ? * * *", t).unwrap());
        assert!(cron_matches("0 */15 10 ? * 5", t).unwrap());
        assert!(cron_matches("0 0 9 ? * *", t).is_ok());
        assert!(cron_matches("0 0 9 * *", t).is_err());
    }
}
