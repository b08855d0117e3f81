//! A strict JSON parser (RFC 8259) that produces [`Node`]s with positions.
//!
//! Written here rather than taken from a crate because we need a line and
//! column on every value and key, and an explicit nesting limit checked
//! before recursion: `serde_json` gives no positions for values, and the
//! position-keeping crates we looked at recurse without a limit and accept
//! comments and trailing commas, which AWS does not.

use super::diag::Pos;
use super::node::{Key, Node, ParseError, Value};
use super::source::MAX_DEPTH;

pub fn parse(text: &str) -> Result<Node, ParseError> {
    let mut p = Parser {
        src: text.as_bytes(),
        text,
        i: 0,
        line: 1,
        line_start: 0,
        col_at: std::cell::Cell::new((0, 0)),
    };
    p.ws();
    let node = p.value(0)?;
    p.ws();
    if p.i < p.src.len() {
        return Err(p.err("unexpected text after the end of the JSON document"));
    }
    Ok(node)
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    i: usize,
    line: usize,
    line_start: usize,
    /// The last (byte offset, character column) computed, so columns on a
    /// long line are counted once, not from the line start every time.
    col_at: std::cell::Cell<(usize, usize)>,
}

impl Parser<'_> {
    fn pos(&self) -> Pos {
        let (mut from, mut col) = self.col_at.get();
        if from < self.line_start || from > self.i {
            (from, col) = (self.line_start, 0);
        }
        col += self
            .text
            .get(from..self.i)
            .map_or(self.i - from, |s| s.chars().count());
        self.col_at.set((self.i, col));
        Pos::new(self.line, col + 1)
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.pos(), msg)
    }

    fn found(&self) -> String {
        match self.text.get(self.i..).and_then(|s| s.chars().next()) {
            None => "the end of the file".to_owned(),
            Some(c) if c.is_control() => format!("{c:?}"),
            Some(c) => format!("`{c}`"),
        }
    }

    fn ws(&mut self) {
        while let Some(&b) = self.src.get(self.i) {
            match b {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                    self.line_start = self.i;
                }
                _ => break,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!(
                "nesting deeper than {MAX_DEPTH} levels; pipeline definitions never nest this deep"
            )));
        }
        let pos = self.pos();
        match self.src.get(self.i) {
            Some(b'{') => self.object(depth, pos),
            Some(b'[') => self.array(depth, pos),
            Some(b'"') => Ok(Node::new(Value::Str(self.string()?), pos)),
            Some(b't') => self.literal("true", Value::Bool(true), pos),
            Some(b'f') => self.literal("false", Value::Bool(false), pos),
            Some(b'n') => self.literal("null", Value::Null, pos),
            Some(b'-' | b'0'..=b'9') => self.number(pos),
            _ => Err(self.err(format!("expected a JSON value, found {}", self.found()))),
        }
    }

    fn literal(&mut self, word: &str, v: Value, pos: Pos) -> Result<Node, ParseError> {
        if self.src[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(Node::new(v, pos))
        } else {
            Err(self.err(format!("expected a JSON value, found {}", self.found())))
        }
    }

    fn number(&mut self, pos: Pos) -> Result<Node, ParseError> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.src.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i > s
        };
        if self.src.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        if self.src.get(self.i) == Some(&b'0') {
            self.i += 1;
        } else if !digits(self) {
            return Err(self.err("expected digits in a number"));
        }
        if self.src.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err("expected digits after the decimal point"));
            }
        }
        if matches!(self.src.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.src.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err("expected digits in the exponent"));
            }
        }
        Ok(Node::new(
            Value::Num(self.text[start..self.i].to_owned()),
            pos,
        ))
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let open = self.pos();
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let run = self.i;
            while let Some(&b) = self.src.get(self.i) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(&self.text[run..self.i]);
            match self.src.get(self.i) {
                None => {
                    return Err(ParseError::new(
                        open,
                        "this string is never closed (missing `\"`)",
                    ));
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let simple = match self.src.get(self.i) {
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'/') => Some('/'),
                        Some(b'b') => Some('\u{8}'),
                        Some(b'f') => Some('\u{c}'),
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        Some(b'u') => None,
                        _ => {
                            return Err(self.err(format!(
                                "invalid escape `\\{}` in a string",
                                self.found().trim_matches('`')
                            )));
                        }
                    };
                    self.i += 1;
                    let c = match simple {
                        Some(c) => c,
                        None => self.unicode_escape()?,
                    };
                    out.push(c);
                }
                Some(b'\n') => {
                    return Err(self
                        .err("line break inside a string: JSON strings must escape it as `\\n`"));
                }
                Some(_) => {
                    return Err(self.err(format!(
                        "control character {} inside a string must be escaped",
                        self.found()
                    )));
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self
            .text
            .get(self.i..self.i + 4)
            .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.err("expected four hex digits after `\\u`"))?;
        let v = u32::from_str_radix(digits, 16).map_err(|_| self.err("bad `\\u` escape"))?;
        self.i += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.src.get(self.i..self.i + 2) == Some(b"\\u") {
                self.i += 2;
                let lo = self.hex4()?;
                if !(0xDC00..0xE000).contains(&lo) {
                    return Err(self.err("unpaired UTF-16 surrogate in a `\\u` escape"));
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            } else {
                return Err(self.err("unpaired UTF-16 surrogate in a `\\u` escape"));
            }
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.err("invalid `\\u` escape"))
    }

    fn object(&mut self, depth: usize, pos: Pos) -> Result<Node, ParseError> {
        self.i += 1;
        let mut entries: Vec<(Key, Node)> = Vec::new();
        self.ws();
        if self.src.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Node::new(Value::Map(entries), pos));
        }
        loop {
            self.ws();
            if self.src.get(self.i) != Some(&b'"') {
                let hint = if self.src.get(self.i) == Some(&b'}') {
                    " (a trailing comma is not allowed in JSON)"
                } else {
                    ""
                };
                return Err(self.err(format!(
                    "expected a quoted key, found {}{hint}",
                    self.found()
                )));
            }
            let key_pos = self.pos();
            let name = self.string()?;
            self.ws();
            if self.src.get(self.i) != Some(&b':') {
                return Err(self.err(format!(
                    "expected `:` after the key \"{name}\", found {}",
                    self.found()
                )));
            }
            self.i += 1;
            self.ws();
            let value = self.value(depth + 1)?;
            entries.push((Key { name, pos: key_pos }, value));
            self.ws();
            match self.src.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Node::new(Value::Map(entries), pos));
                }
                _ => {
                    return Err(self.err(format!(
                        "expected `,` or `}}` in the object that starts at {pos}, found {}",
                        self.found()
                    )));
                }
            }
        }
    }

    fn array(&mut self, depth: usize, pos: Pos) -> Result<Node, ParseError> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.src.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Node::new(Value::Seq(items), pos));
        }
        loop {
            self.ws();
            if self.src.get(self.i) == Some(&b']') {
                return Err(self.err("a trailing comma is not allowed in JSON"));
            }
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.src.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Node::new(Value::Seq(items), pos));
                }
                _ => {
                    return Err(self.err(format!(
                        "expected `,` or `]` in the list that starts at {pos}, found {}",
                        self.found()
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_on_one_long_line_and_across_lines() {
        let n = parse("{\"a\": [1, \"é\", {\"b\": true}],\n \"c\": null}").unwrap();
        let a = n.get("a").unwrap().as_seq().unwrap();
        assert_eq!(a[1].pos, Pos::new(1, 11));
        assert_eq!(a[2].get("b").unwrap().pos, Pos::new(1, 22));
        assert_eq!(n.get("c").unwrap().pos, Pos::new(2, 7));
    }

    #[test]
    fn escapes_and_surrogates_decode() {
        let n = parse(r#""a\n\u00e9\ud83d\ude00\/""#).unwrap();
        assert_eq!(n.as_str(), Some("a\né😀/"));
        assert!(parse(r#""\ud83d""#).is_err());
    }

    #[test]
    fn strictness_matches_aws() {
        assert!(parse("{\"a\": 1,}").is_err());
        assert!(parse("[1, 2,]").is_err());
        assert!(parse("{'a': 1}").is_err());
        assert!(parse("01").is_err());
        assert!(parse("{\"a\": 1} x").is_err());
    }
}
