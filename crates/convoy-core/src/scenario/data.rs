//! Data files (CSV and JSON rows for `{{ data.COLUMN }}`) and JSONPath, the
//! small subset of it that maps onto JSON pointers.

use serde_json::Value;

/// Largest data file accepted. Every row is held in memory for the whole
/// run, so a bigger file (or `/dev/zero`) is refused before it is read.
pub const MAX_DATA_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Parses CSV with a header line. Fields may be quoted (`"a, b"`, with `""`
/// for a quote). Numbers stay strings: the template decides.
pub fn parse_csv(text: &str) -> Result<(Vec<String>, Vec<Vec<Value>>), String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("the file is empty")?;
    let columns = split_csv_line(header).map_err(|e| format!("line 1: {e}"))?;
    if columns.iter().any(|c| c.trim().is_empty()) {
        return Err("line 1: every column needs a name".into());
    }
    let columns: Vec<String> = columns.into_iter().map(|c| c.trim().to_string()).collect();
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields = split_csv_line(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if fields.len() != columns.len() {
            return Err(format!(
                "line {}: {} fields, but the header has {} columns",
                i + 1,
                fields.len(),
                columns.len()
            ));
        }
        rows.push(fields.into_iter().map(Value::String).collect());
    }
    Ok((columns, rows))
}

fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unclosed quote".into());
    }
    out.push(field);
    Ok(out)
}

/// Parses a JSON array of objects; columns are the first object's keys.
pub fn parse_json(text: &str) -> Result<(Vec<String>, Vec<Vec<Value>>), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let items = v.as_array().ok_or("expected an array of objects")?;
    let first = items
        .first()
        .and_then(Value::as_object)
        .ok_or("expected an array of objects")?;
    let columns: Vec<String> = first.keys().cloned().collect();
    let mut rows = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let obj = item
            .as_object()
            .ok_or_else(|| format!("item {i} is not an object"))?;
        rows.push(
            columns
                .iter()
                .map(|c| obj.get(c).cloned().unwrap_or(Value::Null))
                .collect(),
        );
    }
    Ok((columns, rows))
}

/// Translates JSONPath (`$.orders[0].id`, `$['a b']`) to a JSON pointer
/// (`/orders/0/id`). Wildcards, filters and recursive descent are refused
/// with a message saying so.
pub fn jsonpath_to_pointer(path: &str) -> Result<String, String> {
    let p = path.trim();
    let mut rest = p
        .strip_prefix('$')
        .ok_or_else(|| format!("invalid JSONPath {p:?}: it starts with '$'"))?;
    let mut out = String::new();
    let unsupported =
        || format!("unsupported JSONPath {p:?}: only $.name, ['name'] and [index] are supported");
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("..") {
            let _ = r;
            return Err(unsupported());
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if name.is_empty() || name == "*" {
                return Err(unsupported());
            }
            push_token(&mut out, name);
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("invalid JSONPath {p:?}: unclosed '['"))?;
            let inner = r[..end].trim();
            if let Some(q) = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            {
                push_token(&mut out, q);
            } else if inner.parse::<usize>().is_ok() {
                push_token(&mut out, inner);
            } else {
                return Err(unsupported());
            }
            rest = &r[end + 1..];
        } else {
            return Err(unsupported());
        }
    }
    super::json_pick::check_pointer_depth(&out)?;
    Ok(out)
}

fn push_token(out: &mut String, token: &str) {
    out.push('/');
    out.push_str(&token.replace('~', "~0").replace('/', "~1"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes() {
        let (cols, rows) =
            parse_csv("name,city\n\"Doe, J\",Hamburg\nAnn,\"Rot\"\"terdam\"\n").unwrap();
        assert_eq!(cols, ["name", "city"]);
        assert_eq!(rows[0][0], "Doe, J");
        assert_eq!(rows[1][1], "Rot\"terdam");
        assert!(parse_csv("a,b\n1\n").unwrap_err().contains("line 2"));
        assert!(parse_csv("a\n\"x\n").is_err());
        assert!(parse_csv("").is_err());
    }

    #[test]
    fn json_rows() {
        let (cols, rows) = parse_json(r#"[{"id":1,"n":"a"},{"id":2}]"#).unwrap();
        assert_eq!(cols, ["id", "n"]);
        assert_eq!(rows[1][1], Value::Null);
        assert!(parse_json("{}").is_err());
    }

    #[test]
    fn jsonpath_subset() {
        assert_eq!(
            jsonpath_to_pointer("$.orders[0].id").unwrap(),
            "/orders/0/id"
        );
        assert_eq!(jsonpath_to_pointer("$['a/b']").unwrap(), "/a~1b");
        assert_eq!(jsonpath_to_pointer("$").unwrap(), "");
        for bad in ["orders", "$..id", "$.orders[*]", "$.a[?(@.x)]", "$.a[0"] {
            assert!(jsonpath_to_pointer(bad).is_err(), "{bad}");
        }
    }
}
