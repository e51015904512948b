//! The HTML report opened in headless Chromium: the page renders offline,
//! its charts are laid out as SVG (the page's own script counts them after
//! layout), and its key numbers and gate verdicts are in the DOM.
//!
//! Skipped, with a notice, when no Chromium is installed, unless
//! `CONVOY_REQUIRE_CHROMIUM` is set, as `.ci/run` does after installing it
//! (`apt-get install -y chromium`). `CONVOY_CHROMIUM` names another binary.

mod report_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use convoy::report::format::{millis, per_second};
use convoy::report::text::group;
use convoy::report::{Report, compare, html};
use report_support::{showcase_with_gates, synthetic};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CONVOY_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// The DOM after load, as Chromium serialises it.
fn dump_dom(browser: &Path, page: &Path, profile: &Path) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

fn render_in_browser(report: &Report) -> Option<String> {
    let Some(browser) = chromium() else {
        // CI installs chromium and sets this, so there the test never skips.
        assert!(
            std::env::var_os("CONVOY_REQUIRE_CHROMIUM").is_none(),
            "CONVOY_REQUIRE_CHROMIUM is set but no chromium was found"
        );
        eprintln!(
            "NOTICE: skipping the headless-browser test: no chromium found (apt-get install -y chromium, or set CONVOY_CHROMIUM)"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html::render(report)).unwrap();
    let dom = dump_dom(&browser, &page, &dir.path().join("profile"));
    assert!(
        dom.contains("</html>"),
        "chromium printed no DOM: {:.300}",
        dom
    );
    Some(dom)
}

#[test]
fn the_report_renders_with_its_charts_and_numbers() {
    let r = showcase_with_gates();
    let Some(dom) = render_in_browser(&r) else {
        return;
    };
    // The page's script saw three laid-out charts with drawn lines.
    assert!(
        dom.contains(r#"data-charts-rendered="3""#),
        "charts did not render"
    );
    assert_eq!(dom.matches(r#"data-rendered="true""#).count(), 3);
    assert!(dom.matches("<polyline").count() >= 6);
    // Key figures, as the page shows them.
    let o = &r.overall;
    for (key, value) in [
        ("p95", millis(o.latency_ms.p95)),
        ("p99", millis(o.latency_ms.p99)),
        ("requests", group(o.requests)),
        ("rps", per_second(o.rps)),
    ] {
        let cell = format!(r#"data-figure="{key}">{value}<"#);
        assert!(dom.contains(&cell), "missing {cell}");
    }
    // One verdict cell per gate, in agreement with the report.
    let passed = r.gates.iter().filter(|g| g.passed).count();
    let failed = r.gates.len() - passed;
    assert_eq!(dom.matches(r#"data-gate-verdict="pass""#).count(), passed);
    assert_eq!(dom.matches(r#"data-gate-verdict="fail""#).count(), failed);
    assert!(dom.contains(r#"<span id="verdict" class="word">FAILED</span>"#));
    // Text from the run is text, not markup, after the browser parsed it.
    assert!(dom.contains("a&lt;b&amp;c"));
}

#[test]
fn a_report_with_a_comparison_and_no_timeline_still_renders() {
    // Same seed: the same figures, so nothing moved.
    let base = synthetic("base", 0, 100.0, 0, 2);
    let mut r = synthetic("current", 1, 100.0, 0, 2);
    r.comparison = Some(compare(&base, &r, &[], 0.10));
    r.timeline = Default::default();
    let Some(dom) = render_in_browser(&r) else {
        return;
    };
    assert!(dom.contains(r#"data-charts-rendered="0""#));
    assert_eq!(dom.matches("no samples").count(), 3);
    assert!(dom.contains(r#"id="comparison""#));
    assert!(dom.contains(r#"<span id="verdict" class="word">PASSED</span>"#));
}
