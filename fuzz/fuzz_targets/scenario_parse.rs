//! Scenario files are user input: whatever the text, `parse` returns a
//! scenario or a diagnostic that points inside the text, and never panics.

#![no_main]

use std::path::Path;

use convoy::scenario::parse::{Env, parse};
use libfuzzer_sys::fuzz_target;

/// A fixed environment, so runs are reproducible: `API_TOKEN` is set,
/// everything else is not.
struct FixedEnv;

impl Env for FixedEnv {
    fn get(&self, name: &str) -> Option<String> {
        (name == "API_TOKEN").then(|| "tok-fuzz".to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The scenario sits in a directory that does not exist, so a `[data]`
    // table cannot make the fuzzer read real files by relative path.
    let path = Path::new("/nonexistent-convoy-fuzz/fuzz.toml");
    match parse(path, text, &FixedEnv) {
        Ok(scenario) => {
            assert!(
                !scenario.steps.is_empty(),
                "a scenario without steps was accepted"
            );
        }
        Err(d) => {
            let lines = text.split('\n').count();
            assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}", d.line);
            assert!(d.column >= 1, "column {}", d.column);
            assert!(d.width >= 1, "width {}", d.width);
            let shown = d.to_string();
            assert!(
                shown.contains(&format!("fuzz.toml:{}:{}", d.line, d.column)),
                "{shown}"
            );
        }
    }
});
