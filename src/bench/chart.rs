//! `--chart FILE.svg`: the latency CDF of a run and, for `cold`, a stacked bar of the
//! median phases, drawn with `plotters` into an SVG file.
//!
//! Does not: draw more than one run (compare runs with `--compare`), or embed fonts (text
//! is SVG `<text>`, rendered with the viewer's sans-serif).
//! Limits: the CDF is drawn through at most [`CDF_POINTS`] points (quantiles of the sorted
//! samples), so a run of millions of invocations still makes a small file.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use super::phases::PhasesReport;
use super::report::Report;
use super::BenchError;

/// Most points on the CDF line.
pub const CDF_POINTS: usize = 2000;
const WIDTH: u32 = 960;
const CDF_HEIGHT: u32 = 480;
const BAR_HEIGHT: u32 = 320;

/// `(latency ms, fraction of runs at or below it)` along the sorted samples.
pub fn cdf_points(sorted_ns: &[u64]) -> Vec<(f64, f64)> {
    let n = sorted_ns.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(CDF_POINTS).max(1);
    let mut out: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (sorted_ns[i] as f64 / 1e6, (i + 1) as f64 / n as f64))
        .collect();
    if out.last().map(|p| p.1) != Some(1.0) {
        out.push((sorted_ns[n - 1] as f64 / 1e6, 1.0));
    }
    out
}

/// Draws `report` into `path` (overwritten).
pub fn write(report: &Report, path: &Path) -> Result<(), BenchError> {
    let err = |detail: String| BenchError::Chart {
        path: path.to_path_buf(),
        detail,
    };
    let svg = render(report).map_err(|e| err(e.to_string()))?;
    std::fs::write(path, svg).map_err(|source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The SVG text of `report`'s chart.
pub fn render(report: &Report) -> Result<String, Box<dyn Error>> {
    let phases = report.phases_ms.as_ref().filter(|p| p.n > 0);
    let height = CDF_HEIGHT + if phases.is_some() { BAR_HEIGHT } else { 0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(CDF_HEIGHT);
        draw_cdf(&top, report)?;
        if let Some(p) = phases {
            draw_phase_bar(&bottom, p)?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// A drawing area of an SVG chart.
pub type Area<'a, 'b> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_cdf(area: &Area<'_, '_>, report: &Report) -> Result<(), Box<dyn Error>> {
    let points = cdf_points(&report.latencies_ns);
    let x_max = points.last().map_or(1.0, |p| p.0).max(0.001) * 1.05;
    let title = format!(
        "hearth bench {} {}: latency CDF (n {})",
        report.mode,
        report.function,
        report.latencies_ns.len()
    );
    let series = [(report.mode.to_string(), points)];
    draw_cdfs(
        area,
        &title,
        "end-to-end latency (ms)",
        "fraction of invocations",
        &series,
        x_max,
    )
}

/// Draws one CDF line per `(name, points)` of `series` (in `Palette99`'s colours, the
/// first blue) on `area`, with the x axis from 0 to `x_max` ms (points beyond are cut).
pub fn draw_cdfs(
    area: &Area<'_, '_>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    x_max: f64,
) -> Result<(), Box<dyn Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x_max, 0f64..1f64)?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 13))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    let mut drawn = 0;
    for (i, (name, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let color = if i == 0 {
            BLUE.to_rgba()
        } else {
            Palette99::pick(i).to_rgba()
        };
        chart
            .draw_series(LineSeries::new(
                points.iter().copied().filter(|p| p.0 <= x_max),
                color.stroke_width(2),
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        drawn += 1;
    }
    if drawn > 0 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

fn draw_phase_bar(area: &Area<'_, '_>, p: &PhasesReport) -> Result<(), Box<dyn Error>> {
    let total: f64 = p.phases.iter().map(|s| s.p50).sum();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("median phases of a cold start (sum {total:.3} ms)"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..(total.max(0.001) * 1.05), 0f64..1f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .label_style(("sans-serif", 13))
        .x_desc("ms")
        .draw()?;
    // The bar sits in the lower third, below the legend in the upper right.
    let mut x = 0.0;
    for (i, s) in p.phases.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let (x0, x1) = (x, x + s.p50);
        x = x1;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.05), (x1, 0.35)],
                color.filled(),
            )))?
            .label(format!("{} {:.3} ms", s.name, s.p50))
            .legend(move |(lx, ly)| {
                Rectangle::new([(lx, ly - 5), (lx + 12, ly + 5)], color.filled())
            });
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::conn::StartKind;
    use crate::bench::phases::{DaemonPhases, PhaseSample};
    use crate::bench::report::{utc_now, Tally};

    #[test]
    fn cdf_points_end_at_one() {
        assert!(cdf_points(&[]).is_empty());
        assert_eq!(cdf_points(&[1_000_000]), vec![(1.0, 1.0)]);
        let v: Vec<u64> = (1..=10_000).collect();
        let p = cdf_points(&v);
        assert!(p.len() <= CDF_POINTS + 1);
        assert_eq!(*p.last().unwrap(), (0.01, 1.0));
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
    }

    fn svg_of(report: &Report) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        write(report, &path).unwrap();
        std::fs::read_to_string(&path).unwrap()
    }

    fn assert_svg(text: &str) {
        let t = text.trim();
        assert!(!t.is_empty());
        assert!(t.starts_with("<svg"), "{}", &t[..t.len().min(200)]);
        assert!(
            t.ends_with("</svg>"),
            "{}",
            &t[t.len().saturating_sub(200)..]
        );
    }

    #[test]
    fn warm_and_cold_charts_are_svg() {
        let tally = Tally {
            latencies_ns: (1..=500).map(|i| 1_000_000 + i * 7_919).collect(),
            ok: 500,
            wall_ns: 1_000_000_000,
            ..Tally::default()
        };
        let warm = Report::new("warm", "echo", utc_now(), &tally);
        let text = svg_of(&warm);
        assert_svg(&text);
        assert!(text.contains("latency CDF"));

        let mut cold_tally = tally.clone();
        cold_tally.phases = cold_tally
            .latencies_ns
            .iter()
            .enumerate()
            .map(|(i, &ns)| PhaseSample {
                end_to_end_ns: ns,
                run: i as u64 + 1,
                start: StartKind::Spawn,
                daemon: DaemonPhases {
                    admission_us: 10.0,
                    sandbox_us: Some(500.0),
                    init_us: Some(300.0),
                    handler_us: 50.0,
                    delivery_us: 10.0,
                    steps: None,
                },
            })
            .collect();
        let mut cold = Report::new("cold", "echo", utc_now(), &cold_tally);
        cold.phases_ms = PhasesReport::of(&cold_tally.phases, 0);
        let text = svg_of(&cold);
        assert_svg(&text);
        assert!(text.contains("median phases") && text.contains("sandbox"));

        // No successful invocation: still a valid (empty) chart.
        let empty = Report::new("burst", "echo", utc_now(), &Tally::default());
        assert_svg(&svg_of(&empty));
    }
}
