//! Data files (CSV and JSON rows for `{{ data.COLUMN }}`) and JSONPath, the
//! small subset of it that maps onto JSON pointers.

use serde_json::Value;

/// Largest data file accepted. Every row is held in memory for the whole
/// run, so a bigger file (or `/dev/zero`) is refused before it is read.
pub const MAX_DATA_FILE_BYTES: usize = 64 * 1024 * 1024;

/// The rows of a data file, stored compactly: a row costs its cells' text
/// and a few bytes, not a `String` and a `Value` per cell. Every cell is
/// kept in one arena, one row after another, each cell's text preceded by
/// its length (and whether the text is JSON, not a string) in a short
/// header of ASCII bytes; each row is one `u32` offset into the arena.
/// Rows in memory stay within three times the file's size however narrow
/// its cells: the worst case, one-byte rows of one column, is a header
/// byte, the byte and a 4-byte offset for the 2 bytes (with newline) of
/// the file; usual files take less than their size plus a byte per cell
/// and four per row (see `rows_are_stored_compactly`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    arena: String,
    starts: Vec<u32>,
}

/// One cell of a data row, borrowed from [`Rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    /// A string: a CSV field, or a JSON string.
    Str(&'a str),
    /// Any other JSON value, as its compact JSON text.
    Json(&'a str),
}

impl Cell<'_> {
    /// The cell as a JSON value.
    pub fn to_value(self) -> Value {
        match self {
            Cell::Str(s) => Value::String(s.to_string()),
            Cell::Json(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }

    /// Appends the cell as text: a string as it is, any other value as its
    /// JSON (what `Value`'s `Display` writes).
    pub fn write_to(self, out: &mut String) {
        match self {
            Cell::Str(s) | Cell::Json(s) => out.push_str(s),
        }
    }
}

/// One data row, borrowed from [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    cells: &'a str,
}

impl<'a> Row<'a> {
    /// The cell of column `col`, if the row has one.
    pub fn get(self, col: usize) -> Option<Cell<'a>> {
        let mut rest = self.cells;
        for _ in 0..col {
            let (len, _, after) = read_header(rest)?;
            rest = after.get(len..)?;
        }
        let (len, json, after) = read_header(rest)?;
        let text = after.get(..len)?;
        Some(if json {
            Cell::Json(text)
        } else {
            Cell::Str(text)
        })
    }
}

/// Bits of a cell's header byte holding its value; the next one says that
/// another header byte follows. Both stay below 0x80: a header is ASCII,
/// so the arena stays a `String` and every cell a `&str`, without `unsafe`.
const HEADER_BITS: u32 = 6;
const HEADER_MORE: u8 = 1 << HEADER_BITS;

fn write_header(out: &mut String, len: usize, json: bool) {
    let mut v = (len << 1) | usize::from(json);
    loop {
        let low = (v & usize::from(HEADER_MORE - 1)) as u8;
        v >>= HEADER_BITS;
        if v == 0 {
            out.push(char::from(low));
            return;
        }
        out.push(char::from(low | HEADER_MORE));
    }
}

/// The length and JSON flag of the cell at the start of `s`, and what
/// follows its header.
fn read_header(s: &str) -> Option<(usize, bool, &str)> {
    let mut v = 0usize;
    let mut shift = 0;
    for (i, b) in s.bytes().enumerate() {
        v |= usize::from(b & (HEADER_MORE - 1)) << shift;
        if b & HEADER_MORE == 0 {
            return Some((v >> 1, v & 1 == 1, &s[i + 1..]));
        }
        shift += HEADER_BITS;
    }
    None
}

impl Rows {
    /// Rows of `Value`s (a string is kept as a string, anything else as
    /// its JSON).
    pub fn from_values<R: IntoIterator<Item = Vec<Value>>>(rows: R) -> Self {
        let mut out = Rows::default();
        for row in rows {
            out.start_row();
            for v in &row {
                out.push_value(v);
            }
        }
        out
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Row `i`.
    ///
    /// # Panics
    /// When `i` is not below [`Rows::len`].
    pub fn get(&self, i: usize) -> Row<'_> {
        let start = self.starts[i] as usize;
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.arena.len(), |&e| e as usize);
        Row {
            cells: &self.arena[start..end],
        }
    }

    /// Only rows `range`, in the same order.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Rows {
        if range.is_empty() {
            return Rows::default();
        }
        let start = self.starts[range.start] as usize;
        let end = self
            .starts
            .get(range.end)
            .map_or(self.arena.len(), |&e| e as usize);
        Rows {
            arena: self.arena[start..end].to_string(),
            starts: self.starts[range]
                .iter()
                .map(|&s| s - start as u32)
                .collect(),
        }
    }

    fn start_row(&mut self) {
        // The data file is at most MAX_DATA_FILE_BYTES, and its cells take
        // no more room here than there, headers included.
        self.starts
            .push(u32::try_from(self.arena.len()).expect("data rows fit in 4 GiB"));
    }

    fn push_cell(&mut self, text: &str, json: bool) {
        write_header(&mut self.arena, text.len(), json);
        self.arena.push_str(text);
    }

    fn push_value(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.push_cell(s, false),
            other => self.push_cell(&other.to_string(), true),
        }
    }

    fn shrink(&mut self) {
        self.arena.shrink_to_fit();
        self.starts.shrink_to_fit();
    }
}

/// Parses CSV with a header line. Fields may be quoted (`"a, b"`, with `""`
/// for a quote). Numbers stay strings: the template decides.
pub fn parse_csv(text: &str) -> Result<(Vec<String>, Rows), String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("the file is empty")?;
    let mut columns = Vec::new();
    split_csv_line(header, |f| columns.push(f.trim().to_string()))
        .map_err(|e| format!("line 1: {e}"))?;
    if columns.iter().any(|c| c.is_empty()) {
        return Err("line 1: every column needs a name".into());
    }
    let mut rows = Rows::default();
    for (i, line) in lines {
        rows.start_row();
        let mut fields = 0;
        split_csv_line(line, |f| {
            rows.push_cell(f, false);
            fields += 1;
        })
        .map_err(|e| format!("line {}: {e}", i + 1))?;
        if fields != columns.len() {
            return Err(format!(
                "line {}: {} fields, but the header has {} columns",
                i + 1,
                fields,
                columns.len()
            ));
        }
    }
    rows.shrink();
    Ok((columns, rows))
}

/// Splits one CSV line, handing each field (unquoted) to `field`.
fn split_csv_line(line: &str, mut field: impl FnMut(&str)) -> Result<(), String> {
    let mut current = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => current.push(c),
            (false, '"') if current.trim().is_empty() && !was_quoted => {
                current.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                field(&current);
                current.clear();
                was_quoted = false;
            }
            (false, c) => current.push(c),
        }
    }
    if quoted {
        return Err("unclosed quote".into());
    }
    field(&current);
    Ok(())
}

/// Parses a JSON array of objects; columns are the first object's keys.
/// The array is read one object at a time, each stored as a row before
/// the next is read, so no tree of the whole file is ever held.
pub fn parse_json(text: &str) -> Result<(Vec<String>, Rows), String> {
    use serde::de::{Deserializer, Error as _, SeqAccess, Visitor};

    struct Items;

    impl<'de> Visitor<'de> for Items {
        type Value = (Vec<String>, Rows);

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of objects")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut columns: Option<Vec<String>> = None;
            let mut rows = Rows::default();
            let mut i = 0usize;
            while let Some(item) = seq.next_element::<Value>()? {
                let Value::Object(obj) = item else {
                    return Err(if columns.is_none() {
                        A::Error::custom("expected an array of objects")
                    } else {
                        A::Error::custom(format!("item {i} is not an object"))
                    });
                };
                let cols = columns.get_or_insert_with(|| obj.keys().cloned().collect());
                rows.start_row();
                for c in cols.iter() {
                    rows.push_value(obj.get(c).unwrap_or(&Value::Null));
                }
                i += 1;
            }
            let columns =
                columns.ok_or_else(|| A::Error::custom("expected an array of objects"))?;
            rows.shrink();
            Ok((columns, rows))
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = (&mut de).deserialize_any(Items).map_err(|e| {
        let m = e.to_string();
        if m.starts_with("invalid type") {
            "expected an array of objects".to_string()
        } else {
            m
        }
    })?;
    de.end().map_err(|e| e.to_string())?;
    Ok(parsed)
}

/// Translates JSONPath (`$.orders[0].id`, `$['a b']`) to a JSON pointer
/// (`/orders/0/id`). Wildcards, filters and recursive descent are refused
/// with a message saying so.
pub fn jsonpath_to_pointer(path: &str) -> Result<String, String> {
    convert_jsonpath(path, false)
}

/// [`jsonpath_to_pointer`], with the wildcards `[*]` and `.*` written as
/// the pointer segment `*` (as checks select array elements with it).
pub fn jsonpath_to_pointer_with_wildcards(path: &str) -> Result<String, String> {
    convert_jsonpath(path, true)
}

fn convert_jsonpath(path: &str, wildcards: bool) -> Result<String, String> {
    let p = path.trim();
    let mut rest = p
        .strip_prefix('$')
        .ok_or_else(|| format!("invalid JSONPath {p:?}: it starts with '$'"))?;
    let mut out = String::new();
    let unsupported = || {
        if wildcards {
            format!(
                "unsupported JSONPath {p:?}: only $.name, ['name'], [index] and [*] are supported"
            )
        } else {
            format!("unsupported JSONPath {p:?}: only $.name, ['name'] and [index] are supported")
        }
    };
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("..") {
            let _ = r;
            return Err(unsupported());
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if name.is_empty() || (name == "*" && !wildcards) {
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
            } else if inner.parse::<usize>().is_ok() || (inner == "*" && wildcards) {
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
        assert_eq!(rows.get(0).get(0), Some(Cell::Str("Doe, J")));
        assert_eq!(rows.get(1).get(1), Some(Cell::Str("Rot\"terdam")));
        assert_eq!(rows.get(1).get(2), None);
        assert!(parse_csv("a,b\n1\n").unwrap_err().contains("line 2"));
        assert!(parse_csv("a\n\"x\n").is_err());
        assert!(parse_csv("").is_err());
    }

    #[test]
    fn json_rows() {
        let (cols, rows) = parse_json(r#"[{"id":1,"n":"a"},{"id":2}]"#).unwrap();
        assert_eq!(cols, ["id", "n"]);
        assert_eq!(rows.get(0).get(0), Some(Cell::Json("1")));
        assert_eq!(rows.get(0).get(1), Some(Cell::Str("a")));
        assert_eq!(rows.get(1).get(1), Some(Cell::Json("null")));
        assert_eq!(rows.get(1).get(1).unwrap().to_value(), Value::Null);
        assert!(parse_json("{}").is_err());
        assert!(parse_json("[]").is_err());
        assert!(parse_json("[1]").unwrap_err().contains("array of objects"));
        assert!(parse_json(r#"[{"a":1},2]"#).unwrap_err().contains("item 1"));
        assert!(parse_json(r#"[{"a":1}] x"#).is_err());
    }

    #[test]
    fn cells_of_every_length_and_kind_come_back_as_they_went_in() {
        let long = "x".repeat(100_000);
        let values = vec![
            vec![
                Value::from(""),
                Value::from("é, ü"),
                Value::from(long.as_str()),
            ],
            vec![
                Value::from(1.5),
                Value::Null,
                serde_json::json!({"a": [1, "b"]}),
            ],
        ];
        let rows = Rows::from_values(values.clone());
        assert_eq!(rows.len(), 2);
        for (i, row) in values.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let cell = rows.get(i).get(c).unwrap();
                assert_eq!(cell.to_value(), *v, "{i},{c}");
                let mut text = String::new();
                cell.write_to(&mut text);
                let shown = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(text, shown);
            }
        }
        let tail = rows.slice(1..2);
        assert_eq!(tail.len(), 1);
        assert_eq!(tail.get(0).get(0), Some(Cell::Json("1.5")));
        assert!(rows.slice(1..1).is_empty());
    }

    #[test]
    fn rows_are_stored_compactly() {
        // The narrowest cells a file can have: one byte and a comma each.
        let mut text = String::from("a,b,c,d\n");
        for _ in 0..10_000 {
            text.push_str("1,,2,\n");
        }
        let (_, rows) = parse_csv(&text).unwrap();
        let held = rows.arena.capacity() + rows.starts.capacity() * 4;
        assert!(
            held <= 2 * text.len(),
            "{held} bytes for a {} byte file",
            text.len()
        );
        // The worst case: one byte in one column per line.
        let text = format!("a\n{}", "1\n".repeat(10_000));
        let (_, rows) = parse_csv(&text).unwrap();
        let held = rows.arena.capacity() + rows.starts.capacity() * 4;
        assert!(
            held <= 3 * text.len(),
            "{held} bytes for a {} byte file",
            text.len()
        );
    }

    #[test]
    fn jsonpath_subset() {
        assert_eq!(
            jsonpath_to_pointer("$.orders[0].id").unwrap(),
            "/orders/0/id"
        );
        assert_eq!(jsonpath_to_pointer("$['a/b']").unwrap(), "/a~1b");
        assert_eq!(jsonpath_to_pointer("$").unwrap(), "");
        assert!(jsonpath_to_pointer("$.entries[*].kind").is_err());
        assert_eq!(
            jsonpath_to_pointer_with_wildcards("$.data.entries[*].kind").unwrap(),
            "/data/entries/*/kind"
        );
        assert_eq!(
            jsonpath_to_pointer_with_wildcards("$.rates.*").unwrap(),
            "/rates/*"
        );
        for bad in ["orders", "$..id", "$.orders[*]", "$.a[?(@.x)]", "$.a[0"] {
            assert!(jsonpath_to_pointer(bad).is_err(), "{bad}");
        }
    }
}
