//! AWS errors as the contract's `ApiError`: the service's own name kept
//! (`StageNotRetryableException`, `ConflictException`, …), and a message
//! that says what to do when the cause is on this side: no credentials,
//! an expired SSO session, a missing permission, a network that does not
//! answer.

use aws_sdk_codepipeline::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::api::ApiError;

/// Where a call went: for the messages.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// IAM service prefix: `codepipeline`, `codebuild`, `logs`, `cloudtrail`, `sts`.
    pub service: &'a str,
    pub operation: &'a str,
    pub profile: Option<&'a str>,
    pub region: &'a str,
}

/// How a call failed, without the SDK's generic types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request was never sent (credentials, endpoint resolution…).
    Construction,
    Timeout,
    /// Sent, but no answer: connection refused, DNS, TLS, credentials
    /// resolved while dispatching.
    Dispatch,
    /// An answer that is not an AWS error shape (an HTML 500 page…).
    Response,
    /// An AWS error.
    Service,
}

/// Turns any SDK error into an `ApiError` (one small generic shim, the
/// rest is plain code).
pub fn from_sdk<E, R>(ctx: Ctx<'_>, err: &SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let failure = match err {
        SdkError::ConstructionFailure(_) => Failure::Construction,
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(_) => Failure::Dispatch,
        SdkError::ResponseError(_) => Failure::Response,
        SdkError::ServiceError(_) => Failure::Service,
        _ => Failure::Response,
    };
    let status = match err {
        SdkError::ServiceError(s) => Some(format!("{:?}", s.raw())),
        SdkError::ResponseError(r) => Some(format!("{:?}", r.raw())),
        _ => None,
    };
    classify(
        ctx,
        failure,
        err.code(),
        err.message(),
        &DisplayErrorContext(err).to_string(),
        status.as_deref(),
    )
}

/// The codes that mean "slow down".
pub fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "SlowDown"
    )
}

/// The codes of a denied call.
pub fn is_access_denied(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "Client.UnauthorizedOperation"
            | "UnauthorizedAccess"
    )
}

pub fn classify(
    ctx: Ctx<'_>,
    failure: Failure,
    code: Option<&str>,
    message: Option<&str>,
    chain: &str,
    raw: Option<&str>,
) -> ApiError {
    let profile = ctx.profile.unwrap_or("default");
    let lower = chain.to_ascii_lowercase();
    let message = message.unwrap_or_default();
    if let Some(code) = code.filter(|c| !c.is_empty()) {
        if is_access_denied(code) {
            return ApiError::new(
                code,
                format!(
                    "{message} (pipedeck needs {}:{} for this; see the README's IAM policies)",
                    ctx.service, ctx.operation
                ),
            );
        }
        if matches!(
            code,
            "ExpiredTokenException" | "ExpiredToken" | "RequestExpired"
        ) {
            return ApiError::new(
                code,
                format!(
                    "{message}: the credentials of profile {profile} have expired; run `aws sso login --profile {profile}` (or refresh them) and press R"
                ),
            );
        }
        if matches!(
            code,
            "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidSignatureException"
        ) {
            return ApiError::new(
                code,
                format!(
                    "{message}: AWS does not accept the credentials of profile {profile}; check them with `aws sts get-caller-identity --profile {profile}`"
                ),
            );
        }
        return ApiError::new(code, if message.is_empty() { chain } else { message });
    }
    if lower.contains("sso")
        && (lower.contains("expired") || lower.contains("refresh") || lower.contains("token"))
    {
        return ApiError::new(
            "ExpiredToken",
            format!(
                "the SSO session of profile {profile} has expired or was never started: run `aws sso login --profile {profile}` ({chain})"
            ),
        );
    }
    if lower.contains("no credentials")
        || lower.contains("credentialsnotloaded")
        || lower.contains("credentials provider was not enabled")
        || lower.contains("failed to load credentials")
        || lower.contains("could not load credentials")
    {
        return ApiError::new(
            "NoCredentials",
            format!(
                "no AWS credentials for profile {profile}: set AWS_PROFILE or pass --profile, run `aws configure --profile {profile}` or `aws sso login --profile {profile}`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({chain})"
            ),
        );
    }
    if lower.contains("profile") && (lower.contains("not defined") || lower.contains("missing")) {
        return ApiError::new(
            "NoCredentials",
            format!(
                "profile {profile} is not usable: {chain}; check ~/.aws/config (or AWS_CONFIG_FILE)"
            ),
        );
    }
    if lower.contains("region") && lower.contains("missing")
        || lower.contains("no region")
        || lower.contains("a region must be set")
    {
        return ApiError::new(
            "MissingRegion",
            format!(
                "no AWS region for profile {profile}: pass --region, set AWS_REGION, or add `region = …` to the profile"
            ),
        );
    }
    match failure {
        Failure::Timeout | Failure::Dispatch => {
            let region_hint = if lower.contains("dns") || lower.contains("lookup") {
                format!(
                    "; {} may not be offered in {}, or DNS does not answer",
                    ctx.service, ctx.region
                )
            } else {
                String::new()
            };
            ApiError::new(
                "EndpointUnreachable",
                format!(
                    "cannot reach {} in {}{region_hint}: check the network, the proxy or AWS_ENDPOINT_URL ({chain}); the data on screen is kept and marked stale",
                    ctx.service, ctx.region
                ),
            )
        }
        Failure::Response => ApiError::new(
            "InvalidResponse",
            format!(
                "{} {} answered something that is not an AWS response ({chain}{})",
                ctx.service,
                ctx.operation,
                raw.map(|r| format!("; {}", r.chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            ),
        ),
        Failure::Construction | Failure::Service => ApiError::new("InternalError", chain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            service: "codepipeline",
            operation: "GetPipelineState",
            profile: Some("prod"),
            region: "eu-west-1",
        }
    }

    #[test]
    fn access_denied_names_the_permission() {
        let e = classify(
            ctx(),
            Failure::Service,
            Some("AccessDeniedException"),
            Some("User: arn:aws:iam::1:user/x is not authorized"),
            "",
            None,
        );
        assert_eq!(e.code, "AccessDeniedException");
        assert!(e.message.contains("codepipeline:GetPipelineState"), "{e}");
    }

    #[test]
    fn sso_and_missing_credentials_say_what_to_run() {
        let e = classify(
            ctx(),
            Failure::Dispatch,
            None,
            None,
            "dispatch failure: the SSO token has expired",
            None,
        );
        assert!(e.message.contains("aws sso login --profile prod"), "{e}");
        let e = classify(
            ctx(),
            Failure::Dispatch,
            None,
            None,
            "dispatch failure: other: no credentials in the property bag",
            None,
        );
        assert_eq!(e.code, "NoCredentials");
        assert!(e.message.contains("--profile"), "{e}");
        let e = classify(
            ctx(),
            Failure::Dispatch,
            None,
            None,
            "io error: Connection refused (os error 111)",
            None,
        );
        assert_eq!(e.code, "EndpointUnreachable");
    }
}
