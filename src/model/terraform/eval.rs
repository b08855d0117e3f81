//! Evaluates Terraform expressions as far as a plan could without a cloud:
//! variables, locals, templates, literal attributes of other resources and
//! the common functions. Everything else becomes an unknown value with a
//! reason, which the caller turns into one warning per placeholder.

use std::collections::{HashMap, HashSet};

use hcl_edit::Span as _;
use hcl_edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl_edit::template::Element;

use super::value::{V, Val};
use super::{Module, funcs};
use crate::model::diag::{Diagnostic, Pos};

/// Evaluation steps before giving up: hostile input (nested `for` over long
/// lists, exponential templates) ends with an error instead of hanging.
const STEP_LIMIT: u64 = 1_000_000;
/// Longest string an evaluation may build.
pub const MAX_STRING: usize = crate::model::source::MAX_FILE_BYTES;
/// Nesting of lazily evaluated references (a local naming a local ...).
const REF_DEPTH: usize = 16;
/// Nesting of evaluation itself (expressions within expressions, through
/// references and templates): bounded so the stack is.
const EVAL_DEPTH: u32 = 160;

/// Where an expression is evaluated: its file and the names in scope
/// (`count`, `each`, a `dynamic` iterator, `for` variables, template vars).
#[derive(Clone, Default)]
pub struct Ctx {
    pub file: usize,
    pub scope: Vec<(String, Val)>,
    /// Positions of a text that is not a module file (a `templatefile`):
    /// everything is placed at the call.
    pub at: Option<Pos>,
}

impl Ctx {
    pub fn file(file: usize) -> Ctx {
        Ctx {
            file,
            ..Ctx::default()
        }
    }

    #[must_use]
    pub fn with(&self, name: &str, v: Val) -> Ctx {
        let mut c = self.clone();
        c.scope.push((name.to_owned(), v));
        c
    }

    fn lookup(&self, name: &str) -> Option<&Val> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

pub type R = Result<Val, String>;

pub struct Evaluator<'m> {
    pub m: &'m Module<'m>,
    pub vars: HashMap<String, Val>,
    locals: HashMap<String, Val>,
    evaluating: Vec<String>,
    steps: u64,
    depth: u32,
    /// Why each placeholder is unknown, by its text.
    pub reasons: HashMap<String, String>,
    pub warned: HashSet<String>,
    /// Diagnostics with the index of their file.
    pub diags: Vec<(usize, Diagnostic)>,
}

fn resource_id_attr(ty: &str) -> Option<&'static str> {
    match ty {
        "aws_s3_bucket" => Some("bucket"),
        "aws_codecommit_repository" => Some("repository_name"),
        "aws_iam_role" | "aws_ecr_repository" => Some("name"),
        _ => None,
    }
}

impl<'m> Evaluator<'m> {
    pub fn new(m: &'m Module<'m>) -> Self {
        Evaluator {
            m,
            vars: HashMap::new(),
            locals: HashMap::new(),
            evaluating: Vec::new(),
            steps: 0,
            depth: 0,
            reasons: HashMap::new(),
            warned: HashSet::new(),
            diags: Vec::new(),
        }
    }

    pub fn pos(&self, cx: &Ctx, span: Option<std::ops::Range<usize>>) -> Pos {
        if let Some(p) = cx.at {
            return p;
        }
        let off = span.map_or(0, |s| s.start);
        self.m
            .files
            .get(cx.file)
            .map_or(Pos::default(), |f| f.pos(off))
    }

    /// The source text of an expression, whitespace collapsed, for placeholders.
    pub fn text_of(&self, cx: &Ctx, e: &Expression) -> String {
        let raw = match (cx.at, e.span(), self.m.files.get(cx.file)) {
            (None, Some(s), Some(f)) => f.text.get(s).unwrap_or(""),
            _ => "",
        };
        let mut t = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if t.is_empty() {
            t = "expression".into();
        }
        if t.chars().count() > 80 {
            t = t.chars().take(77).collect::<String>() + "...";
        }
        t
    }

    pub fn warn(&mut self, file: usize, pos: Pos, msg: String) {
        self.diags
            .push((file, Diagnostic::warning(Some(pos), "", msg)));
    }

    /// An unknown value, remembering why.
    pub fn unknown(&mut self, text: String, why: impl Into<String>, pos: Pos) -> Val {
        self.reasons
            .entry(text.clone())
            .or_insert_with(|| why.into());
        Val::unknown(text, pos)
    }

    /// Starts evaluating something that must not recur (a local, a
    /// resource attribute, a template file); false when it already is, or
    /// when too many are under way.
    pub fn enter(&mut self, guard: &str) -> bool {
        if self.evaluating.iter().any(|g| g == guard) || self.evaluating.len() > REF_DEPTH {
            return false;
        }
        self.evaluating.push(guard.to_owned());
        true
    }

    pub fn leave(&mut self) {
        self.evaluating.pop();
    }

    pub(super) fn step(&mut self) -> Result<(), String> {
        self.steps += 1;
        if self.steps > STEP_LIMIT {
            Err("the expressions are too complex to evaluate (step limit reached)".into())
        } else {
            Ok(())
        }
    }

    pub fn eval(&mut self, e: &Expression, cx: &Ctx) -> R {
        self.step()?;
        if self.depth >= EVAL_DEPTH {
            return Err("expressions and the references between them nest too deeply".into());
        }
        self.depth += 1;
        let r = self.eval_inner(e, cx);
        self.depth -= 1;
        let v = r?;
        if v.depth > super::value::MAX_DEPTH {
            return Err(format!(
                "a value nests more than {} levels deep",
                super::value::MAX_DEPTH
            ));
        }
        Ok(v)
    }

    fn eval_inner(&mut self, e: &Expression, cx: &Ctx) -> R {
        let pos = self.pos(cx, e.span());
        Ok(match e {
            Expression::Null(_) => Val::new(V::Null, pos),
            Expression::Bool(b) => Val::new(V::Bool(*b.value()), pos),
            Expression::Number(n) => Val::new(V::Num(n.value().as_f64().unwrap_or(0.0)), pos),
            Expression::String(s) => Val::str(s.value().clone(), pos),
            Expression::Array(a) => {
                let mut items = Vec::with_capacity(a.len());
                for x in a.iter() {
                    items.push(self.eval(x, cx)?);
                }
                Val::new(V::List(items), pos)
            }
            Expression::Object(o) => {
                let mut entries: Vec<(String, Val)> = Vec::with_capacity(o.len());
                for (k, v) in o.iter() {
                    let (name, kpos) = match k {
                        ObjectKey::Ident(i) => (i.as_str().to_owned(), self.pos(cx, i.span())),
                        ObjectKey::Expression(ke) => {
                            let kv = self.eval(ke, cx)?;
                            (kv.to_text()?, kv.pos)
                        }
                    };
                    let mut val = self.eval(v.expr(), cx)?;
                    if val.pos == Pos::default() {
                        val.pos = kpos;
                    }
                    entries.retain(|(n, _)| *n != name);
                    entries.push((name, val));
                }
                Val::new(V::Obj(entries), pos)
            }
            Expression::StringTemplate(t) => {
                let elems: Vec<&Element> = t.iter().collect();
                if let [Element::Interpolation(i)] = elems.as_slice() {
                    let mut v = self.eval(&i.expr, cx)?;
                    v.pos = pos;
                    return Ok(v);
                }
                Val::str(self.render(t, cx)?, pos)
            }
            Expression::HeredocTemplate(h) => Val::str(self.render(&h.template, cx)?, pos),
            Expression::Parenthesis(p) => self.eval(p.inner(), cx)?,
            Expression::Variable(v) => match cx.lookup(v.as_str()) {
                Some(val) => val.clone().relocate(pos),
                None => {
                    let name = v.as_str().to_owned();
                    self.unknown(name, "it names nothing pipedeck knows", pos)
                }
            },
            Expression::Traversal(t) => self.traversal(e, &t.expr, &t.operators, cx, pos)?,
            Expression::Conditional(c) => {
                let cond = self.eval(&c.cond_expr, cx)?;
                match cond.as_bool() {
                    Some(true) => self.eval(&c.true_expr, cx)?,
                    Some(false) => self.eval(&c.false_expr, cx)?,
                    None if cond.is_unknown() => {
                        let t = self.text_of(cx, e);
                        self.unknown(t, "its condition is not known before apply", pos)
                    }
                    None => {
                        return Err(format!("a condition must be a bool, found {}", cond.kind()));
                    }
                }
            }
            Expression::FuncCall(f) => funcs::call(self, e, f, cx, pos)?,
            Expression::UnaryOp(u) => {
                let v = self.eval(&u.expr, cx)?;
                if v.is_unknown() {
                    return Ok(v);
                }
                match u.operator.value() {
                    UnaryOperator::Neg => Val::new(
                        V::Num(
                            -v.as_num()
                                .ok_or_else(|| format!("cannot negate {}", v.kind()))?,
                        ),
                        pos,
                    ),
                    UnaryOperator::Not => Val::new(
                        V::Bool(
                            !v.as_bool()
                                .ok_or_else(|| format!("`!` needs a bool, found {}", v.kind()))?,
                        ),
                        pos,
                    ),
                }
            }
            Expression::BinaryOp(b) => {
                let l = self.eval(&b.lhs_expr, cx)?;
                let r = self.eval(&b.rhs_expr, cx)?;
                self.binary(e, *b.operator.value(), &l, &r, cx, pos)?
            }
            Expression::ForExpr(f) => self.for_expr(e, f, cx, pos)?,
        })
    }

    fn binary(
        &mut self,
        e: &Expression,
        op: BinaryOperator,
        l: &Val,
        r: &Val,
        cx: &Ctx,
        pos: Pos,
    ) -> R {
        use BinaryOperator as B;
        // `unknown && false` and `unknown || true` are still known.
        match op {
            B::And if l.as_bool() == Some(false) || r.as_bool() == Some(false) => {
                return Ok(Val::new(V::Bool(false), pos));
            }
            B::Or if l.as_bool() == Some(true) || r.as_bool() == Some(true) => {
                return Ok(Val::new(V::Bool(true), pos));
            }
            _ => {}
        }
        if l.is_unknown() || r.is_unknown() {
            let t = self.text_of(cx, e);
            return Ok(self.unknown(t, "an operand is not known before apply", pos));
        }
        let num = |v: &Val| {
            v.as_num()
                .ok_or_else(|| format!("`{}` needs numbers, found {}", op.as_str(), v.kind()))
        };
        let boolean = |v: &Val| {
            v.as_bool()
                .ok_or_else(|| format!("`{}` needs bools, found {}", op.as_str(), v.kind()))
        };
        let v = match op {
            B::Eq => V::Bool(
                l.same(r)
                    || (l.as_num().is_some()
                        && l.as_num() == r.as_num()
                        && l.as_str().is_none() == r.as_str().is_none()),
            ),
            B::NotEq => V::Bool(!l.same(r)),
            B::Less => V::Bool(num(l)? < num(r)?),
            B::LessEq => V::Bool(num(l)? <= num(r)?),
            B::Greater => V::Bool(num(l)? > num(r)?),
            B::GreaterEq => V::Bool(num(l)? >= num(r)?),
            B::Plus => V::Num(num(l)? + num(r)?),
            B::Minus => V::Num(num(l)? - num(r)?),
            B::Mul => V::Num(num(l)? * num(r)?),
            B::Div => V::Num(num(l)? / num(r)?),
            B::Mod => V::Num(num(l)? % num(r)?),
            B::And => V::Bool(boolean(l)? && boolean(r)?),
            B::Or => V::Bool(boolean(l)? || boolean(r)?),
        };
        Ok(Val::new(v, pos))
    }

    fn for_expr(&mut self, e: &Expression, f: &hcl_edit::expr::ForExpr, cx: &Ctx, pos: Pos) -> R {
        let coll = self.eval(&f.intro.collection_expr, cx)?;
        let items: Vec<(Val, Val)> = match coll.v {
            V::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    #[allow(clippy::cast_precision_loss)]
                    let k = Val::new(V::Num(i as f64), pos);
                    (k, v)
                })
                .collect(),
            V::Obj(entries) => entries
                .into_iter()
                .map(|(k, v)| (Val::str(k, pos), v))
                .collect(),
            V::Unknown(_) => {
                let t = self.text_of(cx, e);
                return Ok(self.unknown(
                    t,
                    "the collection it iterates is not known before apply",
                    pos,
                ));
            }
            _ => return Err(format!("`for` cannot iterate over {}", coll.kind())),
        };
        let mut list = Vec::new();
        let mut obj: Vec<(String, Val)> = Vec::new();
        for (k, v) in items {
            let mut c = cx.clone();
            if let Some(kv) = &f.intro.key_var {
                c.scope.push((kv.as_str().to_owned(), k));
            }
            c.scope.push((f.intro.value_var.as_str().to_owned(), v));
            if let Some(cond) = &f.cond {
                let keep = self.eval(&cond.expr, &c)?;
                match keep.as_bool() {
                    Some(true) => {}
                    Some(false) => continue,
                    None => {
                        let t = self.text_of(cx, e);
                        return Ok(self.unknown(t, "its `if` is not known before apply", pos));
                    }
                }
            }
            let value = self.eval(&f.value_expr, &c)?;
            match &f.key_expr {
                None => list.push(value),
                Some(ke) => {
                    let key = self.eval(ke, &c)?.to_text()?;
                    if f.grouping {
                        match obj.iter_mut().find(|(n, _)| *n == key) {
                            Some((_, Val { v: V::List(l), .. })) => l.push(value),
                            _ => obj.push((key, Val::new(V::List(vec![value]), pos))),
                        }
                    } else {
                        obj.retain(|(n, _)| *n != key);
                        obj.push((key, value));
                    }
                }
            }
        }
        Ok(if f.key_expr.is_some() {
            // Grouped lists grew in place: measure them again.
            let obj = obj
                .into_iter()
                .map(|(k, v)| (k, Val::new(v.v, v.pos)))
                .collect();
            Val::new(V::Obj(obj), pos)
        } else {
            Val::new(V::List(list), pos)
        })
    }

    fn traversal(
        &mut self,
        whole: &Expression,
        root: &Expression,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
        cx: &Ctx,
        pos: Pos,
    ) -> R {
        let name = match root {
            Expression::Variable(v) if cx.lookup(v.as_str()).is_none() => v.as_str().to_owned(),
            _ => {
                let base = self.eval(root, cx)?;
                return self.apply(whole, base, ops, cx, pos);
            }
        };
        let attr = |i: usize| match ops.get(i).map(|o| o.value()) {
            Some(TraversalOperator::GetAttr(a)) => Some(a.as_str().to_owned()),
            _ => None,
        };
        let text = self.text_of(cx, whole);
        match name.as_str() {
            "var" => {
                let Some(v) = attr(0) else {
                    return Ok(self.unknown(text, "it is not a variable reference", pos));
                };
                let base = match self.vars.get(&v) {
                    Some(val) => val.clone().relocate(pos),
                    None => {
                        let why = if self.m.variables.contains_key(&v) {
                            format!(
                                "variable `{v}` has no value: give one with --var {v}=VALUE, \
                                 --var-file FILE.tfvars or TF_VAR_{v}"
                            )
                        } else {
                            format!("no `variable \"{v}\"` is declared in this module")
                        };
                        return Ok(self.unknown(text, why, pos));
                    }
                };
                self.apply(whole, base, &ops[1..], cx, pos)
            }
            "local" => {
                let Some(l) = attr(0) else {
                    return Ok(self.unknown(text, "it is not a local reference", pos));
                };
                let base = self.local(&l, pos)?.relocate(pos);
                self.apply(whole, base, &ops[1..], cx, pos)
            }
            "path" => {
                let base = Val::str(".", pos);
                self.apply(whole, base, &ops[1..], cx, pos)
            }
            "terraform" if attr(0).as_deref() == Some("workspace") => {
                self.apply(whole, Val::str("default", pos), &ops[1..], cx, pos)
            }
            "data" => Ok(self.unknown(text, "data sources are read from the cloud", pos)),
            "module" => Ok(self.unknown(text, "module outputs are not read", pos)),
            "count" | "each" | "self" => Ok(self.unknown(text, "it is not known here", pos)),
            ty => {
                let Some(rname) = attr(0) else {
                    return Ok(self.unknown(text, "it names nothing pipedeck knows", pos));
                };
                let key = format!("{ty}.{rname}");
                let Some(&(rfile, block)) = self.m.resources.get(&key) else {
                    return Ok(self.unknown(
                        text,
                        format!("no resource `{key}` is declared in this module"),
                        pos,
                    ));
                };
                let repeated =
                    block.body.has_attribute("count") || block.body.has_attribute("for_each");
                let mut i = 1;
                let mut instance = None;
                if repeated {
                    match ops.get(1).map(|o| o.value()) {
                        Some(TraversalOperator::Index(ix)) => {
                            instance = Some(self.eval(ix, cx)?);
                            i = 2;
                        }
                        Some(TraversalOperator::LegacyIndex(n)) => {
                            #[allow(clippy::cast_precision_loss)]
                            let n = *n.value() as f64;
                            instance = Some(Val::new(V::Num(n), pos));
                            i = 2;
                        }
                        _ => {}
                    }
                }
                let Some(a) = attr(i) else {
                    return Ok(self.unknown(text, "only attributes of resources are read", pos));
                };
                let lookup = if block.body.has_attribute(&a) {
                    Some(a.clone())
                } else if a == "id" {
                    resource_id_attr(ty).map(str::to_owned)
                } else {
                    None
                };
                let Some(expr) = lookup
                    .and_then(|a| block.body.get_attribute(&a))
                    .map(|x| &x.value)
                else {
                    return Ok(self.unknown(
                        text,
                        format!("`{key}.{a}` is not known before `terraform apply`"),
                        pos,
                    ));
                };
                if repeated && instance.as_ref().is_none_or(Val::is_unknown) {
                    return Ok(self.unknown(
                        text,
                        format!("which instance of `{key}` is not known"),
                        pos,
                    ));
                }
                let guard = format!("{key}.{a}");
                if self.evaluating.contains(&guard) || self.evaluating.len() > REF_DEPTH {
                    return Ok(self.unknown(text, "it refers to itself", pos));
                }
                let mut rcx = Ctx::file(rfile);
                if let Some(inst) = instance {
                    if block.body.has_attribute("count") {
                        rcx =
                            rcx.with("count", Val::new(V::Obj(vec![("index".into(), inst)]), pos));
                    } else {
                        let key_text = inst.to_text()?;
                        let each = self.each_value(block, rfile, &key_text)?;
                        rcx = rcx.with(
                            "each",
                            Val::new(
                                V::Obj(vec![("key".into(), inst), ("value".into(), each)]),
                                pos,
                            ),
                        );
                    }
                }
                self.evaluating.push(guard);
                let r = self.eval(expr, &rcx);
                self.evaluating.pop();
                let base = r?.relocate(pos);
                self.apply(whole, base, &ops[i + 1..], cx, pos)
            }
        }
    }

    /// `each.value` of a `for_each` resource instance.
    fn each_value(&mut self, block: &hcl_edit::structure::Block, file: usize, key: &str) -> R {
        let Some(fe) = block.body.get_attribute("for_each") else {
            return Err("not a for_each resource".into());
        };
        let coll = self.eval(&fe.value, &Ctx::file(file))?;
        Ok(match coll.v {
            V::Obj(entries) => entries
                .into_iter()
                .find(|(k, _)| k == key)
                .map_or_else(|| Val::unknown(key, coll.pos), |(_, v)| v),
            _ => Val::str(key, coll.pos),
        })
    }

    /// A `local.NAME`, evaluated once.
    fn local(&mut self, name: &str, pos: Pos) -> R {
        if let Some(v) = self.locals.get(name) {
            // Copying a collection costs as much as building it.
            let weight = match &v.v {
                V::List(l) => l.len(),
                V::Obj(o) => o.len(),
                _ => 0,
            };
            self.steps += weight as u64;
            return Ok(v.clone());
        }
        let text = format!("local.{name}");
        let Some(&(file, expr)) = self.m.locals.get(name) else {
            return Ok(self.unknown(text, format!("no local `{name}` is declared"), pos));
        };
        if self.evaluating.contains(&text) || self.evaluating.len() > REF_DEPTH {
            return Ok(self.unknown(text, "it refers to itself (or nests too deeply)", pos));
        }
        self.evaluating.push(text.clone());
        let r = self.eval(expr, &Ctx::file(file));
        self.evaluating.pop();
        let v = match r {
            Ok(v) => v,
            Err(e) => {
                let p = self.pos(&Ctx::file(file), expr.span());
                self.warn(file, p, format!("local `{name}` cannot be evaluated: {e}"));
                self.unknown(text, format!("local `{name}` cannot be evaluated"), p)
            }
        };
        self.locals.insert(name.to_owned(), v.clone());
        Ok(v)
    }

    /// Applies traversal operators (`.a`, `[0]`, `[*]`) to a value.
    pub fn apply(
        &mut self,
        whole: &Expression,
        mut base: Val,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
        cx: &Ctx,
        pos: Pos,
    ) -> R {
        for (n, op) in ops.iter().enumerate() {
            self.step()?;
            if base.is_unknown() {
                let t = self.text_of(cx, whole);
                let why = match &base.v {
                    V::Unknown(inner) => self
                        .reasons
                        .get(inner)
                        .cloned()
                        .unwrap_or_else(|| "it is not known before apply".into()),
                    _ => String::new(),
                };
                return Ok(self.unknown(t, why, pos));
            }
            base = match op.value() {
                TraversalOperator::GetAttr(a) => match &base.v {
                    V::Obj(_) => base
                        .get(a.as_str())
                        .cloned()
                        .ok_or_else(|| format!("the object has no attribute `{}`", a.as_str()))?,
                    V::Null => return Err(format!("`.{}` of a null value", a.as_str())),
                    _ => return Err(format!("`.{}` of {}", a.as_str(), base.kind())),
                },
                TraversalOperator::Index(ix) => {
                    let k = self.eval(ix, cx)?;
                    self.index(base, &k)?
                }
                TraversalOperator::LegacyIndex(ix) => {
                    #[allow(clippy::cast_precision_loss)]
                    let k = Val::new(V::Num(*ix.value() as f64), pos);
                    self.index(base, &k)?
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let items = match base.v {
                        V::List(items) => items,
                        V::Null => Vec::new(),
                        _ => vec![base.clone()],
                    };
                    let rest = &ops[n + 1..];
                    let mut out = Vec::with_capacity(items.len());
                    for it in items {
                        out.push(self.apply(whole, it, rest, cx, pos)?);
                    }
                    return Ok(Val::new(V::List(out), pos));
                }
            };
        }
        Ok(base)
    }

    fn index(&mut self, base: Val, k: &Val) -> R {
        if k.is_unknown() {
            return Ok(Val::unknown(
                match &k.v {
                    V::Unknown(t) => t.clone(),
                    _ => String::new(),
                },
                base.pos,
            ));
        }
        match base.v {
            V::List(items) => {
                let i = k
                    .as_num()
                    .ok_or_else(|| format!("a list index must be a number, found {}", k.kind()))?;
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let idx = i as usize;
                if i < 0.0 || idx >= items.len() {
                    return Err(format!(
                        "index {} is out of range (the list has {})",
                        super::value::num_text(i),
                        items.len()
                    ));
                }
                Ok(items
                    .into_iter()
                    .nth(idx)
                    .unwrap_or_else(|| Val::new(V::Null, k.pos)))
            }
            V::Obj(entries) => {
                let key = k.to_text()?;
                entries
                    .into_iter()
                    .find(|(n, _)| *n == key)
                    .map(|(_, v)| v)
                    .ok_or_else(|| format!("the object has no key `{key}`"))
            }
            _ => Err(format!(
                "cannot index {}",
                Val::new(base.v, base.pos).kind()
            )),
        }
    }

    /// Evaluates an attribute; an evaluation error becomes a warning and an
    /// unknown value, so a definition is never refused for what pipedeck
    /// cannot compute.
    pub fn attr(&mut self, e: &Expression, cx: &Ctx, what: &str) -> Val {
        match self.eval(e, cx) {
            Ok(v) => v,
            Err(msg) => {
                let pos = self.pos(cx, e.span());
                let t = self.text_of(cx, e);
                self.warn(cx.file, pos, format!("`{what}` cannot be evaluated: {msg}"));
                self.reasons
                    .entry(t.clone())
                    .or_insert_with(|| "it cannot be evaluated".into());
                self.warned.insert(t.clone());
                Val::unknown(t, pos)
            }
        }
    }
}
