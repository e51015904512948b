//! `convoy init --har`: a recorded browser or proxy session (HAR 1.2)
//! drafted into a journey that replays it. Owns reading the file
//! ([`model`]), keeping the API's calls ([`filter`]), following the values
//! that flow from answers into later requests ([`correlate`]), turning
//! credentials into `[auth]` and identities ([`credentials`]) and writing
//! the steps ([`writer`]); the suite file and README are written here.
//!
//! Nothing recorded that the server made up (an id, a token) or that is a
//! secret (a password, a token, a session cookie) is written as recorded:
//! the first becomes a capture, the second an environment variable.

pub mod correlate;
pub mod credentials;
pub mod filter;
pub mod model;
mod writer;

#[cfg(test)]
pub(crate) mod fixture;

use std::fmt::Write as _;
use std::path::Path;

use super::toml_text::comment;
use super::{Draft, InitError};
use model::Har;

/// Options of a draft from a HAR file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prefix of the environment variables the secrets come from.
    pub env_prefix: String,
    /// How the HAR file is named in comments and the README.
    pub source_name: String,
    /// The API's host (`api.example.com`, with `:port` if not the
    /// scheme's); default: the host most JSON/XHR calls went to.
    pub host: Option<String>,
}

/// What a draft found, for the command's one-line summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Entries in the file.
    pub entries: usize,
    /// Steps in the journey.
    pub steps: usize,
    /// Values correlated (captured and reused).
    pub correlated: usize,
    /// Identities drafted.
    pub identities: usize,
}

/// Drafts the suite of the HAR file at `path`.
pub fn draft_file(path: &Path, opts: &Options) -> Result<(Draft, Summary), InitError> {
    draft(&Har::load(path)?, opts)
}

/// Drafts the suite of a recorded session.
pub fn draft(har: &Har, opts: &Options) -> Result<(Draft, Summary), InitError> {
    let entries = har.exchanges.len();
    let f = filter::filter(har.exchanges.clone(), opts.host.as_deref());
    if f.kept.is_empty() {
        let why = if f.host.is_empty() {
            "the recording has no HTTP requests".to_string()
        } else {
            format!(
                "no API call to {} is left once static assets, pages, preflights and other hosts are dropped (pass --host to choose the API's host)",
                f.host
            )
        };
        return Err(InitError::spec(&har.file, "/log/entries", why));
    }
    let creds = credentials::find(&f.kept, &opts.env_prefix);
    let corr = correlate::correlate(&f.kept, &creds.secrets, &creds.logins);
    let (steps, notes) = writer::steps(&f.kept, &corr, &creds, &opts.env_prefix);
    if notes.steps == 0 {
        return Err(InitError::spec(
            &har.file,
            "/log/entries",
            "the recording holds only a login: nothing to replay after it".into(),
        ));
    }
    let stem = Path::new(&opts.source_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recording".into());
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = if name.trim_matches('-').is_empty() || name == "suite" || name == "readme" {
        "recording".to_string()
    } else {
        name
    };
    let header = format!(
        "Drafted by `convoy init --har {}` from a session recorded by {} ({entries} entries).\nEdit freely: convoy reads it as any scenario.\n",
        opts.source_name, har.creator
    );
    let mut journey = comment(&header);
    let _ = writeln!(
        journey,
        "name = {}\ndescription = {}\n",
        super::toml_text::string(&name),
        super::toml_text::string(&format!(
            "the recorded session: {} calls to {}, ids captured from the answers that made them",
            notes.steps, f.host
        ))
    );
    journey.push_str(&steps);

    let mut suite = comment(&header);
    suite.push_str("# What every scenario of this folder shares.\n");
    suite.push_str("[defaults]\nheaders = { \"Accept\" = \"application/json\" }\n\n");
    suite.push_str(&creds.toml);

    let mut files = vec![
        ("suite.toml".to_string(), suite),
        (format!("{name}.toml"), journey),
    ];
    let readme = readme(opts, &f, &creds, &corr, &notes, &files, entries);
    files.push(("README.md".into(), readme));
    let summary = Summary {
        entries,
        steps: notes.steps,
        correlated: corr.flows.len(),
        identities: creds.toml.matches("[identities.").count(),
    };
    Ok((
        Draft {
            files,
            operations: entries,
            journeys: 1,
            ..Draft::default()
        },
        summary,
    ))
}

fn readme(
    opts: &Options,
    f: &filter::Filtered,
    creds: &credentials::Credentials,
    corr: &correlate::Correlation,
    notes: &writer::StepNotes,
    files: &[(String, String)],
    entries: usize,
) -> String {
    let mut r = format!(
        "# convoy journey recorded from {}\n\nDrafted by `convoy init --har {}`: {entries} entries recorded, {} replayed as steps. Every step names the entry it comes from; edit them freely.\n\n## Run it\n\n```sh\n",
        f.host, opts.source_name, notes.steps
    );
    let mut env: Vec<(String, String)> = creds.env.clone();
    env.extend(notes.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (var, _) in &env {
        let _ = writeln!(r, "export {var}=...");
    }
    let _ = writeln!(
        r,
        "convoy smoke . --target {}\n```\n\nThe recording talked to `{}`; pass the deployment to test as `--target`.\n",
        f.origin, f.origin
    );
    r.push_str("## Credentials\n\n");
    if creds.toml.is_empty() {
        r.push_str("The recording sent no credentials: requests are sent without.\n");
    } else {
        let _ = writeln!(
            r,
            "The journey authenticates with {} (`suite.toml`). No recorded password, token or cookie is written in these files: each comes from an environment variable (a missing one is an error when the suite loads; convoy redacts their values everywhere):\n",
            creds.summary
        );
    }
    for (var, what) in &env {
        let _ = writeln!(r, "- `{var}`: {what}");
    }
    r.push_str("\n## Values that flow between steps\n\n");
    if corr.flows.is_empty() {
        r.push_str("None: no later request sends a value an earlier answer made up.\n");
    } else {
        r.push_str("Each request sends the value the latest earlier answer held (one where it is not an element of a list when there is one: a list's order changes with its data), captured there:\n\n");
        for (var, flow) in &corr.flows {
            let from: Vec<String> = flow
                .from
                .iter()
                .map(|(step, src)| {
                    let at = match src {
                        correlate::Source::Json(p) => format!("`{p}`"),
                        correlate::Source::Header(h) => format!("header `{h}`"),
                    };
                    format!("entry {} ({at})", f.kept[*step].index)
                })
                .collect();
            let used: Vec<String> = flow
                .used_by
                .iter()
                .map(|u| format!("entry {}", f.kept[*u].index))
                .collect();
            let _ = writeln!(
                r,
                "- `{var}`: captured from the answers to {}; sent by {}",
                from.join(", "),
                used.join(", ")
            );
        }
    }
    let fresh: Vec<&String> = corr.lets.iter().flatten().map(|(v, _)| v).collect();
    if !fresh.is_empty() {
        let _ = writeln!(
            r,
            "\nValues the client made up (idempotency keys, client-side ids) are a fresh `{{{{ uuid }}}}` on every iteration: {}.",
            fresh
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !corr.literal.is_empty() {
        r.push_str("\nSent as recorded although an answer held them (the answer was the login's, which `[auth]` makes): ");
        let l: Vec<String> = corr
            .literal
            .iter()
            .map(|(i, k)| format!("`{k}` in entry {}", f.kept[*i].index))
            .collect();
        r.push_str(&l.join(", "));
        r.push_str(".\n");
    }
    r.push_str("\n## Files\n\n");
    for (name, _) in files {
        let what = if name == "suite.toml" {
            "the `Accept` header, `[auth]` and identities every scenario shares"
        } else {
            "the journey: one step per API call, the recorded status expected, the recorded pauses as `think`"
        };
        let _ = writeln!(r, "- `{name}`: {what}");
    }
    r.push_str("\n## Left out\n\n");
    let mut any = false;
    for (why, n) in &f.dropped {
        any = true;
        let _ = writeln!(r, "- {n} × {why}");
    }
    if !f.dropped_hosts.is_empty() {
        any = true;
        let hosts: Vec<String> = f
            .dropped_hosts
            .iter()
            .map(|(h, n)| format!("`{h}` ({n})"))
            .collect();
        let _ = writeln!(r, "- other hosts than the API's: {}", hosts.join(", "));
    }
    for (at, n) in &f.polls {
        any = true;
        let _ = writeln!(
            r,
            "- {n} × entry {} repeated with the same answer (polling): kept once",
            f.kept[*at].index
        );
    }
    let mut logins: Vec<&usize> = creds.logins.iter().collect();
    logins.sort();
    for l in logins {
        any = true;
        let _ = writeln!(
            r,
            "- entry {} ({}): the login, made by `[auth]` for each identity",
            f.kept[*l].index,
            f.kept[*l].label()
        );
    }
    for (entry, what) in &notes.not_replayed {
        any = true;
        let _ = writeln!(r, "- entry {entry}: {what}");
    }
    if !notes.long_pauses.is_empty() {
        any = true;
        let e: Vec<String> = notes.long_pauses.iter().map(|e| e.to_string()).collect();
        let _ = writeln!(
            r,
            "- pauses over a minute, cut to one, after entries {}",
            e.join(", ")
        );
    }
    if !any {
        r.push_str("Nothing: every entry is a step.\n");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journey(har: &str) -> String {
        let opts = Options {
            env_prefix: "API".into(),
            source_name: "s.har".into(),
            host: None,
        };
        let (d, _) = draft(&Har::parse("s.har", har).unwrap(), &opts).unwrap();
        d.files
            .iter()
            .find(|(n, _)| n == "s.toml")
            .map(|(_, t)| t.clone())
            .unwrap()
    }

    #[test]
    fn names_like_secrets_do_not_hide_paths_or_harmless_cookies() {
        let t = journey(
            r#"{"log":{"entries":[
              {"request":{"method":"GET","url":"http://h/api/auth/refresh?mode=dark","headers":[{"name":"X-Api-Key","value":"k-1234567890"}]},
               "response":{"status":200,"headers":[{"name":"Set-Cookie","value":"theme=dark; Path=/"}],"content":{"mimeType":"application/json","text":"{}"}}},
              {"request":{"method":"POST","url":"http://h/api/notes","headers":[{"name":"X-Api-Key","value":"k-1234567890"}],
                "postData":{"mimeType":"application/json","text":"{\"theme\":\"dark\",\"api_secret\":\"s3cr3t-value\"}"}},
               "response":{"status":201,"content":{"mimeType":"application/json","text":"{}"}}}
            ]}}"#,
        );
        assert!(t.contains("path = \"/api/auth/refresh\""), "{t}");
        assert!(t.contains("query = { mode = \"dark\" }"), "{t}");
        assert!(
            t.contains("json = { api_secret = \"{{ env.API_API_SECRET }}\", theme = \"dark\" }"),
            "{t}"
        );
        assert!(!t.contains("k-1234567890") && !t.contains("s3cr3t"), "{t}");
    }

    #[test]
    fn a_token_from_a_form_login_is_captured_and_sent_after_its_scheme() {
        let opts = Options {
            env_prefix: "API".into(),
            source_name: "s.har".into(),
            host: None,
        };
        let har = r#"{"log":{"entries":[
          {"request":{"method":"POST","url":"http://h/login","postData":{"mimeType":"application/x-www-form-urlencoded","text":"user=ann&pass=pw-998877"}},
           "response":{"status":200,"content":{"mimeType":"application/json","text":"{\"access_token\":\"tok-11223344556677\"}"}}},
          {"request":{"method":"GET","url":"http://h/api/me","headers":[{"name":"Authorization","value":"Bearer tok-11223344556677"}]},
           "response":{"status":200,"content":{"mimeType":"application/json","text":"{}"}}}
        ]}}"#;
        let (d, _) = draft(&Har::parse("s.har", har).unwrap(), &opts).unwrap();
        let t = &d.files[1].1;
        assert!(
            t.contains("capture = { access_token = \"/access_token\" }"),
            "{t}"
        );
        assert!(
            t.contains("Authorization = \"Bearer {{ access_token }}\""),
            "{t}"
        );
        assert!(
            t.contains("body = \"user=ann&pass={{ env.API_PASS }}\""),
            "{t}"
        );
        assert!(!t.contains("tok-1122") && !t.contains("pw-99"), "{t}");
    }

    #[test]
    fn a_revalidated_read_accepts_a_full_answer_and_think_times_are_kept() {
        let opts = Options {
            env_prefix: "API".into(),
            source_name: "s.har".into(),
            host: None,
        };
        let har = r#"{"log":{"entries":[
          {"startedDateTime":"2026-01-01T00:00:00.000Z","time":40,"request":{"method":"GET","url":"http://h/api/a","headers":[{"name":"If-None-Match","value":"\"v1\""}]},
           "response":{"status":304,"content":{"mimeType":"application/json"}}},
          {"startedDateTime":"2026-01-01T00:00:02.540Z","time":10,"request":{"method":"GET","url":"http://h/api/b"},
           "response":{"status":200,"content":{"mimeType":"application/json","text":"{}"}}},
          {"startedDateTime":"2026-01-01T00:00:02.600Z","time":10,"request":{"method":"GET","url":"http://h/api/c"},
           "response":{"status":200,"content":{"mimeType":"application/json","text":"{}"}}}
        ]}}"#;
        let (d, s) = draft(&Har::parse("s.har", har).unwrap(), &opts).unwrap();
        let t = &d.files[1].1;
        assert_eq!(s.steps, 3);
        assert!(t.contains("status = [200, 304]\nthink = \"2500ms\""), "{t}");
        assert!(
            !t.contains("If-None-Match") && !t.contains("think = \"50ms\""),
            "{t}"
        );
    }
}
