//! Diagnostics: errors and warnings with a position, a path in the file's own
//! spelling, and (where we know one) a fix.

use std::fmt;

use serde::Serialize;

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub fn new(line: usize, column: usize) -> Self {
        Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub pos: Option<Pos>,
    /// Where in the document, in the file's own spelling
    /// (`stages[2].actions[0].inputArtifacts[0]`); empty for the whole file.
    pub path: String,
    pub message: String,
    pub fix: Option<String>,
    /// The file the position is in, when it is not the report's own file
    /// (a `.tf` file of a module folder, a buildspec read by `file()`).
    pub file: Option<String>,
}

impl Diagnostic {
    pub fn error(pos: Option<Pos>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            pos,
            path: path.into(),
            message: message.into(),
            fix: None,
            file: None,
        }
    }

    pub fn warning(pos: Option<Pos>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(pos, path, message)
        }
    }

    #[must_use]
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    #[must_use]
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A diagnostic as `validate --json` prints it.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub path: &'a str,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<&'a str>,
}

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        JsonDiagnostic {
            file: d.file.as_deref(),
            line: d.pos.map(|p| p.line),
            column: d.pos.map(|p| p.column),
            path: &d.path,
            message: &d.message,
            fix: d.fix.as_deref(),
        }
    }
}

/// Suggests the closest of `candidates` to `word`, if it is close enough to
/// be a likely typo (`env.variable` → `variables`).
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()),
                *c,
            )
        })
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(
            suggest("variable", &["variables", "shell"]),
            Some("variables")
        );
        assert_eq!(suggest("RunOrder", &["runOrder", "name"]), Some("runOrder"));
        assert_eq!(suggest("completely", &["variables", "shell"]), None);
    }
}
