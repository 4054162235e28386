//! The charts a run leaves behind, drawn with plotters from [`RunSeries`]:
//! each as SVG (for the HTML report and the README) and PNG (for slides).
//! One palette, titles that say what is drawn, axes in human time units, a
//! legend on every multi-series chart, and the timeline's actions marked.
//!
//! Text is laid out and rasterised with DejaVu Sans compiled in, so a chart
//! looks the same on every machine and needs no system fonts.

use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::series::{DeploymentSeries, RunSeries, Step, PHASES};

pub(crate) const WIDTH: u32 = 1100;
pub(crate) const FONT: &str = "sans-serif";

/// Colour-blind-safe palette (Okabe–Ito), in the order series use it.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(120, 120, 120),
    RGBColor(240, 228, 66),
];
const MARK: RGBColor = RGBColor(150, 150, 150);
const SLO: RGBColor = RGBColor(200, 0, 0);

/// The upstream pod-startup SLO: p99 within 5 s.
pub const STARTUP_SLO_SECONDS: f64 = 5.0;

static FONT_REGISTERED: Once = Once::new();

/// Encodes an RGB buffer as a PNG file's bytes.
pub fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(rgb).map_err(err)?;
    }
    Ok(out)
}

/// Makes the compiled-in font the one charts draw with (once per process).
pub fn register_font() {
    FONT_REGISTERED.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        // The font is compiled in and known good; a failure here would be
        // a build defect, and charts would then fail with a font error.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
    });
}

/// Seconds as the axis reads them: `45s`, `2m30s`, `1h05m`.
pub fn human_time(s: f64) -> String {
    let s = s.max(0.0);
    if s > 0.0 && s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 60.0 {
        if s.fract() == 0.0 {
            format!("{s:.0}s")
        } else {
            format!("{s:.1}s")
        }
    } else if s < 3600.0 {
        let m = (s / 60.0).floor();
        let r = (s - m * 60.0).round();
        if r == 0.0 {
            format!("{m:.0}m")
        } else {
            format!("{m:.0}m{r:02.0}s")
        }
    } else {
        let h = (s / 3600.0).floor();
        let m = ((s - h * 3600.0) / 60.0).round();
        format!("{h:.0}h{m:02.0}m")
    }
}

/// The polyline of a step series over `start..end`.
fn steps(series: &[Step], start: f64, end: f64) -> Vec<(f64, f64)> {
    let first = series.partition_point(|p| p.0 <= start);
    let mut out = Vec::with_capacity((series.len() - first) * 2 + 2);
    let mut last = None;
    if first > 0 {
        last = Some(series[first - 1].1);
        out.push((start, series[first - 1].1));
    }
    for &(t, v) in series[first..].iter().filter(|p| p.0 <= end) {
        if let Some(prev) = last {
            out.push((t, prev));
        }
        out.push((t, v));
        last = Some(v);
    }
    if let Some(v) = last {
        out.push((end, v));
    }
    out
}

/// Bucketed points as paths: each bucket's value held across its width,
/// consecutive buckets joined, a gap wherever buckets are missing.
fn bucket_runs(series: &[Step], width: f64, start: f64, end: f64) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut prev_end = f64::NEG_INFINITY;
    for &(t, v) in series.iter().filter(|p| p.0 + width > start && p.0 < end) {
        let (a, b) = (t.max(start), (t + width).min(end));
        match runs.last_mut() {
            Some(run) if (t - prev_end).abs() < width * 1e-6 => {
                run.push((a, v));
                run.push((b, v));
            }
            _ => runs.push(vec![(a, v), (b, v)]),
        }
        prev_end = t + width;
    }
    runs
}

fn max_of<'a>(series: impl IntoIterator<Item = &'a Vec<Step>>) -> f64 {
    series
        .into_iter()
        .flat_map(|s| s.iter().map(|p| p.1))
        .fold(0.0, f64::max)
}

pub(crate) type Area<'a, DB> = DrawingArea<DB, Shift>;

/// Every chart's legend: lower right, on a translucent white box.
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, 13))
        .draw()
        .map_err(err)
}

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing a chart: {e:?}")
}

/// Draws `lines` (label, colour index, dashed, series) over time on `area`,
/// with the actions marked when `marks` is given. With `latency_buckets`
/// (the bucket width, seconds) the lines are bucketed latencies in
/// milliseconds: drawn bucket by bucket on a log scale, so a 2 ms normal and
/// a 5 s stall are both readable.
#[allow(clippy::too_many_arguments)]
fn time_chart<DB: DrawingBackend>(
    area: &Area<'_, DB>,
    title: &str,
    y_desc: &str,
    (start, end): (f64, f64),
    lines: &[(String, usize, bool, &Vec<Step>)],
    marks: &[(f64, String)],
    y_max: Option<f64>,
    integer_y: bool,
    latency_buckets: Option<f64>,
) -> Result<(), String> {
    let max = y_max.unwrap_or_else(|| max_of(lines.iter().map(|l| l.3)));
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60);
    let x = start..end.max(start + 1.0);
    if let Some(width) = latency_buckets {
        let low = lines
            .iter()
            .flat_map(|l| l.3.iter().map(|p| p.1))
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let (bottom, top) = log_range(low, max);
        let mut chart = builder
            .build_cartesian_2d(x, (bottom..top).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time since start")
            .y_desc(y_desc)
            .x_label_formatter(&|x| human_time(*x))
            .y_label_formatter(&|y| human_millis(*y))
            .light_line_style(WHITE)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(err)?;
        return plot(
            &mut chart,
            (start, end),
            (bottom, top),
            lines,
            marks,
            Some(width),
        );
    }
    let top = max.max(1.0);
    let top = if integer_y {
        top.ceil() + 1.0
    } else {
        top * 1.1
    };
    let mut chart = builder.build_cartesian_2d(x, 0f64..top).map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time since start")
        .y_desc(y_desc)
        .x_label_formatter(&|x| human_time(*x))
        .y_label_formatter(&|y| {
            if integer_y || top >= 20.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        })
        .light_line_style(WHITE)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(err)?;
    plot(&mut chart, (start, end), (0.0, top), lines, marks, None)
}

/// A log axis from the decade below the smallest value to the decade above
/// the largest.
fn log_range(low: f64, high: f64) -> (f64, f64) {
    if !low.is_finite() || high <= 0.0 {
        return (0.1, 10.0);
    }
    let bottom = 10f64.powf(low.log10().floor());
    let top = 10f64.powf(high.log10().ceil()).max(bottom * 10.0);
    (bottom, top)
}

/// Milliseconds as an axis reads them: `0.1ms`, `20ms`, `5s`.
fn human_millis(ms: f64) -> String {
    if ms >= 1000.0 {
        human_time(ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{ms}ms")
    }
}

/// The marks, the lines and the legend of a time chart, on either y scale.
fn plot<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    (start, end): (f64, f64),
    (bottom, top): (f64, f64),
    lines: &[(String, usize, bool, &Vec<Step>)],
    marks: &[(f64, String)],
    bucket: Option<f64>,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64>,
{
    // Labels of marks closer than an eighth of the window step down a line
    // each, so neighbours do not print over one another.
    let mut row = 0;
    let mut last_t = f64::NEG_INFINITY;
    let log = bucket.is_some();
    for (t, label) in marks.iter().filter(|m| m.0 >= start && m.0 <= end) {
        row = if *t - last_t < (end - start) / 8.0 {
            (row + 1) % 4
        } else {
            0
        };
        last_t = *t;
        let down = 0.03 + 0.06 * row as f64;
        let y = if log {
            top / (top / bottom).powf(down)
        } else {
            top * (1.0 - down)
        };
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*t, bottom), (*t, top)],
                MARK.stroke_width(1),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*t, y),
                (FONT, 12).into_font().color(&RGBColor(90, 90, 90)),
            )))
            .map_err(err)?;
    }
    for (label, colour, dashed, series) in lines {
        let c = PALETTE[*colour % PALETTE.len()];
        let style = c.stroke_width(if *dashed { 1 } else { 2 });
        // Buckets without samples stay blank rather than holding the last
        // value, so a quiet minute does not read as a slow one.
        let runs = match bucket {
            Some(width) => bucket_runs(series, width, start, end),
            None => vec![steps(series, start, end)],
        };
        let mut first = true;
        for run in runs {
            let drawn = if *dashed {
                chart.draw_series(DashedLineSeries::new(run, 6, 4, style))
            } else {
                chart.draw_series(LineSeries::new(run, style))
            }
            .map_err(err)?;
            if std::mem::take(&mut first) {
                drawn.label(label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            }
        }
    }
    if !lines.is_empty() {
        legend(chart)?;
    }
    Ok(())
}

/// Short labels for action marks: the command without kinds and
/// namespaces (`set image web web=nginx:1.28`).
fn mark_labels(s: &RunSeries) -> Vec<(f64, String)> {
    s.actions
        .iter()
        .map(|m| {
            let words: Vec<&str> = m
                .label
                .split_whitespace()
                .filter(|w| !w.chars().next().is_some_and(char::is_uppercase))
                .map(|w| w.rsplit('/').next().unwrap_or(w))
                .collect();
            let mut short = words.join(" ");
            if short.chars().count() > 40 {
                short = short.chars().take(39).collect::<String>() + "…";
            }
            (m.t, short)
        })
        .collect()
}

/// The window a Deployment's chart shows: from shortly before the first
/// action to shortly after its series last change (the whole run if there
/// are no actions).
fn rollout_window(s: &RunSeries, d: &DeploymentSeries) -> (f64, f64) {
    let Some(first) = s.actions.iter().map(|m| m.t).reduce(f64::min) else {
        return (0.0, s.end);
    };
    let last_change = [&d.desired, &d.updated, &d.ready, &d.available]
        .into_iter()
        .chain(d.replica_sets.iter().map(|r| &r.1))
        .filter_map(|x| x.last().map(|p| p.0))
        .fold(first, f64::max);
    let span = (last_change - first).max(10.0);
    let start = (first - span * 0.3).max(0.0);
    let end = (last_change + span * 0.3).min(s.end);
    (start, end.max(start + 1.0))
}

/// What the charts of one run are.
pub fn charts(s: &RunSeries) -> Vec<ChartSpec> {
    let mut out = Vec::new();
    for name in s.deployments.keys() {
        out.push(ChartSpec::Rollout(name.clone()));
    }
    out.push(ChartSpec::Pods);
    if !s.nodes.is_empty() {
        out.push(ChartSpec::Nodes);
    }
    if !s.to_running.is_empty() || !s.scheduling.is_empty() {
        out.push(ChartSpec::Latency);
    }
    for name in s.services.keys() {
        out.push(ChartSpec::Service(name.clone()));
    }
    if !s.api_reads.is_empty() || !s.api_writes.is_empty() {
        out.push(ChartSpec::Api);
    }
    if !s.leaders.is_empty() {
        out.push(ChartSpec::Etcd);
    }
    out
}

/// One chart of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartSpec {
    /// The rolling-update picture of a Deployment (`ns/name`).
    Rollout(String),
    Pods,
    Nodes,
    Latency,
    Service(String),
    /// apiserver request rate and latency.
    Api,
    /// etcd commit latency (when spans were traced) over the leader timeline.
    Etcd,
}

impl ChartSpec {
    /// The file stem.
    pub fn file_stem(&self) -> String {
        match self {
            ChartSpec::Rollout(n) => format!("rollout-{}", n.replace('/', "-")),
            ChartSpec::Pods => "pods".into(),
            ChartSpec::Nodes => "nodes".into(),
            ChartSpec::Latency => "latency".into(),
            ChartSpec::Service(n) => format!("service-{}", n.replace('/', "-")),
            ChartSpec::Api => "apiserver".into(),
            ChartSpec::Etcd => "etcd".into(),
        }
    }

    /// What the chart shows, as a heading in the HTML report.
    pub fn heading(&self) -> String {
        match self {
            ChartSpec::Rollout(n) => format!("Deployment {n}: the rollout"),
            ChartSpec::Pods => "Pods by phase, and nodes Ready".into(),
            ChartSpec::Nodes => "Requested CPU against allocatable, per node".into(),
            ChartSpec::Latency => "Scheduling and pod startup latency".into(),
            ChartSpec::Service(n) => format!("Service {n}: endpoints"),
            ChartSpec::Api => "kube-apiserver: request rate and latency".into(),
            ChartSpec::Etcd => "etcd: commit latency and leadership".into(),
        }
    }

    fn height(&self, s: &RunSeries) -> u32 {
        match self {
            ChartSpec::Rollout(_) => 720,
            ChartSpec::Nodes => (180 + 14 * s.nodes.len().min(60) as u32).max(360),
            ChartSpec::Etcd if !s.etcd_commit.is_empty() => 700,
            ChartSpec::Etcd => 300,
            ChartSpec::Api => 720,
            _ => 420,
        }
    }

    /// Draws this chart as an SVG document.
    pub fn svg(&self, s: &RunSeries) -> Result<String, String> {
        register_font();
        let mut buf = String::new();
        {
            let root =
                SVGBackend::with_string(&mut buf, (WIDTH, self.height(s))).into_drawing_area();
            self.draw(&root, s)?;
            root.present().map_err(err)?;
        }
        Ok(buf)
    }

    /// Draws this chart as a PNG file's bytes.
    pub fn png(&self, s: &RunSeries) -> Result<Vec<u8>, String> {
        register_font();
        let (w, h) = (WIDTH, self.height(s));
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root, s)?;
            root.present().map_err(err)?;
        }
        encode_png(&rgb, w, h)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<'_, DB>, s: &RunSeries) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let end = s.end;
        match self {
            ChartSpec::Rollout(name) => {
                let d = &s.deployments[name];
                let (top, bottom) = root.split_vertically(430);
                let marks = mark_labels(s);
                let window = rollout_window(s, d);
                time_chart(
                    &top,
                    &format!("Deployment {name}: replicas"),
                    "pods",
                    window,
                    &[
                        ("desired".into(), 6, true, &d.desired),
                        ("updated".into(), 0, false, &d.updated),
                        ("ready".into(), 2, false, &d.ready),
                        ("available".into(), 1, false, &d.available),
                    ],
                    &marks,
                    None,
                    true,
                    None,
                )?;
                let sets: Vec<(String, usize, bool, &Vec<Step>)> = d
                    .replica_sets
                    .iter()
                    .enumerate()
                    .map(|(i, (n, series))| (format!("ReplicaSet {n}"), (i + 3) % 6, false, series))
                    .collect();
                time_chart(
                    &bottom,
                    "its ReplicaSets' desired sizes (oldest first)",
                    "replicas",
                    window,
                    &sets,
                    &marks,
                    Some(max_of([&d.desired]).max(max_of(sets.iter().map(|x| x.3)))),
                    true,
                    None,
                )
            }
            ChartSpec::Pods => {
                let mut lines: Vec<(String, usize, bool, &Vec<Step>)> = PHASES
                    .iter()
                    .zip(&s.phases)
                    .enumerate()
                    .filter(|(_, (_, series))| series.iter().any(|p| p.1 > 0.0))
                    .map(|(i, (p, series))| {
                        let label = if *p == "Unscheduled" {
                            "Pending, unscheduled".to_string()
                        } else if *p == "Pending" {
                            "Pending, on a node".to_string()
                        } else {
                            p.to_string()
                        };
                        (label, i, false, series)
                    })
                    .collect();
                // The capacity the pods wait for, on the same axis.
                if !s.nodes_ready.is_empty() {
                    lines.push(("nodes Ready".into(), 6, true, &s.nodes_ready));
                }
                time_chart(
                    root,
                    "Pods by phase, and nodes Ready",
                    "pods",
                    (0.0, end),
                    &lines,
                    &mark_labels(s),
                    None,
                    true,
                    None,
                )
            }
            ChartSpec::Service(name) => {
                let (ready, not_ready) = &s.services[name];
                time_chart(
                    root,
                    &format!("Service {name}: endpoint addresses"),
                    "addresses",
                    (0.0, end),
                    &[
                        ("ready".into(), 2, false, ready),
                        ("not ready".into(), 1, false, not_ready),
                    ],
                    &mark_labels(s),
                    None,
                    true,
                    None,
                )
            }
            ChartSpec::Latency => latency_chart(root, s),
            ChartSpec::Nodes => nodes_heatmap(root, s),
            ChartSpec::Api => {
                let (top, bottom) = root.split_vertically(360);
                let marks = mark_labels(s);
                let mut rates = vec![
                    (
                        "reads (GET, LIST)".to_string(),
                        0,
                        false,
                        &s.api_reads.per_second,
                    ),
                    ("writes".to_string(), 1, false, &s.api_writes.per_second),
                ];
                if !s.api_throttled.is_empty() {
                    rates.push((
                        "429 Too Many Requests".into(),
                        6,
                        false,
                        &s.api_throttled.per_second,
                    ));
                }
                let width = human_time(s.api_reads.width.max(s.api_writes.width));
                time_chart(
                    &top,
                    &format!("kube-apiserver: requests per second (per {width})"),
                    "requests/s",
                    (0.0, end),
                    &rates,
                    &marks,
                    None,
                    false,
                    None,
                )?;
                let ms =
                    |b: &Vec<Step>| -> Vec<Step> { b.iter().map(|p| (p.0, p.1 * 1e3)).collect() };
                let lat = [
                    ms(&s.api_reads.p50),
                    ms(&s.api_reads.p99),
                    ms(&s.api_writes.p50),
                    ms(&s.api_writes.p99),
                ];
                time_chart(
                    &bottom,
                    "request latency, admission to answer (writes include etcd)",
                    "latency (log scale)",
                    (0.0, end),
                    &[
                        ("reads p50".into(), 0, true, &lat[0]),
                        ("reads p99".into(), 0, false, &lat[1]),
                        ("writes p50".into(), 1, true, &lat[2]),
                        ("writes p99".into(), 1, false, &lat[3]),
                    ],
                    &marks,
                    None,
                    false,
                    Some(s.api_reads.width.max(s.api_writes.width)),
                )
            }
            ChartSpec::Etcd if !s.etcd_commit.is_empty() => {
                let (top, bottom) = root.split_vertically(400);
                let ms =
                    |b: &Vec<Step>| -> Vec<Step> { b.iter().map(|p| (p.0, p.1 * 1e3)).collect() };
                let (p50, p99) = (ms(&s.etcd_commit.p50), ms(&s.etcd_commit.p99));
                time_chart(
                    &top,
                    &format!(
                        "etcd commit latency, proposal to apply (per {})",
                        human_time(s.etcd_commit.width)
                    ),
                    "latency (log scale)",
                    (0.0, end),
                    &[
                        ("p50".into(), 0, true, &p50),
                        ("p99".into(), 0, false, &p99),
                    ],
                    &mark_labels(s),
                    None,
                    false,
                    Some(s.etcd_commit.width),
                )?;
                etcd_chart(&bottom, s)
            }
            ChartSpec::Etcd => etcd_chart(root, s),
        }
    }
}

/// Empirical CDFs of scheduling and startup latency, with the SLO drawn.
fn latency_chart<DB: DrawingBackend>(root: &Area<'_, DB>, s: &RunSeries) -> Result<(), String> {
    let sets = [
        ("created → bound", 0usize, &s.scheduling),
        ("created → Running", 1, &s.to_running),
        ("created → Ready", 2, &s.to_ready),
    ];
    let x_max = sets
        .iter()
        .flat_map(|x| x.2.iter().copied())
        .fold(STARTUP_SLO_SECONDS, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption("Pod scheduling and startup latency (CDF)", (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency")
        .y_desc("fraction of pods")
        .x_label_formatter(&|x| human_time(*x))
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .light_line_style(WHITE)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(STARTUP_SLO_SECONDS, 0.0), (STARTUP_SLO_SECONDS, 1.0)],
            SLO.stroke_width(2),
        )))
        .map_err(err)?
        .label("SLO: startup p99 ≤ 5s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], SLO.stroke_width(2)));
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.99), (x_max, 0.99)],
            SLO.mix(0.4).stroke_width(1),
        )))
        .map_err(err)?;
    for (label, colour, samples) in sets {
        if samples.is_empty() {
            continue;
        }
        let mut v = samples.clone();
        v.sort_by(f64::total_cmp);
        let points = cdf_points(&v, x_max);
        let c = PALETTE[colour];
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))
            .map_err(err)?
            .label(format!(
                "{label} (n={}, p99 {})",
                v.len(),
                human_time(percentile(&v, 0.99))
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    legend(&mut chart)
}

/// The steps of the empirical CDF of `sorted` samples, from 0 to `x_max`.
pub(crate) fn cdf_points(sorted: &[f64], x_max: f64) -> Vec<(f64, f64)> {
    let n = sorted.len() as f64;
    let mut points = vec![(0.0, 0.0)];
    for (i, x) in sorted.iter().enumerate() {
        points.push((*x, i as f64 / n));
        points.push((*x, (i + 1) as f64 / n));
    }
    points.push((x_max, 1.0));
    points
}

/// The `q` quantile of sorted samples (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Requested CPU over allocatable per node and time bucket; many nodes are
/// grouped into at most 60 rows (each the mean of its group).
fn nodes_heatmap<DB: DrawingBackend>(root: &Area<'_, DB>, s: &RunSeries) -> Result<(), String> {
    const COLUMNS: usize = 120;
    const MAX_ROWS: usize = 60;
    let names: Vec<&String> = s.nodes.keys().collect();
    let per_row = names.len().div_ceil(MAX_ROWS).max(1);
    let rows = names.len().div_ceil(per_row);
    let end = s.end.max(1.0);
    let dt = end / COLUMNS as f64;
    let value_at = |series: &[Step], t: f64| -> f64 {
        match series.partition_point(|p| p.0 <= t) {
            0 => 0.0,
            i => series[i - 1].1,
        }
    };
    let mut cells = vec![vec![0.0f64; COLUMNS]; rows];
    for (i, name) in names.iter().enumerate() {
        let n = &s.nodes[*name];
        if n.cpu_allocatable <= 0.0 {
            continue;
        }
        for (c, cell) in cells[i / per_row].iter_mut().enumerate() {
            let t = (c as f64 + 0.5) * dt;
            *cell += value_at(&n.cpu_requested, t) / n.cpu_allocatable / per_row as f64;
        }
    }
    let title = if per_row > 1 {
        format!(
            "CPU requested / allocatable, {} nodes in {rows} rows of {per_row}",
            names.len()
        )
    } else {
        "CPU requested / allocatable per node".to_string()
    };
    let (main, legend) = root.split_horizontally(WIDTH - 110);
    let mut chart = ChartBuilder::on(&main)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(if per_row > 1 { 60 } else { 110 })
        .build_cartesian_2d(0f64..end, (0..rows as i32).into_segmented())
        .map_err(err)?;
    let row_label = |y: &SegmentValue<i32>| -> String {
        let SegmentValue::CenterOf(r) = y else {
            return String::new();
        };
        let r = *r as usize;
        if per_row == 1 {
            names.get(r).map(|n| n.to_string()).unwrap_or_default()
        } else {
            format!("{}", r * per_row)
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("time since start")
        .y_desc(if per_row > 1 {
            "node (first index of row)"
        } else {
            ""
        })
        .x_label_formatter(&|x| human_time(*x))
        .y_labels(rows.min(30))
        .y_label_formatter(&row_label)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(cells.iter().enumerate().flat_map(|(r, row)| {
            row.iter().enumerate().map(move |(c, v)| {
                Rectangle::new(
                    [
                        (c as f64 * dt, SegmentValue::Exact(r as i32)),
                        ((c + 1) as f64 * dt, SegmentValue::Exact(r as i32 + 1)),
                    ],
                    heat(*v).filled(),
                )
            })
        }))
        .map_err(err)?;
    // The colour scale.
    let mut scale = ChartBuilder::on(&legend)
        .margin_top(50)
        .margin_bottom(52)
        .margin_right(40)
        .y_label_area_size(0)
        .right_y_label_area_size(40)
        .build_cartesian_2d(0f64..1.0, 0f64..1.0)
        .map_err(err)?;
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .label_style((FONT, 12))
        .draw()
        .map_err(err)?;
    scale
        .draw_series((0..50).map(|i| {
            let v = i as f64 / 50.0;
            Rectangle::new([(0.0, v), (1.0, v + 0.02)], heat(v + 0.01).filled())
        }))
        .map_err(err)?;
    Ok(())
}

/// White through blue to orange-red as utilisation goes 0 → 1.
fn heat(v: f64) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let lerp = |a: u8, b: u8, f: f64| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    if v < 0.5 {
        let f = v / 0.5;
        RGBColor(lerp(250, 86, f), lerp(250, 180, f), lerp(250, 233, f))
    } else {
        let f = (v - 0.5) / 0.5;
        RGBColor(lerp(86, 213, f), lerp(180, 94, f), lerp(233, 0, f))
    }
}

/// Which etcd member led when, with elections marked.
fn etcd_chart<DB: DrawingBackend>(root: &Area<'_, DB>, s: &RunSeries) -> Result<(), String> {
    let mut members: Vec<String> = s.leaders.iter().filter_map(|l| l.1.clone()).collect();
    members.sort();
    members.dedup();
    let rows = members.len().max(1) as i32;
    let end = s.end.max(1.0);
    let mut chart = ChartBuilder::on(root)
        .caption("etcd leader (bars) and elections (ticks)", (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end, (0..rows).into_segmented())
        .map_err(err)?;
    let member_label = |y: &SegmentValue<i32>| -> String {
        match y {
            SegmentValue::CenterOf(r) => members.get(*r as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("time since start")
        .x_label_formatter(&|x| human_time(*x))
        .y_labels(rows as usize)
        .y_label_formatter(&member_label)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (i, (t, who)) in s.leaders.iter().enumerate() {
        let Some(who) = who else { continue };
        let until = s.leaders.get(i + 1).map_or(end, |n| n.0);
        let row = members.iter().position(|m| m == who).unwrap_or(0) as i32;
        let mut bar = Rectangle::new(
            [
                (*t, SegmentValue::Exact(row)),
                (until, SegmentValue::Exact(row + 1)),
            ],
            PALETTE[0].filled(),
        );
        bar.set_margin(8, 8, 0, 0);
        chart.draw_series(std::iter::once(bar)).map_err(err)?;
    }
    for t in &s.elections {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![
                    (*t, SegmentValue::Exact(0)),
                    (*t, SegmentValue::Exact(rows)),
                ],
                PALETTE[1].stroke_width(1),
            )))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_reads_in_human_units() {
        assert_eq!(human_time(0.0), "0s");
        assert_eq!(human_time(2.5), "2.5s");
        assert_eq!(human_time(0.0094), "9ms");
        assert_eq!(human_time(90.0), "1m30s");
        assert_eq!(human_time(120.0), "2m");
        assert_eq!(human_time(3900.0), "1h05m");
    }

    #[test]
    fn steps_hold_until_the_next_point() {
        assert_eq!(
            steps(&[(0.0, 1.0), (2.0, 3.0)], 0.0, 5.0),
            vec![(0.0, 1.0), (2.0, 1.0), (2.0, 3.0), (5.0, 3.0)]
        );
        // A window starts from the value holding at its start.
        assert_eq!(
            steps(&[(0.0, 1.0), (2.0, 3.0), (9.0, 4.0)], 1.0, 5.0),
            vec![(1.0, 1.0), (2.0, 1.0), (2.0, 3.0), (5.0, 3.0)]
        );
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
