//! The documentation's links stay inside the repository: every relative
//! link names a file or directory that exists here, and a link outside goes
//! only to a tool's homepage the text compares with. Figures the docs rely
//! on are stated in them, not behind a link to a place a reader of the
//! repository cannot open.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Markdown files of the repository (build output and fuzz corpora left out).
fn markdown(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "corpus" | "artifacts") {
                markdown(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The targets of `[text](target)` links in `text`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
        }
    }
    out
}

/// Homepages of the tools the docs compare convoy with, and the reference
/// of a syntax scenarios are written in (regular expressions).
const TOOL_HOMEPAGES: [&str; 2] = [
    "https://github.com/hatoo/oha",
    "https://docs.rs/regex/latest/regex/#syntax",
];

#[test]
fn every_link_stays_in_the_repository_or_names_a_tool_homepage() {
    let mut files = Vec::new();
    markdown(&root(), &mut files);
    assert!(files.len() > 5, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let origin = file.strip_prefix(root()).unwrap().display().to_string();
        assert!(
            !text.contains("shared/seeds"),
            "{origin}: names shared/seeds, which is not in the repository"
        );
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                assert!(
                    TOOL_HOMEPAGES.contains(&link.as_str()),
                    "{origin}: a link outside the repository: {link}"
                );
                continue;
            }
            let path = link.split('#').next().unwrap();
            if path.is_empty() {
                continue;
            }
            let target = file.parent().unwrap().join(path);
            assert!(
                target.exists(),
                "{origin}: the link {link} names nothing in the repository"
            );
            assert!(
                target.canonicalize().unwrap().starts_with(root()),
                "{origin}: the link {link} leaves the repository"
            );
        }
    }
}
