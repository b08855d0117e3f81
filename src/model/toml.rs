//! TOML → [`Node`], from the `toml` crate's spanned document tree.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::Pos;
use super::node::{Key, Node, ParseError, Value};
use super::source::{LineIndex, MAX_DEPTH};

pub fn parse(text: &str) -> Result<Node, ParseError> {
    let idx = LineIndex::new(text);
    // The toml parser recurses into nested arrays and inline tables; refuse
    // pathological nesting before handing it the text.
    if let Some(offset) = too_deep(text) {
        return Err(ParseError::new(
            idx.pos(offset),
            format!("nesting deeper than {MAX_DEPTH} levels; definitions never nest this deep"),
        ));
    }
    let table = DeTable::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        ParseError::new(idx.pos(at), e.message().trim().to_owned())
    })?;
    let span = table.span();
    let root = table.into_inner();
    Ok(convert_table(&root, idx.pos(span.start), &idx))
}

fn convert_table(t: &DeTable<'_>, pos: Pos, idx: &LineIndex<'_>) -> Node {
    let entries = t
        .iter()
        .map(|(k, v)| {
            (
                Key {
                    name: k.get_ref().to_string(),
                    pos: idx.pos(k.span().start),
                },
                convert(v, idx),
            )
        })
        .collect();
    Node::new(Value::Map(entries), pos)
}

fn convert(v: &Spanned<DeValue<'_>>, idx: &LineIndex<'_>) -> Node {
    let pos = idx.pos(v.span().start);
    let value = match v.get_ref() {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => Value::Num(i.as_str().replace('_', "")),
        DeValue::Float(f) => Value::Num(f.as_str().replace('_', "")),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Str(d.to_string()),
        DeValue::Array(a) => Value::Seq(a.iter().map(|x| convert(x, idx)).collect()),
        DeValue::Table(t) => return convert_table(t, pos, idx),
    };
    Node::new(value, pos)
}

/// The offset where bracket nesting first exceeds [`MAX_DEPTH`], ignoring
/// strings and comments.
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let triple = b.get(i..i + 3) == Some(&[q, q, q][..]);
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if q == b'"' && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if triple {
                        if b.get(i..i + 3) == Some(&[q, q, q][..]) {
                            i += 2;
                            break;
                        }
                    } else if b[i] == q || b[i] == b'\n' {
                        break;
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_keep_positions() {
        let n = parse("name = \"p\"\n\n[[stages]]\nname = \"Source\"\n").unwrap();
        let stages = n.get("stages").unwrap().as_seq().unwrap();
        assert_eq!(stages[0].get("name").unwrap().pos, Pos::new(4, 8));
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("a = 1\nb = \n").unwrap_err();
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("a = {}", "[".repeat(100_000));
        assert!(parse(&text).unwrap_err().message.contains("nesting"));
    }
}
