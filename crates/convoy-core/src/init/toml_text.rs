//! Writing JSON values as TOML inline values, for the drafted files:
//! small, readable one-liners (`{ a = 1, b = "x" }`) that a person edits.
//! JSON `null` has no TOML form: null members and elements are left out.

use serde_json::Value;

/// A TOML key: bare when it can be, quoted otherwise.
pub fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        string(k)
    }
}

/// A TOML basic string. JSON's escapes are all valid TOML escapes.
pub fn string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `v` as a TOML inline value; `None` for `null`.
pub fn value(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                // TOML integers are i64: a larger one is written as a float.
                format!("{u}.0")
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                let s = f.to_string();
                if s.contains(['.', 'e', 'E']) {
                    s
                } else {
                    format!("{s}.0")
                }
            }
        }
        Value::String(s) => string(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().filter_map(value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .filter_map(|(k, v)| value(v).map(|v| format!("{} = {v}", key(k))))
                .collect();
            if items.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", items.join(", "))
            }
        }
    })
}

/// A `# ...` comment block, one line per line of `text`.
pub fn comment(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_string()
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_through_toml() {
        let v = json!({"a b": "q\"uote\n", "n": 1.0, "i": -3, "t": true, "arr": [1, null, {"x": "y"}], "z": null, "e": {}});
        let text = format!("v = {}\n", value(&v).unwrap());
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let back = serde_json::to_value(&parsed["v"]).unwrap();
        assert_eq!(
            back,
            json!({"a b": "q\"uote\n", "n": 1.0, "i": -3, "t": true, "arr": [1, {"x": "y"}], "e": {}})
        );
    }
}
