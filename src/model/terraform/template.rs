//! Templates: quoted strings with interpolations, heredocs and
//! `templatefile` texts, with `%{ if }` / `%{ for }` directives and `~` strip
//! markers.

use hcl_edit::Span as _;
use hcl_edit::template::{Directive, Element, Template};

use super::eval::{Ctx, Evaluator, MAX_STRING};
use super::value::{V, Val, placeholder};

impl Evaluator<'_> {
    /// Renders a template (quoted string with interpolations, heredoc,
    /// `templatefile`), honouring `~` strip markers.
    pub fn render(&mut self, t: &Template, cx: &Ctx) -> Result<String, String> {
        let elems: Vec<&Element> = t.iter().collect();
        let mut out = String::new();
        let mut strip_next = false;
        for (i, el) in elems.iter().enumerate() {
            self.step()?;
            let next_strips = match elems.get(i + 1) {
                Some(Element::Interpolation(n)) => n.strip.strip_start(),
                Some(Element::Directive(d)) => match d.as_ref() {
                    Directive::If(d) => d.if_expr.strip.strip_start(),
                    Directive::For(d) => d.for_expr.strip.strip_start(),
                },
                _ => false,
            };
            match el {
                Element::Literal(s) => {
                    let mut s: &str = s.value();
                    if strip_next {
                        s = s.trim_start();
                    }
                    if next_strips {
                        s = s.trim_end();
                    }
                    out.push_str(s);
                    strip_next = false;
                }
                Element::Interpolation(ip) => {
                    let v = self.eval(&ip.expr, cx)?;
                    out.push_str(&v.to_text()?);
                    strip_next = ip.strip.strip_end();
                }
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(d) => {
                        let c = self.eval(&d.if_expr.cond_expr, cx)?;
                        match c.as_bool() {
                            Some(true) => out.push_str(&self.render(&d.if_expr.template, cx)?),
                            Some(false) => {
                                if let Some(el) = &d.else_expr {
                                    out.push_str(&self.render(&el.template, cx)?);
                                }
                            }
                            None => {
                                let t =
                                    format!("%{{if {}}}", self.text_of(cx, &d.if_expr.cond_expr));
                                let pos = self.pos(cx, d.if_expr.cond_expr.span());
                                let u =
                                    self.unknown(t, "its condition is not known before apply", pos);
                                out.push_str(&u.to_text()?);
                            }
                        }
                        strip_next = d.endif_expr.strip.strip_end();
                    }
                    Directive::For(d) => {
                        let coll = self.eval(&d.for_expr.collection_expr, cx)?;
                        let items: Vec<(Val, Val)> = match coll.v {
                            V::List(items) => items
                                .into_iter()
                                .enumerate()
                                .map(|(i, v)| {
                                    #[allow(clippy::cast_precision_loss)]
                                    let k = Val::new(V::Num(i as f64), v.pos);
                                    (k, v)
                                })
                                .collect(),
                            V::Obj(entries) => entries
                                .into_iter()
                                .map(|(k, v)| (Val::str(k, v.pos), v))
                                .collect(),
                            V::Unknown(t) => {
                                out.push_str(&placeholder(&t));
                                Vec::new()
                            }
                            _ => {
                                return Err(format!(
                                    "`%{{for}}` cannot iterate over {}",
                                    coll.kind()
                                ));
                            }
                        };
                        for (k, v) in items {
                            let mut c = cx.clone();
                            if let Some(kv) = &d.for_expr.key_var {
                                c.scope.push((kv.as_str().to_owned(), k));
                            }
                            c.scope.push((d.for_expr.value_var.as_str().to_owned(), v));
                            out.push_str(&self.render(&d.for_expr.template, &c)?);
                            if out.len() > MAX_STRING {
                                return Err("a template grows beyond 16 MiB".into());
                            }
                        }
                        strip_next = d.endfor_expr.strip.strip_end();
                    }
                },
            }
            if out.len() > MAX_STRING {
                return Err("a template grows beyond 16 MiB".into());
            }
        }
        Ok(out)
    }
}
