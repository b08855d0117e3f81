//! YAML → [`Node`], from saphyr-parser's event stream. The tree is built with
//! an explicit stack (no recursion), so nesting depth is bounded by
//! [`MAX_DEPTH`] and reported as an error, never a stack overflow. Tags such
//! as `!Ref` are kept on the node for the CloudFormation reader.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::diag::Pos;
use super::node::{Key, Node, ParseError, Value};
use super::source::MAX_DEPTH;

/// Aliases may copy at most this many nodes in all ("billion laughs").
const MAX_ALIAS_NODES: usize = 100_000;

fn pos(span: &Span) -> Pos {
    Pos::new(span.start.line(), span.start.col() + 1)
}

enum Frame {
    Seq(Node, Vec<Node>, usize),
    /// The map node, its entries, the key waiting for its value, its anchor.
    Map(Node, Vec<(Key, Node)>, Option<Key>, usize),
}

/// Parses the first document of a YAML stream. A stream with more than one
/// document is an error (no definition format we read has several).
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut alias_budget = MAX_ALIAS_NODES;
    let mut root: Option<Node> = None;
    let mut docs = 0;
    for ev in Parser::new_from_str(text) {
        let (event, span) = ev.map_err(|e| {
            ParseError::new(
                Pos::new(e.marker().line(), e.marker().col() + 1),
                e.info().to_owned(),
            )
        })?;
        let done: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => None,
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err(ParseError::new(
                        pos(&span),
                        "a second YAML document (`---`) follows the first; put one definition per file",
                    ));
                }
                None
            }
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| {
                    ParseError::new(pos(&span), "alias refers to an unknown anchor")
                })?;
                let n = count(&node);
                if n > alias_budget {
                    return Err(ParseError::new(
                        pos(&span),
                        "aliases expand to too many nodes (more than 100000)",
                    ));
                }
                alias_budget -= n;
                Some((node, 0))
            }
            Event::Scalar(text, style, anchor, tag) => {
                let p = pos(&span);
                let mut node = Node::new(scalar(&text, style, tag.as_deref()), p);
                node.tag = custom_tag(tag.as_deref());
                Some((node, anchor))
            }
            Event::SequenceStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(depth_error(&span));
                }
                let mut node = Node::new(Value::Null, pos(&span));
                node.tag = custom_tag(tag.as_deref());
                stack.push(Frame::Seq(node, Vec::new(), anchor));
                None
            }
            Event::MappingStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(depth_error(&span));
                }
                let mut node = Node::new(Value::Null, pos(&span));
                node.tag = custom_tag(tag.as_deref());
                stack.push(Frame::Map(node, Vec::new(), None, anchor));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(mut node, items, anchor)) => {
                    node.value = Value::Seq(items);
                    Some((node, anchor))
                }
                _ => return Err(ParseError::new(pos(&span), "unbalanced sequence end")),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(mut node, entries, _, anchor)) => {
                    node.value = Value::Map(entries);
                    Some((node, anchor))
                }
                _ => return Err(ParseError::new(pos(&span), "unbalanced mapping end")),
            },
        };
        let Some((node, anchor)) = done else { continue };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(_, items, _)) => items.push(node),
            Some(Frame::Map(_, entries, pending, _)) => match pending.take() {
                None => {
                    let name = match node.scalar_text() {
                        Some(s) => s,
                        None if node.value == Value::Null => String::new(),
                        None => {
                            return Err(ParseError::new(
                                node.pos,
                                format!("a map key must be a plain value, found {}", node.kind()),
                            ));
                        }
                    };
                    *pending = Some(Key {
                        name,
                        pos: node.pos,
                    });
                }
                Some(key) => entries.push((key, node)),
            },
        }
    }
    Ok(root.unwrap_or(Node::new(Value::Null, Pos::new(1, 1))))
}

fn depth_error(span: &Span) -> ParseError {
    ParseError::new(
        pos(span),
        format!("nesting deeper than {MAX_DEPTH} levels; definitions never nest this deep"),
    )
}

fn count(node: &Node) -> usize {
    // Iterative, so a deep alias target cannot overflow the stack.
    let mut n = 0;
    let mut todo = vec![node];
    while let Some(x) = todo.pop() {
        n += 1;
        match &x.value {
            Value::Seq(items) => todo.extend(items),
            Value::Map(entries) => todo.extend(entries.iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    n
}

/// `!Ref` → `Some("!Ref")`; core-schema tags (`!!str`) → `None`.
fn custom_tag(tag: Option<&Tag>) -> Option<String> {
    let tag = tag?;
    if tag.is_yaml_core_schema() {
        return None;
    }
    if tag.handle == "!" {
        Some(format!("!{}", tag.suffix))
    } else {
        Some(format!("{}{}", tag.handle, tag.suffix))
    }
}

/// Resolves a scalar with the YAML 1.2 core schema.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(t) = tag
        && t.is_yaml_core_schema()
        && t.suffix == "str"
    {
        return Value::Str(text.to_owned());
    }
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | "-.inf" | "+.inf" | ".nan" | ".NaN" | ".NAN" => {
            return Value::Num(text.to_owned());
        }
        _ => {}
    }
    if is_number(text) {
        Value::Num(text.to_owned())
    } else {
        Value::Str(text.to_owned())
    }
}

fn is_number(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if let Some(hex) = body.strip_prefix("0x") {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    if let Some(oct) = body.strip_prefix("0o") {
        return !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b));
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exp_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_and_tags() {
        let n = parse("a:\n  b: !Ref Thing\n  c: [1, '2']\n").unwrap();
        let b = n.get("a").unwrap().get("b").unwrap();
        assert_eq!(b.tag.as_deref(), Some("!Ref"));
        assert_eq!(b.as_str(), Some("Thing"));
        assert_eq!(b.pos, Pos::new(2, 6));
        let c = n.get("a").unwrap().get("c").unwrap().as_seq().unwrap();
        assert_eq!(c[0].value, Value::Num("1".into()));
        assert_eq!(c[1].value, Value::Str("2".into()));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        // saphyr's scanner or our depth check refuses it, with a position.
        let err = parse(&text).unwrap_err();
        assert!(err.pos.line >= 1 && !err.message.is_empty());
    }

    #[test]
    fn aliases_are_expanded_with_a_budget() {
        let n = parse("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(n.get("b").unwrap().get("k").unwrap().as_str(), Some("v"));
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 0..8 {
            let prev = (b'a' + i) as char;
            let next = (b'a' + i + 1) as char;
            bomb.push_str(&format!(
                "{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        assert!(parse(&bomb).is_err());
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(
            scalar("0.2", ScalarStyle::Plain, None),
            Value::Num("0.2".into())
        );
        assert_eq!(
            scalar("1.2.3", ScalarStyle::Plain, None),
            Value::Str("1.2.3".into())
        );
        assert_eq!(
            scalar("yes", ScalarStyle::Plain, None),
            Value::Str("yes".into())
        );
        assert_eq!(
            scalar("true", ScalarStyle::SingleQuoted, None),
            Value::Str("true".into())
        );
    }
}
