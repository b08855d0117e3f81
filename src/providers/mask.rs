//! Secret masking for build output, summaries and output variables.

/// Replaces secret values in a line with `***`. A multi-line secret (a PEM
/// key) is masked whole and line by line, since a log holds it a line at
/// a time (lines of fewer than 4 characters excepted: they would mask
/// every `}`). Transformed forms (base64, hex) are not masked, as on AWS.
#[derive(Debug, Clone)]
pub struct Masker {
    secrets: Vec<String>,
}

/// The shortest line of a multi-line secret that is masked on its own.
const MIN_SECRET_LINE: usize = 4;

impl Masker {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = Vec::new();
        for v in values.into_iter().filter(|s| !s.is_empty()) {
            if v.contains('\n') {
                for l in v.lines() {
                    let l = l.trim_end_matches('\r');
                    if l.trim().len() >= MIN_SECRET_LINE {
                        secrets.push(l.to_owned());
                        if l.trim() != l {
                            secrets.push(l.trim().to_owned());
                        }
                    }
                }
            }
            secrets.push(v);
        }
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Masker { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The length in bytes of the longest secret.
    pub fn longest(&self) -> usize {
        self.secrets.first().map_or(0, String::len)
    }

    /// [`mask`](Self::mask) on bytes (a line cut before its end).
    pub fn mask_bytes(&self, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        for s in &self.secrets {
            let f = memchr::memmem::Finder::new(s.as_bytes());
            if f.find(&out).is_none() {
                continue;
            }
            let mut next = Vec::with_capacity(out.len());
            let mut at = 0;
            for i in f.find_iter(&out) {
                if i < at {
                    continue;
                }
                next.extend_from_slice(&out[at..i]);
                next.extend_from_slice(b"***");
                at = i + s.len();
            }
            next.extend_from_slice(&out[at..]);
            out = next;
        }
        out
    }

    pub fn mask<'a>(&self, line: &'a str) -> std::borrow::Cow<'a, str> {
        let mut out = std::borrow::Cow::Borrowed(line);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(s.as_str(), "***"));
            }
        }
        out
    }
}
