//! Templates in scenario strings: `{{ uuid }}`, `{{ vu }}`, `{{ iteration }}`,
//! `{{ env.NAME }}`, `{{ now_ms }}`, `{{ random_int(1, 100) }}`, variables
//! (`{{ order_id }}`) and data-file columns (`{{ data.city }}`).
//!
//! A template is parsed once, when the scenario loads, into literal text and
//! typed placeholders whose variables are resolved to slot numbers; rendering
//! a request only copies text and looks up slots. `env.NAME` is read at load
//! time, so a missing variable is reported with its file position before
//! anything runs.

use std::fmt::Write as _;

use serde_json::Value;

use super::data::Row;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text copied as is.
    Lit(String),
    /// A fresh UUID v4.
    Uuid,
    /// The virtual user's number.
    Vu,
    /// The user's iteration number.
    Iteration,
    /// Milliseconds since the Unix epoch.
    NowMs,
    /// A random integer in `lo..=hi`.
    RandomInt(i64, i64),
    /// A per-user variable slot.
    Var(usize),
    /// A column of the current data row.
    Data(usize),
    /// A field of the identity the request is made as (`{{ tenant }}`),
    /// by its index among the scenario's identity field names.
    Ident(usize),
}

/// A template could not be parsed; offsets are bytes into its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Where the problem starts.
    pub offset: usize,
    /// How long it is.
    pub len: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// What a name inside `{{ }}` refers to, as decided by the scenario.
pub trait Resolve {
    /// Resolves a variable or data column name, or explains why not.
    fn resolve(&self, name: &str) -> Result<Part, (String, Option<String>)>;
    /// Reads an environment variable (tests substitute their own).
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// What rendering needs from the running user.
pub struct RenderCtx<'a> {
    /// The virtual user.
    pub vu: u64,
    /// Its iteration.
    pub iteration: u64,
    /// Its variable slots.
    pub vars: &'a [Option<Value>],
    /// The current data row, if the scenario has data.
    pub data: Option<Row<'a>>,
    /// Slot names, for error messages.
    pub names: &'a [String],
    /// The fields of the identity the request is made as, by field index
    /// (empty when it acts as none).
    pub ident: &'a [Option<Value>],
    /// The scenario's identity field names, for error messages.
    pub ident_names: &'a [String],
}

/// A variable had no value when a request needed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unset(pub String);

impl Template {
    /// A template of literal text only.
    pub fn literal(text: impl Into<String>) -> Self {
        Template {
            parts: vec![Part::Lit(text.into())],
        }
    }

    /// Parses `text`, resolving names with `scope`.
    pub fn parse(text: &str, scope: &dyn Resolve) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        let mut base = 0usize;
        while let Some(open) = rest.find("{{") {
            lit.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| TemplateError {
                offset: base + open,
                len: 2,
                message: "unclosed `{{`".into(),
                hint: Some("close the placeholder with `}}`".into()),
            })?;
            let inner = &after[..close];
            let inner_offset = base + open + 2 + (inner.len() - inner.trim_start().len());
            let expr = inner.trim();
            let part = parse_expr(expr, inner_offset, scope)?;
            match part {
                Part::Lit(s) => lit.push_str(&s),
                p => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(p);
                }
            }
            let consumed = open + 2 + close + 2;
            base += consumed;
            rest = &rest[consumed..];
        }
        if let Some(stray) = rest.find("}}") {
            return Err(TemplateError {
                offset: base + stray,
                len: 2,
                message: "`}}` without a matching `{{`".into(),
                hint: None,
            });
        }
        lit.push_str(rest);
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// True when the template has no placeholder.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// The text of a literal template.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// The slot of a template that is one variable and nothing else.
    pub fn as_var(&self) -> Option<usize> {
        match self.parts.as_slice() {
            [Part::Var(i)] => Some(*i),
            _ => None,
        }
    }

    /// The variable slots this template reads.
    pub fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(i) => Some(*i),
            _ => None,
        })
    }

    /// Appends the rendered text to `out`.
    pub fn render_into(&self, ctx: &RenderCtx<'_>, out: &mut String) -> Result<(), Unset> {
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Uuid => {
                    let mut buf = uuid::Uuid::encode_buffer();
                    out.push_str(random_uuid().hyphenated().encode_lower(&mut buf));
                }
                Part::Vu => {
                    let _ = write!(out, "{}", ctx.vu);
                }
                Part::Iteration => {
                    let _ = write!(out, "{}", ctx.iteration);
                }
                Part::NowMs => {
                    let ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    let _ = write!(out, "{ms}");
                }
                Part::RandomInt(lo, hi) => {
                    let _ = write!(out, "{}", fastrand::i64(*lo..=*hi));
                }
                Part::Var(i) => match ctx.vars.get(*i).and_then(Option::as_ref) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v) => {
                        let _ = write!(out, "{v}");
                    }
                    None => return Err(Unset(ctx.names.get(*i).cloned().unwrap_or_default())),
                },
                Part::Data(col) => match ctx.data.and_then(|row| row.get(*col)) {
                    Some(cell) => cell.write_to(out),
                    None => return Err(Unset(format!("data column {col}"))),
                },
                Part::Ident(i) => match ctx.ident.get(*i).and_then(Option::as_ref) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v) => {
                        let _ = write!(out, "{v}");
                    }
                    None => return Err(ident_unset(ctx, *i)),
                },
            }
        }
        Ok(())
    }

    /// The rendered text.
    pub fn render(&self, ctx: &RenderCtx<'_>) -> Result<String, Unset> {
        if let Some(s) = self.as_literal() {
            return Ok(s.to_string());
        }
        let mut out = String::new();
        self.render_into(ctx, &mut out)?;
        Ok(out)
    }

    /// The rendered value for a JSON body: a template that is exactly one
    /// variable keeps the variable's JSON type (a captured number stays a
    /// number); anything else renders as a string.
    pub fn render_value(&self, ctx: &RenderCtx<'_>) -> Result<Value, Unset> {
        match self.parts.as_slice() {
            [Part::Var(i)] => ctx
                .vars
                .get(*i)
                .and_then(Option::as_ref)
                .cloned()
                .ok_or_else(|| Unset(ctx.names.get(*i).cloned().unwrap_or_default())),
            [Part::Data(col)] => ctx
                .data
                .and_then(|row| row.get(*col))
                .map(|cell| cell.to_value())
                .ok_or_else(|| Unset(format!("data column {col}"))),
            [Part::Ident(i)] => ctx
                .ident
                .get(*i)
                .and_then(Option::as_ref)
                .cloned()
                .ok_or_else(|| ident_unset(ctx, *i)),
            [Part::Vu] => Ok(Value::from(ctx.vu)),
            [Part::Iteration] => Ok(Value::from(ctx.iteration)),
            [Part::NowMs] | [Part::RandomInt(..)] => {
                let s = self.render(ctx)?;
                Ok(s.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(s)))
            }
            _ => self.render(ctx).map(Value::String),
        }
    }
}

/// An identity field the request's identity does not have.
fn ident_unset(ctx: &RenderCtx<'_>, i: usize) -> Unset {
    // Named as a variable is: the request's identity lacks this field.
    Unset(ctx.ident_names.get(i).cloned().unwrap_or_default())
}

const BUILTINS: &[&str] = &[
    "uuid",
    "vu",
    "iteration",
    "now_ms",
    "random_int(1, 100)",
    "env.NAME",
];

fn parse_expr(expr: &str, offset: usize, scope: &dyn Resolve) -> Result<Part, TemplateError> {
    let err = |message: String, hint: Option<String>| TemplateError {
        offset,
        len: expr.len().max(1),
        message,
        hint,
    };
    match expr {
        "" => Err(err(
            "empty placeholder `{{ }}`".into(),
            Some(format!("use one of {}, or a variable", BUILTINS.join(", "))),
        )),
        "uuid" => Ok(Part::Uuid),
        "vu" => Ok(Part::Vu),
        "iteration" => Ok(Part::Iteration),
        "now_ms" => Ok(Part::NowMs),
        _ if expr.starts_with("env.") => {
            let name = &expr[4..];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(
                    format!("invalid environment variable name {name:?}"),
                    None,
                ));
            }
            scope.env(name).map(Part::Lit).ok_or_else(|| {
                err(
                    format!("environment variable {name} is not set"),
                    Some(format!(
                        "export {name}=... before running, or use a [vars] value"
                    )),
                )
            })
        }
        _ if expr.starts_with("random_int(") && expr.ends_with(')') => {
            let args = &expr["random_int(".len()..expr.len() - 1];
            let nums: Vec<Result<i64, _>> =
                args.split(',').map(|a| a.trim().parse::<i64>()).collect();
            match nums.as_slice() {
                [Ok(lo), Ok(hi)] if lo <= hi => Ok(Part::RandomInt(*lo, *hi)),
                _ => Err(err(
                    format!("invalid {expr}: expected random_int(LOW, HIGH) with LOW <= HIGH"),
                    None,
                )),
            }
        }
        _ => {
            if !expr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                || expr.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(err(
                    format!("cannot understand `{{{{ {expr} }}}}`"),
                    Some(format!(
                        "use one of {}, or a variable name",
                        BUILTINS.join(", ")
                    )),
                ));
            }
            scope.resolve(expr).map_err(|(m, h)| err(m, h))
        }
    }
}

/// A version 4 UUID from the thread's fast generator (wyrand, seeded per
/// thread from the OS): `{{ uuid }}` makes idempotency keys and references,
/// which must be unique, not unguessable, so the hot path need not make a
/// `getrandom` system call per UUID.
fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl Resolve for Names {
        fn resolve(&self, name: &str) -> Result<Part, (String, Option<String>)> {
            match name {
                "order_id" => Ok(Part::Var(0)),
                "count" => Ok(Part::Var(1)),
                "data.city" => Ok(Part::Data(0)),
                _ => Err((format!("undefined variable {name:?}"), None)),
            }
        }
        fn env(&self, name: &str) -> Option<String> {
            (name == "TOKEN").then(|| "t0k".to_string())
        }
    }

    fn ctx<'a>(vars: &'a [Option<Value>], names: &'a [String]) -> RenderCtx<'a> {
        RenderCtx {
            vu: 7,
            iteration: 3,
            vars,
            data: None,
            names,
            ident: &[],
            ident_names: &[],
        }
    }

    #[test]
    fn renders_builtins_and_variables() {
        let t =
            Template::parse("/orders/{{ order_id }}?vu={{vu}}&i={{ iteration }}", &Names).unwrap();
        let vars = [Some(Value::from("o-1")), None];
        let names = ["order_id".to_string(), "count".to_string()];
        assert_eq!(
            t.render(&ctx(&vars, &names)).unwrap(),
            "/orders/o-1?vu=7&i=3"
        );
        let u = Template::parse("{{ uuid }}", &Names).unwrap();
        let a = u.render(&ctx(&vars, &names)).unwrap();
        assert_eq!(a.len(), 36);
        assert_ne!(a, u.render(&ctx(&vars, &names)).unwrap());
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(a, a.to_lowercase());
        let many: std::collections::HashSet<String> = (0..10_000)
            .map(|_| u.render(&ctx(&vars, &names)).unwrap())
            .collect();
        assert_eq!(many.len(), 10_000);
    }

    #[test]
    fn env_is_read_once_at_parse_time() {
        let t = Template::parse("Bearer {{ env.TOKEN }}", &Names).unwrap();
        assert_eq!(t.as_literal(), Some("Bearer t0k"));
        let e = Template::parse("x {{ env.MISSING }}", &Names).unwrap_err();
        assert!(e.message.contains("MISSING is not set"), "{e:?}");
        assert_eq!(e.offset, 5);
    }

    #[test]
    fn single_variables_keep_their_json_type() {
        let t = Template::parse("{{ count }}", &Names).unwrap();
        let vars = [None, Some(Value::from(3))];
        let names = ["order_id".to_string(), "count".to_string()];
        assert_eq!(t.render_value(&ctx(&vars, &names)).unwrap(), Value::from(3));
        let t = Template::parse("n={{ count }}", &Names).unwrap();
        assert_eq!(
            t.render_value(&ctx(&vars, &names)).unwrap(),
            Value::from("n=3")
        );
    }

    #[test]
    fn unset_variables_are_named() {
        let t = Template::parse("{{ order_id }}", &Names).unwrap();
        let names = ["order_id".to_string(), "count".to_string()];
        assert_eq!(
            t.render(&ctx(&[None, None], &names)),
            Err(Unset("order_id".into()))
        );
    }

    #[test]
    fn mistakes_point_at_their_offset() {
        let e = Template::parse("/a/{{ ordr_id }}", &Names).unwrap_err();
        assert_eq!(e.offset, 6);
        assert_eq!(e.len, 7);
        let e = Template::parse("/a/{{ order_id", &Names).unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(Template::parse("{{ }}", &Names).is_err());
        assert!(Template::parse("{{ random_int(5, 1) }}", &Names).is_err());
        assert!(Template::parse("a }} b", &Names).is_err());
        assert!(Template::parse("{{ 1abc }}", &Names).is_err());
    }
}
