//! Which recorded exchanges are the API: a browser session also fetched
//! scripts, styles, images, fonts and pages, asked CORS preflights, talked
//! to analytics and font hosts, and polled. This keeps the API host's
//! calls (the host most JSON/XHR traffic went to, or `--host`) and says
//! why each other entry was dropped, for the README.

use std::collections::BTreeMap;

use super::model::{Exchange, PostBody};

/// Extensions of static assets, never an API call.
const STATIC_EXTENSIONS: [&str; 24] = [
    "js", "mjs", "cjs", "css", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif",
    "bmp", "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "wasm", "html",
];

/// Chrome's `_resourceType`s that are never an API call.
const STATIC_TYPES: [&str; 9] = [
    "script",
    "stylesheet",
    "image",
    "font",
    "media",
    "manifest",
    "texttrack",
    "ping",
    "websocket",
];

/// The outcome of filtering.
#[derive(Debug, Default)]
pub struct Filtered {
    /// The API's exchanges, in order.
    pub kept: Vec<Exchange>,
    /// The API's origin (`https://api.example.com`).
    pub origin: String,
    /// The API's host.
    pub host: String,
    /// Other hosts and how many entries went to each.
    pub dropped_hosts: BTreeMap<String, usize>,
    /// Why entries were dropped: reason → count.
    pub dropped: BTreeMap<&'static str, usize>,
    /// Polling collapsed: `(index in kept of the step kept, repeats dropped)`.
    pub polls: Vec<(usize, usize)>,
}

/// The host of the API: `preferred` when given, else the host most
/// JSON/XHR exchanges went to.
pub fn api_host(exchanges: &[Exchange], preferred: Option<&str>) -> Option<String> {
    if let Some(h) = preferred {
        return Some(h.to_ascii_lowercase());
    }
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for e in exchanges {
        let Some(host) = host_of(e) else { continue };
        let c = counts.entry(host).or_default();
        c.1 += 1;
        if looks_like_api(e) {
            c.0 += 1;
        }
    }
    counts.into_iter().max_by_key(|(_, c)| *c).map(|(h, _)| h)
}

fn host_of(e: &Exchange) -> Option<String> {
    e.url.host_str().map(|h| match e.url.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    })
}

fn looks_like_api(e: &Exchange) -> bool {
    matches!(e.resource_type.as_deref(), Some("xhr" | "fetch"))
        || e.response_mime.contains("json")
        || matches!(e.body, PostBody::Json(_))
}

/// Why `e` is not an API call, if it is not.
fn static_reason(e: &Exchange) -> Option<&'static str> {
    if let Some(t) = e.resource_type.as_deref() {
        if t == "preflight" {
            return Some("CORS preflight");
        }
        if STATIC_TYPES.contains(&t) {
            return Some("static asset");
        }
        if t == "document" && !looks_like_api(e) {
            return Some("page (HTML document)");
        }
    }
    let path = e.url.path().to_ascii_lowercase();
    if let Some((_, ext)) = path.rsplit('/').next().unwrap_or("").rsplit_once('.')
        && STATIC_EXTENSIONS.contains(&ext)
    {
        return Some("static asset");
    }
    let mime = e.response_mime.as_str();
    if mime.starts_with("image/")
        || mime.starts_with("font/")
        || mime.starts_with("audio/")
        || mime.starts_with("video/")
        || mime.contains("javascript")
        || mime.contains("ecmascript")
        || mime.starts_with("text/css")
        || mime.contains("font-woff")
    {
        return Some("static asset");
    }
    // A page a browser navigated to; an XHR answered with HTML stays.
    if mime.starts_with("text/html")
        && e.method == "GET"
        && !matches!(e.resource_type.as_deref(), Some("xhr" | "fetch"))
    {
        return Some("page (HTML document)");
    }
    None
}

/// Keeps the API's exchanges of `exchanges`.
pub fn filter(exchanges: Vec<Exchange>, preferred_host: Option<&str>) -> Filtered {
    let mut out = Filtered::default();
    let Some(host) = api_host(&exchanges, preferred_host) else {
        return out;
    };
    out.host = host.clone();
    for e in exchanges {
        if !matches!(e.url.scheme(), "http" | "https") {
            *out.dropped
                .entry("not HTTP (data:, blob:, ws:, extension)")
                .or_default() += 1;
            continue;
        }
        let h = host_of(&e).unwrap_or_default();
        if !h.eq_ignore_ascii_case(&host) {
            *out.dropped_hosts.entry(h).or_default() += 1;
            continue;
        }
        if out.origin.is_empty() {
            out.origin = e.url.origin().ascii_serialization();
        }
        let reason = if e.method == "OPTIONS" {
            Some("CORS preflight")
        } else if e.status == 0 {
            Some("no answer recorded (aborted or blocked)")
        } else if e.from_cache {
            Some("served from the browser's cache")
        } else {
            static_reason(&e)
        };
        if let Some(r) = reason {
            *out.dropped.entry(r).or_default() += 1;
            continue;
        }
        // Polling: the same read again, answered the same way.
        if let Some(prev) = out.kept.last()
            && e.method == "GET"
            && prev.method == "GET"
            && prev.url == e.url
            && prev.status == e.status
            && prev.response_text == e.response_text
        {
            let at = out.kept.len() - 1;
            match out.polls.last_mut() {
                Some((l, n)) if *l == at => *n += 1,
                _ => out.polls.push((at, 1)),
            }
            continue;
        }
        out.kept.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::har::model::Har;

    fn entry(method: &str, url: &str, mime: &str, kind: Option<&str>) -> String {
        let kind = kind
            .map(|k| format!(",\"_resourceType\":\"{k}\""))
            .unwrap_or_default();
        format!(
            r#"{{"request":{{"method":"{method}","url":"{url}"}},"response":{{"status":200,"content":{{"mimeType":"{mime}"}}}}{kind}}}"#
        )
    }

    #[test]
    fn keeps_the_api_host_and_drops_the_rest() {
        let entries = [
            entry("GET", "https://app.test/", "text/html", Some("document")),
            entry(
                "GET",
                "https://app.test/static/main.js",
                "text/javascript",
                None,
            ),
            entry("GET", "https://app.test/logo", "image/png", None),
            entry("GET", "https://fonts.example/x.woff2", "font/woff2", None),
            entry(
                "POST",
                "https://tracker.example/collect",
                "application/json",
                Some("xhr"),
            ),
            entry(
                "OPTIONS",
                "https://app.test/api/orders",
                "",
                Some("preflight"),
            ),
            entry(
                "GET",
                "https://app.test/api/orders",
                "application/json",
                Some("xhr"),
            ),
            entry(
                "GET",
                "https://app.test/api/orders",
                "application/json",
                Some("xhr"),
            ),
            entry(
                "GET",
                "https://app.test/api/orders",
                "application/json",
                Some("xhr"),
            ),
            entry(
                "GET",
                "https://app.test/api/me",
                "application/json",
                Some("fetch"),
            ),
            entry(
                "GET",
                "https://app.test/api/me",
                "application/json",
                Some("fetch"),
            )
            .replace(
                "\"_resourceType\"",
                "\"_fromCache\":\"memory\",\"_resourceType\"",
            ),
        ];
        let har = format!("{{\"log\":{{\"entries\":[{}]}}}}", entries.join(","));
        let h = Har::parse("t.har", &har).unwrap();
        let f = filter(h.exchanges, None);
        assert_eq!(f.host, "app.test");
        assert_eq!(f.origin, "https://app.test");
        let kept: Vec<String> = f.kept.iter().map(Exchange::label).collect();
        assert_eq!(kept, ["GET /api/orders", "GET /api/me"]);
        assert_eq!(f.dropped_hosts.len(), 2);
        assert_eq!(f.dropped["static asset"], 2);
        assert_eq!(f.dropped["CORS preflight"], 1);
        assert_eq!(f.dropped["page (HTML document)"], 1);
        assert_eq!(f.dropped["served from the browser's cache"], 1);
        assert_eq!(f.polls, [(0, 2)]);
    }
}
