//! `convoy completions SHELL` and `convoy man`: generated from the clap
//! definitions, so they list every subcommand; the bash script parses in
//! bash (`bash -n`), the zsh and fish ones in their shells when installed,
//! and the manual pages render in groff without a warning (skipped with a
//! notice when groff is missing, unless `CONVOY_REQUIRE_GROFF` is set).

mod cli_support;

use std::process::{Command, Stdio};

use cli_support::convoy_as_is;

const SUBCOMMANDS: [&str; 10] = [
    "run",
    "smoke",
    "bench",
    "target",
    "report",
    "compare",
    "baseline",
    "merge",
    "completions",
    "man",
];

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn completions(shell: &str) -> String {
    let o = convoy_as_is(&["completions", shell]);
    assert!(o.status.success(), "{shell}: {o:?}");
    String::from_utf8(o.stdout).unwrap()
}

/// Checks `script`'s syntax with `shell -n FILE`.
fn syntax_ok(shell: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("convoy-completions");
    std::fs::write(&file, script).unwrap();
    let o = Command::new(shell).arg("-n").arg(&file).output().unwrap();
    assert!(
        o.status.success(),
        "{shell} -n refuses the script: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn every_shell_gets_a_script_naming_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = completions(shell);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: no {sub}");
        }
        // Flags of the subcommands complete too (fish writes `-l gate`).
        for flag in ["wait-healthy", "gate", "allow-host"] {
            let written = if shell == "fish" {
                format!("-l {flag}")
            } else {
                format!("--{flag}")
            };
            assert!(script.contains(&written), "{shell}: no {written}");
        }
    }
}

#[test]
fn the_bash_script_parses_and_completes_subcommands() {
    let script = completions("bash");
    syntax_ok("bash", &script);
    // Loaded into bash, the function completes `convoy sm` to smoke.
    let probe = format!(
        "{script}\nCOMP_WORDS=(convoy sm); COMP_CWORD=1; _convoy convoy sm convoy; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let o = Command::new("bash")
        .args(["--norc", "-c", &probe])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "smoke");
}

#[test]
fn the_zsh_and_fish_scripts_parse_where_those_shells_are_installed() {
    for shell in ["zsh", "fish"] {
        if have(shell) {
            syntax_ok(shell, &completions(shell));
        } else {
            eprintln!("NOTICE: {shell} not installed: its completion script is not parsed");
        }
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error_listing_the_shells() {
    let o = convoy_as_is(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    for shell in ["bash", "zsh", "fish", "powershell"] {
        assert!(err.contains(shell), "{err}");
    }
}

/// Renders roff with groff's man macros; `None` (with a notice) when groff
/// is missing.
fn render(page: &[u8]) -> Option<String> {
    if !have("groff") {
        assert!(
            std::env::var_os("CONVOY_REQUIRE_GROFF").is_none(),
            "CONVOY_REQUIRE_GROFF is set but groff is missing"
        );
        eprintln!(
            "NOTICE: skipping the man page rendering: no groff (apt-get install -y groff-base)"
        );
        return None;
    }
    let mut child = Command::new("groff")
        // UTF-8 input through preconv (-k), as `man` reads it; plain text
        // out: no overstriking for bold and underline.
        .args(["-k", "-man", "-Tutf8", "-ww", "-P", "-cbou"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(page).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(
        o.stderr.is_empty(),
        "groff warns: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn the_man_page_renders_with_the_subcommands_and_exit_codes() {
    let o = convoy_as_is(&["man"]);
    assert!(o.status.success(), "{o:?}");
    assert!(o.stdout.starts_with(b".ie") || o.stdout.starts_with(b".TH"));
    let Some(text) = render(&o.stdout) else {
        return;
    };
    // groff may hyphenate or embolden: compare letters only.
    let plain: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ' || *c == '\n')
        .collect();
    for sub in SUBCOMMANDS {
        assert!(
            plain.contains(&format!("convoy{sub}")),
            "no convoy-{sub}: {text}"
        );
    }
    assert!(plain.contains("Exit codes"), "{text}");
}

#[test]
fn man_dir_writes_a_page_per_subcommand_that_renders() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = convoy_as_is(&["man", "--dir", out.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    for sub in SUBCOMMANDS {
        let page = out.join(format!("convoy-{sub}.1"));
        let roff = std::fs::read(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        if let Some(text) = render(&roff) {
            assert!(text.contains("SYNOPSIS"), "{sub}: {text}");
        }
    }
    let run = std::fs::read_to_string(out.join("convoy-run.1")).unwrap();
    assert!(run.contains("wait\\-healthy"), "{run}");
    assert!(out.join("convoy.1").exists());
}
