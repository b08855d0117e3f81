//! Terraform: every `resource "aws_codepipeline"` of a `.tf` file or a
//! module folder, read into the same model as the other formats, with the
//! inline buildspecs of the `aws_codebuild_project`s its actions name.
//!
//! HCL is parsed with hcl-edit (spans → file:line:col). Expressions are
//! evaluated as far as a plan could without a cloud (see `eval`); the rest
//! becomes a visible placeholder `«tf:aws_iam_role.pipeline.arn»` with one
//! warning each, never an error.

pub mod eval;
pub mod funcs;
pub mod report;
pub mod shape;
pub mod template;
pub mod value;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use hcl_edit::Span as _;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, Body, Structure};

use self::eval::{Ctx, Evaluator};
use self::value::{V, Val};
use super::diag::{Diagnostic, Pos};
use super::node::Node;

/// What the user gives: `--var NAME=VALUE` (in order), `--var-file` files,
/// and the `TF_VAR_*` environment (`None`: read the process environment).
#[derive(Debug, Clone, Default)]
pub struct TfOptions {
    pub vars: Vec<(String, String)>,
    pub var_files: Vec<PathBuf>,
    pub env: Option<BTreeMap<String, String>>,
}

impl TfOptions {
    /// `--var`s and `--var-file`s; `TF_VAR_*` from the environment.
    pub fn new(vars: &[(String, String)], var_files: &[PathBuf]) -> TfOptions {
        TfOptions {
            vars: vars.to_vec(),
            var_files: var_files.to_vec(),
            env: None,
        }
    }
}

/// One `.tf` file's text.
#[derive(Debug, Clone)]
pub struct TfSource {
    /// As messages name it (`infra/main.tf`).
    pub name: String,
    pub text: String,
}

pub struct TfFile {
    pub name: String,
    pub text: String,
    pub body: Body,
    starts: Vec<usize>,
}

impl TfFile {
    fn new(name: String, text: String, body: Body) -> TfFile {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        TfFile {
            name,
            text,
            body,
            starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Pos::new(line + 1, col + 1)
    }
}

/// The declarations of a module, by name.
pub struct Module<'a> {
    pub files: &'a [TfFile],
    /// Where `file()` and `templatefile()` paths start.
    pub dir: PathBuf,
    pub variables: HashMap<String, (usize, &'a Block)>,
    pub locals: HashMap<String, (usize, &'a Expression)>,
    /// `TYPE.NAME` → declaration.
    pub resources: HashMap<String, (usize, &'a Block)>,
    /// Resources in file order.
    pub order: Vec<(usize, &'a Block)>,
}

/// An `aws_codepipeline` instance, as a tree for the pipeline reader.
#[derive(Debug, Clone)]
pub struct TfPipeline {
    /// `aws_codepipeline.main`, `aws_codepipeline.main["dev"]`.
    pub address: String,
    pub label: String,
    /// Index of the file that declares it.
    pub file: usize,
    pub node: Node,
}

/// An inline buildspec and where its first line is.
#[derive(Debug, Clone)]
pub struct InlineBuildspec {
    pub text: String,
    /// The file its lines are in (a `.tf` file, or the file `file()` read).
    pub file: String,
    pub at: Pos,
}

/// An `aws_codebuild_project` instance.
#[derive(Debug, Clone)]
pub struct TfProject {
    /// `aws_codebuild_project.build`.
    pub address: String,
    pub name: String,
    pub buildspec: Option<InlineBuildspec>,
}

pub struct TfDocument {
    pub files: Vec<String>,
    pub pipelines: Vec<TfPipeline>,
    pub projects: Vec<TfProject>,
    /// Each with the file it is in.
    pub diagnostics: Vec<Diagnostic>,
}

fn parse(src: &TfSource) -> Result<Body, Diagnostic> {
    hcl_edit::parser::parse_body(&src.text).map_err(|e| {
        let loc = e.location();
        Diagnostic::error(
            Some(Pos::new(loc.line(), loc.column())),
            "",
            format!("HCL syntax: {}", e.message()),
        )
        .in_file(src.name.clone())
    })
}

fn index<'a>(files: &'a [TfFile], dir: &Path, diags: &mut Vec<Diagnostic>) -> Module<'a> {
    let mut m = Module {
        files,
        dir: dir.to_path_buf(),
        variables: HashMap::new(),
        locals: HashMap::new(),
        resources: HashMap::new(),
        order: Vec::new(),
    };
    for (fi, f) in files.iter().enumerate() {
        for st in f.body.iter() {
            let Structure::Block(b) = st else { continue };
            let labels: Vec<&str> = b.labels.iter().map(|l| l.as_str()).collect();
            let at = f.pos(b.ident.span().map_or(0, |s| s.start));
            match (b.ident.as_str(), labels.as_slice()) {
                ("variable", [name]) => {
                    m.variables.insert((*name).to_owned(), (fi, b));
                }
                ("locals", []) => {
                    for a in b.body.attributes() {
                        m.locals.insert(a.key.as_str().to_owned(), (fi, &a.value));
                    }
                }
                ("resource", [ty, name]) => {
                    let key = format!("{ty}.{name}");
                    if m.resources.insert(key.clone(), (fi, b)).is_some() {
                        diags.push(
                            Diagnostic::error(
                                Some(at),
                                key.clone(),
                                format!("`resource \"{ty}\" \"{name}\"` is declared twice"),
                            )
                            .in_file(f.name.clone()),
                        );
                    }
                    m.order.push((fi, b));
                }
                _ => {}
            }
        }
    }
    m
}

/// A variable's value from text (`--var`, `TF_VAR_`): a string, unless the
/// variable's declared type is not `string`, when it is an HCL expression.
fn var_from_text(ev: &mut Evaluator<'_>, name: &str, text: &str) -> Val {
    let typed =
        ev.m.variables
            .get(name)
            .and_then(|(_, b)| b.body.get_attribute("type"));
    let is_string =
        typed.is_none_or(|t| matches!(&t.value, Expression::Variable(v) if v.as_str() == "string"));
    if !is_string && let Ok(e) = hcl_edit::parser::parse_expr(text) {
        let cx = Ctx {
            at: Some(Pos::default()),
            ..Ctx::default()
        };
        if let Ok(v) = ev.eval(&e, &cx) {
            return v;
        }
    }
    Val::str(text, Pos::default())
}

/// Variables' values, in Terraform's order of precedence: defaults,
/// `TF_VAR_*`, `terraform.tfvars`, `*.auto.tfvars` (module folders only),
/// `--var-file`s, then `--var`s.
fn variables(
    ev: &mut Evaluator<'_>,
    opts: &TfOptions,
    auto_tfvars: &[PathBuf],
    diags: &mut Vec<Diagnostic>,
) {
    let mut names: Vec<(&String, &(usize, &Block))> = ev.m.variables.iter().collect();
    names.sort_by_key(|(n, _)| n.as_str());
    for (name, &(fi, b)) in names {
        if let Some(d) = b.body.get_attribute("default") {
            let v = ev.attr(&d.value, &Ctx::file(fi), "default");
            ev.vars.insert(name.clone(), v);
        }
    }
    let env: BTreeMap<String, String> = opts.env.clone().unwrap_or_else(|| {
        std::env::vars()
            .filter(|(k, _)| k.starts_with("TF_VAR_"))
            .collect()
    });
    for (k, v) in &env {
        if let Some(name) = k.strip_prefix("TF_VAR_")
            && ev.m.variables.contains_key(name)
        {
            let val = var_from_text(ev, name, v);
            ev.vars.insert(name.to_owned(), val);
        }
    }
    let mut files: Vec<(PathBuf, bool)> = auto_tfvars.iter().map(|p| (p.clone(), false)).collect();
    files.extend(opts.var_files.iter().map(|p| (p.clone(), true)));
    for (path, explicit) in files {
        let shown = path.display().to_string();
        let text = match super::source::read_file(&path) {
            Ok(t) => t.text,
            Err(e) => {
                diags.push(Diagnostic::error(
                    None,
                    "",
                    format!("--var-file {shown}: {e}"),
                ));
                continue;
            }
        };
        let body = match hcl_edit::parser::parse_body(&text) {
            Ok(b) => b,
            Err(e) => {
                let loc = e.location();
                diags.push(
                    Diagnostic::error(
                        Some(Pos::new(loc.line(), loc.column())),
                        "",
                        format!("HCL syntax: {}", e.message()),
                    )
                    .in_file(shown),
                );
                continue;
            }
        };
        let tf = TfFile::new(shown.clone(), text.clone(), Body::new());
        for a in body.attributes() {
            let name = a.key.as_str();
            let cx = Ctx {
                at: Some(Pos::default()),
                ..Ctx::default()
            };
            match ev.eval(&a.value, &cx) {
                Ok(v) => {
                    if !ev.m.variables.contains_key(name) && explicit {
                        let p = tf.pos(a.key.span().map_or(0, |s| s.start));
                        diags.push(
                            Diagnostic::warning(
                                Some(p),
                                name,
                                format!(
                                    "no `variable \"{name}\"` is declared; this value is ignored"
                                ),
                            )
                            .in_file(shown.clone()),
                        );
                    }
                    ev.vars.insert(name.to_owned(), v);
                }
                Err(msg) => {
                    let p = tf.pos(a.value.span().map_or(0, |s| s.start));
                    diags.push(
                        Diagnostic::warning(Some(p), name, format!("cannot be evaluated: {msg}"))
                            .in_file(shown.clone()),
                    );
                }
            }
        }
    }
    for (name, text) in &opts.vars {
        if !ev.m.variables.contains_key(name) {
            diags.push(Diagnostic::warning(
                None,
                "",
                format!("--var {name}: the module declares no variable `{name}`"),
            ));
        }
        let val = var_from_text(ev, name, text);
        ev.vars.insert(name.clone(), val);
    }
}

/// The instances of a resource: its address suffix and the scope its body
/// is evaluated in (`count.index`, `each.key` / `each.value`).
fn instances(ev: &mut Evaluator<'_>, fi: usize, b: &Block) -> Vec<(String, Ctx)> {
    let cx = Ctx::file(fi);
    if let Some(c) = b.body.get_attribute("count") {
        let v = ev.attr(&c.value, &cx, "count");
        let pos = ev.pos(&cx, c.value.span());
        return match v.as_num() {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(n) => (0..(n.max(0.0) as usize).min(shape::MAX_INSTANCES))
                .map(|i| {
                    #[allow(clippy::cast_precision_loss)]
                    let idx = Val::new(V::Num(i as f64), pos);
                    (
                        format!("[{i}]"),
                        cx.with("count", Val::new(V::Obj(vec![("index".into(), idx)]), pos)),
                    )
                })
                .collect(),
            None => {
                ev.warn(
                    fi,
                    pos,
                    "count is not known before apply: one instance is read".into(),
                );
                let idx = Val::unknown("count.index", pos);
                vec![(
                    String::new(),
                    cx.with("count", Val::new(V::Obj(vec![("index".into(), idx)]), pos)),
                )]
            }
        };
    }
    if let Some(fe) = b.body.get_attribute("for_each") {
        let v = ev.attr(&fe.value, &cx, "for_each");
        let pos = ev.pos(&cx, fe.value.span());
        return match shape::for_each_items(&v) {
            Some(items) => items
                .into_iter()
                .take(shape::MAX_INSTANCES)
                .map(|(k, val)| {
                    let suffix = match &k.v {
                        V::Str(s) => format!("[{}]", serde_json::Value::String(s.clone())),
                        _ => format!("[{}]", k.to_text().unwrap_or_default()),
                    };
                    let each =
                        Val::new(V::Obj(vec![("key".into(), k), ("value".into(), val)]), pos);
                    (suffix, cx.with("each", each))
                })
                .collect(),
            None => {
                ev.warn(
                    fi,
                    pos,
                    "for_each is not known before apply: one instance is read".into(),
                );
                let each = Val::new(
                    V::Obj(vec![
                        ("key".into(), Val::unknown("each.key", pos)),
                        ("value".into(), Val::unknown("each.value", pos)),
                    ]),
                    pos,
                );
                vec![(String::new(), cx.with("each", each))]
            }
        };
    }
    vec![(String::new(), cx)]
}

fn looks_inline(text: &str) -> bool {
    let t = text.trim_start();
    text.contains('\n') || t.starts_with("version") || t.starts_with('{')
}

/// The project's `source { buildspec = … }`, when it is inline (a heredoc,
/// a string, `file()` or `templatefile()`), with where its first line is.
fn project_buildspec(ev: &mut Evaluator<'_>, b: &Block, cx: &Ctx) -> Option<InlineBuildspec> {
    let src = b.body.get_blocks("source").next()?;
    let attr = src.body.get_attribute("buildspec")?;
    let v = ev.attr(&attr.value, cx, "buildspec");
    let text = v.as_str()?.to_owned();
    if !looks_inline(&text) {
        return None;
    }
    let file_name =
        ev.m.files
            .get(cx.file)
            .map(|f| f.name.clone())
            .unwrap_or_default();
    let (file, at) = match &attr.value {
        Expression::HeredocTemplate(h) => {
            let start = ev.pos(cx, h.span());
            (
                file_name,
                Pos::new(start.line as usize + 1, h.indent().unwrap_or(0) + 1),
            )
        }
        Expression::FuncCall(f) if matches!(f.name.name.as_str(), "file" | "templatefile") => {
            let path = f
                .args
                .iter()
                .next()
                .and_then(|a| ev.eval(a, cx).ok())
                .and_then(|p| p.as_str().map(str::to_owned));
            match path {
                Some(p) => (ev.m.dir.join(p).display().to_string(), Pos::new(1, 1)),
                None => (file_name, ev.pos(cx, attr.value.span())),
            }
        }
        other => (file_name, ev.pos(cx, other.span())),
    };
    Some(InlineBuildspec { text, file, at })
}

/// Reads a module: `sources` are its `.tf` files, `dir` its folder, and
/// `auto_tfvars` the `terraform.tfvars` / `*.auto.tfvars` found there.
pub fn read(
    sources: &[TfSource],
    dir: &Path,
    auto_tfvars: &[PathBuf],
    opts: &TfOptions,
) -> TfDocument {
    let mut diags = Vec::new();
    let mut files = Vec::new();
    for s in sources {
        match parse(s) {
            Ok(body) => files.push(TfFile::new(s.name.clone(), s.text.clone(), body)),
            Err(d) => diags.push(d),
        }
    }
    let m = index(&files, dir, &mut diags);
    let mut ev = Evaluator::new(&m);
    variables(&mut ev, opts, auto_tfvars, &mut diags);
    let mut pipelines = Vec::new();
    let mut projects = Vec::new();
    let mut declared = 0;
    for &(fi, b) in &m.order {
        let labels: Vec<&str> = b.labels.iter().map(|l| l.as_str()).collect();
        let [ty, name] = labels.as_slice() else {
            continue;
        };
        let bpos = files[fi].pos(b.ident.span().map_or(0, |s| s.start));
        match *ty {
            "aws_codepipeline" => {
                declared += 1;
                for (suffix, cx) in instances(&mut ev, fi, b) {
                    let node = shape::resource_node(&mut ev, &b.body, &cx, bpos);
                    pipelines.push(TfPipeline {
                        address: format!("aws_codepipeline.{name}{suffix}"),
                        label: (*name).to_owned(),
                        file: fi,
                        node: shape::pipeline_node(node),
                    });
                }
            }
            "aws_codebuild_project" => {
                for (suffix, cx) in instances(&mut ev, fi, b) {
                    let pname = b
                        .body
                        .get_attribute("name")
                        .map(|a| ev.attr(&a.value, &cx, "name"))
                        .and_then(|v| v.to_text().ok())
                        .unwrap_or_else(|| (*name).to_owned());
                    let buildspec = project_buildspec(&mut ev, b, &cx);
                    projects.push(TfProject {
                        address: format!("aws_codebuild_project.{name}{suffix}"),
                        name: pname,
                        buildspec,
                    });
                }
            }
            _ => {}
        }
    }
    if declared == 0 && !files.is_empty() && !diags.iter().any(Diagnostic::is_error) {
        let f = &files[0];
        diags.push(
            Diagnostic::error(
                Some(Pos::new(1, 1)),
                "",
                "no `resource \"aws_codepipeline\"` in this Terraform configuration",
            )
            .in_file(f.name.clone()),
        );
    }
    for (fi, d) in std::mem::take(&mut ev.diags) {
        let name = files.get(fi).map(|f| f.name.clone()).unwrap_or_default();
        diags.push(d.in_file(name));
    }
    // One warning per placeholder left in a pipeline, where it is first used.
    for p in &pipelines {
        let mut found = Vec::new();
        shape::placeholders(&p.node, &mut found);
        for (text, pos) in found {
            if !ev.warned.insert(text.clone()) {
                continue;
            }
            let why = ev
                .reasons
                .get(&text)
                .cloned()
                .unwrap_or_else(|| format!("`{text}` is not known before `terraform apply`"));
            diags.push(
                Diagnostic::warning(
                    Some(pos),
                    p.address.clone(),
                    format!(
                        "{why}; kept as the placeholder {}",
                        value::placeholder(&text)
                    ),
                )
                .in_file(files[p.file].name.clone()),
            );
        }
    }
    TfDocument {
        files: files.iter().map(|f| f.name.clone()).collect(),
        pipelines,
        projects,
        diagnostics: diags,
    }
}
