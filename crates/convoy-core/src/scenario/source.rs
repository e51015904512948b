//! Finding things in the scenario's source text: TOML values that keep the
//! span of every nested item (so a mistake inside a `json` body, however it
//! is written, is reported where it is), and the way back from a byte of a
//! decoded string to the bytes of the TOML string that wrote it.
//!
//! `toml::Value` keeps no spans below the top, and searching the source for
//! a string's text finds the wrong copy (a comment, an earlier value) or
//! none at all (escapes, dotted keys, `[step.json]` tables). `toml::Spanned`
//! works at any depth, so [`SpannedValue`] asks for it at every level.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// A TOML value whose nested items all know where they were written.
#[derive(Debug, Clone, PartialEq)]
pub enum SpannedValue {
    /// A string, decoded.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Boolean(bool),
    /// An offset or local date-time, date or time.
    Datetime(toml::value::Datetime),
    /// An array, written inline or as `[[...]]` tables.
    Array(Vec<Spanned<SpannedValue>>),
    /// A table (inline, dotted keys or a `[...]` header), keys sorted as in
    /// `toml::Table`.
    Table(BTreeMap<String, Spanned<SpannedValue>>),
}

impl SpannedValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            SpannedValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The same value without spans.
    pub fn to_toml(&self) -> toml::Value {
        match self {
            SpannedValue::String(s) => toml::Value::String(s.clone()),
            SpannedValue::Integer(i) => toml::Value::Integer(*i),
            SpannedValue::Float(f) => toml::Value::Float(*f),
            SpannedValue::Boolean(b) => toml::Value::Boolean(*b),
            SpannedValue::Datetime(d) => toml::Value::Datetime(*d),
            SpannedValue::Array(a) => {
                toml::Value::Array(a.iter().map(|x| x.get_ref().to_toml()).collect())
            }
            SpannedValue::Table(t) => toml::Value::Table(
                t.iter()
                    .map(|(k, x)| (k.clone(), x.get_ref().to_toml()))
                    .collect(),
            ),
        }
    }
}

impl serde::Serialize for SpannedValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_toml().serialize(serializer)
    }
}

/// The key under which the `toml` deserializer hands over a date-time, as
/// a one-entry map holding its text (the wire format `toml::Value` reads).
const DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> Deserialize<'de> for SpannedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SpannedValueVisitor)
    }
}

struct SpannedValueVisitor;

impl<'de> Visitor<'de> for SpannedValueVisitor {
    type Value = SpannedValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<SpannedValue, E> {
        Ok(SpannedValue::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<SpannedValue, E> {
        Ok(SpannedValue::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<SpannedValue, E> {
        i64::try_from(v)
            .map(SpannedValue::Integer)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<SpannedValue, E> {
        Ok(SpannedValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SpannedValue, E> {
        Ok(SpannedValue::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<SpannedValue, E> {
        Ok(SpannedValue::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SpannedValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<SpannedValue>>()? {
            items.push(item);
        }
        Ok(SpannedValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpannedValue, A::Error> {
        let mut table = BTreeMap::new();
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if first && key == DATETIME_KEY {
                let text: String = map.next_value()?;
                return text
                    .parse()
                    .map(SpannedValue::Datetime)
                    .map_err(de::Error::custom);
            }
            first = false;
            let value = map.next_value::<Spanned<SpannedValue>>()?;
            if table.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicate key: `{key}`")));
            }
        }
        Ok(SpannedValue::Table(table))
    }
}

/// The bytes of `source` that wrote bytes `at` of `value`, where `source`
/// is the TOML text of a string (quotes included: basic, literal, either
/// multi-line form, or a bare key) and `value` what it decodes to. Offsets
/// are relative to `source`. An escape is found at its backslash.
///
/// `None` when `source` does not decode to `value` up to `at.end`, so a
/// caller falls back to the whole string rather than a wrong place.
pub fn source_range(source: &str, value: &str, at: Range<usize>) -> Option<Range<usize>> {
    let (delimiter, basic) = [("\"\"\"", true), ("'''", false), ("\"", true), ("'", false)]
        .into_iter()
        .find(|(d, _)| source.len() >= 2 * d.len() && source.starts_with(d) && source.ends_with(d))
        .unwrap_or(("", false));
    let multi_line = delimiter.len() == 3;
    let end = source.len() - delimiter.len();
    let mut src = delimiter.len();
    if multi_line {
        // A newline right after the opening quotes is not part of the value.
        if source[src..].starts_with('\n') {
            src += 1;
        } else if source[src..].starts_with("\r\n") {
            src += 2;
        }
    }
    let value = value.get(..at.end)?;
    let mut decoded = 0;
    let mut start = None;
    let mut buf = [0u8; 4];
    while decoded < at.end {
        let rest = source.get(src..end)?;
        let (piece, consumed): (&str, usize) = if basic && rest.starts_with('\\') {
            escape(rest, multi_line, &mut buf)?
        } else if multi_line && rest.starts_with("\r\n") {
            // Kept as written or read as a bare newline: whichever it is.
            let piece = if value[decoded..].starts_with('\r') {
                "\r\n"
            } else {
                "\n"
            };
            (piece, 2)
        } else {
            let c = rest.chars().next()?;
            (&rest[..c.len_utf8()], c.len_utf8())
        };
        if !value[decoded..].starts_with(piece) && !piece.starts_with(&value[decoded..]) {
            return None;
        }
        if start.is_none() && at.start < decoded + piece.len() {
            start = Some(src);
        }
        decoded += piece.len();
        src += consumed;
    }
    Some(start.unwrap_or(src)..src)
}

/// The escape `rest` starts with: what it decodes to and its length.
fn escape<'b>(rest: &str, multi_line: bool, buf: &'b mut [u8; 4]) -> Option<(&'b str, usize)> {
    let mut chars = rest[1..].chars();
    let code = chars.next()?;
    let hex = |digits: usize| -> Option<char> {
        let text = rest.get(2..2 + digits)?;
        char::from_u32(u32::from_str_radix(text, 16).ok()?)
    };
    let (c, len) = match code {
        'b' => ('\u{8}', 2),
        'e' => ('\u{1b}', 2),
        'f' => ('\u{c}', 2),
        'n' => ('\n', 2),
        'r' => ('\r', 2),
        't' => ('\t', 2),
        '\\' => ('\\', 2),
        '"' => ('"', 2),
        'x' => (hex(2)?, 4),
        'u' => (hex(4)?, 6),
        'U' => (hex(8)?, 10),
        ' ' | '\t' | '\r' | '\n' if multi_line => {
            // A line-ending backslash: it, the line break and every blank
            // after it decode to nothing.
            let blank = rest[1..]
                .find(|c: char| !matches!(c, ' ' | '\t' | '\r' | '\n'))
                .map_or(rest.len(), |i| i + 1);
            return Some(("", blank));
        }
        _ => return None,
    };
    Some((c.encode_utf8(buf), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source text `value` of `at` maps to, for a string written `source`.
    fn shown<'s>(source: &'s str, value: &str, at: Range<usize>) -> Option<&'s str> {
        source_range(source, value, at).map(|r| &source[r])
    }

    #[test]
    fn plain_and_literal_strings_map_one_to_one() {
        assert_eq!(shown("\"a {{ x }}\"", "a {{ x }}", 5..6), Some("x"));
        assert_eq!(shown("'a {{ x }}'", "a {{ x }}", 5..6), Some("x"));
        assert_eq!(shown("key", "key", 1..2), Some("e"));
        assert_eq!(shown("\"ü{{x}}\"", "ü{{x}}", 4..5), Some("x"));
    }

    #[test]
    fn escapes_before_the_mistake_are_skipped_exactly() {
        let source = r#""/api/\u006Frders/\t\"{{ nope }}""#;
        let value = "/api/orders/\t\"{{ nope }}";
        let at = value.find("nope").unwrap();
        assert_eq!(shown(source, value, at..at + 4), Some("nope"));
        // An escape inside the range is shown whole.
        assert_eq!(shown(source, value, 5..6), Some("\\u006F"));
        assert_eq!(shown(r#""\x41{{""#, "A{{", 1..3), Some("{{"));
        assert_eq!(shown(r#""\U0001F600{{""#, "😀{{", 4..6), Some("{{"));
    }

    #[test]
    fn multi_line_strings_skip_the_first_newline_and_line_ending_backslashes() {
        let source = "'''\n{{ nope }}'''";
        assert_eq!(shown(source, "{{ nope }}", 3..7), Some("nope"));
        let source = "\"\"\"\r\nab \\\r\n    {{ x }}\"\"\"";
        let value = "ab {{ x }}";
        assert_eq!(shown(source, value, 6..7), Some("x"));
        let source = "\"\"\"a\r\n{{ x }}\"\"\"";
        assert_eq!(shown(source, "a\r\n{{ x }}", 6..7), Some("x"));
        assert_eq!(shown(source, "a\n{{ x }}", 5..6), Some("x"));
    }

    #[test]
    fn a_position_at_the_end_is_the_closing_quote() {
        assert_eq!(source_range("\"{{ x\"", "{{ x", 4..4), Some(5..5));
    }

    #[test]
    fn text_that_does_not_decode_to_the_value_maps_nowhere() {
        assert_eq!(source_range("\"abc\"", "abd", 2..3), None);
        assert_eq!(source_range("\"abc\"", "abcdef", 4..5), None);
        assert_eq!(source_range("\"a\\qb\"", "aqb", 2..3), None);
    }

    #[test]
    fn values_keep_spans_at_every_depth() {
        #[derive(serde::Deserialize)]
        struct Doc {
            json: Spanned<SpannedValue>,
        }
        let text = "[json]\nlist = [1, { at = 1979-05-27T07:32:00Z, s = 'x' }]\n";
        let doc: Doc = toml::from_str(text).unwrap();
        let SpannedValue::Table(t) = doc.json.get_ref() else {
            panic!("a table")
        };
        let SpannedValue::Array(list) = t["list"].get_ref() else {
            panic!("an array")
        };
        assert_eq!(&text[list[0].span()], "1");
        let SpannedValue::Table(inner) = list[1].get_ref() else {
            panic!("a table")
        };
        assert_eq!(&text[inner["s"].span()], "'x'");
        let SpannedValue::Datetime(at) = inner["at"].get_ref() else {
            panic!("a date-time")
        };
        assert_eq!(at.to_string(), "1979-05-27T07:32:00Z");
    }
}
