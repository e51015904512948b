//! Example data from a JSON Schema (the OpenAPI dialect): the schema's own
//! `example`/`examples` when it has one, else a value that satisfies what
//! a server checks most often: required properties, enums, formats,
//! minimum/maximum, lengths. Ids and keys that must be unique per request
//! are templates (`{{ uuid }}`) so every iteration sends fresh ones.

use serde_json::{Map, Value};

use super::InitError;
use super::spec::{Spec, pointer_segment};

/// How deep a sample is built; deeper optional structure is left out.
const MAX_DEPTH: usize = 12;

/// Builds samples from one document.
pub struct Sampler<'a> {
    spec: &'a Spec,
    /// `$ref` targets being expanded, to cut cycles.
    stack: Vec<String>,
}

impl<'a> Sampler<'a> {
    /// A sampler over `spec`.
    pub fn new(spec: &'a Spec) -> Self {
        Sampler {
            spec,
            stack: Vec::new(),
        }
    }

    /// A value for `schema` (at pointer `at`), or `None` when the schema
    /// only leads back into itself. `name` is the property it fills, if
    /// any, which picks a likelier string (`email`, `reference`).
    pub fn sample(
        &mut self,
        schema: &Value,
        at: &str,
        name: &str,
    ) -> Result<Option<Value>, InitError> {
        if self.stack.len() > MAX_DEPTH {
            return Ok(None);
        }
        let mut pushed = false;
        let (schema, at) = match schema.get("$ref").and_then(Value::as_str) {
            Some(_) => {
                let (s, p) = self.spec.deref(schema, at)?;
                if self.stack.contains(&p) {
                    return Ok(None);
                }
                self.stack.push(p.clone());
                pushed = true;
                (s, p)
            }
            None => (schema, at.to_string()),
        };
        let out = self.sample_resolved(schema, &at, name);
        if pushed {
            self.stack.pop();
        }
        out
    }

    fn sample_resolved(
        &mut self,
        schema: &Value,
        at: &str,
        name: &str,
    ) -> Result<Option<Value>, InitError> {
        if let Some(ex) = schema.get("example") {
            return Ok(Some(ex.clone()));
        }
        if let Some(Value::Array(exs)) = schema.get("examples")
            && let Some(ex) = exs.first()
        {
            return Ok(Some(ex.clone()));
        }
        if let Some(v) = schema.get("const") {
            return Ok(Some(v.clone()));
        }
        if let Some(Value::Array(vals)) = schema.get("enum")
            && let Some(v) = vals.iter().find(|v| !v.is_null())
        {
            return Ok(Some(v.clone()));
        }
        if let Some(Value::Array(parts)) = schema.get("allOf") {
            return self.sample_all_of(parts, at, name);
        }
        for alt in ["oneOf", "anyOf"] {
            if let Some(Value::Array(parts)) = schema.get(alt) {
                for (i, part) in parts.iter().enumerate() {
                    let (p, _) = self.spec.deref(part, &format!("{at}/{alt}/{i}"))?;
                    if p.get("type").and_then(Value::as_str) == Some("null") {
                        continue;
                    }
                    if let Some(v) = self.sample(part, &format!("{at}/{alt}/{i}"), name)? {
                        return Ok(Some(v));
                    }
                }
                return Ok(None);
            }
        }
        let ty = schema_type(schema);
        Ok(match ty.as_deref() {
            Some("object") => Some(self.sample_object(schema, at)?),
            Some("array") => {
                let min = schema
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .max(1);
                let max = schema
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(min);
                let n = min.min(max).min(3);
                match schema.get("items") {
                    Some(items) => {
                        let mut out = Vec::new();
                        for _ in 0..n {
                            match self.sample(items, &format!("{at}/items"), name)? {
                                Some(v) => out.push(v),
                                None => break,
                            }
                        }
                        Some(Value::Array(out))
                    }
                    None => Some(Value::Array(Vec::new())),
                }
            }
            Some("integer") => Some(Value::from(integer(schema))),
            Some("number") => Some(number(schema)),
            Some("boolean") => Some(Value::Bool(true)),
            Some("null") => Some(Value::Null),
            Some("string") => Some(Value::String(string(schema, name))),
            _ if schema.get("properties").is_some() => Some(self.sample_object(schema, at)?),
            // No type: anything goes; a string is what most servers take.
            _ => Some(Value::String(string(schema, name))),
        })
    }

    fn sample_all_of(
        &mut self,
        parts: &[Value],
        at: &str,
        name: &str,
    ) -> Result<Option<Value>, InitError> {
        let mut merged = Map::new();
        let mut other = None;
        for (i, part) in parts.iter().enumerate() {
            match self.sample(part, &format!("{at}/allOf/{i}"), name)? {
                Some(Value::Object(m)) => merged.extend(m),
                Some(v) => other = Some(v),
                None => {}
            }
        }
        Ok(if merged.is_empty() {
            other.or(Some(Value::Object(merged)))
        } else {
            Some(Value::Object(merged))
        })
    }

    fn sample_object(&mut self, schema: &Value, at: &str) -> Result<Value, InitError> {
        let required = required_names(schema);
        let mut out = Map::new();
        if let Some(Value::Object(props)) = schema.get("properties") {
            for (key, prop) in props {
                if !required.contains(key) {
                    continue;
                }
                let p_at = format!("{at}/properties/{}", pointer_segment(key));
                let (resolved, _) = self.spec.deref(prop, &p_at)?;
                if resolved.get("readOnly") == Some(&Value::Bool(true)) {
                    continue;
                }
                if let Some(v) = self.sample(prop, &p_at, key)? {
                    out.insert(key.clone(), v);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// The `required` list of an object schema.
pub fn required_names(schema: &Value) -> Vec<String> {
    match schema.get("required") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// The schema's type; 3.1's `["string", "null"]` gives its first non-null.
pub fn schema_type(schema: &Value) -> Option<String> {
    match schema.get("type") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or_else(|| a.first().and_then(Value::as_str))
            .map(String::from),
        _ => None,
    }
}

fn bound(schema: &Value, key: &str, exclusive: &str) -> Option<(f64, bool)> {
    // 3.0: `exclusiveMinimum: true` beside `minimum`; 3.1: a number.
    match (
        schema.get(key).and_then(Value::as_f64),
        schema.get(exclusive),
    ) {
        (_, Some(Value::Number(n))) => n.as_f64().map(|f| (f, true)),
        (Some(f), Some(Value::Bool(true))) => Some((f, true)),
        (Some(f), _) => Some((f, false)),
        (None, _) => None,
    }
}

fn integer(schema: &Value) -> i64 {
    let lo = bound(schema, "minimum", "exclusiveMinimum").map(|(f, ex)| {
        if ex {
            f.floor() as i64 + 1
        } else {
            f.ceil() as i64
        }
    });
    let hi = bound(schema, "maximum", "exclusiveMaximum").map(|(f, ex)| {
        if ex {
            f.ceil() as i64 - 1
        } else {
            f.floor() as i64
        }
    });
    match (lo, hi) {
        // Halved first: `h - l` may not fit in an i64.
        (Some(l), Some(h)) if h >= l => l / 2 + h / 2 + (l % 2 + h % 2) / 2,
        (Some(l), _) => l.max(1),
        (None, Some(h)) => h.min(1),
        (None, None) => 1,
    }
}

fn number(schema: &Value) -> Value {
    let lo = bound(schema, "minimum", "exclusiveMinimum");
    let hi = bound(schema, "maximum", "exclusiveMaximum");
    let f = match (lo, hi) {
        (Some((l, _)), Some((h, _))) if h >= l => (l + h) / 2.0,
        (Some((l, ex)), None) => {
            if ex || l < 1.0 {
                l.max(0.0) + 1.0
            } else {
                l
            }
        }
        (None, Some((h, ex))) => {
            if h > 1.0 {
                1.0
            } else if ex {
                h - 1.0
            } else {
                h
            }
        }
        _ => 1.5,
    };
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::from(1))
}

fn string(schema: &Value, name: &str) -> String {
    let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
    let lower = name.to_ascii_lowercase();
    let base = match format {
        "uuid" => return "{{ uuid }}".into(),
        "date-time" => return "2030-01-15T09:30:00Z".into(),
        "date" => return "2030-01-15".into(),
        "time" => return "09:30:00".into(),
        "email" => return "convoy-{{ vu }}-{{ iteration }}@example.com".into(),
        "uri" | "url" => return "https://example.com/convoy".into(),
        "hostname" => return "example.com".into(),
        "ipv4" => return "192.0.2.10".into(),
        "ipv6" => return "2001:db8::10".into(),
        "byte" => return "Y29udm95".into(),
        _ if lower.contains("email") => {
            return "convoy-{{ vu }}-{{ iteration }}@example.com".into();
        }
        _ if lower.contains("phone") => "+4940123456".to_string(),
        _ if lower.contains("country") => "DE".to_string(),
        _ if lower.contains("currency") => "EUR".to_string(),
        _ if lower.contains("reference") || lower == "ref" || lower.ends_with("_ref") => {
            "CONVOY-{{ vu }}-{{ iteration }}".to_string()
        }
        _ if name.is_empty() => "convoy".to_string(),
        _ => format!("convoy {name}"),
    };
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    let mut s = base;
    if let Some(max) = max
        && s.chars().count() > max
    {
        // A template cannot be cut: fall back to plain letters.
        s = "convoy".chars().cycle().take(max).collect();
    }
    while s.chars().count() < min {
        s.push('x');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(components: Value) -> Spec {
        let text = json!({"openapi": "3.1.0", "paths": {}, "components": {"schemas": components}})
            .to_string();
        Spec::parse("t.json", &text).unwrap()
    }

    #[test]
    fn required_fields_formats_bounds_and_cycles() {
        let s = spec(json!({
            "Order": {"type": "object", "required": ["id", "weight_kg", "qty", "kind", "contact", "parent", "stops"],
              "properties": {
                "id": {"type": "string", "format": "uuid", "readOnly": true},
                "weight_kg": {"type": "number", "minimum": 0.1, "maximum": 1000},
                "qty": {"type": "integer", "minimum": 5, "exclusiveMaximum": 8},
                "kind": {"type": "string", "enum": ["parcel", "pallet"]},
                "contact": {"type": "string", "format": "email"},
                "note": {"type": "string"},
                "parent": {"$ref": "#/components/schemas/Order"},
                "stops": {"type": "array", "items": {"$ref": "#/components/schemas/Stop"}}
              }},
            "Stop": {"type": "object", "required": ["code"], "properties": {"code": {"type": ["string", "null"], "minLength": 3, "maxLength": 3}}}
        }));
        let order = s.root.pointer("/components/schemas/Order").unwrap().clone();
        let mut sampler = Sampler::new(&s);
        let v = sampler
            .sample(&json!({"$ref": "#/components/schemas/Order"}), "/x", "")
            .unwrap()
            .unwrap();
        let _ = order;
        assert_eq!(v["weight_kg"], json!(500.05));
        assert_eq!(v["qty"], json!(6));
        assert_eq!(v["kind"], json!("parcel"));
        assert!(v["contact"].as_str().unwrap().contains('@'));
        assert!(v.get("id").is_none(), "readOnly left out: {v}");
        assert!(v.get("note").is_none(), "optional left out: {v}");
        assert!(v.get("parent").is_none(), "cycle cut: {v}");
        assert_eq!(v["stops"][0]["code"].as_str().unwrap().len(), 3);
    }

    #[test]
    fn extreme_bounds_stay_in_range() {
        // No overflow: the middle of the widest range.
        assert!(integer(&json!({"minimum": i64::MIN, "maximum": i64::MAX})).abs() <= 1);
        assert_eq!(integer(&json!({"minimum": 3, "maximum": 3})), 3);
        assert_eq!(
            integer(&json!({"minimum": 10, "exclusiveMinimum": true})),
            11
        );
        assert_eq!(integer(&json!({"maximum": -5})), -5);
    }
}
