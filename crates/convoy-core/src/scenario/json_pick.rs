//! Reads only the parts of a JSON response that a step looks at.
//!
//! A step's checks and captures name their JSON by pointer (`/status`,
//! `/order/id`, `/adjustments/0/id`). Parsing the whole body into a
//! [`serde_json::Value`] for them costs an allocation per key and per
//! string, most of it thrown away: it was a fifth of the generator's CPU in
//! a five-step journey. [`JsonPaths`] is the set of pointers a step uses,
//! compiled once into a tree; [`JsonPaths::parse`] walks the body in one pass
//! and builds a *pruned* `Value` holding only what lies on those paths,
//! skipping everything else with [`IgnoredAny`] (still checked to be valid
//! JSON). `pruned.pointer(p)` then answers exactly what `full.pointer(p)`
//! would for every `p` in the set.
//!
//! Arrays keep their indexes: elements before the last one needed are kept
//! as `null` placeholders when no path goes into them. A pointer that ends
//! on an array or object (a `length` check, a whole-object capture) gets the
//! complete value.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The most reference tokens (segments) a JSON pointer in a scenario may
/// have. A response body is parsed no deeper than 128 levels (serde_json's
/// recursion limit, which convoy never lifts), so a longer pointer could
/// never match; refusing it at load keeps every walk of the pointer tree
/// ([`JsonPaths`]) and of the pruned value shallow.
pub const MAX_POINTER_SEGMENTS: usize = 128;

/// Refuses a pointer with more than [`MAX_POINTER_SEGMENTS`] segments,
/// saying how many it has (not the pointer itself: it may be huge).
pub fn check_pointer_depth(pointer: &str) -> Result<(), String> {
    let segments = pointer.bytes().filter(|&b| b == b'/').count();
    if segments > MAX_POINTER_SEGMENTS {
        let start: String = pointer.chars().take(40).collect();
        return Err(format!(
            "the JSON pointer {start:?}... has {segments} segments, more than the {MAX_POINTER_SEGMENTS} allowed (a response is parsed no deeper than that, so it could never match)"
        ));
    }
    Ok(())
}

/// A set of JSON pointers, compiled into a tree of their reference tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct JsonPaths {
    root: Node,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Node {
    /// A pointer ends here: the whole value is needed.
    whole: bool,
    /// Object keys (and array indexes, written as keys) that paths go into.
    children: Vec<(String, Node)>,
    /// The highest array index among `children`, if any is one.
    max_index: Option<usize>,
}

/// Dropped without recursion: a tree as deep as its longest pointer is
/// taken apart one level at a time, whatever the depth.
impl Drop for Node {
    fn drop(&mut self) {
        let mut stack: Vec<Node> = self.children.drain(..).map(|(_, n)| n).collect();
        while let Some(mut node) = stack.pop() {
            stack.extend(node.children.drain(..).map(|(_, n)| n));
        }
    }
}

impl Node {
    fn child(&self, key: &str) -> Option<&Node> {
        self.children
            .iter()
            .find_map(|(k, n)| (k == key).then_some(n))
    }

    fn child_at(&self, index: usize) -> Option<&Node> {
        self.children
            .iter()
            .find_map(|(k, n)| (array_index(k) == Some(index)).then_some(n))
    }
}

/// A reference token as an array index, as `Value::pointer` reads it: digits
/// without a leading zero (except `0` itself).
fn array_index(token: &str) -> Option<usize> {
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return None;
    }
    token.parse().ok()
}

impl JsonPaths {
    /// The set of `pointers` (RFC 6901: `""` is the whole document, `~1` a
    /// `/` and `~0` a `~` in a key). A string that is not a pointer (does
    /// not start with `/`) can never match, as with `Value::pointer`.
    pub fn new<'a>(pointers: impl IntoIterator<Item = &'a str>) -> Self {
        let mut paths = JsonPaths::default();
        for p in pointers {
            paths.add(p);
        }
        paths
    }

    /// Adds one pointer.
    pub fn add(&mut self, pointer: &str) {
        if pointer.is_empty() {
            self.root.whole = true;
            return;
        }
        let Some(rest) = pointer.strip_prefix('/') else {
            return;
        };
        let mut node = &mut self.root;
        for raw in rest.split('/') {
            let token = raw.replace("~1", "/").replace("~0", "~");
            if let Some(i) = array_index(&token) {
                node.max_index = Some(node.max_index.map_or(i, |m| m.max(i)));
            }
            let at = match node.children.iter().position(|(k, _)| *k == token) {
                Some(at) => at,
                None => {
                    node.children.push((token, Node::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at].1;
        }
        node.whole = true;
    }

    /// The parts of `body` on these paths, or `None` when `body` is not
    /// JSON.
    pub fn parse(&self, body: &[u8]) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let v = if self.root.whole {
            serde::Deserialize::deserialize(&mut de).ok()?
        } else {
            Prune(&self.root).deserialize(&mut de).ok()?
        };
        de.end().ok()?;
        Some(v)
    }
}

/// Deserialises the value at a node that is not needed whole.
struct Prune<'n>(&'n Node);

impl<'de> DeserializeSeed<'de> for Prune<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        if self.0.whole {
            serde::Deserialize::deserialize(de)
        } else {
            de.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Prune<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    // A scalar where the paths expect a container: no path below it can
    // resolve, so what it was does not matter.
    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            match self.0.child(&key) {
                Some(node) => {
                    let v = map.next_value_seed(Prune(node))?;
                    out.insert(key.into_owned(), v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        let mut index = 0;
        loop {
            let wanted = self.0.max_index.is_some_and(|m| index <= m);
            if !wanted {
                // Nothing needed from here on: skip the rest.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                break;
            }
            let next = match self.0.child_at(index) {
                Some(node) => seq.next_element_seed(Prune(node))?,
                None => seq.next_element::<IgnoredAny>()?.map(|_| Value::Null),
            };
            match next {
                Some(v) => out.push(v),
                None => break,
            }
            index += 1;
        }
        Ok(Value::Array(out))
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BODY: &str = r#"{
        "id": "ord-1", "status": "routed", "weight_kg": 120.5,
        "order": {"id": "ord-1", "status": "delivered", "meta": {"a/b": 1, "c~d": 2}},
        "stops": [{"n": 0}, {"n": 1}, {"n": 2}],
        "adjustments": [{"id": "adj-1", "amount": -500}, {"id": "adj-2"}],
        "escaped\"key": "x", "nested": [[1, 2], [3, [4, 5]]],
        "empty": {}, "none": null, "flag": false, "token": "t\u00e9\n"
    }"#;

    /// Every pointer into BODY, and some that miss.
    const POINTERS: &[&str] = &[
        "",
        "/id",
        "/status",
        "/weight_kg",
        "/order",
        "/order/id",
        "/order/status",
        "/order/meta/a~1b",
        "/order/meta/c~0d",
        "/order/missing",
        "/stops",
        "/stops/0",
        "/stops/2/n",
        "/stops/3",
        "/stops/01",
        "/stops/-",
        "/adjustments/0/id",
        "/adjustments/1/id",
        "/adjustments/1/amount",
        "/adjustments/id",
        "/escaped\"key",
        "/nested/1/1/0",
        "/nested/0/5",
        "/empty",
        "/none",
        "/flag",
        "/token",
        "/id/0",
        "/status/x",
        "/missing/deeper",
        "no-slash",
        "/",
    ];

    #[test]
    fn a_pointer_tree_of_any_depth_is_built_and_dropped_without_recursion() {
        let deep = "/a".repeat(200_000);
        let paths = JsonPaths::new([deep.as_str(), "/b"]);
        assert_eq!(paths.parse(br#"{"b":1}"#), Some(serde_json::json!({"b":1})));
        drop(paths);
    }

    #[test]
    fn pointers_deeper_than_any_parsed_body_are_refused_naming_the_limit() {
        assert!(check_pointer_depth(&"/a".repeat(MAX_POINTER_SEGMENTS)).is_ok());
        assert!(check_pointer_depth("").is_ok());
        let e = check_pointer_depth(&"/a".repeat(200_000)).unwrap_err();
        assert!(e.contains("200000 segments"), "{e}");
        assert!(e.contains("128"), "{e}");
        assert!(e.len() < 300, "the message does not repeat the pointer");
    }

    #[test]
    fn each_pointer_alone_answers_what_the_full_parse_answers() {
        let full: Value = serde_json::from_str(BODY).unwrap();
        for p in POINTERS {
            let pruned = JsonPaths::new([*p]).parse(BODY.as_bytes()).unwrap();
            assert_eq!(pruned.pointer(p), full.pointer(p), "pointer {p:?}");
        }
    }

    #[test]
    fn every_pointer_together_answers_what_the_full_parse_answers() {
        let full: Value = serde_json::from_str(BODY).unwrap();
        let all = JsonPaths::new(POINTERS.iter().copied().filter(|p| !p.is_empty()));
        let pruned = all.parse(BODY.as_bytes()).unwrap();
        for p in POINTERS.iter().filter(|p| !p.is_empty()) {
            assert_eq!(pruned.pointer(p), full.pointer(p), "pointer {p:?}");
        }
    }

    #[test]
    fn what_no_path_needs_is_left_out() {
        let pruned = JsonPaths::new(["/order/status", "/adjustments/0/id"])
            .parse(BODY.as_bytes())
            .unwrap();
        assert_eq!(
            pruned,
            json!({"order": {"status": "delivered"}, "adjustments": [{"id": "adj-1"}]})
        );
        let pruned = JsonPaths::new(["/stops/1"]).parse(BODY.as_bytes()).unwrap();
        assert_eq!(pruned, json!({"stops": [null, {"n": 1}]}));
    }

    #[test]
    fn a_whole_value_wins_over_paths_below_it() {
        let pruned = JsonPaths::new(["/order/id", "/order"])
            .parse(BODY.as_bytes())
            .unwrap();
        let full: Value = serde_json::from_str(BODY).unwrap();
        assert_eq!(pruned.pointer("/order"), full.pointer("/order"));
    }

    #[test]
    fn bodies_that_are_not_json_are_none_even_where_nothing_is_read() {
        let paths = JsonPaths::new(["/id"]);
        for body in [
            &b"not json"[..],
            b"",
            b"{\"id\": 1",
            b"{\"other\": [1, 2,]}",
            b"{\"id\": 1} trailing",
            b"<html>{\"id\": 1}</html>",
        ] {
            assert_eq!(
                paths.parse(body),
                None,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            paths
                .parse(b"[1, 2]")
                .and_then(|v| v.pointer("/id").cloned()),
            None
        );
        assert_eq!(paths.parse(b"\"text\""), Some(Value::Null));
    }

    #[test]
    fn duplicate_keys_keep_the_last_as_the_full_parse_does() {
        let body = br#"{"id": 1, "id": 2}"#;
        let full: Value = serde_json::from_slice(body).unwrap();
        let pruned = JsonPaths::new(["/id"]).parse(body).unwrap();
        assert_eq!(pruned.pointer("/id"), full.pointer("/id"));
    }
}
