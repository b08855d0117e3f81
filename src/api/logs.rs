//! Log reads by reference: an action execution's log, an environment
//! replica's output, or (remote backends) a CloudWatch Logs stream. A read
//! names a line range and gets the total back, so a viewer pages through a
//! log of any size without holding it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum LogRef {
    /// An action execution's log.
    #[serde(rename_all = "camelCase")]
    Action { action_execution_id: String },
    /// An environment's process output (a replica's stdout and stderr).
    #[serde(rename_all = "camelCase")]
    Environment {
        environment_name: String,
        file: String,
    },
    /// A CloudWatch Logs stream (the AWS backend).
    #[serde(rename_all = "camelCase")]
    Stream {
        log_group_name: String,
        log_stream_name: String,
    },
}

impl LogRef {
    pub fn action(id: impl Into<String>) -> LogRef {
        LogRef::Action {
            action_execution_id: id.into(),
        }
    }

    /// The key a viewer files it under: the action execution id, or
    /// `env/<environment>/<file>`, or `cwl/<group>/<stream>`.
    pub fn key(&self) -> String {
        self.to_string()
    }

    /// The inverse of [`LogRef::key`].
    pub fn parse(key: &str) -> LogRef {
        if let Some((env, file)) = key.strip_prefix("env/").and_then(|r| r.split_once('/')) {
            return LogRef::Environment {
                environment_name: env.to_owned(),
                file: file.to_owned(),
            };
        }
        if let Some(rest) = key.strip_prefix("cwl/")
            && let Some(i) = rest.rfind("/stream=")
        {
            return LogRef::Stream {
                log_group_name: rest[..i].to_owned(),
                log_stream_name: rest[i + "/stream=".len()..].to_owned(),
            };
        }
        LogRef::action(key)
    }
}

impl fmt::Display for LogRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogRef::Action {
                action_execution_id,
            } => f.write_str(action_execution_id),
            LogRef::Environment {
                environment_name,
                file,
            } => write!(f, "env/{environment_name}/{file}"),
            LogRef::Stream {
                log_group_name,
                log_stream_name,
            } => write!(f, "cwl/{log_group_name}/stream={log_stream_name}"),
        }
    }
}

/// A window of a log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogPage {
    /// Lines in the whole log.
    pub total: u64,
    /// The first line of `lines` (0-based).
    pub start: u64,
    pub lines: Vec<String>,
    /// Milliseconds since the epoch per line, where known.
    pub times: Vec<Option<u64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for r in [
            LogRef::action("0123-abc"),
            LogRef::Environment {
                environment_name: "dev".into(),
                file: "dev-blue-0".into(),
            },
            LogRef::Stream {
                log_group_name: "/aws/codebuild/web".into(),
                log_stream_name: "a/b/c".into(),
            },
        ] {
            assert_eq!(LogRef::parse(&r.key()), r);
        }
    }
}
