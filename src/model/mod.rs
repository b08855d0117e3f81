//! Pipeline definitions: one model fed by CodePipeline JSON, TOML,
//! CloudFormation, Terraform and buildspec files, with validation.

pub mod buildspec;
pub mod cfn;
pub mod codepipeline;
pub mod declaration;
pub mod diag;
pub mod json;
pub mod load;
pub mod node;
pub mod pipeline;
pub mod source;
pub mod terraform;
pub mod toml;
pub mod validate;
pub mod yaml;
