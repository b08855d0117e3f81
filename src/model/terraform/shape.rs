//! Turns an evaluated resource body into the document tree the pipeline
//! reader walks: nested blocks become maps or lists of maps (`stage` →
//! `stage[i]`), `dynamic` blocks are expanded, meta-arguments dropped, and an
//! action's flat `category`/`owner`/`provider`/`version` become its
//! `action_type_id`.

use hcl_edit::Span as _;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Body, Structure};

use super::eval::{Ctx, Evaluator};
use super::value::{V, Val, placeholders_in};
use crate::model::diag::Pos;
use crate::model::node::{Key, Node, Value};

/// Block types that may repeat and are read as lists.
const LIST_BLOCKS: &[&str] = &[
    "stage",
    "action",
    "variable",
    "trigger",
    "push",
    "pull_request",
    "condition",
    "rule",
    "artifact_store",
    "environment_variable",
    "secondary_sources",
];
/// Terraform's meta-arguments: not part of the resource.
const META: &[&str] = &[
    "count",
    "for_each",
    "depends_on",
    "provider",
    "lifecycle",
    "provisioner",
    "connection",
];

/// Most instances of one resource or `dynamic` block pipedeck expands.
pub const MAX_INSTANCES: usize = 1000;

/// The elements a `for_each` iterates: (key, value) pairs, or `None` when unknown.
pub fn for_each_items(v: &Val) -> Option<Vec<(Val, Val)>> {
    match &v.v {
        V::Obj(entries) => Some(
            entries
                .iter()
                .map(|(k, x)| (Val::str(k.clone(), x.pos), x.clone()))
                .collect(),
        ),
        V::List(items) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    // A set of strings: the key is the value.
                    let key = match &x.v {
                        V::Str(_) => x.clone(),
                        #[allow(clippy::cast_precision_loss)]
                        _ => Val::new(V::Num(i as f64), x.pos),
                    };
                    (key, x.clone())
                })
                .collect(),
        ),
        V::Null => Some(Vec::new()),
        _ => None,
    }
}

struct Group {
    name: String,
    pos: Pos,
    items: Vec<Node>,
}

/// A resource body as a map node at `pos` (meta-arguments left out).
pub fn resource_node(ev: &mut Evaluator<'_>, body: &Body, cx: &Ctx, pos: Pos) -> Node {
    block_node(ev, body, cx, pos, true)
}

/// A block body as a map node at `pos`.
fn block_node(ev: &mut Evaluator<'_>, body: &Body, cx: &Ctx, pos: Pos, top: bool) -> Node {
    let mut entries: Vec<(Key, Node)> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    let add = |groups: &mut Vec<Group>, name: &str, pos: Pos, n: Node| match groups
        .iter_mut()
        .find(|g| g.name == name)
    {
        Some(g) => g.items.push(n),
        None => groups.push(Group {
            name: name.to_owned(),
            pos,
            items: vec![n],
        }),
    };
    for st in body.iter() {
        match st {
            Structure::Attribute(a) => {
                let key = a.key.as_str();
                if top && META.contains(&key) {
                    continue;
                }
                let kpos = ev.pos(cx, a.key.span());
                let v = ev.attr(&a.value, cx, key);
                entries.push((
                    Key {
                        name: key.to_owned(),
                        pos: kpos,
                    },
                    v.to_node(),
                ));
            }
            Structure::Block(b) => {
                let ident = b.ident.as_str();
                let bpos = ev.pos(cx, b.ident.span());
                if top && META.contains(&ident) {
                    continue;
                }
                if ident == "dynamic" {
                    let Some(label) = b.labels.first().map(|l| l.as_str().to_owned()) else {
                        continue;
                    };
                    let nodes = dynamic(ev, &b.body, &label, cx, bpos);
                    if nodes.is_empty() && !groups.iter().any(|g| g.name == label) {
                        // Kept, empty, so messages about it have a position.
                        groups.push(Group {
                            name: label.clone(),
                            pos: bpos,
                            items: Vec::new(),
                        });
                    }
                    for n in nodes {
                        add(&mut groups, &label, bpos, n);
                    }
                    continue;
                }
                let n = block_node(ev, &b.body, cx, bpos, false);
                add(&mut groups, ident, bpos, n);
            }
        }
    }
    for g in groups {
        let key = Key {
            name: g.name.clone(),
            pos: g.pos,
        };
        let node = if g.items.len() == 1 && !LIST_BLOCKS.contains(&g.name.as_str()) {
            g.items
                .into_iter()
                .next()
                .unwrap_or_else(|| Node::new(Value::Null, g.pos))
        } else {
            Node::new(Value::Seq(g.items), g.pos)
        };
        entries.push((key, node));
    }
    Node::new(Value::Map(entries), pos)
}

/// Expands `dynamic "LABEL" { for_each = …, iterator = …, content { … } }`.
fn dynamic(ev: &mut Evaluator<'_>, body: &Body, label: &str, cx: &Ctx, pos: Pos) -> Vec<Node> {
    let iter_name = body
        .get_attribute("iterator")
        .and_then(|a| match &a.value {
            Expression::Variable(v) => Some(v.as_str().to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| label.to_owned());
    let Some(content) = body.get_blocks("content").next() else {
        return Vec::new();
    };
    let Some(fe) = body.get_attribute("for_each") else {
        return Vec::new();
    };
    let coll = ev.attr(&fe.value, cx, "for_each");
    let Some(items) = for_each_items(&coll) else {
        let fpos = ev.pos(cx, fe.value.span());
        ev.warn(
            cx.file,
            fpos,
            format!("dynamic \"{label}\" is not expanded: its for_each is not known before apply"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in items.into_iter().take(MAX_INSTANCES) {
        let it = Val::new(V::Obj(vec![("key".into(), k), ("value".into(), v)]), pos);
        let c = cx.with(&iter_name, it);
        out.push(block_node(ev, &content.body, &c, pos, false));
    }
    out
}

fn take(entries: &mut Vec<(Key, Node)>, name: &str) -> Option<(Key, Node)> {
    let i = entries.iter().position(|(k, _)| k.name == name)?;
    Some(entries.remove(i))
}

/// Reshapes an `aws_codepipeline` body for the reader: the artifact store(s)
/// and each action's type id.
pub fn pipeline_node(mut node: Node) -> Node {
    let Value::Map(entries) = &mut node.value else {
        return node;
    };
    if let Some((k, stores)) = take(entries, "artifact_store") {
        let items = match stores.value {
            Value::Seq(items) => items,
            other => vec![Node::new(other, stores.pos)],
        };
        let regional = items.len() > 1 || items.iter().any(|s| s.get("region").is_some());
        if regional {
            let list = items
                .into_iter()
                .map(|mut s| {
                    let region = match &mut s.value {
                        Value::Map(m) => take(m, "region"),
                        _ => None,
                    };
                    let spos = s.pos;
                    let mut pair = Vec::new();
                    if let Some(r) = region {
                        pair.push(r);
                    }
                    pair.push((
                        Key {
                            name: "artifact_store".into(),
                            pos: spos,
                        },
                        s,
                    ));
                    Node::new(Value::Map(pair), spos)
                })
                .collect();
            entries.push((
                Key {
                    name: "artifact_stores".into(),
                    pos: k.pos,
                },
                Node::new(Value::Seq(list), stores.pos),
            ));
        } else if let Some(s) = items.into_iter().next() {
            entries.push((k, s));
        }
    }
    if let Some((_, stages)) = entries.iter_mut().find(|(k, _)| k.name == "stage")
        && let Value::Seq(stages) = &mut stages.value
    {
        for stage in stages {
            let Value::Map(se) = &mut stage.value else {
                continue;
            };
            let Some((_, actions)) = se.iter_mut().find(|(k, _)| k.name == "action") else {
                continue;
            };
            let Value::Seq(actions) = &mut actions.value else {
                continue;
            };
            for action in actions {
                let apos = action.pos;
                let Value::Map(ae) = &mut action.value else {
                    continue;
                };
                let mut tid = Vec::new();
                for f in ["category", "owner", "provider", "version"] {
                    if let Some(e) = take(ae, f) {
                        tid.push(e);
                    }
                }
                ae.push((
                    Key {
                        name: "action_type_id".into(),
                        pos: apos,
                    },
                    Node::new(Value::Map(tid), apos),
                ));
            }
        }
    }
    node
}

/// Every placeholder in a tree, with the position of the first string holding it.
pub fn placeholders(n: &Node, out: &mut Vec<(String, Pos)>) {
    match &n.value {
        Value::Str(s) => {
            for p in placeholders_in(s) {
                if !out.iter().any(|(x, _)| x == p) {
                    out.push((p.to_owned(), n.pos));
                }
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| placeholders(i, out)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| placeholders(v, out)),
        _ => {}
    }
}
