//! The resolver: intrinsic functions, references, conditions and the
//! CodeBuild projects of a template.

use std::collections::{HashMap, HashSet};

use crate::model::diag::{Diagnostic, Pos};
use crate::model::node::{Key, Node, Value};

use super::*;

impl<'t> Resolver<'t> {
    pub(super) fn new(root: &'t Node, opts: &'t CfnOptions) -> Self {
        let section = |name: &str| root.get(name).and_then(Node::as_map).unwrap_or(&[]);
        Resolver {
            opts,
            params: section("Parameters")
                .iter()
                .map(|(k, v)| (k.name.as_str(), v))
                .collect(),
            resources: section("Resources")
                .iter()
                .map(|(k, _)| k.name.as_str())
                .collect(),
            mappings: root.get("Mappings"),
            conditions: section("Conditions")
                .iter()
                .map(|(k, v)| (k.name.as_str(), v))
                .collect(),
            cond_values: HashMap::new(),
            evaluating: Vec::new(),
            warned: HashSet::new(),
            diags: Vec::new(),
        }
    }

    /// A CodeBuild project: only its name and inline buildspec matter here,
    /// so only those are resolved, and quietly (its other properties are
    /// not pipedeck's business and would only add noise).
    pub(super) fn project(&mut self, id: &str, res: &Node, path: &str) -> CfnProject {
        let saved = std::mem::take(&mut self.diags);
        let warned = self.warned.clone();
        let props = res.get("Properties");
        let name = props
            .and_then(|p| p.get("Name"))
            .and_then(|n| self.resolve(n, path))
            .and_then(|n| n.scalar_text())
            .unwrap_or_else(|| id.to_owned());
        let buildspec = props
            .and_then(|p| p.get("Source"))
            .and_then(|s| s.get("BuildSpec"))
            .and_then(|b| self.resolve(b, path))
            .and_then(|b| {
                let text = b.as_str()?;
                let t = text.trim_start();
                (text.contains('\n') || t.starts_with("version") || t.starts_with('{'))
                    .then(|| (text.to_owned(), b.pos))
            });
        self.diags = saved;
        self.warned = warned;
        CfnProject {
            logical_id: id.to_owned(),
            name,
            buildspec,
        }
    }

    pub(super) fn error(&mut self, pos: Pos, path: &str, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(Some(pos), path.to_owned(), msg));
    }

    /// A placeholder string node and one warning per distinct placeholder.
    pub(super) fn placeholder(&mut self, text: String, why: &str, pos: Pos, path: &str) -> Node {
        if self.warned.insert(text.clone()) {
            self.diags.push(Diagnostic::warning(
                Some(pos),
                path.to_owned(),
                format!("{why}; kept as the placeholder {text}"),
            ));
        }
        Node::str(text, pos)
    }

    /// Resolves a node; `None` means `AWS::NoValue` (remove it).
    pub(super) fn resolve(&mut self, n: &Node, path: &str) -> Option<Node> {
        if let Some((f, arg)) = as_intrinsic(n) {
            return self.intrinsic(&f, &arg, n.pos, path);
        }
        let value = match &n.value {
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .filter_map(|(k, v)| {
                        let p = format!("{path}.{}", k.name);
                        self.resolve(v, &p).map(|v| (k.clone(), v))
                    })
                    .collect(),
            ),
            Value::Seq(items) => Value::Seq(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| self.resolve(v, &format!("{path}[{i}]")))
                    .collect(),
            ),
            other => other.clone(),
        };
        Some(Node::new(value, n.pos))
    }

    /// Resolves to text (for names, delimiters, Sub variables).
    pub(super) fn text(&mut self, n: &Node, path: &str) -> Option<String> {
        let r = self.resolve(n, path)?;
        match r.scalar_text() {
            Some(s) => Some(s),
            None => {
                self.error(
                    n.pos,
                    path,
                    format!("expected a string here, found {}", r.kind()),
                );
                None
            }
        }
    }

    pub(super) fn args<'a>(
        &mut self,
        f: &str,
        arg: &'a Node,
        n: usize,
        pos: Pos,
        path: &str,
    ) -> Option<&'a [Node]> {
        match arg.as_seq() {
            Some(items) if items.len() == n => Some(items),
            _ => {
                self.error(
                    pos,
                    path,
                    format!("{f} takes a list of {n} arguments, found {}", describe(arg)),
                );
                None
            }
        }
    }

    pub(super) fn intrinsic(&mut self, f: &str, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let p = format!("{path}.{f}");
        match f {
            "Ref" => {
                let name = self.text(arg, &p)?;
                self.reference(&name, pos, path)
            }
            "Fn::Sub" => self.sub(arg, pos, &p).map(|s| Node::str(s, pos)),
            "Fn::Join" => {
                let a = self.args(f, arg, 2, pos, &p)?;
                let delim = self.text(&a[0], &p)?;
                let list = self.resolve(&a[1], &p)?;
                let Some(items) = list.as_seq() else {
                    self.error(
                        pos,
                        &p,
                        format!(
                            "Fn::Join's second argument must be a list, found {}",
                            list.kind()
                        ),
                    );
                    return None;
                };
                let parts: Vec<String> = items.iter().filter_map(Node::scalar_text).collect();
                Some(Node::str(parts.join(&delim), pos))
            }
            "Fn::Select" => {
                let a = self.args(f, arg, 2, pos, &p)?;
                let index = self.text(&a[0], &p)?;
                let list = self.resolve(&a[1], &p)?;
                let Ok(i) = index.trim().parse::<usize>() else {
                    if is_placeholder(&index) {
                        return Some(self.placeholder(
                            format!("«Select:{index}»"),
                            "Fn::Select with an unknown index",
                            pos,
                            &p,
                        ));
                    }
                    self.error(
                        pos,
                        &p,
                        format!("Fn::Select's index must be a number, found `{index}`"),
                    );
                    return None;
                };
                match list.as_seq() {
                    Some(items) => {
                        match items.get(i) {
                            Some(item) => Some(item.clone()),
                            None => {
                                self.error(pos, &p, format!("Fn::Select index {i} is out of range (the list has {} items)", items.len()));
                                None
                            }
                        }
                    }
                    None => match list.as_str() {
                        Some(s) if is_placeholder(s) => Some(self.placeholder(
                            format!("«Select:{i}:{s}»"),
                            "Fn::Select over an unresolved list",
                            pos,
                            &p,
                        )),
                        _ => {
                            self.error(
                                pos,
                                &p,
                                format!(
                                    "Fn::Select's second argument must be a list, found {}",
                                    list.kind()
                                ),
                            );
                            None
                        }
                    },
                }
            }
            "Fn::Split" => {
                let a = self.args(f, arg, 2, pos, &p)?;
                let delim = self.text(&a[0], &p)?;
                let s = self.text(&a[1], &p)?;
                if delim.is_empty() {
                    self.error(pos, &p, "Fn::Split needs a non-empty delimiter");
                    return None;
                }
                let items = s.split(delim.as_str()).map(|x| Node::str(x, pos)).collect();
                Some(Node::new(Value::Seq(items), pos))
            }
            "Fn::FindInMap" => self.find_in_map(arg, pos, &p),
            "Fn::Base64" => {
                let s = self.text(arg, &p)?;
                Some(Node::str(base64(s.as_bytes()), pos))
            }
            "Fn::GetAZs" => {
                let region = self.text(arg, &p)?;
                let region = if region.is_empty() {
                    self.opts.region.clone()
                } else {
                    region
                };
                let azs = ["a", "b", "c"]
                    .iter()
                    .map(|z| Node::str(format!("{region}{z}"), pos))
                    .collect();
                Some(Node::new(Value::Seq(azs), pos))
            }
            "Fn::If" => {
                let a = self.args(f, arg, 3, pos, &p)?;
                let cond = self.text(&a[0], &p)?;
                match self.condition(&cond, pos) {
                    Some(true) => self.resolve(&a[1], &p),
                    Some(false) => self.resolve(&a[2], &p),
                    None => Some(self.placeholder(
                        format!("«If:{cond}»"),
                        &format!("condition `{cond}` cannot be evaluated without a stack"),
                        pos,
                        &p,
                    )),
                }
            }
            "Fn::GetAtt" => {
                let target = match &arg.value {
                    Value::Seq(items) if items.len() == 2 => {
                        let a = self.text(&items[0], &p)?;
                        let b = self.text(&items[1], &p)?;
                        format!("{a}.{b}")
                    }
                    _ => self.text(arg, &p)?,
                };
                Some(self.placeholder(
                    format!("«GetAtt:{target}»"),
                    "Fn::GetAtt is known only once the stack exists",
                    pos,
                    &p,
                ))
            }
            "Fn::ImportValue" => {
                let name = self.text(arg, &p)?;
                Some(self.placeholder(
                    format!("«ImportValue:{name}»"),
                    "Fn::ImportValue reads another stack's export",
                    pos,
                    &p,
                ))
            }
            "Fn::GetParam" => {
                let a = self.args(f, arg, 3, pos, &p)?;
                let parts: Vec<String> = a.iter().filter_map(|x| self.text(x, &p)).collect();
                Some(self.placeholder(
                    format!("«GetParam:{}»", parts.join(",")),
                    "Fn::GetParam reads a JSON file of a pipeline artifact at run time",
                    pos,
                    &p,
                ))
            }
            "Condition" => {
                let name = self.text(arg, &p)?;
                // An unknown condition is a placeholder, never a removed key
                // (only AWS::NoValue removes).
                Some(match self.condition(&name, pos) {
                    Some(b) => Node::new(Value::Bool(b), pos),
                    None => self.placeholder(
                        format!("«Condition:{name}»"),
                        &format!("condition `{name}` cannot be evaluated without a stack"),
                        pos,
                        &p,
                    ),
                })
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" => {
                let whole = Node::new(
                    Value::Map(vec![(
                        Key {
                            name: f.to_owned(),
                            pos,
                        },
                        arg.clone(),
                    )]),
                    pos,
                );
                match self.eval(&whole, &p) {
                    Some(b) => Some(Node::new(Value::Bool(b), pos)),
                    None => Some(self.placeholder(
                        format!("«{}»", f.trim_start_matches("Fn::")),
                        "a condition that cannot be evaluated",
                        pos,
                        &p,
                    )),
                }
            }
            _ => {
                let name = f.trim_start_matches("Fn::");
                let detail = arg.scalar_text().unwrap_or_else(|| "…".into());
                Some(self.placeholder(
                    format!("«{name}:{detail}»"),
                    &format!("{f} is not evaluated locally"),
                    pos,
                    &p,
                ))
            }
        }
    }

    /// `Ref`: a pseudo parameter, a parameter, or a resource's logical id.
    pub(super) fn reference(&mut self, name: &str, pos: Pos, path: &str) -> Option<Node> {
        let o = self.opts;
        let pseudo = match name {
            "AWS::NoValue" => return None,
            "AWS::Region" => Some(o.region.clone()),
            "AWS::AccountId" => Some(o.account_id.clone()),
            "AWS::StackName" => Some(o.stack_name.clone()),
            "AWS::StackId" => Some(format!(
                "arn:{}:cloudformation:{}:{}:stack/{}/00000000-0000-0000-0000-000000000000",
                o.partition, o.region, o.account_id, o.stack_name
            )),
            "AWS::Partition" => Some(o.partition.clone()),
            "AWS::URLSuffix" => Some(o.url_suffix.clone()),
            "AWS::NotificationARNs" => {
                return Some(Node::new(Value::Seq(Vec::new()), pos));
            }
            _ => None,
        };
        if let Some(v) = pseudo {
            return Some(Node::str(v, pos));
        }
        if let Some(decl) = self.params.get(name).copied() {
            let is_list = decl
                .get("Type")
                .and_then(Node::as_str)
                .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"));
            let given = self.opts.params.get(name).cloned();
            let value = match (given, decl.get("Default")) {
                (Some(v), _) => Node::str(v, pos),
                (None, Some(d)) => {
                    let mut d = d.clone();
                    d.pos = pos;
                    d
                }
                (None, None) => {
                    return Some(self.placeholder(
                        format!("«Ref:{name}»"),
                        &format!("parameter `{name}` has no default (pass --param {name}=VALUE)"),
                        pos,
                        path,
                    ));
                }
            };
            if is_list && let Some(s) = value.scalar_text() {
                let items = s.split(',').map(|x| Node::str(x.trim(), pos)).collect();
                return Some(Node::new(Value::Seq(items), pos));
            }
            return Some(value);
        }
        if self.resources.contains(name) {
            return Some(Node::str(name, pos));
        }
        let mut known: Vec<&str> = PSEUDO.to_vec();
        known.extend(self.params.keys().copied());
        let hint = crate::model::diag::suggest(name, &known)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Some(self.placeholder(
            format!("«Ref:{name}»"),
            &format!(
                "`{name}` is not a parameter, resource or pseudo parameter of this template{hint}"
            ),
            pos,
            path,
        ))
    }

    pub(super) fn sub(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<String> {
        let (template, vars) = match &arg.value {
            Value::Seq(items) if items.len() == 2 => {
                let t = self.text(&items[0], path)?;
                let mut vars = HashMap::new();
                if let Some(entries) = items[1].as_map() {
                    for (k, v) in entries {
                        let val = self
                            .resolve(v, &format!("{path}.{}", k.name))
                            .and_then(|n| n.scalar_text())
                            .unwrap_or_default();
                        vars.insert(k.name.clone(), val);
                    }
                } else {
                    self.error(
                        items[1].pos,
                        path,
                        "Fn::Sub's second argument must be a map of variables",
                    );
                }
                (t, vars)
            }
            Value::Str(s) => (s.clone(), HashMap::new()),
            _ => {
                self.error(
                    pos,
                    path,
                    format!(
                        "Fn::Sub takes a string or [string, {{variables}}], found {}",
                        describe(arg)
                    ),
                );
                return None;
            }
        };
        let mut out = String::with_capacity(template.len());
        let mut rest = template.as_str();
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            rest = &rest[i + 2..];
            let Some(end) = rest.find('}') else {
                out.push_str("${");
                break;
            };
            let name = &rest[..end];
            rest = &rest[end + 1..];
            if let Some(lit) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(lit);
                out.push('}');
                continue;
            }
            let name = name.trim();
            if let Some(v) = vars.get(name) {
                out.push_str(v);
            } else if name.contains('.') && !name.starts_with("AWS::") {
                let ph = self.placeholder(
                    format!("«GetAtt:{name}»"),
                    "Fn::GetAtt is known only once the stack exists",
                    pos,
                    path,
                );
                out.push_str(ph.as_str().unwrap_or_default());
            } else {
                if let Some(n) = self.reference(name, pos, path) {
                    match &n.value {
                        Value::Seq(items) => {
                            let parts: Vec<String> =
                                items.iter().filter_map(Node::scalar_text).collect();
                            out.push_str(&parts.join(","));
                        }
                        _ => out.push_str(&n.scalar_text().unwrap_or_default()),
                    }
                }
            }
        }
        out.push_str(rest);
        Some(out)
    }

    pub(super) fn find_in_map(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let a = self.args("Fn::FindInMap", arg, 3, pos, path)?;
        let keys: Vec<String> = a.iter().filter_map(|x| self.text(x, path)).collect();
        if keys.len() != 3 {
            return None;
        }
        if keys.iter().any(|k| is_placeholder(k)) {
            return Some(self.placeholder(
                format!("«FindInMap:{}»", keys.join(".")),
                "Fn::FindInMap with a key that is not known locally",
                pos,
                path,
            ));
        }
        let found = self
            .mappings
            .and_then(|m| m.get(&keys[0]))
            .and_then(|m| m.get(&keys[1]))
            .and_then(|m| m.get(&keys[2]));
        match found {
            Some(v) => {
                let v = v.clone();
                self.resolve(&v, path).map(|mut n| {
                    n.pos = pos;
                    n
                })
            }
            None => {
                self.error(
                    pos,
                    path,
                    format!("Fn::FindInMap: Mappings has no `{}`", keys.join(" → ")),
                );
                None
            }
        }
    }

    /// The value of a named condition, `None` if it depends on something
    /// unknown (or refers to itself).
    pub(super) fn condition(&mut self, name: &str, pos: Pos) -> Option<bool> {
        if let Some(v) = self.cond_values.get(name) {
            return *v;
        }
        if self.evaluating.iter().any(|n| n == name) {
            self.error(
                pos,
                &format!("Conditions.{name}"),
                format!("condition `{name}` refers to itself"),
            );
            return None;
        }
        let Some(def) = self.conditions.get(name).copied() else {
            self.error(pos, "Conditions", format!("no condition named `{name}`"));
            return None;
        };
        self.evaluating.push(name.to_owned());
        let v = self.eval(def, &format!("Conditions.{name}"));
        self.evaluating.pop();
        self.cond_values.insert(name.to_owned(), v);
        v
    }

    pub(super) fn eval(&mut self, n: &Node, path: &str) -> Option<bool> {
        match &n.value {
            Value::Bool(b) => return Some(*b),
            Value::Str(s) if n.tag.is_none() => {
                return match s.as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                };
            }
            _ => {}
        }
        let (f, arg) = as_intrinsic(n).or_else(|| match n.as_map() {
            Some([(k, v)]) if k.name == "Condition" => Some((k.name.clone(), v.clone())),
            _ => None,
        })?;
        match f.as_str() {
            "Condition" => {
                let name = self.text(&arg, path)?;
                self.condition(&name, n.pos)
            }
            "Fn::Equals" => {
                let a = self.args("Fn::Equals", &arg, 2, n.pos, path)?;
                let x = self.resolve(&a[0], path).and_then(|v| v.scalar_text());
                let y = self.resolve(&a[1], path).and_then(|v| v.scalar_text());
                match (x, y) {
                    (Some(x), Some(y)) if !is_placeholder(&x) && !is_placeholder(&y) => {
                        Some(x == y)
                    }
                    _ => None,
                }
            }
            "Fn::Not" => {
                let a = self.args("Fn::Not", &arg, 1, n.pos, path)?;
                self.eval(&a[0], path).map(|b| !b)
            }
            "Fn::And" | "Fn::Or" => {
                let items = arg.as_seq().unwrap_or(&[]).to_vec();
                let values: Vec<Option<bool>> = items.iter().map(|i| self.eval(i, path)).collect();
                let and = f == "Fn::And";
                if values.contains(&Some(!and)) {
                    Some(!and)
                } else if values.iter().all(Option::is_some) {
                    Some(and)
                } else {
                    None
                }
            }
            _ => {
                let v = self.resolve(n, path)?;
                match &v.value {
                    Value::Bool(b) => Some(*b),
                    _ => None,
                }
            }
        }
    }
}

fn describe(n: &Node) -> String {
    match n.as_seq() {
        Some(items) => format!("a list of {}", items.len()),
        None => n.kind().to_owned(),
    }
}
