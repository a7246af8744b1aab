//! The run report: loss and metric curves as small SVG charts (written
//! directly: a polyline per series needs no plotting crate) and a markdown
//! summary.

use std::fmt::Write;

/// One named series of `(step, value)` points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart of the series over a shared step axis.
pub fn svg_chart(title: &str, series: &[Series]) -> String {
    let (w, h, m) = (640.0, 360.0, 48.0);
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if !y.is_finite() {
            continue;
        }
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 == x0 {
        x1 = x0 + 1.0;
    }
    if y1 == y0 {
        y1 = y0 + 1.0;
    }
    let sx = |x: f64| m + (x - x0) / (x1 - x0) * (w - 2.0 * m);
    let sy = |y: f64| h - m - (y - y0) / (y1 - y0) * (h - 2.0 * m);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<path d="M{m} {m} V{} H{}" fill="none" stroke="#444"/>"##,
        h - m,
        w - m
    );
    for (v, y) in [(y0, h - m), (y1, m)] {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            m - 4.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    for (v, x) in [(x0, m), (x1, w - m)] {
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            h - m + 16.0,
            fmt_num(v)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">step</text>"#,
        w / 2.0,
        h - 8.0
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let d: Vec<String> = s
            .points
            .iter()
            .filter(|(_, y)| y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if d.len() == 1 {
            let _ = writeln!(
                out,
                r#"<circle cx="{}" cy="{}" r="3" fill="{color}"/>"#,
                d[0].split(',').next().unwrap_or("0"),
                d[0].split(',').nth(1).unwrap_or("0")
            );
        } else if !d.is_empty() {
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"/>"#,
                d.join(" ")
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
            w - m - 120.0,
            m + 14.0 * i as f64,
            escape(&s.name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_one_line_per_series() {
        let s = vec![
            Series {
                name: "train loss".into(),
                points: vec![(0.0, 1.0), (1.0, 0.5), (2.0, f64::NAN)],
            },
            Series {
                name: "val loss".into(),
                points: vec![(2.0, 0.7)],
            },
        ];
        let svg = svg_chart("loss <ft>", &s);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("loss &lt;ft&gt;"));
        assert!(svg.starts_with("<svg"));
    }
}
