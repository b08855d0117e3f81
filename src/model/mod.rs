//! Pipeline definitions: one model fed by CodePipeline JSON, TOML,
//! CloudFormation and buildspec files, with validation.

pub mod diag;
pub mod json;
pub mod node;
pub mod source;
pub mod toml;
pub mod yaml;
