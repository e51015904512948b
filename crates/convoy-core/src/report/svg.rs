//! Line charts as inline SVG, drawn in Rust so the HTML report needs no
//! script library, no CDN and no network: the page is one file that opens
//! anywhere, including an air-gapped CI artifact viewer.
//!
//! A chart scales with its container, and its labels scale with it: a
//! chart laid out for a wide page shrinks its text to a few pixels on a
//! phone. So each chart is drawn twice ([`charts`]), on a wide and on a
//! narrow frame ([`Frame::WIDE`], [`Frame::NARROW`]), and the stylesheet
//! shows the one that fits the screen: text stays near its CSS size on
//! both.

use std::fmt::Write as _;

use super::html::escape;

/// One line of a chart.
pub struct Series<'a> {
    /// Legend label.
    pub name: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// `(x, y)` points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// A chart to draw.
pub struct Chart<'a> {
    /// An id for the SVG element (also used for tests).
    pub id: &'a str,
    /// Shown above the plot and read by screen readers.
    pub title: &'a str,
    /// The lines.
    pub series: Vec<Series<'a>>,
    /// Formats a y value for the axis and the point tooltips.
    pub format_y: &'a dyn Fn(f64) -> String,
    /// Formats an x value (seconds) for the axis.
    pub format_x: &'a dyn Fn(f64) -> String,
    /// The y axis reaches at least this (so an all-zero error rate draws
    /// on a 0–1 % axis, not a 0–100 % one).
    pub min_y_max: f64,
    /// Where the x axis has its labelled ticks (the last one is the axis'
    /// end); empty: round numbers from 0 to the largest x.
    pub x_ticks: Vec<f64>,
}

/// The drawing area of a chart, in SVG user units (CSS pixels when the
/// chart is shown at its own width).
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// A class for the stylesheet (`wide`, `narrow`).
    pub class: &'static str,
    /// Appended to the chart's id (the wide frame keeps the bare id).
    pub id_suffix: &'static str,
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    /// About how many ticks an axis of round numbers gets.
    ticks: f64,
}

impl Frame {
    /// For a desktop page: the chart is shown 700–900 px wide.
    pub const WIDE: Frame = Frame {
        class: "wide",
        id_suffix: "",
        width: 720.0,
        height: 240.0,
        left: 72.0,
        right: 16.0,
        top: 28.0,
        bottom: 30.0,
        ticks: 5.0,
    };
    /// For a phone: the chart is shown 330–400 px wide, so its text is
    /// drawn near its CSS size.
    pub const NARROW: Frame = Frame {
        class: "narrow",
        id_suffix: "-narrow",
        width: 360.0,
        height: 230.0,
        left: 54.0,
        right: 14.0,
        top: 28.0,
        bottom: 30.0,
        ticks: 4.0,
    };
}

/// Above this many points a series gets no per-point markers.
const MAX_MARKERS: usize = 120;

/// `chart` drawn on every frame, the wide one first.
pub fn charts(chart: &Chart<'_>) -> String {
    let mut out = line_chart(chart, &Frame::WIDE);
    out.push_str(&line_chart(chart, &Frame::NARROW));
    out
}

/// Renders `chart` on `frame` as an `<svg>` element.
pub fn line_chart(chart: &Chart<'_>, frame: &Frame) -> String {
    let Frame {
        width,
        height,
        left,
        right,
        top,
        bottom,
        ..
    } = *frame;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart {class}" id="{id}{suffix}" viewBox="0 0 {width} {height}" role="img" aria-label="{title}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>"#,
        class = frame.class,
        id = escape(chart.id),
        suffix = frame.id_suffix,
        title = escape(chart.title),
    );
    let all: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if all.is_empty() {
        let _ = write!(
            out,
            r#"<text class="empty" x="{}" y="{}" text-anchor="middle">no samples</text></svg>"#,
            width / 2.0,
            height / 2.0
        );
        return out;
    }
    let (y_step, y_max) = nice_scale(
        all.iter()
            .map(|p| p.1)
            .fold(chart.min_y_max.max(0.0), f64::max),
        frame.ticks,
    );
    let x_ticks: Vec<f64> = if chart.x_ticks.is_empty() {
        let (x_step, x_max) = nice_scale(
            all.iter().map(|p| p.0).fold(0.0_f64, f64::max).max(1.0),
            frame.ticks,
        );
        // Whole steps: no drift from adding a fraction again and again.
        (0..)
            .map(|i| f64::from(i) * x_step)
            .take_while(|x| *x <= x_max + x_step / 2.0)
            .collect()
    } else {
        chart.x_ticks.clone()
    };
    let x_max = x_ticks.last().copied().filter(|x| *x > 0.0).unwrap_or(1.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let sx = |x: f64| left + x / x_max * plot_w;
    let sy = |y: f64| top + plot_h - y / y_max * plot_h;

    // Grid and axes.
    out.push_str(r#"<g class="grid">"#);
    let mut y = 0.0;
    while y <= y_max + y_step / 2.0 {
        let _ = write!(
            out,
            r#"<line x1="{left}" x2="{x2}" y1="{py:.1}" y2="{py:.1}"/><text class="tick" x="{tx}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            x2 = width - right,
            py = sy(y),
            tx = left - 6.0,
            ty = sy(y) + 4.0,
            label = escape(&(chart.format_y)(y)),
        );
        y += y_step;
    }
    for &x in &x_ticks {
        let _ = write!(
            out,
            r#"<text class="tick" x="{px:.1}" y="{ty}" text-anchor="middle">{label}</text>"#,
            px = sx(x),
            ty = height - 10.0,
            label = escape(&(chart.format_x)(x)),
        );
    }
    out.push_str("</g>");

    // Legend.
    let mut lx = left;
    for s in &chart.series {
        let _ = write!(
            out,
            r#"<g class="legend"><rect x="{lx}" y="8" width="12" height="12" fill="{c}"/><text x="{tx}" y="18">{name}</text></g>"#,
            c = escape(s.color),
            tx = lx + 16.0,
            name = escape(s.name),
        );
        lx += 24.0 + 8.0 * s.name.chars().count() as f64;
    }

    // Lines, then markers with native tooltips when there are few points.
    for s in &chart.series {
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="series" data-series="{name}" fill="none" stroke="{c}" stroke-width="2" points="{p}"/>"#,
            name = escape(s.name),
            c = escape(s.color),
            p = points.join(" "),
        );
        if s.points.len() <= MAX_MARKERS {
            for &(x, y) in s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
            {
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"><title>{name} at {t}: {v}</title></circle>"#,
                    sx(x),
                    sy(y),
                    c = escape(s.color),
                    name = escape(s.name),
                    t = escape(&(chart.format_x)(x)),
                    v = escape(&(chart.format_y)(y)),
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// A step of 1, 2 or 5 × 10ⁿ giving about `ticks` ticks, and the axis
/// maximum (a whole number of steps at or above `max`).
fn nice_scale(max: f64, ticks: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / ticks;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (step, (max / step).ceil() * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_scale(97.0, 5.0), (20.0, 100.0));
        assert_eq!(nice_scale(0.0, 5.0), (0.2, 1.0));
        assert_eq!(nice_scale(1234.0, 5.0), (500.0, 1500.0));
        assert_eq!(nice_scale(97.0, 4.0), (50.0, 100.0));
    }

    #[test]
    fn draws_one_polyline_per_series_and_escapes_labels() {
        let f = |v: f64| format!("{v}");
        let chart = Chart {
            id: "c",
            title: "a < b",
            series: vec![
                Series {
                    name: "p50",
                    color: "#000",
                    points: vec![(0.0, 1.0), (1.0, 2.0)],
                },
                Series {
                    name: "p99",
                    color: "#f00",
                    points: vec![(0.0, 3.0), (1.0, f64::NAN)],
                },
            ],
            format_y: &f,
            format_x: &f,
            min_y_max: 0.0,
            x_ticks: Vec::new(),
        };
        let svg = line_chart(&chart, &Frame::WIDE);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt; b"));
        assert!(!svg.contains("NaN"));
        let both = charts(&chart);
        assert!(both.contains(r#"class="chart wide" id="c""#));
        assert!(both.contains(r#"class="chart narrow" id="c-narrow" viewBox="0 0 360 230""#));
    }

    #[test]
    fn given_ticks_label_the_x_axis() {
        let f = |v: f64| format!("p{v}");
        let chart = Chart {
            id: "d",
            title: "t",
            series: vec![Series {
                name: "latency",
                color: "#000",
                points: vec![(0.0, 1.0), (3.0, 9.0)],
            }],
            format_y: &f,
            format_x: &f,
            min_y_max: 0.0,
            x_ticks: vec![0.0, 1.0, 2.0, 3.0],
        };
        let svg = line_chart(&chart, &Frame::NARROW);
        for t in ["p0<", "p1<", "p2<", "p3<"] {
            assert!(svg.contains(t), "{t}: {svg}");
        }
    }
}
