//! The summary's plots, drawn as inline SVG (no script, no library): for a comparison, each case's
//! metric under the baseline (x) against the candidate (y), so a case below the diagonal (worse) stands
//! out in red; for a single run, each metric's distribution over the cases, one dot per case coloured
//! by its verdict. Every dot links to its case's section and names it on hover. Values are clamped to
//! [0, 1], the range of every plotted metric.

use std::fmt::Write;

use super::{attr, text};

/// One case's values in a plot.
pub struct Point<'a> {
    /// The case's section anchor.
    pub anchor: &'a str,
    pub name: &'a str,
    /// Baseline value (scatter) or the value (strip).
    pub x: f64,
    /// Candidate value (scatter only).
    pub y: f64,
    /// A CSS class for the dot (the verdict, in strips).
    pub class: &'static str,
}

const SIZE: f64 = 200.0;
const PAD: f64 = 30.0;

fn clamp(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// A scatter of baseline (x) against candidate (y) for one metric, with the diagonal; dots below it
/// are `worse`, above it `better`.
pub fn scatter(title: &str, base: &str, cand: &str, points: &[Point]) -> String {
    let full = SIZE + 2.0 * PAD;
    let px = |v: f64| PAD + clamp(v) * SIZE;
    let py = |v: f64| PAD + (1.0 - clamp(v)) * SIZE;
    let mut s = String::new();
    write!(
        s,
        r#"<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{full}" height="{h}" viewBox="0 0 {full} {h}" role="img" aria-label="{}">"#,
        attr(title),
        h = full + 14.0
    )
    .unwrap();
    write!(s, r#"<text x="{}" y="16" class="title">{}</text>"#, full / 2.0, text(title)).unwrap();
    write!(s, r#"<rect x="{PAD}" y="{PAD}" width="{SIZE}" height="{SIZE}" class="frame"/>"#).unwrap();
    write!(s, r#"<line x1="{}" y1="{}" x2="{}" y2="{}" class="diagonal"/>"#, px(0.0), py(0.0), px(1.0), py(1.0))
        .unwrap();
    for v in [0.0, 0.5, 1.0] {
        write!(s, r#"<text x="{}" y="{}" class="tick">{v}</text>"#, px(v), PAD + SIZE + 12.0).unwrap();
        write!(s, r#"<text x="{}" y="{}" class="tick end">{v}</text>"#, PAD - 4.0, py(v) + 4.0).unwrap();
    }
    write!(s, r#"<text x="{}" y="{}" class="axis">{}</text>"#, full / 2.0, full + 8.0, text(base)).unwrap();
    write!(
        s,
        r#"<text x="10" y="{}" class="axis" transform="rotate(-90 10 {})">{}</text>"#,
        full / 2.0,
        full / 2.0,
        text(cand)
    )
    .unwrap();
    for p in points {
        let class = if p.y < p.x - 1e-9 {
            "worse"
        } else if p.y > p.x + 1e-9 {
            "better"
        } else {
            "same"
        };
        write!(
            s,
            r##"<a href="#{}"><circle cx="{:.1}" cy="{:.1}" r="4" class="{class}"><title>{}: {:.3} → {:.3}</title></circle></a>"##,
            attr(p.anchor),
            px(p.x),
            py(p.y),
            text(p.name),
            p.x,
            p.y
        )
        .unwrap();
    }
    s.push_str("</svg>");
    s
}

/// One row per metric, each case a dot at its value; dots are spread over five lanes so equal values
/// stay visible.
pub fn strips(rows: &[(String, Vec<Point>)]) -> String {
    const LEFT: f64 = 130.0;
    const WIDTH: f64 = 480.0;
    const ROW: f64 = 34.0;
    let full_w = LEFT + WIDTH + 20.0;
    let full_h = ROW * rows.len() as f64 + 30.0;
    let px = |v: f64| LEFT + clamp(v) * WIDTH;
    let mut s = String::new();
    write!(
        s,
        r#"<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{full_w}" height="{full_h}" viewBox="0 0 {full_w} {full_h}" role="img" aria-label="each metric over the cases">"#
    )
    .unwrap();
    for (i, (label, points)) in rows.iter().enumerate() {
        let top = 8.0 + ROW * i as f64;
        write!(s, r#"<text x="{}" y="{}" class="tick end">{}</text>"#, LEFT - 8.0, top + ROW / 2.0, text(label))
            .unwrap();
        write!(s, r#"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" class="frame"/>"#, LEFT + WIDTH, y = top + ROW - 4.0)
            .unwrap();
        for (j, p) in points.iter().enumerate() {
            let lane = (j % 5) as f64;
            write!(
                s,
                r##"<a href="#{}"><circle cx="{:.1}" cy="{:.1}" r="4" class="{}"><title>{}: {:.3}</title></circle></a>"##,
                attr(p.anchor),
                px(p.x),
                top + 4.0 + lane * 5.0,
                p.class,
                text(p.name),
                p.x
            )
            .unwrap();
        }
    }
    let axis_y = 8.0 + ROW * rows.len() as f64 + 10.0;
    for v in [0.0, 0.25, 0.5, 0.75, 1.0] {
        write!(s, r#"<text x="{}" y="{axis_y}" class="tick">{v}</text>"#, px(v)).unwrap();
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point<'a>(name: &'a str, x: f64, y: f64) -> Point<'a> {
        Point { anchor: "case-1", name, x, y, class: "passed" }
    }

    #[test]
    fn scatter_places_and_colours_each_case() {
        let svg = scatter("mrr", "base", "cand", &[point("a", 1.0, 0.5), point("b", 0.25, 0.75), point("c", 0.5, 0.5)]);
        // x = 30 + v * 200, y = 30 + (1 - v) * 200.
        assert!(svg.contains(r#"cx="230.0" cy="130.0" r="4" class="worse""#), "{svg}");
        assert!(svg.contains(r#"cx="80.0" cy="80.0" r="4" class="better""#), "{svg}");
        assert!(svg.contains(r#"cx="130.0" cy="130.0" r="4" class="same""#), "{svg}");
        assert!(svg.contains("<title>a: 1.000 → 0.500</title>"));
    }

    #[test]
    fn names_are_escaped_and_values_clamped() {
        let svg = scatter("m", "<b>", "c", &[point("x\"<y>", f64::NAN, 2.0)]);
        assert!(svg.contains("<title>x\"&lt;y&gt;: NaN → 2.000</title>"), "{svg}");
        assert!(svg.contains(r#"cx="30.0" cy="30.0""#));
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
    }

    #[test]
    fn strips_put_each_metric_on_its_row() {
        let svg =
            strips(&[("mrr".into(), vec![point("a", 0.5, 0.0)]), ("recall@5".into(), vec![point("b", 1.0, 0.0)])]);
        // x = 130 + v * 480; row i's first lane at y = 8 + 34 i + 4.
        assert!(svg.contains(r#"cx="370.0" cy="12.0""#), "{svg}");
        assert!(svg.contains(r#"cx="610.0" cy="46.0""#), "{svg}");
    }
}
