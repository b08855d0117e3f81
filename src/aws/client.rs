//! One account and region: its SDK clients, built once from aws-config's
//! standard credential chain (environment, profiles with assume role,
//! credential_process, the SSO token cache, web identity, container,
//! IMDSv2). `AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_*` are honoured by aws-config itself.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

/// What to connect to: one profile in one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsTarget {
    /// A short name for the header and the pipeline prefix (the profile, or
    /// the `[[aws.accounts]]` entry's `name`).
    pub label: String,
    pub profile: Option<String>,
    pub region: Option<String>,
    /// Every service at this URL (tests: the local AWS API or moto).
    pub endpoint_url: Option<String>,
    /// Only pipelines whose name contains this.
    pub filter: Option<String>,
    pub readonly: bool,
    /// Stages whose mutations need the name typed (the TUI's rule).
    pub protected: Vec<String>,
    /// No SDK retries (tests); the budget still backs off on throttling.
    pub no_retries: bool,
}

/// The clients of one account and region. Clients are cheap `Arc`s.
#[derive(Clone, Debug)]
pub struct Clients {
    pub codepipeline: aws_sdk_codepipeline::Client,
    pub codebuild: aws_sdk_codebuild::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub sts: aws_sdk_sts::Client,
    /// The region the clients use (`?` when none is configured).
    pub region: String,
    pub profile: Option<String>,
}

impl Clients {
    /// Loads the shared config for `target` and builds every client from it.
    pub async fn load(target: &AwsTarget) -> Clients {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &target.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &target.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(u) = &target.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        if target.no_retries {
            loader = loader.retry_config(RetryConfig::disabled());
        } else {
            // The budget does the waiting on throttling; the SDK's own
            // retries stay for transient network errors.
            loader = loader.retry_config(RetryConfig::standard().with_max_attempts(2));
        }
        let conf = loader.load().await;
        Clients::from_conf(&conf, target.profile.clone())
    }

    pub fn from_conf(conf: &aws_config::SdkConfig, profile: Option<String>) -> Clients {
        Clients {
            codepipeline: aws_sdk_codepipeline::Client::new(conf),
            codebuild: aws_sdk_codebuild::Client::new(conf),
            logs: aws_sdk_cloudwatchlogs::Client::new(conf),
            cloudtrail: aws_sdk_cloudtrail::Client::new(conf),
            sts: aws_sdk_sts::Client::new(conf),
            region: conf
                .region()
                .map(|r| r.as_ref().to_owned())
                .unwrap_or_else(|| "?".into()),
            profile,
        }
    }

    /// A shared config for tests and the local AWS API: static dummy
    /// credentials, one endpoint, no retries.
    pub async fn static_conf(endpoint_url: &str, region: &str) -> aws_config::SdkConfig {
        Clients::conf_with_keys(
            endpoint_url,
            region,
            "AKIDPIPEDECKTEST",
            "pipedeck-test-secret",
        )
        .await
    }

    /// The same with given keys (the local AWS API's key pair).
    pub async fn conf_with_keys(
        endpoint_url: &str,
        region: &str,
        key: &str,
        secret: &str,
    ) -> aws_config::SdkConfig {
        let creds = aws_sdk_codepipeline::config::Credentials::new(
            key,
            secret,
            None,
            None,
            "pipedeck-static",
        );
        aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .endpoint_url(endpoint_url)
            .retry_config(RetryConfig::disabled())
            .credentials_provider(creds)
            .load()
            .await
    }
}
