//! The layering of the workspace, checked: which crate may depend on which,
//! and which top-level module of the harness may import which.
//!
//! The rules are the ones the module docs (`//!`) state; a test keeps them
//! from drifting into a convention. It reads the sources, so it needs no
//! build of anything it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The `[dependencies]` names of a manifest.
fn dependencies(manifest: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(manifest)).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_harness_compiles_no_server_framework_no_command_line_and_not_the_reference_api() {
    let deps = dependencies("crates/convoy-core/Cargo.toml");
    for banned in [
        "axum",
        "clap",
        "reqwest",
        "anyhow",
        "convoy-reference-api",
        "convoy",
    ] {
        assert!(!deps.contains(banned), "convoy-core depends on {banned}");
    }
}

#[test]
fn the_reference_api_depends_on_no_harness_code() {
    let deps = dependencies("crates/reference-api/Cargo.toml");
    for banned in ["convoy-core", "convoy"] {
        assert!(
            !deps.contains(banned),
            "the reference API depends on {banned}"
        );
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out
}

/// The top-level modules named after `crate::` in the code of `text` (not
/// its comments, where a module may say what it lies below), including the
/// grouped form `use crate::{a::b, c}`.
fn crate_imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

/// Top-level module → the top-level modules it may import. Lower layers
/// first: measurement values and plans know nothing above them; the engine
/// executes plans; gates judge figures; scenarios compile and run journeys
/// on the engine; reports render results; live metrics and progress show a
/// run in progress.
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("metrics", &[][..]),
        ("plan", &[][..]),
        ("redact", &[][..]),
        ("rls", &[][..]),
        ("safety", &[][..]),
        ("target_url", &[][..]),
        ("units", &[][..]),
        ("stats", &[][..]),
        ("summary", &["metrics"][..]),
        ("engine", &["metrics", "plan"][..]),
        ("bench", &["engine", "metrics", "plan"][..]),
        // Gates judge figures any source provides: never a report.
        ("gate", &["metrics", "rls", "summary", "units"][..]),
        (
            "scenario",
            &[
                "engine",
                "gate",
                "metrics",
                "plan",
                "redact",
                "rls",
                "target_url",
            ][..],
        ),
        // Reports are scrubbed of the run's secrets before they are written.
        (
            "report",
            &[
                "engine", "gate", "metrics", "plan", "redact", "rls", "stats", "summary", "units",
            ][..],
        ),
        (
            "live",
            &[
                "engine", "gate", "metrics", "plan", "report", "summary", "units",
            ][..],
        ),
        // Drafting suites reads documents (a file, or a URL fetched with
        // one GET on the engine's client) and writes text: no run. A
        // recording's secrets are told by the names redaction uses.
        ("init", &["engine", "plan", "redact"][..]),
        // History reads stored reports; nothing reads it but the command line.
        ("history", &["engine", "report", "stats", "units"][..]),
        ("profile", &["gate", "plan", "safety", "scenario"][..]),
        (
            "progress",
            &["engine", "metrics", "plan", "report", "units"][..],
        ),
    ])
}

#[test]
fn each_module_of_the_harness_imports_only_the_layers_below_it() {
    let src = Path::new(ROOT).join("crates/convoy-core/src");
    let allowed = allowed();
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let Some(ok) = allowed.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module `{module}` has no rule here",
                rel.display()
            ));
            continue;
        };
        seen.insert(module.clone());
        let text = std::fs::read_to_string(&file).unwrap();
        for import in crate_imports(&text) {
            if import != module && !ok.contains(&import.as_str()) {
                wrong.push(format!("{}: `{module}` imports `{import}`", rel.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
    let stale: Vec<_> = allowed.keys().filter(|m| !seen.contains(**m)).collect();
    assert!(
        stale.is_empty(),
        "rules for modules that no longer exist: {stale:?}"
    );
}

#[test]
fn the_import_scanner_reads_grouped_and_nested_paths() {
    let found = crate_imports(
        "use crate::{engine::X, metrics};\nlet x = crate::plan::Y;\n/// below [`crate::report`]",
    );
    let want: BTreeSet<String> = ["engine", "metrics", "plan"].map(String::from).into();
    assert_eq!(found, want);
}
