//! Credentials → identities. A token the recording sent (an
//! `Authorization` header, an API-key header, a token in the query, a
//! session cookie) either came from an earlier answer, whose request is
//! then a login (`[auth]` with the token's place in that answer, and one
//! identity per user who logged in, their name and password from the
//! environment), or was there from the start (`kind = "token"`, the token
//! from the environment). No recorded secret is written anywhere: every
//! credential value is handed to the writer as a value to leave out.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::correlate::{json_leaves, snake_case};
use super::model::{Exchange, PostBody};
use crate::init::toml_text::{string, value};
use crate::redact::is_sensitive_name;

/// Where a request carries its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Carrier {
    /// A header, with the scheme before the token (`Bearer`, or none).
    Header(String, String),
    /// A query parameter.
    Query(String),
    /// A cookie.
    Cookie(String),
}

/// Where a login's answer holds the token.
#[derive(Debug, Clone)]
enum TokenAt {
    Json(String),
    Header(String),
    Cookie(String),
}

/// The credentials of a recording.
#[derive(Debug, Default)]
pub struct Credentials {
    /// `[auth]` and `[identities.*]`, as TOML text (empty: none).
    pub toml: String,
    /// Environment variables: `(name, what it holds)`.
    pub env: Vec<(String, String)>,
    /// How the suite authenticates, for the README.
    pub summary: String,
    /// Per step: the identity it acts as.
    pub identity: Vec<Option<String>>,
    /// Steps that are logins the `[auth]` makes (left out of the journey).
    pub logins: HashSet<usize>,
    /// Every credential value recorded: never written.
    pub secrets: HashSet<String>,
    /// Per step: header names (lower case) and query names `[auth]` sends.
    pub sent_by_auth: Vec<HashSet<String>>,
}

/// What a step sent that looks like a credential.
fn carried(e: &Exchange) -> Vec<(Carrier, String)> {
    let mut out = Vec::new();
    for (k, v) in &e.request_headers {
        let lower = k.to_ascii_lowercase();
        if lower == "cookie" {
            for part in v.split(';') {
                if let Some((n, val)) = part.trim().split_once('=')
                    && (is_sensitive_name(n) || val.len() >= 16)
                {
                    out.push((Carrier::Cookie(n.to_string()), val.to_string()));
                }
            }
        } else if lower == "authorization" || lower == "proxy-authorization" {
            let (scheme, token) = match v.trim().split_once(' ') {
                Some((s, t)) => (s.to_string(), t.trim().to_string()),
                None => (String::new(), v.trim().to_string()),
            };
            if !token.is_empty() {
                out.push((Carrier::Header(k.clone(), scheme), token));
            }
        } else if is_sensitive_name(k) && !v.is_empty() && !lower.starts_with("sec-") {
            out.push((Carrier::Header(k.clone(), String::new()), v.clone()));
        }
    }
    for (k, v) in e.url.query_pairs() {
        if is_sensitive_name(&k) && !v.is_empty() {
            out.push((Carrier::Query(k.into_owned()), v.into_owned()));
        }
    }
    out
}

/// Where `e`'s answer holds `token`, if it does.
fn token_in_answer(e: &Exchange, token: &str) -> Option<TokenAt> {
    if let Some(json) = e.response_json()
        && let Some((ptr, _)) = json_leaves(&json)
            .into_iter()
            .find(|(_, l)| l.value == token)
    {
        return Some(TokenAt::Json(ptr));
    }
    for (k, v) in &e.response_headers {
        if k.eq_ignore_ascii_case("set-cookie")
            && let Some((n, val)) = v.split(';').next().and_then(|c| c.trim().split_once('='))
            && val == token
        {
            return Some(TokenAt::Cookie(n.to_string()));
        }
        if v == token && !k.eq_ignore_ascii_case("set-cookie") {
            return Some(TokenAt::Header(k.clone()));
        }
    }
    None
}

struct Login {
    step: usize,
    token_at: TokenAt,
    carrier: Carrier,
    body: Map<String, Value>,
    user: Option<String>,
}

/// Finds the credentials of `steps`; environment variables are named
/// `PREFIX_...`.
pub fn find(steps: &[Exchange], prefix: &str) -> Credentials {
    let n = steps.len();
    let mut c = Credentials {
        identity: vec![None; n],
        sent_by_auth: vec![HashSet::new(); n],
        ..Credentials::default()
    };
    // Every recorded secret, whatever becomes of it.
    for e in steps {
        for (_, v) in carried(e) {
            c.secrets.insert(v);
        }
        if let PostBody::Json(Value::Object(m)) = &e.body {
            for (k, v) in m {
                if is_sensitive_name(k)
                    && let Some(s) = v.as_str()
                {
                    c.secrets.insert(s.to_string());
                }
            }
        }
        for (k, v) in &e.response_headers {
            if k.eq_ignore_ascii_case("set-cookie")
                && let Some((n, val)) = v.split(';').next().and_then(|c| c.split_once('='))
                && (is_sensitive_name(n.trim()) || val.len() >= 16)
            {
                c.secrets.insert(val.to_string());
            }
        }
    }
    // Logins: the answer a later credential came from. Identities are the
    // users who logged in (the same user twice is one identity).
    let mut logins: Vec<Login> = Vec::new();
    let mut by_token: HashMap<String, usize> = HashMap::new();
    let mut statics: Vec<(Carrier, String, usize)> = Vec::new();
    // Tokens no earlier answer gave: not looked for again (a recording of
    // thousands of calls with one API key stays linear).
    let mut unanswered: HashSet<String> = HashSet::new();
    // Values named like credentials that an answer other than a login gave
    // (a CSRF token): the correlation captures them.
    let mut correlated: HashSet<String> = HashSet::new();
    for (i, e) in steps.iter().enumerate() {
        for (carrier, token) in carried(e) {
            if let Some(&l) = by_token.get(&token) {
                if logins[l].carrier == carrier {
                    c.identity[i] = Some(identity_name(l));
                    c.sent_by_auth[i].insert(carrier_name(&carrier));
                }
                continue;
            }
            if unanswered.contains(&token) || correlated.contains(&token) {
                continue;
            }
            let found = (0..i)
                .rev()
                .find_map(|j| token_in_answer(&steps[j], &token).map(|at| (j, at)));
            let login = found.as_ref().and_then(|(j, at)| match &steps[*j].body {
                PostBody::Json(Value::Object(body)) if is_login(&steps[*j], body) => {
                    Some((*j, at.clone(), body.clone()))
                }
                _ => None,
            });
            if found.is_some() && login.is_none() {
                correlated.insert(token);
                continue;
            }
            if let Some((j, token_at, body)) = login {
                let user = body
                    .iter()
                    .find(|(k, _)| user_field(k))
                    .and_then(|(_, v)| v.as_str())
                    .map(String::from);
                let l = match logins
                    .iter()
                    .position(|l| l.user.is_some() && l.user == user && l.carrier == carrier)
                {
                    Some(l) => l,
                    None => {
                        logins.push(Login {
                            step: j,
                            token_at,
                            carrier: carrier.clone(),
                            body,
                            user,
                        });
                        logins.len() - 1
                    }
                };
                c.logins.insert(j);
                by_token.insert(token, l);
                c.identity[i] = Some(identity_name(l));
                c.sent_by_auth[i].insert(carrier_name(&carrier));
            } else {
                unanswered.insert(token.clone());
                if !matches!(&carrier, Carrier::Cookie(n) if !is_sensitive_name(n)) {
                    statics.push((carrier, token, i));
                }
            }
        }
    }
    c.secrets.retain(|v| !correlated.contains(v));
    let env = |s: &str| format!("{prefix}_{s}");
    let id_env = |l: usize, s: &str| {
        if l == 0 {
            env(s)
        } else {
            env(&format!("USER{}_{s}", l + 1))
        }
    };
    if let Some(first) = logins.first() {
        let login = &steps[first.step];
        // Only logins of the same shape share one [auth]; the steps of
        // another are anonymous.
        let same: Vec<bool> = logins
            .iter()
            .map(|l| steps[l.step].url.path() == login.url.path() && l.carrier == first.carrier)
            .collect();
        let body: Map<String, Value> = first
            .body
            .iter()
            .map(|(k, v)| {
                let t = if user_field(k) {
                    Value::String("{{ username }}".into())
                } else if is_sensitive_name(k) || k.to_ascii_lowercase().contains("pass") {
                    Value::String("{{ password }}".into())
                } else {
                    v.clone()
                };
                (k.clone(), t)
            })
            .collect();
        let user_key = first
            .body
            .keys()
            .find(|k| user_field(k))
            .cloned()
            .unwrap_or_else(|| "username".into());
        let kind = match &first.token_at {
            TokenAt::Cookie(name) if matches!(first.carrier, Carrier::Cookie(_)) => {
                format!("kind = \"cookie\"\ncookie = {}\n", string(name))
            }
            at => {
                let token = match at {
                    TokenAt::Json(p) => string(p),
                    TokenAt::Header(h) => format!("{{ header = {} }}", string(h)),
                    TokenAt::Cookie(n) => format!("{{ cookie = {} }}", string(n)),
                };
                let expires = login
                    .response_json()
                    .and_then(|j| {
                        ["/expires_in", "/expiresIn", "/data/expires_in"]
                            .into_iter()
                            .find(|p| j.pointer(p).is_some_and(Value::is_number))
                    })
                    .map(|p| format!("expires_in = {}\n", string(p)))
                    .unwrap_or_default();
                format!("token = {token}\n{expires}{}", carrier_toml(&first.carrier))
            }
        };
        c.toml = format!(
            "# The login of entry {} ({} {}): its token is what the recording sent as {}.\n[auth]\npath = {}\nmethod = {}\nbody = {}\n{kind}\n",
            login.index,
            login.method,
            login.url.path(),
            carrier_label(&first.carrier),
            string(login.url.path()),
            string(&login.method),
            value(&Value::Object(body)).unwrap_or_else(|| "{}".into()),
        );
        for l in (0..logins.len()).filter(|l| same[*l]) {
            let (u, p) = (id_env(l, "USERNAME"), id_env(l, "PASSWORD"));
            c.toml.push_str(&format!(
                "[identities.{}]\nusername = \"{{{{ env.{u} }}}}\"\npassword = \"{{{{ env.{p} }}}}\"\n\n",
                identity_name(l)
            ));
            let who = if l == 0 {
                "the first user who logged in".to_string()
            } else {
                format!("user {} who logged in", l + 1)
            };
            c.env.push((
                u,
                format!(
                    "the `{user_key}` of {who} (identity `{}`)",
                    identity_name(l)
                ),
            ));
            c.env.push((p, "their password".into()));
        }
        c.summary = format!(
            "a login (`{} {}`, entry {}) whose token is sent as {}; {} identit{}",
            login.method,
            login.url.path(),
            login.index,
            carrier_label(&first.carrier),
            same.iter().filter(|s| **s).count(),
            if same.iter().filter(|s| **s).count() == 1 {
                "y"
            } else {
                "ies"
            }
        );
        for (id, auth) in c.identity.iter_mut().zip(c.sent_by_auth.iter_mut()) {
            if let Some(name) = id
                && !same[identity_index(name)]
            {
                *id = None;
                auth.clear();
            }
        }
    } else if let Some((carrier, _, _)) = statics
        .iter()
        .find(|(c, _, _)| !matches!(c, Carrier::Cookie(_)))
        .or(statics.first())
        .cloned()
    {
        // One token from the start: every step that sent it acts as `user`.
        let t = env("TOKEN");
        let place = carrier_toml(&carrier);
        c.toml = format!(
            "# The recording sent {} from its first request: no answer gave it.\n[auth]\nkind = \"token\"\n{place}\n[identities.user]\ntoken = \"{{{{ env.{t} }}}}\"\n\n",
            carrier_label(&carrier)
        );
        c.env
            .push((t, format!("the token sent as {}", carrier_label(&carrier))));
        c.summary = format!("a token sent as {}", carrier_label(&carrier));
        for (i, e) in steps.iter().enumerate() {
            if carried(e).iter().any(|(cr, _)| *cr == carrier) {
                c.identity[i] = Some("user".into());
                c.sent_by_auth[i].insert(carrier_name(&carrier));
            }
        }
    }
    c
}

fn identity_name(l: usize) -> String {
    if l == 0 {
        "user".into()
    } else {
        format!("user{}", l + 1)
    }
}

fn identity_index(name: &str) -> usize {
    name.strip_prefix("user")
        .and_then(|n| n.parse::<usize>().ok())
        .map_or(0, |n| n - 1)
}

/// Whether the request that answered a token is a login: it sends a
/// password (or another secret), or its path says so.
fn is_login(e: &Exchange, body: &Map<String, Value>) -> bool {
    let path = e.url.path().to_ascii_lowercase();
    body.keys()
        .any(|k| is_sensitive_name(k) || k.to_ascii_lowercase().contains("pass"))
        || [
            "login", "signin", "sign-in", "sign_in", "auth", "session", "token",
        ]
        .iter()
        .any(|w| path.contains(w))
}

fn user_field(k: &str) -> bool {
    let l = k.to_ascii_lowercase();
    ["email", "user", "login", "account", "client_id"]
        .iter()
        .any(|w| l.contains(w))
        || l == "name"
}

/// The lower-case header name or the query name a carrier sends.
fn carrier_name(c: &Carrier) -> String {
    match c {
        Carrier::Header(h, _) => h.to_ascii_lowercase(),
        Carrier::Query(q) => format!("?{q}"),
        Carrier::Cookie(n) => format!("cookie:{n}"),
    }
}

fn carrier_label(c: &Carrier) -> String {
    match c {
        Carrier::Header(h, s) if s.is_empty() => format!("the header `{h}`"),
        Carrier::Header(h, s) => format!("`{h}: {s} ...`"),
        Carrier::Query(q) => format!("the query parameter `{q}`"),
        Carrier::Cookie(n) => format!("the cookie `{n}`"),
    }
}

fn carrier_toml(c: &Carrier) -> String {
    match c {
        Carrier::Header(h, s) if h.eq_ignore_ascii_case("authorization") && s == "Bearer" => {
            String::new()
        }
        Carrier::Header(h, s) => format!("header = {}\nscheme = {}\n", string(h), string(s)),
        Carrier::Query(q) => format!("query = {}\n", string(q)),
        Carrier::Cookie(n) => format!("cookie = {}\n", string(n)),
    }
}

/// An environment variable for a secret the auth does not send (`X-Csrf`
/// set by hand, a password in a body): `PREFIX_NAME`.
pub fn secret_env(prefix: &str, name: &str) -> String {
    format!("{prefix}_{}", snake_case(name).to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::init::har::fixture::exchanges as steps;

    #[test]
    fn a_session_cookie_from_a_login_is_cookie_auth() {
        let s = steps(&[
            (
                "POST",
                "http://h/session",
                &[],
                r#"{"login":"ann","secret":"hunter2-long"}"#,
                &[("Set-Cookie", "sid=abc123def456ghi; Path=/; HttpOnly")],
                "{}",
            ),
            (
                "GET",
                "http://h/me",
                &[("Cookie", "sid=abc123def456ghi; theme=dark")],
                "",
                &[],
                "{}",
            ),
        ]);
        let c = find(&s, "API");
        assert!(
            c.toml.contains("kind = \"cookie\"\ncookie = \"sid\""),
            "{}",
            c.toml
        );
        assert!(
            c.toml
                .contains("body = { login = \"{{ username }}\", secret = \"{{ password }}\" }"),
            "{}",
            c.toml
        );
        assert!(
            !c.toml.contains("hunter2") && !c.toml.contains("abc123"),
            "{}",
            c.toml
        );
        assert_eq!(c.identity, [None, Some("user".to_string())]);
        assert!(c.logins.contains(&0));
        assert!(c.secrets.contains("hunter2-long") && c.secrets.contains("abc123def456ghi"));
    }

    #[test]
    fn a_token_in_a_header_of_the_answer_sent_in_a_query() {
        let s = steps(&[
            (
                "POST",
                "http://h/auth",
                &[],
                r#"{"email":"a@b.c","password":"pw-123456"}"#,
                &[("X-Auth-Token", "tkn-0987654321")],
                "{}",
            ),
            (
                "GET",
                "http://h/orders?access_token=tkn-0987654321",
                &[],
                "",
                &[],
                "{}",
            ),
        ]);
        let c = find(&s, "SHOP");
        assert!(
            c.toml.contains("token = { header = \"X-Auth-Token\" }"),
            "{}",
            c.toml
        );
        assert!(c.toml.contains("query = \"access_token\""), "{}", c.toml);
        assert!(c.toml.contains("{{ env.SHOP_USERNAME }}"), "{}", c.toml);
        assert!(c.sent_by_auth[1].contains("?access_token"));
    }

    #[test]
    fn a_csrf_token_an_answer_gave_is_left_to_the_correlation() {
        let s = steps(&[
            (
                "GET",
                "http://h/form",
                &[],
                "",
                &[("X-Csrf-Token", "csrf-5566778899")],
                "{}",
            ),
            (
                "POST",
                "http://h/notes",
                &[("X-Csrf-Token", "csrf-5566778899")],
                r#"{"text":"hi"}"#,
                &[],
                "{}",
            ),
        ]);
        let c = find(&s, "API");
        assert!(c.toml.is_empty(), "{}", c.toml);
        assert!(!c.secrets.contains("csrf-5566778899"));
        let corr = crate::init::har::correlate::correlate(&s, &c.secrets, &c.logins);
        assert_eq!(
            corr.captures[0],
            [(
                "x_csrf_token".to_string(),
                crate::init::har::correlate::Source::Header("x-csrf-token".into())
            )]
        );
        assert_eq!(corr.templates[1]["csrf-5566778899"], "{{ x_csrf_token }}");
    }

    #[test]
    fn a_key_no_answer_gave_is_a_token_from_the_environment() {
        let s = steps(&[
            (
                "GET",
                "http://h/a",
                &[("X-Api-Key", "k-1234567890")],
                "",
                &[],
                "{}",
            ),
            (
                "GET",
                "http://h/b",
                &[("X-Api-Key", "k-1234567890")],
                "",
                &[],
                "{}",
            ),
        ]);
        let c = find(&s, "API");
        assert!(
            c.toml
                .contains("kind = \"token\"\nheader = \"X-Api-Key\"\nscheme = \"\""),
            "{}",
            c.toml
        );
        assert!(
            c.toml.contains("token = \"{{ env.API_TOKEN }}\""),
            "{}",
            c.toml
        );
        assert!(!c.toml.contains("k-1234567890"));
        assert_eq!(
            c.identity,
            [Some("user".to_string()), Some("user".to_string())]
        );
        assert!(c.logins.is_empty());
    }
}
