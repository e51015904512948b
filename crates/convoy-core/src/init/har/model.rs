//! Reading a HAR 1.2 file (HTTP Archive, as browsers' developer tools and
//! recording proxies export it) into [`Exchange`]s: one request and its
//! answer each, with the body decoded (`content.encoding = "base64"`),
//! the form posted as `params` or as `text`, and the start time in
//! milliseconds. Lenient where exporters differ (comments, `_private`
//! fields, missing optional members, HTTP/2 pseudo-headers); strict where
//! the file cannot be a HAR, with the JSON position or the entry named.

use std::path::Path;

use base64::Engine;
use serde_json::Value;

use crate::init::InitError;

/// The most a HAR file may weigh: a recorded session with bodies, not a
/// crawl of a site.
const MAX_HAR_BYTES: u64 = 256 * 1024 * 1024;

/// One recorded request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Its index in `log.entries`, for messages and comments.
    pub index: usize,
    /// `startedDateTime` in milliseconds since the Unix epoch, if readable.
    pub started_ms: Option<i64>,
    /// `time`: how long the exchange took, in milliseconds.
    pub time_ms: f64,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request URL.
    pub url: url::Url,
    /// Request headers, in order, pseudo-headers (`:authority`) left out.
    pub request_headers: Vec<(String, String)>,
    /// The posted body, if any.
    pub body: PostBody,
    /// The answer's status (0: none recorded).
    pub status: u16,
    /// Response headers, in order.
    pub response_headers: Vec<(String, String)>,
    /// The answer's media type (`content.mimeType`), lower case.
    pub response_mime: String,
    /// The answer's body as text, when recorded.
    pub response_text: Option<String>,
    /// Chrome's `_resourceType` (`xhr`, `fetch`, `script`, `document`...).
    pub resource_type: Option<String>,
    /// Chrome's `_fromCache` (`memory`, `disk`): the server never saw it.
    pub from_cache: bool,
}

impl Exchange {
    /// A request header's value, by name in any case.
    pub fn request_header(&self, name: &str) -> Option<&str> {
        header(&self.request_headers, name)
    }

    /// A response header's value, by name in any case.
    pub fn response_header(&self, name: &str) -> Option<&str> {
        header(&self.response_headers, name)
    }

    /// The answer's body as JSON, if it is JSON.
    pub fn response_json(&self) -> Option<Value> {
        let text = self.response_text.as_deref()?;
        let t = text.trim_start();
        if !(t.starts_with('{') || t.starts_with('[')) {
            return None;
        }
        serde_json::from_str(text).ok()
    }

    /// `METHOD /path`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.url.path())
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A request body as recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum PostBody {
    /// No body.
    None,
    /// A JSON document.
    Json(Value),
    /// URL-encoded form fields.
    Form(Vec<(String, String)>),
    /// Other text, with its media type.
    Text(String, String),
    /// A body convoy cannot replay as recorded (multipart, binary): its
    /// media type.
    Unsupported(String),
}

/// A recorded session.
#[derive(Debug)]
pub struct Har {
    /// The exchanges, in the order recorded.
    pub exchanges: Vec<Exchange>,
    /// Who exported it (`log.creator.name`).
    pub creator: String,
    /// The file, for messages.
    pub file: String,
}

impl Har {
    /// Reads and parses the HAR file at `path`.
    pub fn load(path: &Path) -> Result<Har, InitError> {
        let file = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| InitError::io(&file, e))?;
        if meta.len() > MAX_HAR_BYTES {
            return Err(InitError::spec(
                &file,
                "",
                format!(
                    "{} bytes: more than convoy reads of a HAR file (at most {MAX_HAR_BYTES}); record a shorter session",
                    meta.len()
                ),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| InitError::io(&file, e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| InitError::spec(&file, "", "not UTF-8 text (HAR 1.2 is UTF-8)".into()))?;
        Har::parse(&file, &text)
    }

    /// Parses `text`, named `file` in messages.
    pub fn parse(file: &str, text: &str) -> Result<Har, InitError> {
        let text = text.trim_start_matches('\u{feff}');
        let root: Value = serde_json::from_str(text).map_err(|e| InitError::Syntax {
            file: file.to_string(),
            message: format!("{}:{}: invalid JSON: {e}", e.line(), e.column()),
        })?;
        let err = |ptr: &str, m: String| InitError::spec(file, ptr, m);
        let Some(log) = root.get("log").filter(|l| l.is_object()) else {
            return Err(err(
                "/log",
                "no `log` object: is this a HAR file?".to_string(),
            ));
        };
        let Some(entries) = log.get("entries").and_then(Value::as_array) else {
            return Err(err("/log/entries", "no `entries` array".to_string()));
        };
        let creator = log
            .pointer("/creator/name")
            .and_then(Value::as_str)
            .unwrap_or("an unnamed tool")
            .to_string();
        let mut exchanges = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let at = format!("/log/entries/{i}");
            exchanges.push(entry(i, e).map_err(|(p, m)| err(&format!("{at}{p}"), m))?);
        }
        Ok(Har {
            exchanges,
            creator,
            file: file.to_string(),
        })
    }
}

type EntryError = (String, String);

fn entry(index: usize, e: &Value) -> Result<Exchange, EntryError> {
    let fail = |p: &str, m: &str| (p.to_string(), format!("entry {index}: {m}"));
    if !e.is_object() {
        return Err(fail("", "not an object"));
    }
    let req = e
        .get("request")
        .filter(|r| r.is_object())
        .ok_or_else(|| fail("/request", "no `request` object"))?;
    let method = req
        .get("method")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_alphabetic()))
        .ok_or_else(|| fail("/request/method", "no method"))?
        .to_ascii_uppercase();
    let raw_url = req
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("/request/url", "no url"))?;
    let url = url::Url::parse(raw_url)
        .map_err(|x| fail("/request/url", &format!("`{raw_url}` is not a URL: {x}")))?;
    let request_headers = pairs(req.get("headers"), true);
    let body = post_body(req.get("postData"), &request_headers);
    let resp = e.get("response");
    let status = resp
        .and_then(|r| r.get("status"))
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0);
    let response_headers = pairs(resp.and_then(|r| r.get("headers")), false);
    let content = resp.and_then(|r| r.get("content"));
    let mut response_mime = content
        .and_then(|c| c.get("mimeType"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if response_mime.is_empty() {
        response_mime = header(&response_headers, "content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
    }
    let response_text = content.and_then(|c| {
        let text = c.get("text").and_then(Value::as_str)?;
        match c.get("encoding").and_then(Value::as_str) {
            Some(enc) if enc.eq_ignore_ascii_case("base64") => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .ok()?;
                String::from_utf8(bytes).ok()
            }
            _ => Some(text.to_string()),
        }
    });
    Ok(Exchange {
        index,
        started_ms: e
            .get("startedDateTime")
            .and_then(Value::as_str)
            .and_then(parse_iso8601_ms),
        time_ms: e
            .get("time")
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite() && *t >= 0.0)
            .unwrap_or(0.0),
        method,
        url,
        request_headers,
        body,
        status,
        response_headers,
        response_mime,
        response_text,
        resource_type: e
            .get("_resourceType")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase),
        from_cache: e
            .get("_fromCache")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty()),
    })
}

/// `[{name, value}]` as pairs; malformed items are skipped (exporters add
/// their own members, and a header without a value is no header).
fn pairs(list: Option<&Value>, drop_pseudo: bool) -> Vec<(String, String)> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|h| {
            let name = h.get("name")?.as_str()?;
            let value = h.get("value").and_then(Value::as_str).unwrap_or("");
            (!(drop_pseudo && name.starts_with(':'))).then(|| (name.to_string(), value.to_string()))
        })
        .collect()
}

fn post_body(post: Option<&Value>, headers: &[(String, String)]) -> PostBody {
    let Some(post) = post.filter(|p| p.is_object()) else {
        return PostBody::None;
    };
    let mime = post
        .get("mimeType")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .or_else(|| header(headers, "content-type"))
        .unwrap_or("")
        .to_string();
    let lower = mime.to_ascii_lowercase();
    let text = post.get("text").and_then(Value::as_str);
    let params = post.get("params").and_then(Value::as_array);
    if lower.contains("json")
        && let Some(t) = text
        && let Ok(v) = serde_json::from_str::<Value>(t)
    {
        return PostBody::Json(v);
    }
    if lower.starts_with("application/x-www-form-urlencoded") {
        let fields: Vec<(String, String)> = match (params, text) {
            (Some(ps), _) if !ps.is_empty() => ps
                .iter()
                .filter_map(|p| {
                    let n = p.get("name")?.as_str()?;
                    let v = p.get("value").and_then(Value::as_str).unwrap_or("");
                    Some((n.to_string(), v.to_string()))
                })
                .collect(),
            (_, Some(t)) => url::form_urlencoded::parse(t.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            _ => Vec::new(),
        };
        return PostBody::Form(fields);
    }
    if lower.starts_with("multipart/") || params.is_some_and(|p| !p.is_empty()) && text.is_none() {
        return PostBody::Unsupported(mime);
    }
    match text {
        None | Some("") => PostBody::None,
        Some(t) => {
            // A JSON body sent with a vague media type is still JSON.
            let trimmed = t.trim_start();
            if (trimmed.starts_with('{') || trimmed.starts_with('['))
                && let Ok(v) = serde_json::from_str::<Value>(t)
            {
                return PostBody::Json(v);
            }
            PostBody::Text(t.to_string(), mime)
        }
    }
}

/// An ISO 8601 date-time (`2026-12-07T14:53:08.123Z`, `...+01:00`) in
/// milliseconds since the Unix epoch.
pub fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let zone_at = rest
        .find(['Z', 'z', '+'])
        .or_else(|| rest.rfind('-'))
        .unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let mut c = clock.splitn(3, ':');
    let hour: i64 = c.next()?.parse().ok()?;
    let minute: i64 = c.next()?.parse().ok()?;
    let secs = c.next().unwrap_or("0");
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
    let second: i64 = whole.parse().ok()?;
    let millis: i64 = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain("000".chars()).take(3).collect();
        f.parse().ok()?
    };
    let offset_min: i64 = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return None;
            }
            sign * (digits[..2].parse::<i64>().ok()? * 60 + digits[2..].parse::<i64>().ok()?)
        }
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), as in Howard
    // Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hour * 3_600 + minute * 60 + second - offset_min * 60) * 1_000) + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_with_zones_and_fractions() {
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:01.5Z"), Some(1_500));
        assert_eq!(parse_iso8601_ms("1970-01-01T01:00:00.000+01:00"), Some(0));
        assert_eq!(parse_iso8601_ms("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(
            parse_iso8601_ms("2026-12-07T14:53:08.123456Z"),
            Some(1_796_655_188_123)
        );
        assert_eq!(parse_iso8601_ms("yesterday"), None);
    }

    #[test]
    fn errors_name_the_position_or_the_entry() {
        let e = Har::parse("s.har", "{\"log\": {").unwrap_err().to_string();
        assert!(e.starts_with("s.har:1:"), "{e}");
        let e = Har::parse(
            "s.har",
            r#"{"log":{"entries":[{"request":{"method":"GET","url":"x"}}]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("#/log/entries/0/request/url") && e.contains("entry 0"),
            "{e}"
        );
        let e = Har::parse("s.har", "[]").unwrap_err().to_string();
        assert!(e.contains("no `log` object"), "{e}");
    }

    #[test]
    fn bodies_base64_params_and_text() {
        let har = r#"{"log":{"version":"1.2","creator":{"name":"t","version":"1"},"entries":[
          {"startedDateTime":"2026-01-01T00:00:00Z","time":3,"request":{"method":"post","url":"http://h/a",
            "headers":[{"name":":authority","value":"h"},{"name":"Content-Type","value":"application/x-www-form-urlencoded"}],
            "postData":{"mimeType":"application/x-www-form-urlencoded","params":[{"name":"a","value":"1 2"}]}},
           "response":{"status":200,"headers":[],"content":{"mimeType":"application/json","text":"eyJpZCI6IDd9","encoding":"base64"}}},
          {"request":{"method":"POST","url":"http://h/b","postData":{"mimeType":"application/x-www-form-urlencoded","text":"x=y%20z"}},"response":{"status":201}},
          {"request":{"method":"PUT","url":"http://h/c","postData":{"mimeType":"text/plain;charset=UTF-8","text":"{\"k\":1}"}}}
        ]}}"#;
        let h = Har::parse("t.har", har).unwrap();
        let a = &h.exchanges[0];
        assert_eq!(a.method, "POST");
        assert!(a.request_header(":authority").is_none());
        assert_eq!(a.body, PostBody::Form(vec![("a".into(), "1 2".into())]));
        assert_eq!(a.response_json(), Some(serde_json::json!({"id": 7})));
        assert_eq!(
            h.exchanges[1].body,
            PostBody::Form(vec![("x".into(), "y z".into())])
        );
        assert_eq!(
            h.exchanges[2].body,
            PostBody::Json(serde_json::json!({"k": 1}))
        );
        assert_eq!(h.exchanges[2].status, 0);
    }
}
