//! The CI recipes in `ci/github/` and `ci/gitlab/`: they are valid YAML with
//! the shape each CI system expects, and every `convoy` command they run is
//! accepted by convoy's own command line, so a renamed flag breaks this test
//! rather than a user's pipeline.

use std::path::{Path, PathBuf};

use clap::Parser as _;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one document", path.display());
    docs.remove(0)
}

fn github_workflows() -> Vec<(PathBuf, Yaml)> {
    let dir = root().join("ci/github");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), load(&p))).collect()
}

/// A shell word or operator, as far as these recipes need: quotes,
/// variables (any word containing one becomes a placeholder), operators.
#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Op(String),
}

fn tokenize(script: &str) -> Vec<Tok> {
    let script = script.replace("\\\n", " ");
    let mut toks = Vec::new();
    for line in script.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let mut word = String::new();
        let mut in_word = false;
        let mut dynamic = false;
        let flush =
            |toks: &mut Vec<Tok>, word: &mut String, in_word: &mut bool, dynamic: &mut bool| {
                if *in_word {
                    let w = if *dynamic {
                        "placeholder".to_string()
                    } else {
                        std::mem::take(word)
                    };
                    toks.push(Tok::Word(w));
                }
                word.clear();
                *in_word = false;
                *dynamic = false;
            };
        while i < chars.len() {
            let c = chars[i];
            match c {
                ' ' | '\t' => flush(&mut toks, &mut word, &mut in_word, &mut dynamic),
                '\'' => {
                    in_word = true;
                    i += 1;
                    while i < chars.len() && chars[i] != '\'' {
                        word.push(chars[i]);
                        i += 1;
                    }
                }
                '"' => {
                    in_word = true;
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        if chars[i] == '\\' && i + 1 < chars.len() {
                            i += 1;
                        }
                        if chars[i] == '$' {
                            dynamic = true;
                        }
                        word.push(chars[i]);
                        i += 1;
                    }
                }
                '$' => {
                    in_word = true;
                    dynamic = true;
                    // Skip a whole ${...}, ${{ ... }} or $(...).
                    if let Some(&open @ ('{' | '(')) = chars.get(i + 1) {
                        let close = if open == '{' { '}' } else { ')' };
                        let mut depth = 0;
                        i += 1;
                        while i < chars.len() {
                            if chars[i] == open {
                                depth += 1;
                            } else if chars[i] == close {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            i += 1;
                        }
                    }
                }
                ';' | '|' | '&' | '<' | '>' | '(' | ')' => {
                    flush(&mut toks, &mut word, &mut in_word, &mut dynamic);
                    let mut op = c.to_string();
                    if matches!(chars.get(i + 1), Some(&n) if n == c && c != '(' && c != ')') {
                        op.push(c);
                        i += 1;
                    }
                    toks.push(Tok::Op(op));
                }
                c => {
                    in_word = true;
                    word.push(c);
                }
            }
            i += 1;
        }
        flush(&mut toks, &mut word, &mut in_word, &mut dynamic);
        toks.push(Tok::Op(";".into()));
    }
    toks
}

/// Every `convoy ...` command in a script, as its arguments.
fn convoy_commands(script: &str) -> Vec<Vec<String>> {
    let toks = tokenize(script);
    let mut out = Vec::new();
    let mut at_start = true;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Word(w) if at_start && w == "convoy" => {
                let mut args = Vec::new();
                i += 1;
                while let Some(Tok::Word(a)) = toks.get(i) {
                    args.push(a.clone());
                    i += 1;
                }
                out.push(args);
                at_start = false;
                continue;
            }
            Tok::Word(w) => {
                at_start = matches!(w.as_str(), "then" | "do" | "else" | "!" | "if" | "elif");
            }
            Tok::Op(op) => at_start = !matches!(op.as_str(), ">" | ">>" | "<"),
        }
        i += 1;
    }
    out
}

/// Parses `args` as convoy's command line would.
fn assert_accepted(args: &[String], origin: &str) {
    let argv = std::iter::once("convoy".to_string()).chain(args.iter().cloned());
    if let Err(e) = convoy::cli::Cli::try_parse_from(argv) {
        panic!(
            "{origin}: `convoy {}` is rejected by convoy's command line:\n{e}",
            args.join(" ")
        );
    }
}

#[test]
fn the_tokenizer_finds_commands_and_hides_variables() {
    let cmds = convoy_commands(
        "command -v convoy || cargo install convoy\nconvoy run $S --profile \"$P\" --out reports/x \"${a[@]}\" > log\nif [ -f x ]; then convoy compare a b --tolerance 10% || c=$?; fi",
    );
    assert_eq!(
        cmds,
        vec![
            vec![
                "run",
                "placeholder",
                "--profile",
                "placeholder",
                "--out",
                "reports/x",
                "placeholder"
            ],
            vec!["compare", "a", "b", "--tolerance", "10%"],
        ]
    );
}

#[test]
fn github_workflows_have_their_triggers_and_jobs() {
    let workflows = github_workflows();
    let names: Vec<_> = workflows
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "convoy-nightly.yml",
            "convoy-prelaunch.yml",
            "convoy-smoke.yml"
        ]
    );
    let trigger = |y: &Yaml, t: &str| !y["on"][t].is_badvalue();
    for (path, y) in &workflows {
        let origin = path.display();
        assert!(y["name"].as_str().is_some(), "{origin}: name");
        let jobs = y["jobs"]
            .as_hash()
            .unwrap_or_else(|| panic!("{origin}: jobs"));
        assert!(!jobs.is_empty());
        for (name, job) in jobs {
            assert!(
                job["runs-on"].as_str().is_some(),
                "{origin} {name:?}: runs-on"
            );
            assert!(
                job["timeout-minutes"].as_i64().is_some(),
                "{origin} {name:?}: a timeout"
            );
            let steps = job["steps"].as_vec().expect("steps");
            for step in steps {
                let uses = step["uses"].as_str();
                let run = step["run"].as_str();
                assert!(
                    uses.is_some() != run.is_some(),
                    "{origin}: a step uses or runs"
                );
                if let Some(u) = uses {
                    assert!(u.contains("@v"), "{origin}: pin {u} to a major version");
                }
            }
        }
    }
    let by_name = |n: &str| &workflows.iter().find(|(p, _)| p.ends_with(n)).unwrap().1;
    assert!(trigger(
        by_name("convoy-prelaunch.yml"),
        "workflow_dispatch"
    ));
    assert!(trigger(by_name("convoy-smoke.yml"), "workflow_call"));
    assert!(trigger(by_name("convoy-nightly.yml"), "schedule"));
}

#[test]
fn github_workflows_run_only_commands_convoy_accepts() {
    let mut seen = Vec::new();
    for (path, y) in github_workflows() {
        for (_, job) in y["jobs"].as_hash().unwrap() {
            for step in job["steps"].as_vec().unwrap() {
                if let Some(run) = step["run"].as_str() {
                    for args in convoy_commands(run) {
                        assert_accepted(&args, &path.display().to_string());
                        seen.push(args.join(" "));
                    }
                }
            }
        }
    }
    for sub in [
        "run ",
        "smoke ",
        "compare ",
        "baseline record ",
        "baseline promote ",
    ] {
        assert!(
            seen.iter().any(|c| c.starts_with(sub)),
            "no `convoy {sub}` in {seen:#?}"
        );
    }
}

#[test]
fn gitlab_jobs_run_only_commands_convoy_accepts() {
    let path = root().join("ci/gitlab/convoy.gitlab-ci.yml");
    let y = load(&path);
    let jobs = ["convoy-prelaunch", "convoy-smoke", "convoy-nightly"];
    let mut seen = Vec::new();
    for name in jobs {
        let job = &y[name];
        assert_eq!(job["extends"].as_str(), Some(".convoy"), "{name}");
        assert!(
            job["rules"].as_vec().is_some(),
            "{name}: runs only when asked"
        );
        assert!(
            !job["artifacts"]["paths"].is_badvalue(),
            "{name}: keeps its reports"
        );
        for line in job["script"].as_vec().expect("script") {
            for args in convoy_commands(line.as_str().unwrap()) {
                assert_accepted(&args, name);
                seen.push(args.join(" "));
            }
        }
    }
    assert_eq!(
        y["convoy-smoke"]["artifacts"]["reports"]["junit"].as_str(),
        Some("reports/smoke/junit.xml")
    );
    for sub in ["run ", "smoke ", "compare ", "baseline record "] {
        assert!(
            seen.iter().any(|c| c.starts_with(sub)),
            "no `convoy {sub}` in {seen:#?}"
        );
    }
}

/// A stand-in for a CI variable or expression (`${{ inputs.target }}`,
/// `$CONVOY_NIGHTLY_TARGET`): a URL whose host is made from the expression,
/// so two variables agree only when they name the same thing.
fn example_url(expression: &str) -> String {
    let slug: String = expression
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug: Vec<&str> = slug.split('-').filter(|p| !p.is_empty()).collect();
    format!("https://{}.example.com/api", slug.join("-"))
}

/// The variables a step sees, CI expressions replaced by example URLs.
fn environment<'a>(scopes: impl IntoIterator<Item = &'a Yaml>) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for scope in scopes {
        let Some(h) = scope.as_hash() else { continue };
        for (k, v) in h {
            let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                continue;
            };
            let v = if v.contains('$') {
                example_url(v)
            } else {
                v.to_string()
            };
            vars.retain(|(name, _)| name != k);
            vars.push((k.to_string(), v));
        }
    }
    vars
}

/// `convoy run`'s arguments as convoy reads them, flags and environment.
#[derive(clap::Parser)]
struct RunCommand {
    #[command(flatten)]
    run: convoy::cli::run::RunArgs,
}

/// Parses `args` (after `convoy run`) with exactly `vars` set among
/// convoy's environment variables. The environment is the process's, so
/// the parses take turns.
fn parse_run(args: &[String], vars: &[(String, String)]) -> convoy::cli::run::RunArgs {
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let ours = ["CONVOY_TARGET", "CONVOY_ALLOW_HOST"];
    // SAFETY: the variables are set and read under the lock, and no other
    // thread of this test binary reads them.
    unsafe {
        for k in ours {
            std::env::remove_var(k);
        }
        for (k, v) in vars.iter().filter(|(k, _)| ours.contains(&k.as_str())) {
            std::env::set_var(k, v);
        }
    }
    let argv = std::iter::once("convoy-run".to_string()).chain(args.iter().cloned());
    let parsed = RunCommand::try_parse_from(argv);
    unsafe {
        for k in ours {
            std::env::remove_var(k);
        }
    }
    parsed
        .unwrap_or_else(|e| panic!("`convoy run {}`: {e}", args.join(" ")))
        .run
}

/// Whether a `convoy run` of a recipe may send its load where its
/// variables point, by convoy's own allow-list rule.
fn load_allowed(args: &[String], vars: &[(String, String)], origin: &str) -> Result<(), String> {
    let run = parse_run(args, vars);
    let target = run
        .target
        .target
        .as_deref()
        .unwrap_or_else(|| panic!("{origin}: the recipe sets CONVOY_TARGET"));
    assert!(
        target.ends_with(".example.com/api"),
        "{origin}: the target comes from a CI variable: {target}"
    );
    let url: url::Url = target.parse().unwrap();
    let smoke = run.profile == "smoke";
    convoy::safety::check_target(&url, !smoke, &run.target.allow_hosts).map_err(|e| e.to_string())
}

#[test]
fn load_runs_are_allowed_to_load_the_target_they_are_given() {
    let mut checked = Vec::new();
    for (path, y) in github_workflows() {
        for (_, job) in y["jobs"].as_hash().unwrap() {
            for step in job["steps"].as_vec().unwrap() {
                let Some(script) = step["run"].as_str() else {
                    continue;
                };
                let vars = environment([&y["env"], &job["env"], &step["env"]]);
                for args in convoy_commands(script) {
                    if args[0] != "run" {
                        continue;
                    }
                    let origin = path.display().to_string();
                    let run_args = &args[1..];
                    load_allowed(run_args, &vars, &origin)
                        .unwrap_or_else(|e| panic!("{origin}: {e}"));
                    // And the allowance is the recipe's doing, not the
                    // rule's: without it the same run is refused.
                    let without: Vec<_> = vars
                        .iter()
                        .filter(|(k, _)| k != "CONVOY_ALLOW_HOST")
                        .cloned()
                        .collect();
                    assert!(load_allowed(run_args, &without, &origin).is_err());
                    checked.push(origin);
                }
            }
        }
    }
    let gitlab = load(&root().join("ci/gitlab/convoy.gitlab-ci.yml"));
    for name in ["convoy-prelaunch", "convoy-nightly"] {
        let job = &gitlab[name];
        let vars = environment([&gitlab["variables"], &job["variables"]]);
        for line in job["script"].as_vec().unwrap() {
            for args in convoy_commands(line.as_str().unwrap()) {
                if args[0] == "run" {
                    load_allowed(&args[1..], &vars, name).unwrap_or_else(|e| panic!("{name}: {e}"));
                    checked.push(name.to_string());
                }
            }
        }
    }
    assert_eq!(checked.len(), 4, "{checked:?}");
}

/// Gates shown in `ci/README.md` and suggested by the pre-launch form.
fn documented_gates() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let readme = std::fs::read_to_string(root().join("ci/README.md")).unwrap();
    for piece in readme.split("--gate '").skip(1) {
        let gate = piece.split('\'').next().unwrap();
        // `--gate '...'` in prose stands for any gate.
        if gate != "..." {
            out.push(("ci/README.md".to_string(), gate.to_string()));
        }
    }
    let prelaunch = load(&root().join("ci/github/convoy-prelaunch.yml"));
    let hint = prelaunch["on"]["workflow_dispatch"]["inputs"]["gates"]["description"]
        .as_str()
        .unwrap();
    let (_, examples) = hint.split_once("e.g.").expect("the form shows examples");
    for gate in examples.split(';') {
        out.push(("convoy-prelaunch.yml".to_string(), gate.trim().to_string()));
    }
    out
}

#[test]
fn documented_gates_name_steps_and_journeys_of_the_scenarios_the_recipes_run() {
    use convoy::gate::{Gate, Scope};
    // The recipes run every built-in scenario unless told otherwise.
    let scenarios: Vec<_> = convoy::scenario::builtin::NAMES
        .iter()
        .map(|n| convoy::scenario::load(n).unwrap())
        .collect();
    let journeys: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    let mut steps: Vec<String> = scenarios.iter().flat_map(|s| s.step_names()).collect();
    steps.push(convoy::scenario::runner::LOGIN_METRIC.to_string());
    let gates = documented_gates();
    let mut scoped = 0;
    for (origin, text) in &gates {
        let gate: Gate = text
            .parse()
            .unwrap_or_else(|e| panic!("{origin}: {text:?} is not a gate: {e}"));
        match &gate.scope {
            // A wildcard names no one step: any run has its kind or fails
            // the gate saying so.
            Scope::Overall | Scope::Every(_) => {}
            // An event or a stream is named by its step.
            Scope::Step(name) | Scope::Event(name) | Scope::Stream(name) => {
                scoped += 1;
                assert!(
                    steps.contains(name),
                    "{origin}: {text:?}: no step {name:?} (steps: {steps:?})"
                );
            }
            Scope::Journey(name) => {
                scoped += 1;
                assert!(
                    journeys.contains(name),
                    "{origin}: {text:?}: no journey {name:?} (journeys: {journeys:?})"
                );
            }
        }
    }
    assert!(scoped >= 4, "scoped gates found: {gates:?}");
}
