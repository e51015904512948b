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
//!
//! A segment `*` (a check over every element, `/entries/*/kind`) goes into
//! every element of an array and every member of an object. Where a
//! pointer names one element and a wildcard names all (`/entries/0/id` and
//! `/entries/*/kind`), the named element's node is given the wildcard's
//! paths too when the set is built, so that reading stays one lookup per
//! key. As `*` is a key RFC 6901 allows, `pruned.pointer("/a/*")` still
//! answers as the full parse does: the wildcard keeps more, never less.

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
    /// Where a `*` segment goes: into every element or member.
    wild: Option<Box<Node>>,
}

/// Dropped without recursion: a tree as deep as its longest pointer is
/// taken apart one level at a time, whatever the depth.
impl Drop for Node {
    fn drop(&mut self) {
        let mut stack: Vec<Node> = self.children.drain(..).map(|(_, n)| n).collect();
        stack.extend(self.wild.take().map(|w| *w));
        while let Some(mut node) = stack.pop() {
            stack.extend(node.children.drain(..).map(|(_, n)| n));
            stack.extend(node.wild.take().map(|w| *w));
        }
    }
}

impl Node {
    /// The node for member `key`: its own, else the wildcard's.
    fn child(&self, key: &str) -> Option<&Node> {
        self.children
            .iter()
            .find_map(|(k, n)| (k == key).then_some(n))
            .or(self.wild.as_deref())
    }

    /// The node for element `index`: its own, else the wildcard's.
    fn child_at(&self, index: usize) -> Option<&Node> {
        self.children
            .iter()
            .find_map(|(k, n)| (array_index(k) == Some(index)).then_some(n))
            .or(self.wild.as_deref())
    }

    /// Adds the path of `tokens` below this node.
    fn insert<'t>(&mut self, tokens: impl IntoIterator<Item = &'t str>) {
        let mut node = self;
        for token in tokens {
            if token == "*" {
                node = node.wild.get_or_insert_with(Box::default);
                continue;
            }
            if let Some(i) = array_index(token) {
                node.max_index = Some(node.max_index.map_or(i, |m| m.max(i)));
            }
            let at = match node.children.iter().position(|(k, _)| k == token) {
                Some(at) => at,
                None => {
                    node.children.push((token.to_string(), Node::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at].1;
        }
        node.whole = true;
    }

    /// Every path that ends below this node, as its tokens.
    fn paths(&self) -> Vec<Vec<&str>> {
        let mut out = Vec::new();
        let mut stack: Vec<(&Node, Vec<&str>)> = vec![(self, Vec::new())];
        while let Some((node, prefix)) = stack.pop() {
            if node.whole {
                out.push(prefix.clone());
            }
            for (k, child) in &node.children {
                let mut p = prefix.clone();
                p.push(k);
                stack.push((child, p));
            }
            if let Some(w) = &node.wild {
                let mut p = prefix.clone();
                p.push("*");
                stack.push((w, p));
            }
        }
        out
    }

    /// Gives every named child of a node with a wildcard the wildcard's
    /// paths, top down, so that a named element is read for both.
    fn spread_wildcards(&mut self) {
        let mut stack: Vec<&mut Node> = vec![self];
        while let Some(node) = stack.pop() {
            if let Some(w) = &node.wild
                && !node.children.is_empty()
            {
                let paths: Vec<Vec<String>> = w
                    .paths()
                    .into_iter()
                    .map(|p| p.into_iter().map(str::to_string).collect())
                    .collect();
                for (_, child) in &mut node.children {
                    for p in &paths {
                        child.insert(p.iter().map(String::as_str));
                    }
                }
            }
            stack.extend(node.children.iter_mut().map(|(_, n)| n));
            stack.extend(node.wild.as_deref_mut());
        }
    }
}

/// A reference token as an array index, as `Value::pointer` reads it: digits
/// without a leading zero (except `0` itself).
pub(crate) fn array_index(token: &str) -> Option<usize> {
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
    /// A segment `*` stands for every element or member.
    pub fn new<'a>(pointers: impl IntoIterator<Item = &'a str>) -> Self {
        let mut paths = JsonPaths::default();
        let mut wildcards = false;
        for p in pointers {
            if p.is_empty() {
                paths.root.whole = true;
                continue;
            }
            let Some(rest) = p.strip_prefix('/') else {
                continue;
            };
            let tokens: Vec<String> = rest
                .split('/')
                .map(|raw| raw.replace("~1", "/").replace("~0", "~"))
                .collect();
            wildcards |= tokens.iter().any(|t| t == "*");
            paths.root.insert(tokens.iter().map(String::as_str));
        }
        if wildcards {
            paths.root.spread_wildcards();
        }
        paths
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
            let wanted = self.0.wild.is_some() || self.0.max_index.is_some_and(|m| index <= m);
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

    /// Every value a wildcard pointer selects, read the way checks read
    /// them: `*` for each element or member.
    fn select<'v>(v: &'v Value, tokens: &[&str]) -> Vec<&'v Value> {
        let Some((t, rest)) = tokens.split_first() else {
            return vec![v];
        };
        match (*t, v) {
            ("*", Value::Array(a)) => a.iter().flat_map(|x| select(x, rest)).collect(),
            ("*", Value::Object(m)) => m.values().flat_map(|x| select(x, rest)).collect(),
            (k, Value::Object(m)) => m.get(k).map(|x| select(x, rest)).unwrap_or_default(),
            (k, Value::Array(a)) => array_index(k)
                .and_then(|i| a.get(i))
                .map(|x| select(x, rest))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn wildcards_select_what_the_full_parse_selects_alone_and_with_named_elements() {
        let full: Value = serde_json::from_str(BODY).unwrap();
        let wild = [
            "/stops/*/n",
            "/adjustments/*/id",
            "/adjustments/*/amount",
            "/nested/*/1",
            "/nested/*/*",
            "/order/meta/*",
            "/order/*",
            "/*",
            "/stops/*",
        ];
        for w in wild {
            let tokens: Vec<&str> = w[1..].split('/').collect();
            let alone = JsonPaths::new([w]).parse(BODY.as_bytes()).unwrap();
            assert_eq!(select(&alone, &tokens), select(&full, &tokens), "{w}");
            // With named pointers through the same arrays, each still
            // reads what it reads alone.
            let mixed: Vec<&str> = [w, "/adjustments/0/id", "/stops/2/n", "/nested/1/1/0"]
                .into_iter()
                .collect();
            let pruned = JsonPaths::new(mixed.iter().copied())
                .parse(BODY.as_bytes())
                .unwrap();
            assert_eq!(select(&pruned, &tokens), select(&full, &tokens), "{w}");
            for p in &mixed[1..] {
                assert_eq!(pruned.pointer(p), full.pointer(p), "{p} with {w}");
            }
        }
    }

    #[test]
    fn a_wildcard_keeps_only_its_path_in_each_element() {
        let pruned = JsonPaths::new(["/adjustments/*/id"])
            .parse(BODY.as_bytes())
            .unwrap();
        assert_eq!(
            pruned,
            json!({"adjustments": [{"id": "adj-1"}, {"id": "adj-2"}]})
        );
        // A named element gets the wildcard's path and its own.
        let pruned = JsonPaths::new(["/adjustments/0/amount", "/adjustments/*/id"])
            .parse(BODY.as_bytes())
            .unwrap();
        assert_eq!(
            pruned,
            json!({"adjustments": [{"id": "adj-1", "amount": -500}, {"id": "adj-2"}]})
        );
    }

    #[test]
    fn duplicate_keys_keep_the_last_as_the_full_parse_does() {
        let body = br#"{"id": 1, "id": 2}"#;
        let full: Value = serde_json::from_slice(body).unwrap();
        let pruned = JsonPaths::new(["/id"]).parse(body).unwrap();
        assert_eq!(pruned.pointer("/id"), full.pointer("/id"));
    }
}
