//! Correlation: the values that flow from one answer into later requests.
//! An id the server made up (an order id, a cursor, a CSRF token) is
//! different on every run, so a journey that replays it as recorded fails
//! the first time the data changes. Each such value becomes a capture on
//! the step whose answer held it and a `{{ var }}` in every later request
//! that sends it; a value the client made up first (an idempotency key, a
//! client-side uuid) becomes a fresh `{{ uuid }}` instead.
//!
//! Only whole values are matched (a JSON value, a path segment, a query
//! value, a header value), and only values distinct enough not to match
//! by chance: `1`, `true` and `"pending"` are left alone.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::model::{Exchange, PostBody};
use crate::init::spec::pointer_segment;

/// How deep a JSON body is walked, and how many of its values are read.
const MAX_DEPTH: usize = 32;
const MAX_LEAVES: usize = 20_000;

/// Where a step's answer holds a captured value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// A JSON pointer into the body.
    Json(String),
    /// A response header (its whole value).
    Header(String),
}

impl Source {
    fn in_list(&self) -> bool {
        match self {
            Source::Json(p) => p
                .split('/')
                .any(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
            Source::Header(_) => false,
        }
    }
}

/// A value and where in a request or an answer it was.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The value as text (a number as written).
    pub value: String,
    /// The name it was under: a JSON member, query or header name, the
    /// path segment before it.
    pub key: String,
    /// Whether it is a path segment.
    pub in_path: bool,
}

/// One correlated value: where it is captured and where it is used.
#[derive(Debug, Default, Clone)]
pub struct Flow {
    /// `(step, where in its answer)`, in order.
    pub from: Vec<(usize, Source)>,
    /// The steps that send it.
    pub used_by: Vec<usize>,
}

/// What the correlation found.
#[derive(Debug, Default)]
pub struct Correlation {
    /// Per step: `(variable, where in its answer)` to capture.
    pub captures: Vec<Vec<(String, Source)>>,
    /// Per step: `(variable, template)` to set before its request.
    pub lets: Vec<Vec<(String, String)>>,
    /// Per step: recorded value → the template that replaces it.
    pub templates: Vec<HashMap<String, String>>,
    /// Per step: `(pointer, variable)` its answer should echo.
    pub echoes: Vec<Vec<(String, String)>>,
    /// For the README: variable → (steps it is captured at, with where,
    /// and the steps using it).
    pub flows: BTreeMap<String, Flow>,
    /// Values an answer held that later requests send as recorded, because
    /// the step whose answer held them is not in the journey: `(step, key)`.
    pub literal: Vec<(usize, String)>,
}

/// Whether `v` is distinct enough to be followed from an answer into a
/// request: an id, a uuid, a token, not `1`, `true` or `"pending"`.
pub fn distinct(v: &str) -> bool {
    let len = v.chars().count();
    if !(5..=2048).contains(&len) || matches!(v, "true" | "false" | "null") {
        return false;
    }
    if v.chars().all(|c| c.is_ascii_digit()) {
        // Numbers under 10 000 are counts, limits, years and amounts too.
        return len >= 5;
    }
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let spaces = v.chars().filter(|c| c.is_whitespace()).count();
    spaces == 0 && ((digits > 0 && len >= 6) || len >= 16)
}

/// Whether `key` names an id (`id`, `order_id`, `orderId`, `uuid`).
fn id_like(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "id" || k == "uuid" || k.ends_with("_id") || key.ends_with("Id") || k.ends_with("-id")
}

/// Whether `v` is a uuid (any version).
pub fn is_uuid(v: &str) -> bool {
    v.len() == 36
        && v.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Every value of a JSON document with its pointer and the member name it
/// was under.
pub fn json_leaves(v: &Value) -> Vec<(String, Leaf)> {
    let mut out = Vec::new();
    walk(v, String::new(), "", 0, &mut out);
    out
}

fn walk(v: &Value, ptr: String, key: &str, depth: usize, out: &mut Vec<(String, Leaf)>) {
    if depth > MAX_DEPTH || out.len() >= MAX_LEAVES {
        return;
    }
    let leaf = |value: String| Leaf {
        value,
        key: key.to_string(),
        in_path: false,
    };
    match v {
        Value::String(s) => out.push((ptr, leaf(s.clone()))),
        Value::Number(n) => out.push((ptr, leaf(n.to_string()))),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, format!("{ptr}/{i}"), key, depth + 1, out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                walk(
                    x,
                    format!("{ptr}/{}", pointer_segment(k)),
                    k,
                    depth + 1,
                    out,
                );
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// The headers a replay never sends as recorded: the client's own
/// (the HTTP stack, the browser) and what convoy sets itself.
pub fn header_dropped(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("sec-")
        || n.starts_with("proxy-")
        || n.starts_with(':')
        || matches!(
            n.as_str(),
            "host"
                | "content-length"
                | "connection"
                | "keep-alive"
                | "accept-encoding"
                | "accept-language"
                | "user-agent"
                | "cookie"
                | "origin"
                | "referer"
                | "priority"
                | "if-none-match"
                | "if-modified-since"
                | "cache-control"
                | "pragma"
                | "upgrade-insecure-requests"
                | "dnt"
                | "te"
                | "transfer-encoding"
        )
}

/// The values a request sends: path segments, query values, headers kept
/// in a replay, body values.
pub fn request_leaves(e: &Exchange) -> Vec<Leaf> {
    let mut out = Vec::new();
    let mut prev = String::new();
    for seg in e.url.path().split('/').filter(|s| !s.is_empty()) {
        let value = percent_decode(seg);
        out.push(Leaf {
            value: value.clone(),
            key: prev.clone(),
            in_path: true,
        });
        prev = value;
    }
    for (k, v) in e.url.query_pairs() {
        out.push(Leaf {
            value: v.into_owned(),
            key: k.into_owned(),
            in_path: false,
        });
    }
    for (k, v) in &e.request_headers {
        if header_dropped(k) {
            continue;
        }
        let value = match v.split_once(' ') {
            Some((scheme, rest)) if k.eq_ignore_ascii_case("authorization") => {
                let _ = scheme;
                rest.trim().to_string()
            }
            _ => v.clone(),
        };
        out.push(Leaf {
            value,
            key: k.clone(),
            in_path: false,
        });
    }
    match &e.body {
        PostBody::Json(v) => out.extend(json_leaves(v).into_iter().map(|(_, l)| l)),
        PostBody::Form(fields) => out.extend(fields.iter().map(|(k, v)| Leaf {
            value: v.clone(),
            key: k.clone(),
            in_path: false,
        })),
        _ => {}
    }
    out
}

/// Decodes `%XX` escapes; a malformed one is kept as written.
pub fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// The values an answer holds that a later request may send back.
fn answer_sources(e: &Exchange) -> Vec<(String, String, Source)> {
    let mut out = Vec::new();
    if let Some(json) = e.response_json() {
        for (ptr, leaf) in json_leaves(&json) {
            if distinct(&leaf.value) || (id_like(&leaf.key) && !leaf.value.is_empty()) {
                out.push((leaf.value, leaf.key, Source::Json(ptr)));
            }
        }
    }
    for (k, v) in &e.response_headers {
        let lower = k.to_ascii_lowercase();
        if (lower == "location" || lower.starts_with("x-")) && distinct(v) {
            out.push((v.clone(), lower.clone(), Source::Header(lower)));
        }
    }
    out
}

/// A variable name from the key a value was under and the path of the
/// step whose answer held it: `/id` of `POST /api/orders` → `order_id`.
fn var_name(key: &str, path: &str) -> String {
    let snake = snake_case(key);
    let base = if snake.is_empty() || snake == "id" || snake == "uuid" {
        let resource = path
            .split('/')
            .rev()
            .find(|s| {
                !s.is_empty()
                    && s.chars().any(|c| c.is_ascii_alphabetic())
                    && !is_uuid(s)
                    && !s.chars().any(|c| c.is_ascii_digit())
            })
            .map(|s| singular(&snake_case(s)))
            .unwrap_or_default();
        if resource.is_empty() {
            "id".to_string()
        } else {
            format!(
                "{resource}_{}",
                if snake.is_empty() { "id" } else { &snake }
            )
        }
    } else {
        snake
    };
    if base.starts_with(|c: char| c.is_ascii_alphabetic()) {
        base
    } else {
        format!("v_{base}")
    }
}

/// `orderId`, `Order-Id`, `order id` → `order_id`.
pub fn snake_case(s: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    out.trim_end_matches('_').to_string()
}

fn singular(name: &str) -> String {
    if let Some(stem) = name.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = name.strip_suffix('s').filter(|s| !s.ends_with('s')) {
        stem.to_string()
    } else {
        name.to_string()
    }
}

/// Names no variable may take: template built-ins and identity fields.
const RESERVED: [&str; 9] = [
    "uuid",
    "vu",
    "iteration",
    "now_ms",
    "env",
    "data",
    "username",
    "password",
    "token",
];

/// Correlates `steps`. `skip` holds values handled elsewhere (the
/// credentials); `absent` the steps that are not in the journey (a login
/// the `[auth]` makes), whose answers cannot be captured.
pub fn correlate(
    steps: &[Exchange],
    skip: &HashSet<String>,
    absent: &HashSet<usize>,
) -> Correlation {
    let n = steps.len();
    let mut c = Correlation {
        captures: vec![Vec::new(); n],
        lets: vec![Vec::new(); n],
        templates: vec![HashMap::new(); n],
        echoes: vec![Vec::new(); n],
        ..Correlation::default()
    };
    // value → every (step, key, source) whose answer held it, in order.
    let mut answered: HashMap<String, Vec<(usize, String, Source)>> = HashMap::new();
    // Values a request sent before any answer held them: the client's own.
    let mut clients: HashSet<String> = HashSet::new();
    let mut client_vars: HashMap<String, String> = HashMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut taken: HashSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    let mut name_for = |value: &str, hint: String, taken: &mut HashSet<String>| -> String {
        if let Some(n) = names.get(value) {
            return n.clone();
        }
        let mut name = hint.clone();
        let mut k = 2;
        while !taken.insert(name.clone()) {
            name = format!("{hint}_{k}");
            k += 1;
        }
        names.insert(value.to_string(), name.clone());
        name
    };
    for (i, e) in steps.iter().enumerate() {
        if !absent.contains(&i) {
            let leaves = request_leaves(e);
            // A client-made uuid sent more than once is one variable.
            for leaf in &leaves {
                if skip.contains(&leaf.value) {
                    continue;
                }
                let strong = distinct(&leaf.value);
                let weak_ok = leaf.in_path || id_like(&leaf.key);
                let sources = answered.get(&leaf.value).map(|s| {
                    s.iter()
                        .filter(|(_, key, _)| strong || (weak_ok && id_like(key)))
                        .filter(|(j, _, _)| !absent.contains(j))
                        .collect::<Vec<_>>()
                });
                match sources {
                    Some(s) if !s.is_empty() => {
                        // The latest answer that held it, one where it is not
                        // a list element first: a list's order changes with
                        // its data.
                        let &&(j, ref key, ref src) = s
                            .iter()
                            .rev()
                            .find(|(_, _, src)| !src.in_list())
                            .unwrap_or_else(|| s.last().expect("not empty"));
                        let var =
                            name_for(&leaf.value, var_name(key, steps[j].url.path()), &mut taken);
                        if !c.captures[j].iter().any(|(v, _)| *v == var) {
                            c.captures[j].push((var.clone(), src.clone()));
                        }
                        c.templates[i].insert(leaf.value.clone(), format!("{{{{ {var} }}}}"));
                        let flow = c.flows.entry(var.clone()).or_default();
                        if !flow.from.iter().any(|(k, _)| *k == j) {
                            flow.from.push((j, src.clone()));
                        }
                        if !flow.used_by.contains(&i) {
                            flow.used_by.push(i);
                        }
                    }
                    Some(_) => {
                        if strong && !c.literal.iter().any(|(_, k)| *k == leaf.key) {
                            c.literal.push((i, leaf.key.clone()));
                        }
                    }
                    None if is_uuid(&leaf.value)
                        || leaf.key.eq_ignore_ascii_case("idempotency-key") =>
                    {
                        match client_vars.get(&leaf.value) {
                            Some(var) => {
                                c.templates[i]
                                    .insert(leaf.value.clone(), format!("{{{{ {var} }}}}"));
                            }
                            None => {
                                let hint = if leaf.in_path {
                                    format!("{}_id", singular(&snake_case(&leaf.key)))
                                } else {
                                    snake_case(&leaf.key)
                                };
                                let hint = if hint.is_empty() || hint == "_id" {
                                    "client_id".to_string()
                                } else {
                                    hint
                                };
                                let var = name_for(&leaf.value, var_name(&hint, ""), &mut taken);
                                c.lets[i].push((var.clone(), "{{ uuid }}".to_string()));
                                c.templates[i]
                                    .insert(leaf.value.clone(), format!("{{{{ {var} }}}}"));
                                clients.insert(leaf.value.clone());
                                client_vars.insert(leaf.value.clone(), var);
                            }
                        }
                    }
                    None => {
                        clients.insert(leaf.value.clone());
                    }
                }
            }
            // Checks that the answer names what was asked about.
            if let Some(json) = e.response_json() {
                for (ptr, leaf) in json_leaves(&json) {
                    if ptr.matches('/').count() > 2 || c.echoes[i].len() >= 3 {
                        continue;
                    }
                    if let Some(t) = c.templates[i].get(&leaf.value)
                        && id_like(&leaf.key)
                    {
                        let var = t
                            .trim_start_matches("{{ ")
                            .trim_end_matches(" }}")
                            .to_string();
                        c.echoes[i].push((ptr, var));
                    }
                }
            }
        }
        for (value, key, src) in answer_sources(e) {
            // A value the client sent first is the client's: an echo of it
            // is not where it comes from.
            if clients.contains(&value) || skip.contains(&value) {
                continue;
            }
            answered.entry(value).or_default().push((i, key, src));
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_only() {
        for v in [
            "1",
            "true",
            "pending",
            "2026",
            "delivered",
            "acme",
            "a b 123456",
        ] {
            assert!(!distinct(v), "{v}");
        }
        for v in [
            "12345",
            "ord_8f3k2x",
            "3f2c9a4e-1b7d-4c1e-9a0b-5d6e7f8a9b0c",
            "abcdefghijklmnopq",
        ] {
            assert!(distinct(v), "{v}");
        }
        assert_eq!(var_name("id", "/api/orders"), "order_id");
        assert_eq!(var_name("orderId", "/x"), "order_id");
        assert_eq!(var_name("id", "/api/categories/12/"), "category_id");
        assert_eq!(var_name("", "/"), "id");
    }

    /// `(method, url, request body, response body)`, no headers.
    fn har(entries: &[(&str, &str, &str, &str)]) -> Vec<Exchange> {
        let full: Vec<_> = entries
            .iter()
            .map(|&(m, u, b, r)| (m, u, &[][..], b, &[][..], r))
            .collect();
        crate::init::har::fixture::exchanges(&full)
    }

    #[test]
    fn ids_flow_from_the_latest_answer_and_client_uuids_are_fresh() {
        let key = "3f2c9a4e-1b7d-4c1e-9a0b-5d6e7f8a9b0c";
        let steps = har(&[
            (
                "POST",
                "http://h/orders",
                &format!(r#"{{"key":"{key}","n":1}}"#),
                r#"{"id":"ord-000123","status":"pending","key":"3f2c9a4e-1b7d-4c1e-9a0b-5d6e7f8a9b0c"}"#,
            ),
            (
                "GET",
                "http://h/orders",
                "",
                r#"{"orders":[{"id":"ord-000123"}]}"#,
            ),
            (
                "GET",
                "http://h/orders/ord-000123",
                "",
                r#"{"id":"ord-000123","status":"pending"}"#,
            ),
            (
                "GET",
                &format!("http://h/orders?key={key}&status=pending"),
                "",
                r#"{}"#,
            ),
        ]);
        let c = correlate(&steps, &HashSet::new(), &HashSet::new());
        assert_eq!(
            c.captures[0],
            [("order_id".to_string(), Source::Json("/id".into()))]
        );
        assert!(
            c.captures[1].is_empty(),
            "a list element is the last resort"
        );
        assert_eq!(c.templates[2]["ord-000123"], "{{ order_id }}");
        assert_eq!(c.lets[0], [("key".to_string(), "{{ uuid }}".to_string())]);
        assert_eq!(c.templates[3][key], "{{ key }}");
        assert!(!c.templates[3].contains_key("pending"));
        assert_eq!(c.echoes[2], [("/id".to_string(), "order_id".to_string())]);
    }
}
