//! The Terraform functions real pipeline files use. A function pipedeck
//! does not evaluate gives an unknown value, never an error.

use hcl_edit::Span as _;
use hcl_edit::expr::{Expression, FuncCall};

use super::eval::{Ctx, Evaluator, MAX_STRING, R};
use super::value::{V, Val, num_text};
use crate::model::diag::Pos;

fn text(v: &Val) -> Result<String, String> {
    v.to_text()
}

fn list(v: &Val, f: &str) -> Result<Vec<Val>, String> {
    match &v.v {
        V::List(items) => Ok(items.clone()),
        V::Null => Ok(Vec::new()),
        _ => Err(format!("{f}() needs a list, found {}", v.kind())),
    }
}

fn obj(v: &Val, f: &str) -> Result<Vec<(String, Val)>, String> {
    match &v.v {
        V::Obj(entries) => Ok(entries.clone()),
        V::Null => Ok(Vec::new()),
        _ => Err(format!("{f}() needs a map, found {}", v.kind())),
    }
}

fn check_len(s: String) -> Result<String, String> {
    if s.len() > MAX_STRING {
        Err("a string grows beyond 16 MiB".into())
    } else {
        Ok(s)
    }
}

/// `format`'s verbs: `%s %d %v %q %f %t %%` (flags and widths are read and ignored
/// except a precision for `%f`).
fn format(spec: &str, args: &[Val]) -> Result<String, String> {
    let mut out = String::new();
    let mut it = spec.chars().peekable();
    let mut next = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut prec: Option<usize> = None;
        let mut verb = None;
        let mut digits = String::new();
        while let Some(&d) = it.peek() {
            it.next();
            if d.is_ascii_digit() || "-+# ".contains(d) {
                digits.push(d);
            } else if d == '.' {
                let mut p = String::new();
                while let Some(&x) = it.peek() {
                    if !x.is_ascii_digit() {
                        break;
                    }
                    p.push(x);
                    it.next();
                }
                prec = p.parse().ok();
            } else {
                verb = Some(d);
                break;
            }
        }
        let Some(verb) = verb else {
            return Err("format: the spec ends inside a verb".into());
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .get(next)
            .ok_or_else(|| format!("format: not enough arguments for `{spec}`"))?;
        next += 1;
        match verb {
            'd' => match &arg.v {
                V::Unknown(_) => out.push_str(&text(arg)?),
                _ => out.push_str(&num_text(
                    arg.as_num().ok_or("format: %d needs a number")?.trunc(),
                )),
            },
            'f' => match arg.as_num() {
                Some(n) => out.push_str(&format!("{n:.*}", prec.unwrap_or(6))),
                None => out.push_str(&text(arg)?),
            },
            'q' => out.push_str(&serde_json::Value::String(text(arg)?).to_string()),
            'v' if matches!(arg.v, V::List(_) | V::Obj(_)) => {
                out.push_str(&arg.to_json().to_string())
            }
            _ => out.push_str(&text(arg)?),
        }
        if out.len() > MAX_STRING {
            return Err("a string grows beyond 16 MiB".into());
        }
    }
    Ok(out)
}

fn module_path(ev: &Evaluator<'_>, p: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        ev.m.dir.join(path)
    }
}

/// Reads a regular file named relative to the module, with the source size
/// limit (never more: a device such as `/dev/zero` is refused).
pub fn read_module_file(ev: &Evaluator<'_>, p: &str) -> Result<String, String> {
    use std::io::Read as _;
    let path = module_path(ev, p);
    let shown = path.display();
    let f = std::fs::File::open(&path).map_err(|e| format!("{shown}: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    let limit = crate::model::source::MAX_FILE_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    f.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{shown}: {e}"))?;
    crate::model::source::decode(&bytes)
        .map(|t| t.text)
        .map_err(|e| format!("{shown}: {e}"))
}

pub fn call(ev: &mut Evaluator<'_>, whole: &Expression, f: &FuncCall, cx: &Ctx, pos: Pos) -> R {
    let name = f.name.name.as_str().to_owned();
    let args: Vec<&Expression> = f.args.iter().collect();
    // Lazily evaluated: the first argument that evaluates wins.
    if name == "try" || name == "can" {
        for a in &args {
            if let Ok(v) = ev.eval(a, cx) {
                if name == "can" {
                    return Ok(Val::new(V::Bool(true), pos));
                }
                return Ok(v);
            }
        }
        if name == "can" {
            return Ok(Val::new(V::Bool(false), pos));
        }
        return Err("no argument of try() evaluates".into());
    }
    let mut vals = Vec::with_capacity(args.len());
    for a in &args {
        vals.push(ev.eval(a, cx)?);
    }
    if f.args.expand_final()
        && let Some(last) = vals.pop()
    {
        vals.extend(list(&last, &name)?);
    }
    let t = ev.text_of(cx, whole);
    // Functions that only move values around keep unknown parts as they are;
    // the rest are unknown when an argument is.
    let carries_unknown = matches!(
        name.as_str(),
        "jsonencode"
            | "format"
            | "join"
            | "concat"
            | "merge"
            | "tolist"
            | "toset"
            | "tomap"
            | "tostring"
            | "flatten"
            | "compact"
            | "coalesce"
            | "coalescelist"
            | "list"
            | "map"
    );
    if !carries_unknown && vals.iter().any(Val::is_unknown) {
        return Ok(ev.unknown(t, "an argument is not known before apply", pos));
    }
    let arg = |i: usize| -> Result<&Val, String> {
        vals.get(i)
            .ok_or_else(|| format!("{name}() needs at least {} argument(s)", i + 1))
    };
    let s = |v: V| Ok(Val::new(v, pos));
    match name.as_str() {
        "jsonencode" => s(V::Str(arg(0)?.to_json().to_string())),
        "jsondecode" => {
            let j: serde_json::Value =
                serde_json::from_str(&text(arg(0)?)?).map_err(|e| format!("jsondecode: {e}"))?;
            Ok(Val::from_json(&j, pos))
        }
        "format" => s(V::Str(format(&text(arg(0)?)?, &vals[1..])?)),
        "formatlist" => {
            let spec = text(arg(0)?)?;
            let rest = &vals[1..];
            let n = rest
                .iter()
                .filter_map(|v| match &v.v {
                    V::List(l) => Some(l.len()),
                    _ => None,
                })
                .max()
                .unwrap_or(1);
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let row: Vec<Val> = rest
                    .iter()
                    .map(|v| match &v.v {
                        V::List(l) => l.get(i).cloned().unwrap_or_else(|| Val::new(V::Null, pos)),
                        _ => v.clone(),
                    })
                    .collect();
                out.push(Val::str(format(&spec, &row)?, pos));
            }
            s(V::List(out))
        }
        "join" => {
            let sep = text(arg(0)?)?;
            let mut parts = Vec::new();
            for l in &vals[1..] {
                for v in list(l, "join")? {
                    parts.push(text(&v)?);
                }
            }
            s(V::Str(check_len(parts.join(&sep))?))
        }
        "split" => {
            let sep = text(arg(0)?)?;
            let whole = text(arg(1)?)?;
            if sep.is_empty() {
                return Err("split() needs a separator".into());
            }
            s(V::List(
                whole
                    .split(sep.as_str())
                    .map(|p| Val::str(p, pos))
                    .collect(),
            ))
        }
        "concat" => {
            let mut out = Vec::new();
            for l in &vals {
                if l.is_unknown() {
                    return Ok(ev.unknown(t, "an argument is not known before apply", pos));
                }
                out.extend(list(l, "concat")?);
            }
            s(V::List(out))
        }
        "merge" => {
            let mut out: Vec<(String, Val)> = Vec::new();
            for m in &vals {
                if m.is_unknown() {
                    return Ok(ev.unknown(t, "an argument is not known before apply", pos));
                }
                for (k, v) in obj(m, "merge")? {
                    out.retain(|(n, _)| *n != k);
                    out.push((k, v));
                }
            }
            s(V::Obj(out))
        }
        "lookup" => {
            let key = text(arg(1)?)?;
            match arg(0)?.get(&key) {
                Some(v) => Ok(v.clone()),
                None => vals
                    .get(2)
                    .cloned()
                    .ok_or_else(|| format!("lookup(): no key `{key}` and no default")),
            }
        }
        "element" => {
            let l = list(arg(0)?, "element")?;
            let i = arg(1)?.as_num().ok_or("element() needs a number index")?;
            if l.is_empty() {
                return Err("element() of an empty list".into());
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = (i.max(0.0) as usize) % l.len();
            Ok(l[i].clone())
        }
        "length" => {
            #[allow(clippy::cast_precision_loss)]
            let n = match &arg(0)?.v {
                V::List(l) => l.len(),
                V::Obj(o) => o.len(),
                V::Str(x) => x.chars().count(),
                _ => return Err(format!("length() of {}", arg(0)?.kind())),
            } as f64;
            s(V::Num(n))
        }
        "coalesce" => {
            for v in &vals {
                if v.is_unknown() {
                    return Ok(ev.unknown(t, "an argument is not known before apply", pos));
                }
                if !v.is_null() && v.as_str() != Some("") {
                    return Ok(v.clone());
                }
            }
            Err("coalesce(): every argument is null or empty".into())
        }
        "coalescelist" => {
            for v in &vals {
                if v.is_unknown() {
                    return Ok(ev.unknown(t, "an argument is not known before apply", pos));
                }
                if matches!(&v.v, V::List(l) if !l.is_empty()) {
                    return Ok(v.clone());
                }
            }
            Err("coalescelist(): every argument is empty".into())
        }
        "lower" => s(V::Str(text(arg(0)?)?.to_lowercase())),
        "upper" => s(V::Str(text(arg(0)?)?.to_uppercase())),
        "title" => {
            let x = text(arg(0)?)?;
            let mut out = String::with_capacity(x.len());
            let mut start = true;
            for c in x.chars() {
                if start && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            s(V::Str(out))
        }
        "trimspace" => s(V::Str(text(arg(0)?)?.trim().to_owned())),
        "chomp" => s(V::Str(
            text(arg(0)?)?.trim_end_matches(['\n', '\r']).to_owned(),
        )),
        "trimprefix" => {
            let x = text(arg(0)?)?;
            let p = text(arg(1)?)?;
            s(V::Str(x.strip_prefix(p.as_str()).unwrap_or(&x).to_owned()))
        }
        "trimsuffix" => {
            let x = text(arg(0)?)?;
            let p = text(arg(1)?)?;
            s(V::Str(x.strip_suffix(p.as_str()).unwrap_or(&x).to_owned()))
        }
        "trim" => {
            let x = text(arg(0)?)?;
            let cut: Vec<char> = text(arg(1)?)?.chars().collect();
            s(V::Str(x.trim_matches(cut.as_slice()).to_owned()))
        }
        "startswith" => s(V::Bool(text(arg(0)?)?.starts_with(&text(arg(1)?)?))),
        "endswith" => s(V::Bool(text(arg(0)?)?.ends_with(&text(arg(1)?)?))),
        "substr" => {
            let x: Vec<char> = text(arg(0)?)?.chars().collect();
            let off = arg(1)?.as_num().ok_or("substr() needs a number offset")?;
            let len = arg(2)?.as_num().ok_or("substr() needs a number length")?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let start = if off < 0.0 {
                x.len().saturating_sub((-off) as usize)
            } else {
                (off as usize).min(x.len())
            };
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let end = if len < 0.0 {
                x.len()
            } else {
                (start + len as usize).min(x.len())
            };
            s(V::Str(x[start..end].iter().collect()))
        }
        "replace" => {
            let x = text(arg(0)?)?;
            let from = text(arg(1)?)?;
            let to = text(arg(2)?)?;
            if from.len() >= 2 && from.starts_with('/') && from.ends_with('/') {
                let re = regex::Regex::new(&from[1..from.len() - 1])
                    .map_err(|e| format!("replace(): {e}"))?;
                s(V::Str(check_len(
                    re.replace_all(&x, to.as_str()).into_owned(),
                )?))
            } else if from.is_empty() {
                Ok(Val::str(x, pos))
            } else {
                s(V::Str(check_len(x.replace(&from, &to))?))
            }
        }
        "contains" => {
            let needle = arg(1)?;
            s(V::Bool(
                list(arg(0)?, "contains")?.iter().any(|v| v.same(needle)),
            ))
        }
        "keys" => s(V::List(
            obj(arg(0)?, "keys")?
                .into_iter()
                .map(|(k, _)| Val::str(k, pos))
                .collect(),
        )),
        "values" => s(V::List(
            obj(arg(0)?, "values")?
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        )),
        "zipmap" => {
            let k = list(arg(0)?, "zipmap")?;
            let v = list(arg(1)?, "zipmap")?;
            let mut out = Vec::new();
            for (a, b) in k.iter().zip(v) {
                out.push((text(a)?, b));
            }
            s(V::Obj(out))
        }
        "flatten" => {
            fn flat(v: &Val, out: &mut Vec<Val>, depth: usize) -> Result<(), String> {
                if depth > 64 {
                    return Err("flatten(): nested too deeply".into());
                }
                match &v.v {
                    V::List(l) => {
                        for x in l {
                            flat(x, out, depth + 1)?;
                        }
                    }
                    _ => out.push(v.clone()),
                }
                Ok(())
            }
            let mut out = Vec::new();
            for x in list(arg(0)?, "flatten")? {
                flat(&x, &mut out, 0)?;
            }
            s(V::List(out))
        }
        "distinct" | "toset" => {
            let mut out: Vec<Val> = Vec::new();
            let src = arg(0)?;
            if src.is_unknown() {
                return Ok(src.clone());
            }
            for v in list(src, &name)? {
                if !out.iter().any(|o| o.same(&v)) {
                    out.push(v);
                }
            }
            s(V::List(out))
        }
        "compact" => {
            let src = list(arg(0)?, "compact")?;
            s(V::List(
                src.into_iter()
                    .filter(|v| !v.is_null() && v.as_str() != Some(""))
                    .collect(),
            ))
        }
        "reverse" => {
            let mut l = list(arg(0)?, "reverse")?;
            l.reverse();
            s(V::List(l))
        }
        "sort" => {
            let mut l: Vec<String> = Vec::new();
            for v in list(arg(0)?, "sort")? {
                l.push(text(&v)?);
            }
            l.sort();
            s(V::List(l.into_iter().map(|x| Val::str(x, pos)).collect()))
        }
        "slice" => {
            let l = list(arg(0)?, "slice")?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let a =
                (arg(1)?.as_num().ok_or("slice() needs numbers")?.max(0.0) as usize).min(l.len());
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let b =
                (arg(2)?.as_num().ok_or("slice() needs numbers")?.max(0.0) as usize).min(l.len());
            s(V::List(l[a..b.max(a)].to_vec()))
        }
        "one" => {
            let l = list(arg(0)?, "one")?;
            match l.len() {
                0 => s(V::Null),
                1 => Ok(l[0].clone()),
                _ => Err("one() of a list with more than one element".into()),
            }
        }
        "min" | "max" => {
            let mut ns = Vec::new();
            for v in &vals {
                ns.push(
                    v.as_num()
                        .ok_or_else(|| format!("{name}() needs numbers"))?,
                );
            }
            let r = if name == "min" {
                ns.iter().copied().fold(f64::INFINITY, f64::min)
            } else {
                ns.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            };
            s(V::Num(r))
        }
        "tostring" => match &arg(0)?.v {
            V::Unknown(_) | V::Null => Ok(arg(0)?.clone()),
            _ => s(V::Str(text(arg(0)?)?)),
        },
        "tonumber" => s(V::Num(arg(0)?.as_num().ok_or("tonumber(): not a number")?)),
        "tobool" => s(V::Bool(arg(0)?.as_bool().ok_or("tobool(): not a bool")?)),
        "tolist" | "tomap" | "list" | "map" => Ok(arg(0)?.clone()),
        "basename" => {
            let x = text(arg(0)?)?;
            s(V::Str(x.rsplit('/').next().unwrap_or("").to_owned()))
        }
        "dirname" => {
            let x = text(arg(0)?)?;
            s(V::Str(
                x.rsplit_once('/')
                    .map_or(".".to_owned(), |(d, _)| d.to_owned()),
            ))
        }
        "base64encode" => s(V::Str(base64(text(arg(0)?)?.as_bytes()))),
        "indent" => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = arg(0)?
                .as_num()
                .ok_or("indent() needs a number")?
                .clamp(0.0, 1000.0) as usize;
            let x = text(arg(1)?)?;
            let pad = " ".repeat(n);
            s(V::Str(check_len(x.replace('\n', &format!("\n{pad}")))?))
        }
        "fileexists" => s(V::Bool(module_path(ev, &text(arg(0)?)?).is_file())),
        "file" => {
            let p = text(arg(0)?)?;
            s(V::Str(read_module_file(ev, &p)?))
        }
        "templatefile" => {
            let p = text(arg(0)?)?;
            let body = read_module_file(ev, &p)?;
            let tpl = hcl_edit::parser::parse_template(&body)
                .map_err(|e| format!("templatefile({p}): {}", e.message()))?;
            let mut tcx = Ctx {
                file: cx.file,
                scope: Vec::new(),
                at: Some(pos),
            };
            if let Some(v) = vals.get(1) {
                for (k, v) in obj(v, "templatefile")? {
                    tcx.scope.push((k, v));
                }
            }
            // A template that renders itself would never end.
            let guard = format!("templatefile:{p}");
            if !ev.enter(&guard) {
                return Err(format!("templatefile({p}) calls itself"));
            }
            let r = ev.render(&tpl, &tcx);
            ev.leave();
            s(V::Str(r?))
        }
        _ => {
            let _ = whole.span();
            Ok(ev.unknown(
                t,
                format!("pipedeck does not evaluate the function `{name}`"),
                pos,
            ))
        }
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
