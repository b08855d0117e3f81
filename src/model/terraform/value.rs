//! Values of evaluated Terraform expressions. Every value keeps the position
//! of the expression it came from; what cannot be known without a cloud is
//! `Unknown`, shown as a placeholder such as `«tf:aws_iam_role.pipeline.arn»`.

use crate::model::diag::Pos;
use crate::model::node::{Key, Node, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Val>),
    Obj(Vec<(String, Val)>),
    /// Not known before `terraform apply` (or not evaluated by pipedeck);
    /// the text names it (`aws_iam_role.pipeline.arn`).
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Val {
    pub v: V,
    pub pos: Pos,
    /// How deeply lists and objects nest in it (a scalar is 0): evaluation
    /// refuses values deeper than [`MAX_DEPTH`], so the recursive walks over
    /// values (clone, drop, conversion) stay shallow.
    pub depth: u32,
}

/// The deepest value an evaluation may build.
pub const MAX_DEPTH: u32 = 128;

/// The visible placeholder of an unknown value.
pub fn placeholder(text: &str) -> String {
    format!("«tf:{text}»")
}

/// A number as Terraform prints it: whole numbers without a fraction.
pub fn num_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        i.to_string()
    } else {
        f.to_string()
    }
}

impl Val {
    pub fn new(v: V, pos: Pos) -> Val {
        let depth = match &v {
            V::List(items) => 1 + items.iter().map(|i| i.depth).max().unwrap_or(0),
            V::Obj(entries) => 1 + entries.iter().map(|(_, i)| i.depth).max().unwrap_or(0),
            _ => 0,
        };
        Val { v, pos, depth }
    }

    pub fn str(s: impl Into<String>, pos: Pos) -> Val {
        Val::new(V::Str(s.into()), pos)
    }

    pub fn unknown(text: impl Into<String>, pos: Pos) -> Val {
        Val::new(V::Unknown(text.into()), pos)
    }

    /// The same value, every part of it placed at `pos` (a value that came
    /// from elsewhere, a variable default in another file, is reported where
    /// it is used).
    #[must_use]
    pub fn relocate(mut self, pos: Pos) -> Val {
        fn walk(v: &mut Val, pos: Pos) {
            v.pos = pos;
            match &mut v.v {
                V::List(items) => items.iter_mut().for_each(|i| walk(i, pos)),
                V::Obj(entries) => entries.iter_mut().for_each(|(_, i)| walk(i, pos)),
                _ => {}
            }
        }
        walk(&mut self, pos);
        self
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self.v, V::Unknown(_))
    }

    pub fn is_null(&self) -> bool {
        matches!(self.v, V::Null)
    }

    pub fn kind(&self) -> &'static str {
        match self.v {
            V::Null => "null",
            V::Bool(_) => "a bool",
            V::Num(_) => "a number",
            V::Str(_) => "a string",
            V::List(_) => "a list",
            V::Obj(_) => "an object",
            V::Unknown(_) => "an unknown value",
        }
    }

    /// The value as a string, as an interpolation converts it.
    pub fn to_text(&self) -> Result<String, String> {
        match &self.v {
            V::Str(s) => Ok(s.clone()),
            V::Num(n) => Ok(num_text(*n)),
            V::Bool(b) => Ok(b.to_string()),
            V::Unknown(t) => Ok(placeholder(t)),
            V::Null => Err("a null value cannot be used in a string".into()),
            V::List(_) | V::Obj(_) => Err(format!("{} cannot be used as a string", self.kind())),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.v {
            V::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_num(&self) -> Option<f64> {
        match &self.v {
            V::Num(n) => Some(*n),
            V::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.v {
            V::Bool(b) => Some(*b),
            V::Str(s) if s == "true" => Some(true),
            V::Str(s) if s == "false" => Some(false),
            _ => None,
        }
    }

    /// An object's attribute.
    pub fn get(&self, key: &str) -> Option<&Val> {
        match &self.v {
            V::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Equality of the values, positions aside.
    pub fn same(&self, other: &Val) -> bool {
        match (&self.v, &other.v) {
            (V::List(a), V::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (V::Obj(a), V::Obj(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, x)| other.get(k).is_some_and(|y| x.same(y)))
            }
            (V::Num(a), V::Num(b)) => a == b,
            (a, b) => a == b,
        }
    }

    /// The value as JSON (`jsonencode`); unknown parts become placeholder strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.v {
            V::Null => J::Null,
            V::Bool(b) => J::Bool(*b),
            V::Num(n) => {
                if n.fract() == 0.0 && n.abs() < 9e15 {
                    #[allow(clippy::cast_possible_truncation)]
                    J::from(*n as i64)
                } else {
                    serde_json::Number::from_f64(*n).map_or(J::Null, J::Number)
                }
            }
            V::Str(s) => J::String(s.clone()),
            V::Unknown(t) => J::String(placeholder(t)),
            V::List(items) => J::Array(items.iter().map(Val::to_json).collect()),
            V::Obj(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A value from JSON (`jsondecode`), placed at `pos`.
    pub fn from_json(j: &serde_json::Value, pos: Pos) -> Val {
        use serde_json::Value as J;
        let v = match j {
            J::Null => V::Null,
            J::Bool(b) => V::Bool(*b),
            J::Number(n) => V::Num(n.as_f64().unwrap_or(0.0)),
            J::String(s) => V::Str(s.clone()),
            J::Array(a) => V::List(a.iter().map(|x| Val::from_json(x, pos)).collect()),
            J::Object(o) => V::Obj(
                o.iter()
                    .map(|(k, x)| (k.clone(), Val::from_json(x, pos)))
                    .collect(),
            ),
        };
        Val::new(v, pos)
    }

    /// The value as a document tree for the pipeline reader.
    pub fn to_node(&self) -> Node {
        let value = match &self.v {
            V::Null => Value::Null,
            V::Bool(b) => Value::Bool(*b),
            V::Num(n) => Value::Num(num_text(*n)),
            V::Str(s) => Value::Str(s.clone()),
            V::Unknown(t) => Value::Str(placeholder(t)),
            V::List(items) => Value::Seq(items.iter().map(Val::to_node).collect()),
            V::Obj(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            Key {
                                name: k.clone(),
                                pos: v.pos,
                            },
                            v.to_node(),
                        )
                    })
                    .collect(),
            ),
        };
        Node::new(value, self.pos)
    }
}

/// Every placeholder text (`aws_iam_role.x.arn`) in a string.
pub fn placeholders_in(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("«tf:") {
        let after = &rest[i + "«tf:".len()..];
        match after.find('»') {
            Some(j) => {
                out.push(&after[..j]);
                rest = &after[j + '»'.len_utf8()..];
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_in_strings() {
        let s = format!("{}/x/{}", placeholder("a.b.arn"), placeholder("var.y"));
        assert_eq!(placeholders_in(&s), vec!["a.b.arn", "var.y"]);
        assert_eq!(num_text(3.0), "3");
        assert_eq!(num_text(2.5), "2.5");
    }
}
