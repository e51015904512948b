//! The README of a drafted suite: how to run it, the environment
//! variables its credentials come from, what each file holds and every
//! operation left out, with why.

use std::fmt::Write as _;

use serde_json::Value;

use super::auth::AuthDraft;
use super::openapi::Options;
use super::spec::Spec;

pub(super) fn readme(
    spec: &Spec,
    opts: &Options,
    auth: &AuthDraft,
    files: &[(String, String)],
    left_out: &[(String, String)],
    ops: usize,
    tenancy: &str,
) -> String {
    let title = spec
        .root
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("the API");
    let mut r = format!(
        "# convoy suite for {title}\n\nDrafted by `convoy init --openapi {}` ({ops} operations found). ",
        opts.source_name
    );
    r.push_str("Every file says which operation each step comes from; edit them freely.\n\n## Run it\n\n```sh\n");
    for (var, _) in &auth.env {
        let _ = writeln!(r, "export {var}=...");
    }
    let servers: Vec<&str> = spec
        .root
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("url").and_then(Value::as_str))
        .collect();
    let _ = writeln!(
        r,
        "convoy smoke . --target {}\n```\n",
        servers
            .first()
            .filter(|u| u.starts_with("http"))
            .copied()
            .unwrap_or("http://127.0.0.1:8080")
    );
    if !servers.is_empty() {
        let _ = writeln!(
            r,
            "The document's servers: {}. Pass the one to test as `--target` (its path, such as `/v1`, is joined to every step's path).\n",
            servers
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if auth.env.is_empty() {
        r.push_str("## Credentials\n\nThe document declares no security scheme: requests are sent without credentials.\n\n");
    } else {
        let _ = writeln!(
            r,
            "## Credentials\n\nThe suite authenticates with {} (`suite.toml`). Its secrets come from these environment variables (a missing one is an error when the suite loads; convoy redacts their values everywhere):\n",
            auth.summary
        );
        for (var, what) in &auth.env {
            let _ = writeln!(r, "- `{var}`: {what}");
        }
        r.push('\n');
    }
    r.push_str(tenancy);
    r.push_str("## Files\n\n");
    for (name, text) in files {
        let desc = text
            .lines()
            .find_map(|l| l.strip_prefix("description = "))
            .map(|d| d.trim_matches('"').to_string());
        let fallback = match name.as_str() {
            "profiles.toml" => {
                ": load profiles (light, moderate, heavy, launch) with SLA gates: `convoy run . --profiles profiles.toml --profile light --target URL`"
            }
            "README.md" => ": this file",
            _ => ": the auth and identities every scenario shares",
        };
        let _ = writeln!(
            r,
            "- `{name}`{}",
            desc.map(|d| format!(": {d}"))
                .unwrap_or_else(|| fallback.into())
        );
    }
    r.push_str("\n## Left out\n\n");
    if left_out.is_empty() {
        r.push_str("Nothing: every operation is in a journey.\n");
    } else {
        for (what, why) in left_out {
            let _ = writeln!(r, "- `{what}`: {why}");
        }
    }
    r
}
