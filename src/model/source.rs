//! Reading definition files: size limit, byte-order marks, UTF-16, and
//! turning byte offsets into 1-based line and column numbers.

use std::path::Path;

use super::diag::Pos;

/// Definition files larger than this are refused before parsing: no real
/// pipeline definition comes close, and it keeps memory bounded.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Nesting deeper than this is refused by every parser (before any recursion
/// could overflow the stack). Real definitions nest fewer than 15 levels.
pub const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
}

/// A decoded definition file.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub text: String,
    pub encoding: Encoding,
}

/// Why a file could not be turned into text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("the file is {size} bytes; definitions larger than {max} bytes are refused")]
    TooLarge { size: u64, max: usize },
    #[error(
        "it is {kind}, not a regular file, and gave more than {max} bytes; definitions larger \
         than that are refused"
    )]
    Unbounded { kind: &'static str, max: usize },
    #[error("the file is not valid {encoding} text (at byte {offset})")]
    Encoding {
        encoding: &'static str,
        offset: usize,
        pos: Pos,
    },
}

impl SourceError {
    pub fn pos(&self) -> Option<Pos> {
        match self {
            SourceError::Encoding { pos, .. } => Some(*pos),
            _ => None,
        }
    }
}

/// Reads a definition: at most [`MAX_FILE_BYTES`] are read, whatever the
/// file says its size is (`/dev/zero`, a pipe, a file growing meanwhile).
pub fn read_file(path: &Path) -> Result<SourceText, SourceError> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| SourceError::Io(e.to_string()))?;
    let kind = file_kind(&meta);
    if meta.is_file() && meta.len() > MAX_FILE_BYTES as u64 {
        return Err(SourceError::TooLarge {
            size: meta.len(),
            max: MAX_FILE_BYTES,
        });
    }
    if meta.is_dir() {
        return Err(SourceError::Io("it is a directory, not a file".into()));
    }
    let file = std::fs::File::open(path).map_err(|e| SourceError::Io(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SourceError::Io(e.to_string()))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(match kind {
            Some(kind) => SourceError::Unbounded {
                kind,
                max: MAX_FILE_BYTES,
            },
            None => SourceError::TooLarge {
                size: bytes.len() as u64,
                max: MAX_FILE_BYTES,
            },
        });
    }
    decode(&bytes)
}

/// What a path that is not a regular file is (`None` for a regular file).
fn file_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() {
            return Some("a character device");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
        if t.is_fifo() {
            return Some("a pipe");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    (!meta.is_file()).then_some("not a regular file")
}

/// Decodes bytes as UTF-8 (with or without BOM) or UTF-16 (LE/BE with BOM,
/// or without BOM when the zero bytes make it unmistakable).
pub fn decode(bytes: &[u8]) -> Result<SourceText, SourceError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(SourceError::TooLarge {
            size: bytes.len() as u64,
            max: MAX_FILE_BYTES,
        });
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8(rest, 3, Encoding::Utf8Bom);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true, 2);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false, 2);
    }
    // UTF-16 without a BOM: ASCII-heavy text has a zero in every other byte.
    if bytes.len() >= 4 && bytes.len().is_multiple_of(2) {
        let (even, odd) = bytes
            .iter()
            .take(512)
            .enumerate()
            .fold((0, 0), |(e, o), (i, b)| match (*b == 0, i % 2 == 0) {
                (true, true) => (e + 1, o),
                (true, false) => (e, o + 1),
                _ => (e, o),
            });
        let half = bytes.len().min(512) / 2;
        if odd * 10 >= half * 9 && even == 0 {
            return utf16(bytes, true, 0);
        }
        if even * 10 >= half * 9 && odd == 0 {
            return utf16(bytes, false, 0);
        }
    }
    utf8(bytes, 0, Encoding::Utf8)
}

fn utf8(bytes: &[u8], skipped: usize, encoding: Encoding) -> Result<SourceText, SourceError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(SourceText {
            text: s.to_owned(),
            encoding,
        }),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            // The valid prefix is valid UTF-8 by construction.
            let prefix = String::from_utf8_lossy(good);
            Err(SourceError::Encoding {
                encoding: "UTF-8",
                offset: skipped + e.valid_up_to(),
                pos: LineIndex::new(&prefix).pos(prefix.len()),
            })
        }
    }
}

fn utf16(bytes: &[u8], little: bool, skipped: usize) -> Result<SourceText, SourceError> {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| {
            let pair = [c[0], *c.get(1).unwrap_or(&0)];
            if little {
                u16::from_le_bytes(pair)
            } else {
                u16::from_be_bytes(pair)
            }
        })
        .collect();
    let mut text = String::with_capacity(units.len());
    for (i, r) in char::decode_utf16(units.iter().copied()).enumerate() {
        match r {
            Ok(c) => text.push(c),
            Err(_) => {
                return Err(SourceError::Encoding {
                    encoding: if little { "UTF-16LE" } else { "UTF-16BE" },
                    offset: skipped + i * 2,
                    pos: LineIndex::new(&text).pos(text.len()),
                });
            }
        }
    }
    Ok(SourceText {
        text,
        encoding: if little {
            Encoding::Utf16Le
        } else {
            Encoding::Utf16Be
        },
    })
}

/// Maps byte offsets of a text to 1-based line and column (columns count
/// characters, as editors do).
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { text, starts }
    }

    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Pos::new(line + 1, col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16le_with_bom_decodes() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "{\"a\": 1}\r\n".encode_utf16() {
            bytes.extend(u.to_le_bytes());
        }
        let s = decode(&bytes).unwrap();
        assert_eq!(s.text, "{\"a\": 1}\r\n");
        assert_eq!(s.encoding, Encoding::Utf16Le);
    }

    #[test]
    fn utf16be_without_bom_is_detected() {
        let mut bytes = vec![];
        for u in "{\"pipeline\": {}}".encode_utf16() {
            bytes.extend(u.to_be_bytes());
        }
        assert_eq!(decode(&bytes).unwrap().encoding, Encoding::Utf16Be);
    }

    #[test]
    fn utf8_bom_is_stripped() {
        let s = decode(b"\xEF\xBB\xBFversion: 0.2").unwrap();
        assert_eq!(s.text, "version: 0.2");
        assert_eq!(s.encoding, Encoding::Utf8Bom);
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let err = decode(b"a: 1\nb: \xFF").unwrap_err();
        assert_eq!(err.pos(), Some(Pos::new(2, 4)));
    }

    #[test]
    fn line_index_counts_characters() {
        let idx = LineIndex::new("ab\nçd\n");
        assert_eq!(idx.pos(0), Pos::new(1, 1));
        assert_eq!(idx.pos(3), Pos::new(2, 1));
        assert_eq!(idx.pos(5), Pos::new(2, 2));
    }
}
