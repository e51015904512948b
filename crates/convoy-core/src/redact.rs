//! Keeping secrets out of everything convoy prints or writes.
//!
//! Two mechanisms:
//!
//! * **By name**: headers, query parameters, JSON fields and variables whose
//!   name looks sensitive ([`is_sensitive_name`]) are shown as [`REDACTED`].
//! * **By value**: a run keeps one [`Secrets`] set, shared by every user,
//!   worker and scenario of the run. It starts with what the scenarios name
//!   as secret (secret variables, every identity's credentials, database
//!   passwords) and learns, while running, every value that authenticates:
//!   the tokens login answers hand out, and every value sent in a sensitive
//!   header or query parameter (captures fed into them included). Text
//!   leaves convoy only through [`Secrets::scrub`]: failure samples when
//!   they are taken, lines printed during the run, and the whole report
//!   (every string of it, [`Secrets::scrub_serialized`]) before it is
//!   rendered or written.
//!
//! Each secret is scrubbed in the forms a target is likely to echo it in:
//! raw, JSON-escaped, percent-encoded (`%2F` style, with `+` or `%20` for
//! spaces) and base64 (standard, unpadded and URL-safe); a `user:password`
//! pair is a secret of its own, so its base64 (HTTP Basic) form goes too.
//!
//! Values shorter than [`MIN_SECRET_CHARS`] characters are never treated as
//! secrets: scrubbing `abc` everywhere would ruin the report and protect
//! nothing. At most [`MAX_LEARNT`] values are learnt at run time (values
//! named before the run are always kept); past that, new values are no
//! longer learnt, which bounds memory and scrubbing time on long runs.
//!
//! Layering: a leaf, imported by whatever prints or writes; it imports no
//! other module of the harness.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use base64::Engine as _;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values with fewer characters than this are never secrets.
pub const MIN_SECRET_CHARS: usize = 4;

/// The most values a run learns while running.
pub const MAX_LEARNT: usize = 16_384;

/// Name fragments that mark a header, query parameter, JSON field or
/// variable as sensitive, matched case-insensitively anywhere in the name.
const SENSITIVE_FRAGMENTS: &[&str] = &[
    "authorization",
    "authentication",
    "cookie",
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "apikey",
    "api-key",
    "api_key",
    "jwt",
    "signature",
    "credential",
    "session",
    "bearer",
];

/// Names sensitive only as a whole part (between `-`, `_`, `.` or the
/// ends): `key` in `x-api-key` or `key`, not in `keyboard` or `monkey`;
/// `auth` in `x-auth` or `auth`, not in `author`; `sig` in `X-Sig`.
const SENSITIVE_WORDS: &[&str] = &["key", "auth", "oauth", "sig", "pass", "otp", "sid"];

/// Names sensitive only as the whole name: `?code=` (an OAuth code), not
/// `status_code` or `postcode`.
const SENSITIVE_NAMES: &[&str] = &["code"];

/// Fragments that make a name harmless whatever else it holds: an
/// `Idempotency-Key` is a fresh id per request, not a credential. Taken for
/// a secret, every request would teach the run a new value, filling the
/// learnt set (and its memory) until the tokens that matter could no
/// longer be learnt.
const HARMLESS_FRAGMENTS: &[&str] = &["idempotency"];

/// Whether a header, query parameter, JSON field or variable name suggests
/// a secret. Case-insensitive: any name containing one of
/// `SENSITIVE_FRAGMENTS` (`access_token`, `db_password`, `passphrase`,
/// `Cookie`, `X-Jwt`), starting with `x-auth` (`X-Auth`, `X-Auth-User`,
/// `X-Authx`), having one of `SENSITIVE_WORDS` as a part (`key`,
/// `x-api-key`, `sig`, `auth`) or being `code`. Harmless names that merely
/// contain such letters stay readable: `keyboard`, `author`, `encoding`,
/// `status_code`, and so do idempotency keys (`Idempotency-Key`).
pub fn is_sensitive_name(name: &str) -> bool {
    let b = name.as_bytes();
    if HARMLESS_FRAGMENTS
        .iter()
        .any(|f| contains_ci(b, f.as_bytes()))
    {
        return false;
    }
    SENSITIVE_FRAGMENTS
        .iter()
        .any(|f| contains_ci(b, f.as_bytes()))
        || (b.len() >= 6 && b[..6].eq_ignore_ascii_case(b"x-auth"))
        || SENSITIVE_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
        || name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| SENSITIVE_WORDS.iter().any(|s| w.eq_ignore_ascii_case(s)))
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// What one sender has already taught a [`Secrets`] set (see
/// [`Secrets::learn_request_memo`]). Each list is small and bounded: when
/// full it starts over, which costs one more lookup, never a lost secret.
#[derive(Debug, Default)]
pub struct LearntMemo {
    names: Vec<(http::HeaderName, bool)>,
    values: Vec<http::HeaderValue>,
    queries: Vec<Box<str>>,
}

impl LearntMemo {
    const CAP: usize = 16;

    fn is_sensitive(&mut self, name: &http::HeaderName) -> bool {
        if let Some((_, s)) = self.names.iter().find(|(n, _)| n == name) {
            return *s;
        }
        let s = is_sensitive_name(name.as_str());
        Self::remember(&mut self.names, (name.clone(), s));
        s
    }

    fn remember<T>(list: &mut Vec<T>, item: T) {
        if list.len() >= Self::CAP {
            list.clear();
        }
        list.push(item);
    }
}

/// The secret values of one run, shared by all its users, workers and
/// scenarios: cheap to clone (a handle), safe to add to from any thread.
/// See the module documentation for what joins it and in which forms it is
/// scrubbed.
#[derive(Clone, Default)]
pub struct Secrets {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Every value added, as given.
    values: HashSet<String>,
    /// How many of them were learnt at run time.
    learnt: usize,
    /// Every form of every value, by its first four bytes (each form is at
    /// least that long), longest first within a bucket.
    forms: HashMap<[u8; 4], Vec<String>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values themselves.
        write!(f, "Secrets({} values)", self.len())
    }
}

impl Secrets {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding `values`.
    pub fn of<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Self {
        let s = Self::new();
        s.extend(values);
        s
    }

    /// How many values the set holds.
    pub fn len(&self) -> usize {
        self.read().values.len()
    }

    /// The values it holds (to merge sets).
    pub fn values(&self) -> Vec<String> {
        self.read().values.iter().cloned().collect()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds the values named before the run (never dropped, never capped).
    pub fn extend<S: AsRef<str>>(&self, values: impl IntoIterator<Item = S>) {
        for v in values {
            self.insert(v.as_ref(), false);
        }
    }

    /// Adds `value`, named before the run.
    pub fn add(&self, value: &str) {
        self.insert(value, false);
    }

    /// Learns `value` at run time (a token, a value sent in a sensitive
    /// header): cheap when it is already known, ignored when too short or
    /// once [`MAX_LEARNT`] values were learnt.
    pub fn learn(&self, value: &str) {
        self.insert(value, true);
    }

    /// Learns the value of sensitive header `value`: the whole of it, the
    /// credential after an auth scheme (`Bearer X` teaches `X`), and for
    /// `Basic` the decoded `user:password` and its password.
    pub fn learn_header_value(&self, value: &str) {
        let value = value.trim();
        self.learn(value);
        if let Some((scheme, rest)) = value.split_once(' ') {
            let rest = rest.trim();
            self.learn(rest);
            if scheme.eq_ignore_ascii_case("basic")
                && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(rest)
                && let Ok(pair) = String::from_utf8(bytes)
            {
                self.learn(&pair);
                if let Some((_, password)) = pair.split_once(':') {
                    self.learn(password);
                }
            }
        }
        // `Cookie: theme=dark; sid=XYZ` teaches the values of cookies named
        // like a secret, and of long ones (opaque ids), not `dark`.
        if value.contains('=') {
            for part in value.split(';') {
                if let Some((k, v)) = part.split_once('=') {
                    let v = v.trim();
                    if is_sensitive_name(k.trim()) || v.chars().count() >= 16 {
                        self.learn(v);
                    }
                }
            }
        }
    }

    /// Learns what request `headers` and origin-form `uri` send as
    /// credentials: every sensitive header's value and every sensitive
    /// query parameter's value.
    pub fn learn_request(&self, uri: &str, headers: &http::HeaderMap) {
        self.learn_request_memo(uri, headers, &mut LearntMemo::default());
    }

    /// [`Secrets::learn_request`] for one sender that sends much the same
    /// requests again and again (a virtual user): `memo` remembers which
    /// header names are sensitive and which values and queries it has
    /// already taught, so a request that sends nothing new costs a few
    /// comparisons, not a lock and a hash per credential.
    pub fn learn_request_memo(&self, uri: &str, headers: &http::HeaderMap, memo: &mut LearntMemo) {
        for (k, v) in headers {
            if !(v.is_sensitive() || memo.is_sensitive(k)) || memo.values.contains(v) {
                continue;
            }
            if let Ok(text) = v.to_str() {
                self.learn_header_value(text);
            }
            LearntMemo::remember(&mut memo.values, v.clone());
        }
        if let Some((_, query)) = uri.split_once('?')
            && !memo.queries.iter().any(|q| **q == *query)
        {
            for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                if is_sensitive_name(&k) {
                    self.learn(&v);
                }
            }
            LearntMemo::remember(&mut memo.queries, query.into());
        }
    }

    fn insert(&self, value: &str, learnt: bool) {
        if value.chars().count() < MIN_SECRET_CHARS || self.read().values.contains(value) {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.values.contains(value) || (learnt && inner.learnt >= MAX_LEARNT) {
            return;
        }
        inner.values.insert(value.to_string());
        if learnt {
            inner.learnt += 1;
        }
        for form in forms(value) {
            let key: [u8; 4] = form.as_bytes()[..4].try_into().expect("four bytes");
            let bucket = inner.forms.entry(key).or_default();
            if !bucket.contains(&form) {
                bucket.push(form);
                bucket.sort_by_key(|f| std::cmp::Reverse(f.len()));
            }
        }
    }

    /// `text` with every form of every secret replaced by [`REDACTED`].
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let inner = self.read();
        if inner.forms.is_empty() || text.len() < 4 {
            return Cow::Borrowed(text);
        }
        let b = text.as_bytes();
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut i = 0;
        while i + 4 <= b.len() {
            let key: [u8; 4] = b[i..i + 4].try_into().expect("four bytes");
            let hit = inner.forms.get(&key).and_then(|bucket| {
                bucket
                    .iter()
                    .find(|f| b[i..].starts_with(f.as_bytes()))
                    .map(String::len)
            });
            match hit {
                Some(len) => {
                    let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    // A form is whole UTF-8, so both ends are boundaries.
                    o.push_str(&text[copied..i]);
                    o.push_str(REDACTED);
                    i += len;
                    copied = i;
                }
                None => i += 1,
            }
        }
        match out {
            Some(mut o) => {
                o.push_str(&text[copied..]);
                Cow::Owned(o)
            }
            None => Cow::Borrowed(text),
        }
    }

    /// Scrubs `text` in place.
    pub fn scrub_in_place(&self, text: &mut String) {
        if let Cow::Owned(s) = self.scrub(text) {
            *text = s;
        }
    }

    /// Every string of `value` scrubbed (object keys too), leaving alone
    /// the members named in `skip` (opaque data such as encoded
    /// histograms, whose text cannot hold a secret but could match one by
    /// chance).
    pub fn scrub_json(&self, value: &mut serde_json::Value, skip: &[&str]) {
        use serde_json::Value;
        match value {
            Value::String(s) => self.scrub_in_place(s),
            Value::Array(a) => a.iter_mut().for_each(|v| self.scrub_json(v, skip)),
            Value::Object(map) => {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    if !skip.contains(&k.as_str()) {
                        self.scrub_json(&mut v, skip);
                    }
                    map.insert(self.scrub(&k).into_owned(), v);
                }
            }
            _ => {}
        }
    }

    /// `value` with every string of its serialised form scrubbed (but the
    /// members named in `skip`), read back: the way to clean a whole
    /// report without listing its fields. `None` when the scrubbed form no
    /// longer reads as a `T` (a secret that is also a fixed word of the
    /// format, such as an enum's name).
    pub fn scrub_serialized<T>(&self, value: &T, skip: &[&str]) -> Option<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let mut json = serde_json::to_value(value).ok()?;
        self.scrub_json(&mut json, skip);
        serde_json::from_value(json).ok()
    }
}

/// The forms `value` may be echoed in: raw, JSON-escaped, percent-encoded
/// (form style with `+`, and `%20` style; upper- and lower-case hex) and
/// base64 (standard, unpadded, URL-safe).
fn forms(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![value.to_string()];
    // JSON-escaped once, and twice (JSON text inside a JSON string, as an
    // echoing target nests the request it was sent).
    let json = json_escape(value);
    out.push(json_escape(&json));
    out.push(json);
    let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    out.push(form.replace('+', "%20"));
    out.push(lower_hex(&form));
    out.push(lower_hex(&form.replace('+', "%20")));
    out.push(form);
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        out.push(engine.encode(value));
    }
    out.sort();
    out.dedup();
    out.retain(|f| f.len() >= 4);
    out
}

/// `s` as inside a JSON string.
fn json_escape(s: &str) -> String {
    let json = serde_json::to_string(s).expect("a string serialises");
    json[1..json.len() - 1].to_string()
}

/// Percent escapes with lower-case hex digits.
fn lower_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let esc = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&esc.to_ascii_lowercase());
        rest = &rest[at + esc.len()..];
    }
    out.push_str(rest);
    out
}

/// A path or URL fit to be a name (a step's metric, a Prometheus label):
/// the values of sensitive query parameters are replaced by `…`, the rest
/// is left as written (so names stay unique).
pub fn path_for_name(path: &str) -> Cow<'_, str> {
    let Some((before, query)) = path.split_once('?') else {
        return Cow::Borrowed(path);
    };
    let mut changed = false;
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !v.is_empty() && is_sensitive_name(k) => {
                changed = true;
                format!("{k}=…")
            }
            _ => pair.to_string(),
        })
        .collect();
    if changed {
        Cow::Owned(format!("{before}?{}", pairs.join("&")))
    } else {
        Cow::Borrowed(path)
    }
}

/// Text that quotes what a user typed (a URL, a `-H` header) in an error
/// message, with what may be secret taken out: a URL's user info, the
/// values of its sensitive query parameters, and the value of a sensitive
/// header. Works on text that does not parse.
pub fn redact_typed(text: &str) -> String {
    // A header `Name: value`: a sensitive name hides its value.
    if let Some((name, _)) = text.split_once(':')
        && !name.contains('/')
        && is_sensitive_name(name.trim())
        && !name.trim().contains(' ')
    {
        return format!("{}: {REDACTED}", name.trim());
    }
    let mut out = text.to_string();
    // User info: everything between `://` and the last `@` before the path.
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@') {
            out.replace_range(start..start + at, REDACTED);
        }
    }
    // Query values of sensitive names (in the query and in the fragment).
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find(['?', '&', '#', ';']) {
        result.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let end = rest.find(['&', '#', ';']).unwrap_or(rest.len());
        let pair = &rest[..end];
        match pair.split_once('=') {
            Some((k, _)) if is_sensitive_name(k) => {
                result.push_str(k);
                result.push('=');
                result.push_str(REDACTED);
            }
            _ => result.push_str(pair),
        }
        rest = &rest[end..];
    }
    result.push_str(rest);
    result
}
/// A `-H 'Name: value'` argument quoted in an error message: its name
/// only (up to the first `:`, `=` or space), never its value, which may be
/// a credential even when the line is malformed.
pub fn header_for_error(line: &str) -> String {
    let line = line.trim();
    let end = line.find([':', '=', ' ', '\t']).unwrap_or(line.len());
    if end == line.len() {
        format!("{line:?}")
    } else {
        format!("\"{}: …\"", &line[..end])
    }
}

/// A URL fit for display: the password of its user info and the values of
/// sensitive query parameters are redacted.
pub fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some(REDACTED));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v: Cow<str> = if is_sensitive_name(&k) {
                    REDACTED.into()
                } else {
                    v
                };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string().replace("%5BREDACTED%5D", REDACTED)
}

/// A header value fit for display.
pub fn redact_header<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    if is_sensitive_name(name) {
        REDACTED.into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_passwords_and_tokens() {
        let u: url::Url = "http://bob:hunter2@127.0.0.1:8080/x?access_token=abc123&page=2"
            .parse()
            .unwrap();
        let shown = redact_url(&u);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("abc123"), "{shown}");
        assert!(shown.contains("page=2"), "{shown}");
        assert!(shown.contains("bob"), "{shown}");
    }

    #[test]
    fn sensitive_names_cover_the_common_spellings() {
        for n in [
            "Authorization",
            "Cookie",
            "Set-Cookie",
            "X-Auth",
            "X-Auth-Token",
            "x-authx",
            "X-Api-Key",
            "apikey",
            "API_KEY",
            "key",
            "jwt",
            "X-JWT",
            "auth",
            "token",
            "access_token",
            "secret",
            "client_secret",
            "password",
            "db_password",
            "pwd",
            "passphrase",
            "sig",
            "signature",
            "code",
            "session",
            "sessionid",
            "pass",
            "sid",
            "JSESSIONID",
        ] {
            assert!(is_sensitive_name(n), "{n} is sensitive");
        }
        for n in [
            "keyboard",
            "monkey",
            "author",
            "authority",
            "encoding",
            "status_code",
            "postcode",
            "page",
            "limit",
            "Accept",
            "Content-Type",
            "email",
            "username",
            "passenger",
            "signal",
            "Idempotency-Key",
            "X-Idempotency-Key",
            "idempotency_key",
        ] {
            assert!(!is_sensitive_name(n), "{n} is harmless");
        }
    }

    #[test]
    fn a_memo_skips_what_it_taught_and_never_hides_a_new_value() {
        let s = Secrets::new();
        let mut memo = LearntMemo::default();
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "Bearer first-token".parse().unwrap());
        for i in 0..100 {
            // A fresh idempotency key per request teaches nothing.
            h.insert("idempotency-key", format!("key-{i:08}").parse().unwrap());
            s.learn_request_memo("/orders?page=2&access_token=qtok1", &h, &mut memo);
        }
        assert_eq!(
            s.scrub("first-token qtok1 key-00000042"),
            "[REDACTED] [REDACTED] key-00000042"
        );
        assert_eq!(s.read().learnt, 3, "Bearer first-token, first-token, qtok1");
        // New values, after the memo has filled and started over, are learnt.
        for i in 0..40 {
            h.insert("x-api-key", format!("api-key-{i:04}").parse().unwrap());
            s.learn_request_memo(&format!("/o?access_token=q-{i:04}"), &h, &mut memo);
        }
        h.insert("authorization", "Bearer second-token".parse().unwrap());
        s.learn_request_memo("/o", &h, &mut memo);
        let scrubbed = s.scrub("api-key-0000 api-key-0039 q-0007 second-token");
        assert_eq!(scrubbed, "[REDACTED] [REDACTED] [REDACTED] [REDACTED]");
    }

    #[test]
    fn every_form_of_a_secret_is_scrubbed() {
        let s = Secrets::of(["p\"w/+= d"]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("p\"w/+= d");
        for text in [
            "p\"w/+= d".to_string(),
            r#"p\"w/+= d"#.to_string(),
            r#"p\\\"w/+= d"#.to_string(),
            "p%22w%2F%2B%3D+d".into(),
            "p%22w%2F%2B%3D%20d".into(),
            "p%22w%2f%2b%3d+d".into(),
            b64.clone(),
            b64.trim_end_matches('=').to_string(),
        ] {
            let got = s.scrub(&format!("<{text}>")).into_owned();
            assert_eq!(got, format!("<{REDACTED}>"), "{text}");
        }
        assert_eq!(s.scrub("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_not_secrets_and_learning_is_bounded_per_value() {
        let s = Secrets::new();
        s.learn("abc");
        s.add("");
        assert!(s.is_empty());
        s.learn("abcd");
        s.learn("abcd");
        assert_eq!(s.len(), 1);
        assert_eq!(s.scrub("xabcdx abc"), format!("x{REDACTED}x abc"));
    }

    #[test]
    fn header_values_teach_their_credentials() {
        let s = Secrets::new();
        s.learn_header_value("Bearer tok-123456");
        let basic = base64::engine::general_purpose::STANDARD.encode("bob:hunter22");
        s.learn_header_value(&format!("Basic {basic}"));
        s.learn_header_value("theme=dark; sid=cookie-9876");
        for v in ["tok-123456", "hunter22", "bob:hunter22", "cookie-9876"] {
            assert_eq!(s.scrub(v), REDACTED, "{v}");
        }
        assert_eq!(s.scrub("dark"), "dark", "a harmless cookie is no secret");
        let mut h = http::HeaderMap::new();
        h.insert("x-auth", http::HeaderValue::from_static("captured-42"));
        h.insert("accept", http::HeaderValue::from_static("text/plain-x"));
        s.learn_request("/a?access_token=q%2Ftok&page=22222", &h);
        assert_eq!(
            s.scrub("captured-42 q/tok 22222 text/plain-x"),
            format!("{REDACTED} {REDACTED} 22222 text/plain-x")
        );
    }

    #[test]
    fn json_is_scrubbed_but_skipped_members() {
        let s = Secrets::of(["hunter22"]);
        let mut v = serde_json::json!({"a": ["x hunter22"], "hunter22": 1, "skip": "hunter22"});
        s.scrub_json(&mut v, &["skip"]);
        assert_eq!(
            v,
            serde_json::json!({"a": [format!("x {REDACTED}")], REDACTED: 1, "skip": "hunter22"})
        );
    }

    #[test]
    fn names_from_paths_lose_sensitive_query_values() {
        assert_eq!(
            path_for_name("/orders?access_token=abc&page=2"),
            "/orders?access_token=…&page=2"
        );
        assert_eq!(
            path_for_name("/orders?jwt=a&sig=b&code=c"),
            "/orders?jwt=…&sig=…&code=…"
        );
        assert_eq!(path_for_name("/orders"), "/orders");
    }

    #[test]
    fn typed_text_loses_user_info_and_sensitive_values() {
        let shown = redact_typed("http://bob:hunter2@[::1/x?access_token=abc123&page=2&jwt=j1");
        assert!(
            !shown.contains("hunter2") && !shown.contains("abc123") && !shown.contains("j1"),
            "{shown}"
        );
        assert!(shown.contains("page=2"), "{shown}");
        assert_eq!(
            redact_typed("Authorization Bearer x"),
            "Authorization Bearer x"
        );
        assert_eq!(
            redact_typed("X-Api-Key: k1"),
            format!("X-Api-Key: {REDACTED}")
        );
        assert_eq!(
            header_for_error("Authorization Bearer x1"),
            "\"Authorization: …\""
        );
        assert_eq!(header_for_error("X-Api-Key=k1"), "\"X-Api-Key: …\"");
    }

    #[test]
    fn headers() {
        assert_eq!(redact_header("Authorization", "Bearer x"), REDACTED);
        assert_eq!(redact_header("X-Api-Key", "k"), REDACTED);
        assert_eq!(
            redact_header("Accept", "application/json"),
            "application/json"
        );
    }
}
