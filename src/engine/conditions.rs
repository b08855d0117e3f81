//! Stage conditions (V2): `beforeEntry`, `onSuccess`, `onFailure` rules
//! that make sense on one machine: VariableCheck, Commands and
//! DeploymentWindow. A condition passes only if all its rules pass.
//! Rules that need AWS (CloudWatchAlarm, CodeBuild, LambdaInvoke) fail
//! with a message that says so, rather than passing silently.

use std::path::Path;
use std::process::Stdio;

use croner::parser::{CronParser, Seconds, Year};
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
            "DeploymentWindow" => deployment_window(rule, jiff::Timestamp::now()),
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

fn deployment_window(rule: &Rule, now: jiff::Timestamp) -> (bool, String) {
    let Some(cron) = rule.configuration.get("Cron") else {
        return (
            false,
            "DeploymentWindow needs `Cron` in its configuration".into(),
        );
    };
    let tz_name = rule
        .configuration
        .get("TimeZone")
        .map_or("UTC", String::as_str);
    let tz = match time_zone(tz_name) {
        Ok(tz) => tz,
        Err(e) => return (false, format!("TimeZone `{tz_name}`: {e}")),
    };
    let window = match parse_cron(cron) {
        Ok(c) => c,
        Err(e) => return (false, format!("Cron `{cron}`: {e}")),
    };
    let local = now.to_zoned(tz);
    let at = local.strftime("%Y-%m-%d %H:%M:%S %Z");
    match window.is_time_matching(&local) {
        Ok(true) => (
            true,
            format!("now ({at}) is inside the window `{cron}` ({tz_name})"),
        ),
        Ok(false) => {
            let next = window
                .find_next_occurrence(&local, false)
                .map(|n| format!("; it opens next at {}", n.strftime("%Y-%m-%d %H:%M:%S %Z")))
                .unwrap_or_default();
            (
                false,
                format!("now ({at}) is outside the window `{cron}` ({tz_name}){next}"),
            )
        }
        Err(e) => (false, format!("Cron `{cron}`: {e}")),
    }
}

/// A DeploymentWindow `Cron`: Quartz's syntax, as CodePipeline takes it
/// (`sec min hour day-of-month month day-of-week [year]`; `?`, `L`, `W`,
/// `#`, day-of-week 1 = Sunday … 7 = Saturday, steps such as `0/15`).
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Optional)
        .alternative_weekdays(true)
        .sloppy_ranges(true)
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
}

/// A DeploymentWindow `TimeZone`: an IANA name (`Europe/Berlin`), `UTC`,
/// or a fixed offset (`+05:30`).
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    if let Some(offset) = fixed_offset(name) {
        return Ok(jiff::tz::TimeZone::fixed(offset));
    }
    jiff::tz::TimeZone::get(name).map_err(|e| e.to_string())
}

fn fixed_offset(name: &str) -> Option<jiff::tz::Offset> {
    let (sign, rest) = match name.strip_prefix('+') {
        Some(r) => (1, r),
        None => (-1, name.strip_prefix('-')?),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let secs = sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60);
    jiff::tz::Offset::from_seconds(secs).ok()
}

/// Whether instant `at` is inside the window `expr` in zone `tz`.
pub fn in_window(expr: &str, tz: &str, at: jiff::Timestamp) -> Result<bool, String> {
    let window = parse_cron(expr)?;
    let tz = time_zone(tz)?;
    window
        .is_time_matching(&at.to_zoned(tz))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn utc(expr: &str, t: &str) -> bool {
        in_window(expr, "UTC", at(t)).unwrap()
    }

    #[test]
    fn cron_weekday_business_hours() {
        // 2026-11-26 is a Thursday.
        let t = "2026-11-26T10:30:00Z";
        assert!(utc("0 * 9-17 ? * MON-FRI *", t));
        assert!(!utc("0 * 9-17 ? * SAT,SUN *", t));
        assert!(!utc("0 * 0-8 ? * * *", t));
        assert!(utc("0 */15 10 ? * 5", t));
        assert!(parse_cron("0 0 9 ? * *").is_ok());
        assert!(parse_cron("0 0 9 * *").is_err());
    }

    #[test]
    fn the_seconds_field_is_evaluated() {
        // `*` (what CodePipeline documents): every second of the window.
        assert!(utc("* * 9-17 ? * MON-FRI *", "2026-11-26T10:30:27Z"));
        // A seconds list or step narrows it, as Quartz reads it.
        assert!(utc("0/15 * * ? * * *", "2026-11-26T10:30:45Z"));
        assert!(!utc("0/15 * * ? * * *", "2026-11-26T10:30:46Z"));
        assert!(utc("5-10 * * ? * * *", "2026-11-26T10:30:07Z"));
        assert!(!utc("5-10 * * ? * * *", "2026-11-26T10:30:11Z"));
    }

    #[test]
    fn l_is_the_last_day_of_the_month_or_the_last_weekday_of_a_kind() {
        assert!(utc("* * * L * ? *", "2026-02-28T12:00:00Z"));
        // 2028 is a leap year: the 28th is not the last day.
        assert!(!utc("* * * L * ? *", "2028-02-28T12:00:00Z"));
        assert!(utc("* * * L * ? *", "2028-02-29T12:00:00Z"));
        // `6L`: the last Friday (6 in Quartz's numbering) of the month.
        assert!(utc("* * * ? * 6L *", "2026-11-27T12:00:00Z"));
        assert!(!utc("* * * ? * 6L *", "2026-11-20T12:00:00Z"));
    }

    #[test]
    fn w_is_the_weekday_nearest_the_day() {
        // 2026-08-15 is a Saturday: 15W is Friday the 14th.
        assert!(utc("* * * 15W * ? *", "2026-08-14T12:00:00Z"));
        assert!(!utc("* * * 15W * ? *", "2026-08-15T12:00:00Z"));
        // A weekday is its own nearest weekday.
        assert!(utc("* * * 26W * ? *", "2026-11-26T12:00:00Z"));
    }

    #[test]
    fn hash_is_the_nth_weekday_of_the_month() {
        // `6#2`: the second Friday; December 2026's Fridays are 4, 11, 18, 25.
        assert!(utc("* * * ? * 6#2 *", "2026-12-11T12:00:00Z"));
        assert!(!utc("* * * ? * 6#2 *", "2026-12-04T12:00:00Z"));
        assert!(utc("* * * ? * FRI#1 *", "2026-12-04T12:00:00Z"));
    }

    #[test]
    fn the_window_is_read_in_its_time_zone() {
        // 04:00 UTC is 09:30 in Kolkata (+05:30, no DST).
        let t = at("2026-12-01T04:00:00Z");
        assert!(in_window("* 30 9 ? * * *", "Asia/Kolkata", t).unwrap());
        assert!(!in_window("* 30 9 ? * * *", "UTC", t).unwrap());
        assert!(in_window("* 30 9 ? * * *", "+05:30", t).unwrap());
        // 2026-11-26 10:30 UTC is 11:30 in Berlin (CET, +01:00).
        let t = at("2026-11-26T10:30:00Z");
        assert!(in_window("* * 11 ? * * *", "Europe/Berlin", t).unwrap());
        assert!(!in_window("* * 10 ? * * *", "Europe/Berlin", t).unwrap());
        let e = in_window("* * * ? * * *", "Mars/Olympus_Mons", t).unwrap_err();
        assert!(e.contains("Mars/Olympus_Mons"), "{e}");
    }

    #[test]
    fn daylight_saving_edges_follow_the_wall_clock() {
        let ny = "America/New_York";
        // Fall back (2026-11-01): 01:xx happens twice, and both are inside.
        assert!(in_window("* * 1 ? * * *", ny, at("2026-11-01T05:30:00Z")).unwrap()); // 01:30 EDT
        assert!(in_window("* * 1 ? * * *", ny, at("2026-11-01T06:30:00Z")).unwrap()); // 01:30 EST
        assert!(!in_window("* * 1 ? * * *", ny, at("2026-11-01T07:30:00Z")).unwrap()); // 02:30 EST
        // Spring forward (2026-03-08): 02:00 EST becomes 03:00 EDT, so no
        // instant is in a 02:xx window; 03:xx begins at 07:00 UTC.
        for t in [
            "2026-03-08T06:59:59Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:30:00Z",
        ] {
            assert!(!in_window("* * 2 ? * * *", ny, at(t)).unwrap(), "{t}");
        }
        assert!(in_window("* * 3 ? * * *", ny, at("2026-03-08T07:00:00Z")).unwrap());
        assert!(!in_window("* * 3 ? * * *", ny, at("2026-03-08T06:59:59Z")).unwrap());
    }

    #[test]
    fn a_rule_outside_its_window_says_when_it_opens() {
        let rule: Rule = Rule {
            name: "w".into(),
            rule_type_id: crate::model::pipeline::TypeId {
                category: "Rule".into(),
                owner: "AWS".into(),
                provider: "DeploymentWindow".into(),
                version: "1".into(),
            },
            configuration: [
                ("Cron".to_owned(), "* * 9-17 ? * MON-FRI *".to_owned()),
                ("TimeZone".to_owned(), "Europe/Berlin".to_owned()),
            ]
            .into(),
            input_artifacts: Vec::new(),
            commands: Vec::new(),
            region: None,
            role_arn: None,
            timeout_in_minutes: None,
        };
        // Saturday 2026-11-28, 12:00 in Berlin.
        let (passed, msg) = deployment_window(&rule, at("2026-11-28T11:00:00Z"));
        assert!(!passed);
        assert!(
            msg.contains("outside") && msg.contains("opens next at 2026-11-30 09:00:00 CET"),
            "{msg}"
        );
        let (passed, msg) = deployment_window(&rule, at("2026-11-26T11:00:00Z"));
        assert!(passed, "{msg}");
    }
}
