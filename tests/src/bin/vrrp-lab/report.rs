//! The benches' common output: a [`Report`] per bench, written as `<dir>/<name>.json` (serde),
//! plotted as `<dir>/<name>.svg` (plotters, SVG backend only) and printed as a table of
//! vrrp-agent against keepalived with their ratio and the command that reproduces it.
//! `vrrp-lab bench-report` joins the reports into `<dir>/report.md`.
//!
//! `<dir>` is `$VRRP_BENCH_DIR` (set by `cargo xtask bench`), else `target/bench`.
//!
//! Adopting it in a bench: build a `Report::new(name, title, command)`, push one [`Row`] per
//! figure (`row(metric, agent, keepalived, unit)`), optionally one [`Series`] per
//! implementation and case (the raw samples, plotted as a distribution), then `report.emit()`.
use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// One bench's results.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// File stem: `<name>.json`, `<name>.svg`; also the `cargo xtask bench <name>` subcommand.
    pub name: String,
    /// One line saying what was measured.
    pub title: String,
    /// The command that reproduces these figures.
    pub command: String,
    /// Figures side by side.
    pub rows: Vec<Row>,
    /// Raw samples per implementation and case (plotted as empirical CDFs).
    #[serde(default)]
    pub series: Vec<Series>,
    /// Free text lines printed below the table (setup, failures, caveats).
    #[serde(default)]
    pub notes: Vec<String>,
    /// UTC time the report was written, RFC 3339.
    #[serde(default)]
    pub when: String,
}

/// One figure: vrrp-agent's and keepalived's value of `metric` (either may be missing, e.g. a
/// figure only one of them has).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Row {
    pub metric: String,
    pub agent: Option<f64>,
    pub keepalived: Option<f64>,
    pub unit: String,
}

impl Row {
    /// agent / keepalived, when both exist and keepalived's is not zero.
    pub fn ratio(&self) -> Option<f64> {
        match (self.agent, self.keepalived) {
            (Some(a), Some(k)) if k != 0.0 => Some(a / k),
            _ => None,
        }
    }
}

/// Samples of one implementation in one case, e.g. `vrrp-agent, hard cut` in ms.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Series {
    pub label: String,
    pub unit: String,
    pub values: Vec<f64>,
}

/// Where the reports go: `$VRRP_BENCH_DIR`, else `target/bench`.
pub fn dir() -> PathBuf {
    std::env::var_os("VRRP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench"))
}

/// min / p50 / p99 / max of `v` (nearest rank), `None` when empty.
pub fn summary(v: &[f64]) -> Option<[f64; 4]> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
        s[rank.clamp(1, s.len()) - 1]
    };
    Some([s[0], pct(50.0), pct(99.0), s[s.len() - 1]])
}

impl Report {
    pub fn new(name: &str, title: &str, command: &str) -> Self {
        Report {
            name: name.into(),
            title: title.into(),
            command: command.into(),
            ..Default::default()
        }
    }

    pub fn row(&mut self, metric: &str, agent: Option<f64>, keepalived: Option<f64>, unit: &str) {
        self.rows.push(Row {
            metric: metric.into(),
            agent,
            keepalived,
            unit: unit.into(),
        });
    }

    pub fn series(&mut self, label: &str, unit: &str, values: &[f64]) {
        self.series.push(Series {
            label: label.into(),
            unit: unit.into(),
            values: values.to_vec(),
        });
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// The table as Markdown (also what is printed).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| {} | vrrp-agent | keepalived | ratio |", self.name);
        let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
        for r in &self.rows {
            let v = |x: Option<f64>| x.map(|x| fmt_num(x, &r.unit)).unwrap_or_else(|| "–".into());
            let ratio = r
                .ratio()
                .map(|x| format!("{x:.2}×"))
                .unwrap_or_else(|| "–".into());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {ratio} |",
                r.metric,
                v(r.agent),
                v(r.keepalived)
            );
        }
        s
    }

    /// Prints the table, writes the JSON and the SVG; prints where they went.
    pub fn emit(mut self) -> Result<()> {
        self.when = utc_now();
        println!("\n{}: {}", self.name, self.title);
        print!("{}", self.markdown());
        for n in &self.notes {
            println!("  {n}");
        }
        println!("  reproduce: {}", self.command);
        let d = dir();
        fs::create_dir_all(&d).with_context(|| format!("creating {d:?}"))?;
        let json = d.join(format!("{}.json", self.name));
        fs::write(&json, serde_json::to_string_pretty(&self)?)
            .with_context(|| format!("writing {json:?}"))?;
        let svg = d.join(format!("{}.svg", self.name));
        plot(&self, &svg).with_context(|| format!("plotting {svg:?}"))?;
        println!("  wrote {} and {}", json.display(), svg.display());
        Ok(())
    }
}

fn fmt_num(x: f64, unit: &str) -> String {
    let n = if x.abs() >= 1000.0 || x == x.trunc() && x.abs() >= 10.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    if unit.is_empty() {
        n
    } else {
        format!("{n} {unit}")
    }
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

const PALETTE: [plotters::style::RGBColor; 6] = [
    plotters::style::RGBColor(0x1f, 0x77, 0xb4),
    plotters::style::RGBColor(0xd6, 0x27, 0x28),
    plotters::style::RGBColor(0x2c, 0xa0, 0x2c),
    plotters::style::RGBColor(0xff, 0x7f, 0x0e),
    plotters::style::RGBColor(0x94, 0x67, 0xbd),
    plotters::style::RGBColor(0x8c, 0x56, 0x4b),
];

/// With series: their empirical CDFs (x the value, y the fraction of samples ≤ it), one panel
/// per unit. Without: one bar per row with both values, the ratio agent/keepalived.
fn plot(r: &Report, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let series: Vec<&Series> = r.series.iter().filter(|s| !s.values.is_empty()).collect();
    if !series.is_empty() {
        // One panel per case: a label `<implementation>, <case>` goes to the panel `<case>`
        // (samples of one unit otherwise share a panel).
        let group = |s: &Series| -> String {
            match s.label.split_once(", ") {
                Some((_, case)) => format!("{case} ({})", s.unit),
                None => s.unit.clone(),
            }
        };
        let mut groups: Vec<String> = Vec::new();
        for s in &series {
            if !groups.contains(&group(s)) {
                groups.push(group(s));
            }
        }
        let root = SVGBackend::new(path, (800, 360 * groups.len() as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((groups.len(), 1));
        for (panel, g) in panels.iter().zip(&groups) {
            let mine: Vec<&&Series> = series.iter().filter(|s| group(s) == *g).collect();
            let unit = mine[0].unit.clone();
            let lo = mine
                .iter()
                .flat_map(|s| s.values.iter().copied())
                .fold(f64::INFINITY, f64::min);
            let hi = mine
                .iter()
                .flat_map(|s| s.values.iter().copied())
                .fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.05).max(1e-3);
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{}: {g}", r.name), ("sans-serif", 15))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..1.0)?;
            chart
                .configure_mesh()
                .x_desc(unit)
                .y_desc("fraction of runs ≤ x")
                .draw()?;
            for (i, s) in mine.iter().enumerate() {
                let c = PALETTE[i % PALETTE.len()];
                let mut v = s.values.clone();
                v.sort_by(f64::total_cmp);
                let n = v.len() as f64;
                let pts: Vec<(f64, f64)> = v
                    .iter()
                    .enumerate()
                    .flat_map(|(k, x)| [(*x, k as f64 / n), (*x, (k + 1) as f64 / n)])
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                    .label(format!("{} (n={})", s.label, v.len()))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
        return Ok(());
    }
    // No samples: the ratio agent/keepalived per row (1 = the same; below 1 the agent's figure
    // is smaller).
    let rows: Vec<(&Row, f64)> = r
        .rows
        .iter()
        .filter_map(|row| row.ratio().map(|x| (row, x)))
        .collect();
    let root =
        SVGBackend::new(path, (800, 120 + 30 * rows.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let hi = rows.iter().map(|(_, x)| *x).fold(1.0f64, f64::max) * 1.15;
    let n = rows.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: vrrp-agent / keepalived (1 = same)", r.name),
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(260)
        .build_cartesian_2d(0.0..hi, (0..n).into_segmented())?;
    let labels: Vec<String> = rows.iter().map(|(row, _)| row.metric.clone()).collect();
    chart
        .configure_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("ratio")
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(i, (_, x))| {
        Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (*x, SegmentValue::Exact(i + 1)),
            ],
            PALETTE[0].mix(0.7).filled(),
        )
    }))?;
    chart.draw_series(LineSeries::new(
        [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
        PALETTE[1].stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

/// `vrrp-lab bench-report NAMES...`: `<dir>/report.md` from `<dir>/<name>.json` of each name
/// (a missing one is listed as not run). Returns the path.
pub fn write_markdown(names: &[String]) -> Result<PathBuf> {
    let d = dir();
    let mut md = String::from(
        "# vrrp-agent against keepalived: benchmark report\n\n\
         Written by `cargo xtask bench all`. Ratio = vrrp-agent / keepalived.\n",
    );
    for name in names {
        let json = d.join(format!("{name}.json"));
        let _ = writeln!(md, "\n## {name}\n");
        let r: Report = match fs::read_to_string(&json)
            .map_err(anyhow::Error::from)
            .and_then(|t| serde_json::from_str(&t).map_err(anyhow::Error::from))
        {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(md, "Not run ({json:?}: {e}).");
                continue;
            }
        };
        let _ = writeln!(md, "{} (measured {}).\n", r.title, r.when);
        md.push_str(&r.markdown());
        md.push('\n');
        for n in &r.notes {
            let _ = writeln!(md, "- {n}");
        }
        if !r.notes.is_empty() {
            md.push('\n');
        }
        let _ = writeln!(md, "Reproduce: `{}`\n", r.command);
        if d.join(format!("{name}.svg")).exists() {
            let _ = writeln!(md, "![{name}]({name}.svg)");
        }
    }
    let path = d.join("report.md");
    fs::write(&path, md).with_context(|| format!("writing {path:?}"))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(summary(&v), Some([1.0, 50.0, 99.0, 100.0]));
        assert_eq!(summary(&[]), None);
    }

    #[test]
    fn ratio_and_markdown() {
        let mut r = Report::new("x", "t", "cargo xtask bench x");
        r.row("gap", Some(2.0), Some(4.0), "ms");
        r.row("only agent", Some(1.0), None, "ms");
        let md = r.markdown();
        assert!(md.contains("| gap | 2.00 ms | 4.00 ms | 0.50× |"), "{md}");
        assert!(md.contains("| only agent | 1.00 ms | – | – |"), "{md}");
    }

    #[test]
    fn plots_both_kinds() {
        let d = tempfile::tempdir().unwrap();
        let mut r = Report::new("x", "t", "c");
        r.row("gap", Some(2.0), Some(4.0), "ms");
        plot(&r, &d.path().join("bars.svg")).unwrap();
        r.series("vrrp-agent", "ms", &[1.0, 2.0, 3.0]);
        r.series("keepalived", "ms", &[2.0, 3.0, 4.0]);
        plot(&r, &d.path().join("cdf.svg")).unwrap();
        for f in ["bars.svg", "cdf.svg"] {
            let t = fs::read_to_string(d.path().join(f)).unwrap();
            assert!(t.starts_with("<svg") && t.contains("<text"), "{f}: {t}");
        }
    }
}
