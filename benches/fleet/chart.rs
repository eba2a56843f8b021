//! One chart per burst: objects Ready over time against the quota's physical limit, and the
//! operator's client-side rate limit for CreateCollection against the quota, so a reader sees
//! whether the limiter settled on the quota and what that cost the burst.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

/// What one burst recorded, in seconds since the burst started.
pub struct BurstTrace {
    pub objects: usize,
    /// The emulator's quota in calls per second.
    pub quota: f64,
    /// When each object was first seen Ready, in ascending order.
    pub ready: Vec<f64>,
    /// The operator's rate limit for CreateCollection (calls/s), as scraped from its /metrics.
    pub rate: Vec<(f64, f64)>,
}

/// Where the charts go: FLEET_CHARTS_DIR, else `fleet-charts` in the target directory (found
/// from the benchmark's own CARGO_TARGET_TMPDIR, however the target directory was chosen), never
/// in the source tree: the test command checks that the clone stays as it was.
pub fn dir() -> PathBuf {
    match std::env::var_os("FLEET_CHARTS_DIR") {
        Some(dir) => dir.into(),
        None => {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
            tmp.parent().unwrap_or(tmp).join("fleet-charts")
        }
    }
}

impl BurstTrace {
    /// Writes `burst-N-at-Q.svg` and `burst-N-at-Q.csv` into `dir`; answers the SVG's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stem = format!("burst-{}-at-{}", self.objects, self.quota);
        let csv = dir.join(format!("{stem}.csv"));
        std::fs::write(&csv, self.csv()).with_context(|| format!("writing {}", csv.display()))?;
        let svg = dir.join(format!("{stem}.svg"));
        self.draw(&svg)
            .with_context(|| format!("drawing {}", svg.display()))?;
        Ok(svg)
    }

    /// One row per Ready event and per scrape, in time order: the Ready count and the last rate
    /// scraped at that time (empty before the first scrape that found the limiter).
    fn csv(&self) -> String {
        let mut rows: Vec<(f64, Option<f64>)> = self.ready.iter().map(|&t| (t, None)).collect();
        rows.extend(self.rate.iter().map(|&(t, rate)| (t, Some(rate))));
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = String::from("t,ready,rate\n");
        let (mut ready, mut last_rate) = (0, None);
        for (t, rate) in rows {
            match rate {
                Some(rate) => last_rate = Some(rate),
                None => ready += 1,
            }
            let rate = last_rate.map(|r| format!("{r:.3}")).unwrap_or_default();
            let _ = writeln!(out, "{t:.3},{ready},{rate}");
        }
        out
    }

    fn draw(&self, path: &Path) -> Result<()> {
        let (n, q) = (self.objects as f64, self.quota);
        // The quota's line is drawn whole, even when the emulator's burst tokens let the objects
        // finish a little before N / q.
        let end = self
            .ready
            .iter()
            .copied()
            .chain(self.rate.iter().map(|&(t, _)| t))
            .fold(n / q, f64::max);
        // Both axes reach 40 % above their highest value: the legend's room, over no line.
        let headroom = 1.4;
        let top_rate = self.rate.iter().map(|&(_, r)| r).fold(q, f64::max) * headroom;

        let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("burst: {} new objects, quota {q}/s", self.objects),
                ("sans-serif", 28),
            )
            .margin(15)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .right_y_label_area_size(70)
            .build_cartesian_2d(0.0..end, 0.0..n * headroom)?
            .set_secondary_coord(0.0..end, 0.0..top_rate);
        let text = ("sans-serif", 17);
        chart
            .configure_mesh()
            .x_desc("seconds since the burst started")
            .y_desc("objects")
            .y_label_formatter(&|objects| format!("{objects:.0}"))
            .label_style(text)
            .axis_desc_style(text)
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("calls/s")
            .label_style(text)
            .axis_desc_style(text)
            .draw()?;

        let ready = BLUE.stroke_width(2);
        chart
            .draw_series(LineSeries::new(self.ready_steps(end), ready))?
            .label("objects Ready")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], ready));
        let limit = BLACK.stroke_width(1);
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (n / q, n)], limit))?
            .label(format!("the quota's limit: objects = {q} × t"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], limit));
        let rate = RED.stroke_width(2);
        chart
            .draw_secondary_series(LineSeries::new(self.rate.iter().copied(), rate))?
            .label("operator's CreateCollection rate limit (calls/s, right axis)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], rate));
        let quota = RED.mix(0.6).stroke_width(1);
        chart
            .draw_secondary_series(DashedLineSeries::new([(0.0, q), (end, q)], 8, 5, quota))?
            .label(format!("quota: {q} calls/s (right axis)"))
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(0, 0), (8, 0)], quota)
                    + PathElement::new([(12, 0), (20, 0)], quota)
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(text)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    }

    /// The Ready count as a step series: flat between two objects, a step up at each.
    fn ready_steps(&self, end: f64) -> Vec<(f64, f64)> {
        let mut steps = vec![(0.0, 0.0)];
        for (i, &t) in self.ready.iter().enumerate() {
            steps.push((t, i as f64));
            steps.push((t, (i + 1) as f64));
        }
        steps.push((end, self.ready.len() as f64));
        steps
    }
}
