//! AWS-named errors.

use serde::{Deserialize, Serialize};

/// An AWS-named error: `code` is the exception name without the suffix
/// (`ApprovalAlreadyCompleted`, `StageNotRetryable`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}
