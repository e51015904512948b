//! The HTML report opened in headless Chromium: the page renders offline,
//! its charts are laid out as SVG (the page's own script counts them after
//! layout), and its key numbers and gate verdicts are in the DOM. At a
//! phone's width (390 px) and a desktop's (1400 px) the page does not
//! scroll sideways, its header fits and its chart labels keep a readable
//! size; screenshots of both are written to
//! `target/tmp/report_html/` for a person to look at.
//!
//! Chromium's windows are at least 500 px wide, so the page is measured in
//! an iframe of the width under test (a frame is its page's viewport: media
//! queries and layout see that width); a script injected into the page's
//! copy posts what it measured to the frame's parent, whose DOM Chromium
//! prints.
//!
//! Skipped, with a notice, when no Chromium is installed, unless
//! `CONVOY_REQUIRE_CHROMIUM` is set, as `.ci/run` does after installing it
//! (`apt-get install -y chromium`). `CONVOY_CHROMIUM` names another binary.

mod report_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use convoy::metrics::{FailureSample, TimelineSample};
use convoy::report::format::{millis, per_second, trim_float};
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
    run_chromium(browser, page, profile, &["--dump-dom"])
}

/// Runs headless Chromium on `page` with `extra` arguments; its stdout.
fn run_chromium(browser: &Path, page: &Path, profile: &Path, extra: &[&str]) -> String {
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
        .args(extra)
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

fn browser_or_skip() -> Option<PathBuf> {
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
    Some(browser)
}

fn render_in_browser(report: &Report) -> Option<String> {
    let browser = browser_or_skip()?;
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

/// What the page measured of itself once laid out in a viewport.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layout {
    /// The frame's width (the viewport under test).
    client_width: f64,
    /// The page's width: above the viewport's, the page scrolls sideways.
    scroll_width: f64,
    scroll_height: f64,
    /// How far the header's content overflows it.
    header_overflow: f64,
    /// Charts shown (drawn with a non-empty line and a box on screen).
    charts_rendered: u32,
    /// The smallest chart label as drawn on screen, in CSS px.
    min_chart_text_px: f64,
    /// Tables not inside a scrolling box.
    loose_tables: u32,
    /// Table boxes whose table is wider than they are (they scroll).
    scrolling_tables: u32,
}

/// Injected into the page's copy: measures the page after load and posts
/// the figures to the frame's parent.
const PROBE: &str = r#"<script>window.addEventListener('load',function(){
var d=document.documentElement,h=document.querySelector('header');
var shown=[].filter.call(document.querySelectorAll('svg.chart'),function(s){
var b=s.getBoundingClientRect();return b.width>0&&b.height>0;});
var min=1e9;shown.forEach(function(s){var k=s.getBoundingClientRect().width/s.viewBox.baseVal.width;
s.querySelectorAll('text').forEach(function(t){var px=parseFloat(getComputedStyle(t).fontSize)*k;if(px<min)min=px;});});
var wraps=document.querySelectorAll('.table-wrap');
parent.postMessage({clientWidth:d.clientWidth,scrollWidth:d.scrollWidth,scrollHeight:d.scrollHeight,
headerOverflow:h.scrollWidth-h.clientWidth,chartsRendered:Number(d.getAttribute('data-charts-rendered')),
minChartTextPx:min,looseTables:document.querySelectorAll('table').length-document.querySelectorAll('.table-wrap > table').length,
scrollingTables:[].filter.call(wraps,function(w){return w.scrollWidth>w.clientWidth;}).length},'*');});</script>"#;

/// The page lays itself out `width` px wide in Chromium; what it measured,
/// and a screenshot of it at `shot`.
fn layout_at(browser: &Path, report: &Report, width: u32, shot: &Path) -> Layout {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let html = html::render(report).replace("</body>", &format!("{PROBE}</body>"));
    std::fs::write(&page, html).unwrap();
    let frame = |height: f64| {
        let wrapper = dir.path().join("frame.html");
        std::fs::write(
            &wrapper,
            format!(
                r#"<!DOCTYPE html><html><body style="margin:0"><iframe src="report.html" style="display:block;border:0;width:{width}px;height:{height}px"></iframe><script>window.addEventListener('message',function(e){{document.documentElement.setAttribute('data-layout',JSON.stringify(e.data));}});</script></body></html>"#
            ),
        )
        .unwrap();
        wrapper
    };
    let window = format!("--window-size={},900", width.max(500));
    let dom = run_chromium(
        browser,
        &frame(900.0),
        &dir.path().join("profile"),
        // Scrollbars drawn over the page, as a phone's: the frame's
        // whole width is the page's.
        &[
            "--virtual-time-budget=5000",
            "--hide-scrollbars",
            &window,
            "--dump-dom",
        ],
    );
    let attr = dom
        .split("data-layout=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the page posted no measurements at {width} px: {dom:.500}"));
    let json = attr.replace("&quot;", "\"").replace("&amp;", "&");
    let layout: Layout = serde_json::from_str(&json).unwrap();
    // The whole page, for a person to look at.
    let height = layout.scroll_height.clamp(600.0, 8000.0);
    let window = format!("--window-size={},{}", width.max(500), height as u32);
    let screenshot = format!("--screenshot={}", shot.display());
    run_chromium(
        browser,
        &frame(height),
        &dir.path().join("profile"),
        &[
            "--virtual-time-budget=5000",
            "--hide-scrollbars",
            &window,
            &screenshot,
        ],
    );
    let png =
        std::fs::read(shot).unwrap_or_else(|e| panic!("no screenshot {}: {e}", shot.display()));
    assert_eq!(&png[1..4], b"PNG", "{}", shot.display());
    let png_width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(png_width, width.max(500), "{}", shot.display());
    layout
}

/// A report built to be hard to fit on a phone: long step, check and
/// target names, a wide comparison table, long failure texts.
fn crowded() -> Report {
    let mut r = showcase_with_gates();
    r.target = "https://staging-eu-west-1.logistics-platform.example.test/api/v2/tenants/acme-freight-international".into();
    for s in r.steps.iter_mut().take(2) {
        s.name = format!(
            "globex dispatcher probes acme order {} · POST /orders/{{order_id}}/adjustments/ledger-entries",
            s.name
        );
    }
    for c in &mut r.checks {
        c.name = format!(
            "{} and the body's $.data.items[0].delivery_window.end is after its start",
            c.name
        );
    }
    r.failures.push(FailureSample {
        step: "globex_dispatcher_probes_acme_order_with_a_very_long_unbroken_identifier_0123456789"
            .into(),
        check: "tenant isolation GET /orders/{id}/adjustments".into(),
        message: "revealed 1 marker(s): ".to_string() + &"x".repeat(300),
        request: format!("GET /api/orders/{}", "0".repeat(400)),
        response: "HTTP 200\n\n".to_string() + &"{\"id\":1}".repeat(100),
        vu: 0,
        iteration: 0,
        violation: Some(convoy::metrics::Violation::TenantIsolationViolations),
        status: Some(200),
        cause: None,
    });
    let base = synthetic("20261101T000000Z-base00", 0, 100.0, 0, 2);
    let mut current = synthetic("20261102T000000Z-curr00", 1, 180.0, 40, 3);
    current.steps[0].name = r.steps[0].name.clone();
    let mut base = base;
    base.steps[0].name = r.steps[0].name.clone();
    r.comparison = Some(compare(&base, &current, &[], 0.10));
    r
}

#[test]
fn the_page_fits_a_phone_and_a_desktop() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let r = crowded();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_html");
    std::fs::create_dir_all(&shots).unwrap();
    for width in [1400, 390] {
        let shot = shots.join(format!("crowded-{width}.png"));
        let l = layout_at(&browser, &r, width, &shot);
        eprintln!("{width} px: {l:?}, screenshot {}", shot.display());
        assert_eq!(
            l.client_width,
            f64::from(width),
            "the frame is the viewport"
        );
        assert!(
            l.scroll_width <= f64::from(width),
            "at {width} px the page scrolls sideways: scrollWidth {}",
            l.scroll_width
        );
        assert!(
            l.header_overflow <= 0.0,
            "at {width} px the header overflows by {}",
            l.header_overflow
        );
        assert_eq!(l.charts_rendered, 3, "at {width} px");
        // 11-12 px labels, drawn near that size: never the 5 px of a wide
        // chart shrunk onto a phone.
        assert!(
            l.min_chart_text_px >= 10.0,
            "at {width} px chart labels are drawn at {:.1} px",
            l.min_chart_text_px
        );
        assert_eq!(l.loose_tables, 0, "every table is in its scrolling box");
        if width == 390 {
            // The fixture's tables are wider than a phone: they scroll in
            // their own boxes (so the check above is not vacuous).
            assert!(l.scrolling_tables >= 2, "{l:?}");
        }
    }
}

/// A report of a run shorter than three timeline windows, as the README's
/// first command gives (60 ms, one window).
fn short_run() -> Report {
    let mut r = synthetic("20261103T000000Z-short0", 0, 0.4, 0, 5);
    r.duration_secs = 0.06;
    let sample = r.timeline.samples()[0].clone();
    let mut timeline = convoy::metrics::Timeline::default();
    timeline.push(TimelineSample {
        t: 0.0,
        window: 1.0,
        ..sample
    });
    r.timeline = timeline;
    r
}

#[test]
fn a_short_run_shows_its_latency_distribution_not_a_dot() {
    let r = short_run();
    let page = html::render(&r);
    assert!(page.contains(r#"id="short-run""#), "the page says why");
    assert!(!page.contains("chart-latency"), "no chart over time");
    let Some(dom) = render_in_browser(&r) else {
        return;
    };
    assert!(
        dom.contains(r#"data-charts-rendered="1""#),
        "the distribution chart is drawn"
    );
    // Latency and service time, each at 8 percentiles, labelled by them.
    let chart = dom
        .split(r#"id="chart-distribution""#)
        .nth(1)
        .and_then(|s| s.split("</svg>").next())
        .expect("the distribution chart");
    assert_eq!(chart.matches("<polyline").count(), 2);
    assert_eq!(chart.matches("<circle").count(), 16);
    for label in [">p50<", ">p99<", ">p99.9<", ">max<"] {
        assert!(chart.contains(label), "{label}");
    }
    // The points are the report's own percentiles.
    let p99 = format!(
        "latency at p99: {}ms<",
        trim_float(r.overall.latency_ms.p99, 3)
    );
    assert!(chart.contains(&p99), "{p99} in {chart:.3000}");
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
    // No timeline: the run's histograms still give its distribution.
    assert!(dom.contains(r#"id="short-run""#));
    assert!(dom.contains(r#"data-charts-rendered="1""#));
    assert!(dom.contains(r#"id="comparison""#));
    assert!(dom.contains(r#"<span id="verdict" class="word">PASSED</span>"#));
}
