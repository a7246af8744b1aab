//! What a sweep leaves behind: the table of trials (terminal, CSV, JSON)
//! and a plot of the validation metric against each swept setting.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

/// One trial's line in the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub trial: usize,
    pub values: Vec<String>,
    /// `done`, `failed: …`, `interrupted`, `not run`.
    pub status: String,
    /// The picked validation metric.
    pub val: Option<f64>,
    /// Test metrics: the winner's only.
    pub test: Option<BTreeMap<String, f64>>,
    pub steps: Option<u64>,
    pub seconds: Option<f64>,
    pub run_dir: String,
}

/// The whole result, as written to `sweep-results.json`.
#[derive(Debug, Serialize)]
pub struct Results<'a> {
    pub recipe: String,
    pub axes: &'a [String],
    pub pick: String,
    pub strategy: &'a str,
    pub budget: Option<&'a str>,
    pub winner: Option<usize>,
    pub test_note: String,
    pub trials: &'a [Row],
}

fn num(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.4}"))
}

fn time(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.1} s"))
}

fn test_text(t: &Option<BTreeMap<String, f64>>) -> String {
    t.as_ref().map_or("–".into(), |m| {
        m.iter()
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The table for people, winner marked with `*`.
pub fn table(axes: &[String], metric: &str, rows: &[Row], winner: Option<usize>) -> String {
    let mut head = vec!["trial".to_string()];
    head.extend(axes.iter().cloned());
    head.extend([
        format!("val.{metric}"),
        "test (winner only)".into(),
        "steps".into(),
        "time".into(),
        "status".into(),
    ]);
    let mut cells: Vec<Vec<String>> = vec![head];
    for r in rows {
        let mark = if Some(r.trial) == winner { "*" } else { " " };
        let mut c = vec![format!("{mark}{}", r.trial)];
        c.extend(r.values.iter().cloned());
        c.extend([
            num(r.val),
            test_text(&r.test),
            r.steps.map_or("–".into(), |s| s.to_string()),
            time(r.seconds),
            r.status.clone(),
        ]);
        cells.push(c);
    }
    let widths: Vec<usize> = (0..cells[0].len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (n, c) in cells.iter().enumerate() {
        let line: Vec<String> = c
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    out
}

/// RFC 4180 CSV: values like `lora(rank = 4, alpha = 8)` hold commas.
pub fn csv(axes: &[String], metric: &str, rows: &[Row], winner: Option<usize>) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut head = vec!["trial".to_string()];
    head.extend(axes.iter().cloned());
    head.extend(
        [
            &format!("val.{metric}"),
            "test",
            "steps",
            "seconds",
            "status",
            "winner",
            "run_dir",
        ]
        .map(String::from),
    );
    let mut out = head.iter().map(|h| field(h)).collect::<Vec<_>>().join(",") + "\n";
    for r in rows {
        let mut c = vec![r.trial.to_string()];
        c.extend(r.values.iter().cloned());
        c.extend([
            r.val.map(|v| v.to_string()).unwrap_or_default(),
            r.test
                .as_ref()
                .map(|_| test_text(&r.test))
                .unwrap_or_default(),
            r.steps.map(|s| s.to_string()).unwrap_or_default(),
            r.seconds.map(|s| format!("{s:.3}")).unwrap_or_default(),
            r.status.clone(),
            (Some(r.trial) == winner).to_string(),
            r.run_dir.clone(),
        ]);
        out += &(c.iter().map(|s| field(s)).collect::<Vec<_>>().join(",") + "\n");
    }
    out
}

/// One panel per axis: the validation metric of each finished trial
/// against the axis's value (a log scale when a numeric axis spans a
/// factor of ten or more; evenly spaced categories otherwise). The winner
/// is drawn in another colour.
pub fn plot(axes: &[String], metric: &str, rows: &[Row], winner: Option<usize>) -> String {
    let (pw, ph, margin) = (360.0, 240.0, 50.0);
    let width = pw * axes.len() as f64;
    let done: Vec<&Row> = rows.iter().filter(|r| r.val.is_some()).collect();
    let vals: Vec<f64> = done.iter().filter_map(|r| r.val).collect();
    let (lo, hi) = vals
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let (lo, hi) = if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        let pad = (hi - lo) * 0.1;
        (lo - pad, hi + pad)
    };
    let y = |v: f64| margin + (ph - 2.0 * margin) * (1.0 - (v - lo) / (hi - lo));
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{ph}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (ai, axis) in axes.iter().enumerate() {
        let x0 = pw * ai as f64;
        let (left, right) = (x0 + margin, x0 + pw - 20.0);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="20" text-anchor="middle" font-weight="bold">val.{metric} vs {axis}</text>"#,
            (left + right) / 2.0
        );
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{}" x2="{right}" y2="{}" stroke="#333"/><line x1="{left}" y1="{margin}" x2="{left}" y2="{}" stroke="#333"/>"##,
            ph - margin,
            ph - margin,
            ph - margin
        );
        for t in 0..=4 {
            let v = lo + (hi - lo) * t as f64 / 4.0;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{v:.3}</text>"#,
                left - 4.0,
                y(v) + 4.0
            );
        }
        let xs = positions(done.iter().map(|r| r.values[ai].as_str()).collect());
        for ((label, frac), r) in xs.iter().zip(&done) {
            let x = left + 10.0 + (right - left - 20.0) * frac;
            let fill = if Some(r.trial) == winner {
                "#d62728"
            } else {
                "#1f77b4"
            };
            let _ = writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{:.1}" r="4" fill="{fill}"><title>trial {}: {axis} = {label}, val.{metric} = {:.4}</title></circle>"#,
                y(r.val.unwrap_or(lo)),
                r.trial,
                r.val.unwrap_or(f64::NAN)
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for (label, frac) in &xs {
            if seen.contains(&label.as_str()) {
                continue;
            }
            seen.push(label);
            let x = left + 10.0 + (right - left - 20.0) * frac;
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                ph - margin + 15.0,
                escape(label)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Where each value sits along the x axis, from 0 to 1.
fn positions(values: Vec<&str>) -> Vec<(String, f64)> {
    let nums: Option<Vec<f64>> = values
        .iter()
        .map(|v| v.trim().parse::<f64>().ok())
        .collect();
    let spread = |xs: &[f64]| -> Vec<f64> {
        let (a, b) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        xs.iter()
            .map(|x| if b > a { (x - a) / (b - a) } else { 0.5 })
            .collect()
    };
    let fracs = match nums {
        Some(xs) if !xs.is_empty() => {
            let (a, b) = xs
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(*v), b.max(*v))
                });
            if a > 0.0 && b / a >= 10.0 {
                spread(&xs.iter().map(|x| x.ln()).collect::<Vec<_>>())
            } else {
                spread(&xs)
            }
        }
        _ => {
            let mut cats: Vec<&str> = Vec::new();
            for v in &values {
                if !cats.contains(v) {
                    cats.push(v);
                }
            }
            values
                .iter()
                .map(|v| {
                    let i = cats.iter().position(|c| c == v).unwrap_or(0);
                    if cats.len() > 1 {
                        i as f64 / (cats.len() - 1) as f64
                    } else {
                        0.5
                    }
                })
                .collect()
        }
    };
    values.iter().map(|v| v.to_string()).zip(fracs).collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(trial: usize, values: &[&str], val: Option<f64>) -> Row {
        Row {
            trial,
            values: values.iter().map(|s| s.to_string()).collect(),
            status: if val.is_some() {
                "done"
            } else {
                "failed: exit 1"
            }
            .into(),
            val,
            test: None,
            steps: val.map(|_| 10),
            seconds: val.map(|_| 1.5),
            run_dir: format!("trial-{trial:02}"),
        }
    }

    #[test]
    fn csv_quotes_values_with_commas() {
        let rows = [row(1, &["lora(rank = 4, alpha = 8)"], Some(0.5))];
        let c = csv(&["peft".into()], "accuracy", &rows, Some(1));
        assert_eq!(
            c.lines().nth(1).unwrap(),
            "1,\"lora(rank = 4, alpha = 8)\",0.5,,10,1.500,done,true,trial-01"
        );
    }

    #[test]
    fn table_marks_the_winner() {
        let rows = [row(1, &["1e-4"], Some(0.5)), row(2, &["1e-3"], Some(0.7))];
        let t = table(&["lr".into()], "accuracy", &rows, Some(2));
        assert!(t.lines().any(|l| l.starts_with("*2 ")), "{t}");
        assert!(t.lines().any(|l| l.starts_with(" 1 ")), "{t}");
    }

    #[test]
    fn numeric_axes_spanning_decades_are_log_spaced() {
        let p = positions(vec!["1e-4", "1e-3", "1e-2"]);
        assert!((p[1].1 - 0.5).abs() < 1e-9, "{p:?}");
        let p = positions(vec!["4", "8", "12"]);
        assert!((p[1].1 - 0.5).abs() < 1e-9, "{p:?}");
        let p = positions(vec!["lora(rank = 4)", "ia3()", "lora(rank = 4)"]);
        assert_eq!((p[0].1, p[1].1, p[2].1), (0.0, 1.0, 0.0));
    }

    #[test]
    fn plot_has_a_point_per_finished_trial_per_axis() {
        let rows = [
            row(1, &["1e-4", "4"], Some(0.5)),
            row(2, &["1e-3", "8"], Some(0.7)),
            row(3, &["1e-2", "8"], None),
        ];
        let svg = plot(&["lr".into(), "rank".into()], "accuracy", &rows, Some(2));
        assert_eq!(svg.matches("<circle").count(), 4);
        assert_eq!(svg.matches("#d62728").count(), 2);
    }
}
