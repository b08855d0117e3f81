//! CloudTrail: the Audit screen's events (LookupEvents, EventSource
//! codepipeline.amazonaws.com, newest first, paged) and the diagnosis of a
//! failed CodeBuild action (the events of the build's role session
//! `AWSCodeBuild-<build uuid>` from a minute before its start to 15 minutes
//! after its end). Every call goes through the account's 2 calls/s budget.
//! Failed calls become the records the diagnosis already takes
//! (`AuditEvent`s with an error code and a message in IAM's words), so a
//! denied call is diagnosed by the same rule as a denial in a log.

use aws_sdk_cloudtrail::primitives::DateTime;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};

use super::account::Account;
use super::errors::is_access_denied;
use super::logs::BuildInfo;
use crate::api::{ApiError, AuditEvent, UserIdentity};
use crate::diagnose::{Evidence, Finding};

/// How long CloudTrail may take to deliver an event (AWS: "about 5
/// minutes … not guaranteed"; older documents said 15).
pub const DELIVERY_MS: i64 = 15 * 60 * 1000;

/// `ecr.amazonaws.com` → `ecr`.
fn service_prefix(source: &str) -> &str {
    source.split('.').next().unwrap_or(source)
}

/// One CloudTrail event as the contract's audit record. The message of a
/// denied call is put in IAM's words when CloudTrail's is terse ("Access
/// Denied"), naming the principal, the action and the resource.
pub fn to_audit(e: &aws_sdk_cloudtrail::types::Event) -> AuditEvent {
    let raw: serde_json::Value = e
        .cloud_trail_event()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(serde_json::Value::Null);
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let uid = raw.get("userIdentity").cloned().unwrap_or_default();
    let event_name = e
        .event_name()
        .map(str::to_owned)
        .or_else(|| s(&raw, "eventName"))
        .unwrap_or_default();
    let event_source = e
        .event_source()
        .map(str::to_owned)
        .or_else(|| s(&raw, "eventSource"))
        .unwrap_or_default();
    let arn = s(&uid, "arn").unwrap_or_default();
    let error_code = s(&raw, "errorCode");
    let mut error_message = s(&raw, "errorMessage");
    if let Some(code) = &error_code
        && is_access_denied(code)
        && !error_message
            .as_deref()
            .is_some_and(|m| m.contains("is not authorized to perform"))
    {
        let resource = e
            .resources()
            .iter()
            .find_map(|r| r.resource_name())
            .map(str::to_owned)
            .unwrap_or_default();
        let on = if resource.is_empty() {
            String::new()
        } else {
            format!(" on resource: {resource}")
        };
        error_message = Some(format!(
            "User: {arn} is not authorized to perform: {}:{event_name}{on} ({})",
            service_prefix(&event_source),
            error_message.as_deref().unwrap_or("Access Denied")
        ));
    }
    AuditEvent {
        event_version: s(&raw, "eventVersion").unwrap_or_else(|| "1.08".into()),
        event_id: e.event_id().unwrap_or_default().to_owned(),
        event_time: super::convert::time(e.event_time()),
        event_source,
        event_name,
        aws_region: s(&raw, "awsRegion").unwrap_or_default(),
        source_ip_address: s(&raw, "sourceIPAddress").unwrap_or_default(),
        user_agent: s(&raw, "userAgent").unwrap_or_default(),
        user_identity: UserIdentity {
            identity_type: s(&uid, "type").unwrap_or_default(),
            principal_id: s(&uid, "principalId").unwrap_or_default(),
            arn,
            account_id: s(&uid, "accountId").unwrap_or_default(),
            user_name: e.username().map(str::to_owned),
            invoked_by: s(&uid, "invokedBy"),
        },
        request_parameters: raw
            .get("requestParameters")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
        response_elements: raw.get("responseElements").cloned(),
        error_code,
        error_message,
        event_type: s(&raw, "eventType").unwrap_or_else(|| "AwsApiCall".into()),
        read_only: e.read_only().is_some_and(|r| r == "true"),
    }
}

impl Account {
    /// One LookupEvents page for one attribute.
    pub async fn lookup(
        &self,
        key: LookupAttributeKey,
        value: &str,
        window: Option<(i64, i64)>,
        max: u32,
        token: Option<String>,
    ) -> Result<(Vec<AuditEvent>, Option<String>), ApiError> {
        let attr = LookupAttribute::builder()
            .attribute_key(key)
            .attribute_value(value)
            .build()
            .map_err(|e| ApiError::new("ValidationException", e.to_string()))?;
        let ct = &self.clients.cloudtrail;
        let max = max.clamp(1, 50) as i32;
        let out = self
            .send_with(&self.trail_budget, "cloudtrail", "LookupEvents", || {
                let mut b = ct
                    .lookup_events()
                    .lookup_attributes(attr.clone())
                    .max_results(max)
                    .set_next_token(token.clone());
                if let Some((from, to)) = window {
                    b = b
                        .start_time(DateTime::from_millis(from))
                        .end_time(DateTime::from_millis(to));
                }
                b.send()
            })
            .await?;
        Ok((
            out.events().iter().map(to_audit).collect(),
            out.next_token().map(str::to_owned),
        ))
    }

    /// The Audit screen: CodePipeline's events, newest first, at most
    /// `max` (pages of 50, so 2 calls for 100).
    pub async fn pipeline_events(
        &self,
        max: u32,
        token: Option<String>,
    ) -> Result<(Vec<AuditEvent>, Option<String>), ApiError> {
        let mut out = Vec::new();
        let mut token = token;
        while (out.len() as u32) < max {
            let want = (max - out.len() as u32).min(50);
            let (page, next) = self
                .lookup(
                    LookupAttributeKey::EventSource,
                    "codepipeline.amazonaws.com",
                    None,
                    want,
                    token.clone(),
                )
                .await?;
            out.extend(page);
            match next {
                Some(n) if Some(&n) != token.as_ref() => token = Some(n),
                _ => return Ok((out, None)),
            }
        }
        Ok((out, token))
    }

    /// The failed calls of a build's role session in its window, as audit
    /// records, and the findings CloudTrail alone gives (events may still
    /// be arriving; nothing found is not "no problem").
    pub async fn build_trail(
        &self,
        build: &BuildInfo,
        now_ms: i64,
    ) -> Result<(Vec<AuditEvent>, Vec<Finding>), ApiError> {
        let uuid = build.id.rsplit(':').next().unwrap_or(&build.id);
        let session = format!("AWSCodeBuild-{uuid}");
        let start = build.start_ms.unwrap_or(now_ms) - 60_000;
        let end = build.end_ms.unwrap_or(now_ms);
        let to = (end + DELIVERY_MS).min(now_ms.max(start + 1));
        let mut events = Vec::new();
        let mut token = None;
        for _ in 0..4 {
            let (page, next) = self
                .lookup(
                    LookupAttributeKey::Username,
                    &session,
                    Some((start, to)),
                    50,
                    token.clone(),
                )
                .await?;
            events.extend(page);
            match next {
                Some(n) if Some(&n) != token.as_ref() => token = Some(n),
                _ => break,
            }
        }
        let failed: Vec<AuditEvent> = events
            .into_iter()
            .filter(|e| e.error_code.is_some())
            .collect();
        Ok((
            failed.clone(),
            trail_findings(&session, &failed, end, now_ms),
        ))
    }
}

/// What CloudTrail's answer says by itself: while events may still be
/// arriving, a finding says so; an empty answer afterwards never says the
/// permissions are right.
pub fn trail_findings(
    session: &str,
    failed: &[AuditEvent],
    end_ms: i64,
    now_ms: i64,
) -> Vec<Finding> {
    let arriving = now_ms < end_ms + DELIVERY_MS;
    let mut out = Vec::new();
    if arriving {
        let left = (end_ms + DELIVERY_MS - now_ms).max(0) / 60_000 + 1;
        out.push(Finding {
            rule: "aws.cloudtrail_arriving".into(),
            title: format!(
                "CloudTrail events of {session} may still be arriving ({} found so far)",
                failed.len()
            ),
            category: "audit".into(),
            confidence: 0.3,
            evidence: Vec::new(),
            fix: format!(
                "CloudTrail delivers events within about 5 and up to 15 minutes: diagnose again in {left} minute(s) to see every call the build made"
            ),
            reference: Some(
                "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html"
                    .into(),
            ),
        });
    } else if failed.is_empty() {
        out.push(Finding {
            rule: "aws.cloudtrail_quiet".into(),
            title: format!("CloudTrail shows no failed call of {session}"),
            category: "audit".into(),
            confidence: 0.1,
            evidence: vec![Evidence::Status {
                field: "cloudtrail".into(),
                text: format!("LookupEvents Username={session}: no event with an errorCode"),
            }],
            fix: "This does not prove the permissions are right: S3 object calls are data events and are not in LookupEvents, and Kubernetes RBAC denials are not in CloudTrail. Look at the log's findings.".into(),
            reference: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_answer_is_never_a_clean_bill() {
        let f = trail_findings("AWSCodeBuild-x", &[], 0, 60_000);
        assert_eq!(f[0].rule, "aws.cloudtrail_arriving");
        assert!(f[0].title.contains("may still be arriving"));
        let f = trail_findings("AWSCodeBuild-x", &[], 0, DELIVERY_MS + 1);
        assert_eq!(f[0].rule, "aws.cloudtrail_quiet");
        assert!(f[0].fix.contains("does not prove"));
    }
}
