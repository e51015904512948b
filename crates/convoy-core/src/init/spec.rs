//! Reading an OpenAPI document: JSON or YAML text into one
//! `serde_json::Value`, its version checked, and its local `$ref`s
//! resolved on demand with the JSON pointer of each failure.

use std::path::Path;

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

use super::InitError;

/// The most a spec file may weigh: a spec is text a person wrote or a
/// framework generated, never a data dump.
pub(super) const MAX_SPEC_BYTES: u64 = 32 * 1024 * 1024;

/// How deep `$ref`s may chain before one is taken for a cycle.
const MAX_REF_DEPTH: usize = 32;

/// A parsed OpenAPI 3.0/3.1 document.
#[derive(Debug)]
pub struct Spec {
    /// The whole document.
    pub root: Value,
    /// The file it came from, for messages.
    pub file: String,
}

impl Spec {
    /// Reads and parses `path` (JSON when it starts with `{`, else YAML).
    pub fn load(path: &Path) -> Result<Spec, InitError> {
        let file = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| InitError::io(&file, e))?;
        if meta.len() > MAX_SPEC_BYTES {
            return Err(InitError::spec(
                &file,
                "",
                format!("{} bytes: more than an OpenAPI document holds", meta.len()),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| InitError::io(&file, e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| InitError::spec(&file, "", "not UTF-8 text".to_string()))?;
        Spec::parse(&file, &text)
    }

    /// Parses `text`, named `file` in messages.
    pub fn parse(file: &str, text: &str) -> Result<Spec, InitError> {
        let text = text.trim_start_matches('\u{feff}');
        let root = if text.trim_start().starts_with('{') {
            serde_json::from_str::<Value>(text).map_err(|e| InitError::Syntax {
                file: file.to_string(),
                message: format!("{}:{}: invalid JSON: {e}", e.line(), e.column()),
            })?
        } else {
            let docs = YamlLoader::load_from_str(text).map_err(|e| InitError::Syntax {
                file: file.to_string(),
                message: format!(
                    "{}:{}: invalid YAML: {}",
                    e.marker().line(),
                    e.marker().col() + 1,
                    e.info()
                ),
            })?;
            let first = docs.into_iter().next().unwrap_or(Yaml::Null);
            yaml_to_json(first, 0).map_err(|m| InitError::spec(file, "", m))?
        };
        let spec = Spec {
            root,
            file: file.to_string(),
        };
        spec.check_version()?;
        Ok(spec)
    }

    fn check_version(&self) -> Result<(), InitError> {
        if !self.root.is_object() {
            return Err(self.error("", "the document is not an object".into()));
        }
        match self.root.get("openapi").and_then(Value::as_str) {
            Some(v) if v.starts_with("3.0") || v.starts_with("3.1") => {}
            Some(v) => {
                return Err(self.error(
                    "/openapi",
                    format!("OpenAPI {v} is not supported (3.0 and 3.1 are)"),
                ));
            }
            None if self.root.get("swagger").is_some() => {
                return Err(self.error(
                    "/swagger",
                    "Swagger 2.0 is not supported: convert it to OpenAPI 3 first".into(),
                ));
            }
            None => {
                return Err(self.error(
                    "/openapi",
                    "no `openapi` version: is this an OpenAPI document?".into(),
                ));
            }
        }
        match self.root.get("paths") {
            Some(Value::Object(_)) => Ok(()),
            Some(_) => Err(self.error("/paths", "`paths` is not an object".into())),
            None if self.root.get("webhooks").is_some() => Err(self.error(
                "/paths",
                "no `paths`, only `webhooks` (requests the API sends, which convoy does not receive): nothing to test".into(),
            )),
            None => Err(self.error("/paths", "no `paths`: nothing to test".into())),
        }
    }

    /// An error at `pointer` of this document.
    pub fn error(&self, pointer: &str, message: String) -> InitError {
        InitError::spec(&self.file, pointer, message)
    }

    /// `value` with its `$ref` followed (repeatedly); `at` is the pointer
    /// of `value`, for messages. The pointer of the result is returned too.
    pub fn deref<'a>(
        &'a self,
        value: &'a Value,
        at: &str,
    ) -> Result<(&'a Value, String), InitError> {
        let mut cur = value;
        let mut ptr = at.to_string();
        for _ in 0..MAX_REF_DEPTH {
            let Some(r) = cur.get("$ref").and_then(Value::as_str) else {
                return Ok((cur, ptr));
            };
            let Some(local) = r.strip_prefix('#') else {
                return Err(self.error(
                    &format!("{ptr}/$ref"),
                    format!("external reference `{r}` is not supported: bundle the document first"),
                ));
            };
            let decoded = percent_decode(local);
            match self.root.pointer(&decoded) {
                Some(v) => {
                    cur = v;
                    ptr = decoded;
                }
                None => {
                    return Err(self.error(
                        &format!("{ptr}/$ref"),
                        format!("`{r}` resolves to nothing in the document"),
                    ));
                }
            }
        }
        Err(self.error(
            &ptr,
            format!("more than {MAX_REF_DEPTH} `$ref`s in a chain: a cycle"),
        ))
    }
}

/// `~0`/`~1` stay as the JSON pointer wants them; `%XX` of URI fragments
/// are decoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = hex_byte(bytes[i + 1], bytes[i + 2])
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    let d = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    Some(d(hi)? * 16 + d(lo)?)
}

/// Escapes a map key as one JSON-pointer segment.
pub fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn yaml_to_json(y: Yaml, depth: usize) -> Result<Value, String> {
    if depth > 256 {
        return Err("nested more than 256 levels deep".into());
    }
    Ok(match y {
        Yaml::Null | Yaml::BadValue => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(s)),
        Yaml::String(s) => Value::String(s),
        Yaml::Array(a) => Value::Array(
            a.into_iter()
                .map(|v| yaml_to_json(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".into(),
                    _ => return Err("a mapping key that is not a scalar".into()),
                };
                m.insert(key, yaml_to_json(v, depth + 1)?);
            }
            Value::Object(m)
        }
        Yaml::Alias(_) => return Err("YAML aliases are not supported".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_agree() {
        let y = Spec::parse("a.yaml", "openapi: 3.0.3\npaths:\n  /x:\n    get:\n      responses:\n        '200': {description: ok}\n").unwrap();
        let j = Spec::parse("a.json", r#"{"openapi":"3.0.3","paths":{"/x":{"get":{"responses":{"200":{"description":"ok"}}}}}}"#).unwrap();
        assert_eq!(y.root, j.root);
    }

    #[test]
    fn refs_resolve_and_cycles_stop() {
        let s = Spec::parse(
            "a.json",
            r##"{"openapi":"3.1.0","paths":{},"components":{"schemas":{"A":{"$ref":"#/components/schemas/B"},"B":{"type":"string"},"C":{"$ref":"#/components/schemas/C"},"D":{"$ref":"#/nope"}}}}"##,
        )
        .unwrap();
        let a = s.root.pointer("/components/schemas/A").unwrap();
        let (v, p) = s.deref(a, "/components/schemas/A").unwrap();
        assert_eq!(v["type"], "string");
        assert_eq!(p, "/components/schemas/B");
        let c = s.root.pointer("/components/schemas/C").unwrap();
        assert!(
            s.deref(c, "/components/schemas/C")
                .unwrap_err()
                .to_string()
                .contains("cycle")
        );
        let d = s.root.pointer("/components/schemas/D").unwrap();
        let e = s.deref(d, "/components/schemas/D").unwrap_err().to_string();
        assert!(e.contains("/components/schemas/D/$ref"), "{e}");
    }

    #[test]
    fn bad_documents_are_named() {
        let e = Spec::parse("spec.yaml", "openapi: 3.0.0\npaths: [\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("spec.yaml") && e.contains("invalid YAML"), "{e}");
        let e = Spec::parse("s.json", "{\"openapi\": ")
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.json") && e.contains("invalid JSON"), "{e}");
        let e = Spec::parse("s.json", r#"{"swagger":"2.0","paths":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Swagger 2.0"), "{e}");
    }
}
