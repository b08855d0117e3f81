//! CloudTrail (`CloudTrail_20131101.*`, also under botocore's
//! `com.amazonaws.cloudtrail.v20131101.` prefix): LookupEvents over the
//! engine's audit trail, newest first, with the record fields of a
//! CloudTrail event in `CloudTrailEvent`.

use serde_json::{Value, json};

use super::input::Input;
use super::{AwsError, AwsResult, Caller, Ctx, epoch_secs, token};
use crate::api::{AuditEvent, Reply, Request};

const SERVICE: &str = "CloudTrail";

/// The lookup attribute keys CloudTrail accepts.
pub const KEYS: [&str; 8] = [
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

/// Events read from the engine per lookup (its store's most).
const TRAIL_MAX: u32 = 10_000;

pub async fn call(ctx: &Ctx, caller: &Caller, op: &str, body: &Value) -> AwsResult {
    let i = Input::root(body)?;
    match op {
        "LookupEvents" => lookup_events(ctx, caller, i).await,
        _ => Err(AwsError::not_built(SERVICE, op, "")),
    }
}

fn access_key(e: &AuditEvent) -> String {
    let p = &e.user_identity.principal_id;
    if p.starts_with("AKIA") || p.starts_with("ASIA") {
        p.clone()
    } else {
        String::new()
    }
}

fn username(e: &AuditEvent) -> String {
    e.user_identity
        .user_name
        .clone()
        .unwrap_or_else(|| e.user_identity.principal_id.clone())
}

/// `(ResourceType, ResourceName)` pairs an event touched.
fn resources(e: &AuditEvent) -> Vec<(String, String)> {
    let p = &e.request_parameters;
    let mut out = Vec::new();
    if let Some(n) = p.get("pipelineName").and_then(Value::as_str) {
        out.push(("AWS::CodePipeline::Pipeline".to_owned(), n.to_owned()));
    }
    if let Some(n) = p.get("environmentName").and_then(Value::as_str) {
        out.push(("AWS::CodeDeploy::DeploymentGroup".to_owned(), n.to_owned()));
    }
    out
}

fn region(e: &AuditEvent) -> &str {
    if e.aws_region == "local" {
        super::REGION
    } else {
        &e.aws_region
    }
}

/// The `CloudTrailEvent` record (aws-semantics §5).
pub fn record(e: &AuditEvent) -> Value {
    let mut params = e.request_parameters.clone();
    if let Value::Object(m) = &mut params {
        m.remove("op");
    }
    let key = access_key(e);
    let u = &e.user_identity;
    json!({
        "eventVersion": e.event_version,
        "userIdentity": {
            "type": u.identity_type,
            "principalId": u.principal_id,
            "arn": if u.arn.is_empty() { Value::Null } else { json!(u.arn) },
            "accountId": u.account_id,
            "accessKeyId": if key.is_empty() { Value::Null } else { json!(key) },
            "userName": u.user_name,
            "invokedBy": u.invoked_by,
        },
        "eventTime": e.event_time,
        "eventSource": e.event_source,
        "eventName": e.event_name,
        "awsRegion": region(e),
        "sourceIPAddress": e.source_ip_address,
        "userAgent": e.user_agent,
        "errorCode": e.error_code,
        "errorMessage": e.error_message,
        "requestParameters": params,
        "responseElements": e.response_elements,
        "requestID": e.event_id,
        "eventID": e.event_id,
        "readOnly": e.read_only,
        "resources": resources(e).iter().map(|(t, n)| json!({"type": t, "ARN": format!("arn:aws:codepipeline:{}:{}:{n}", region(e), u.account_id)})).collect::<Vec<_>>(),
        "eventType": e.event_type,
        "managementEvent": true,
        "recipientAccountId": u.account_id,
        "eventCategory": "Management",
    })
}

fn matches(e: &AuditEvent, key: &str, value: &str) -> bool {
    match key {
        "EventId" => e.event_id == value,
        "EventName" => e.event_name == value,
        "ReadOnly" => e.read_only.to_string() == value,
        "Username" => username(e) == value,
        "ResourceType" => resources(e).iter().any(|(t, _)| t == value),
        "ResourceName" => resources(e).iter().any(|(_, n)| n == value),
        "EventSource" => e.event_source == value,
        "AccessKeyId" => access_key(e) == value,
        _ => false,
    }
}

async fn lookup_events(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let attrs = i.items("LookupAttributes", "LookupAttributes")?;
    if attrs.len() > 1 {
        return Err(AwsError::new(
            "InvalidLookupAttributesException",
            "You cannot specify more than one lookup attribute.",
        ));
    }
    let attr = match attrs.first() {
        Some(a) => {
            let key = a.str_opt("AttributeKey")?.unwrap_or("");
            let value = a.str_opt("AttributeValue")?.unwrap_or("");
            if !KEYS.contains(&key) {
                return Err(AwsError::new(
                    "InvalidLookupAttributesException",
                    format!("AttributeKey `{key}` is not one of {}", KEYS.join(", ")),
                ));
            }
            if value.is_empty() || value.chars().count() > 2000 {
                return Err(AwsError::new(
                    "InvalidLookupAttributesException",
                    "AttributeValue must be 1 to 2000 characters",
                ));
            }
            Some((key, value))
        }
        None => None,
    };
    if let Some(c) = i.str_opt("EventCategory")?
        && c != "insight"
    {
        return Err(AwsError::new(
            "InvalidEventCategoryException",
            "EventCategory must be insight",
        ));
    }
    let start = i.time_opt("StartTime")?;
    let end = i.time_opt("EndTime")?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(AwsError::new(
            "InvalidTimeRangeException",
            "StartTime must be before EndTime",
        ));
    }
    let max = match i.value("MaxResults") {
        None => 50,
        Some(v) => match v.as_i64() {
            Some(n @ 1..=50) => n as usize,
            _ => {
                return Err(AwsError::new(
                    "InvalidMaxResultsException",
                    "MaxResults must be a number from 1 to 50",
                ));
            }
        },
    };
    let params = format!("LookupEvents|{attr:?}|{start:?}|{end:?}");
    let after = match i.str_opt("NextToken")? {
        Some(t) => Some(
            token::decode(&ctx.token_key, &params, t)
                .and_then(|v| v.as_str().map(str::to_owned))
                .ok_or_else(|| {
                    AwsError::new(
                        "InvalidNextTokenException",
                        "Invalid NextToken: it is valid only with the parameters it came with",
                    )
                })?,
        ),
        None => None,
    };
    let Reply::Events { events, .. } = ctx
        .call(
            caller,
            Request::LookupEvents {
                max_results: Some(TRAIL_MAX),
                next_token: None,
            },
        )
        .await?
    else {
        return Err(AwsError::new("InternalFailure", "unexpected reply").with_status(500));
    };
    let chosen: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| attr.is_none_or(|(k, v)| matches(e, k, v)))
        .filter(|e| {
            let t = epoch_secs(&e.event_time).unwrap_or(0.0);
            start.is_none_or(|s| t >= s.floor()) && end.is_none_or(|x| t <= x)
        })
        .collect();
    let from = match &after {
        Some(id) => chosen
            .iter()
            .position(|e| &e.event_id == id)
            .map(|p| p + 1)
            .ok_or_else(|| AwsError::new("InvalidNextTokenException", "Invalid NextToken"))?,
        None => 0,
    };
    let page: Vec<&AuditEvent> = chosen.iter().skip(from).take(max).copied().collect();
    let out: Vec<Value> = page
        .iter()
        .map(|e| {
            let key = access_key(e);
            json!({
                "EventId": e.event_id,
                "EventName": e.event_name,
                "ReadOnly": e.read_only.to_string(),
                "AccessKeyId": if key.is_empty() { Value::Null } else { json!(key) },
                "EventTime": super::ts(&e.event_time),
                "EventSource": e.event_source,
                "Username": username(e),
                "Resources": resources(e)
                    .iter()
                    .map(|(t, n)| json!({"ResourceType": t, "ResourceName": n}))
                    .collect::<Vec<_>>(),
                "CloudTrailEvent": super::prune(record(e)).to_string(),
            })
        })
        .collect();
    let next = (from + page.len() < chosen.len())
        .then(|| {
            page.last()
                .map(|e| token::encode(&ctx.token_key, &params, &json!(e.event_id)))
        })
        .flatten();
    Ok(json!({"Events": out, "NextToken": next}))
}
