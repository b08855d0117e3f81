//! The AWS backend's parts: clients for one account and region built from
//! the standard credential chain (`client`), AWS errors turned into
//! messages that say what to do (`errors`), CodePipeline's shapes mapped to
//! the contract (`convert`), one request budget per account and region with
//! backoff on throttling (`budget`), a poller that turns state changes into
//! the engine's events (`poller`), CodeBuild logs from CloudWatch Logs
//! mirrored into the local log format (`logs`) and CloudTrail for the Audit
//! screen and the diagnosis (`cloudtrail`). `crate::backend::aws` puts them
//! behind the `Backend` seam.

pub mod account;
pub mod budget;
pub mod client;
pub mod cloudtrail;
pub mod convert;
pub mod errors;
pub mod logs;
pub mod mutate;
pub mod poller;
pub mod push;

pub use client::{AwsTarget, Clients};
