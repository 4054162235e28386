//! What a sweep leaves for a planner: a table (text and CSV) of each
//! variant's outcome, a chart of the peak of pending pods, CPU requested
//! at the peak, the startup SLI's p99 and the cost across the settings with
//! the objective drawn, and the cheapest (or smallest) setting that meets
//! the objective.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::charts::{register_font, PALETTE};
use crate::scenario::objective::Objective;
use crate::scenario::recommend::{by_variant, VariantRuns};
use crate::scenario::sweep::Outcome;

const FONT: &str = "sans-serif";
const MEETS: RGBColor = RGBColor(0, 158, 115);
const MISSES: RGBColor = RGBColor(213, 94, 0);

/// The table as a person reads it in a terminal: a row per run, or with
/// several seeds a row per variant with each figure's spread.
pub fn table(outcomes: &[Outcome], per_variant: usize, share: f64) -> String {
    if per_variant > 1 {
        return seeds_table(&by_variant(outcomes, per_variant), share);
    }
    let rows: Vec<[String; 9]> = outcomes
        .iter()
        .map(|o| {
            let s = &o.summary;
            let t = &s.over_time;
            [
                o.label.clone(),
                format!("{}/{}", t.peak_pending_pods, s.pods.unscheduled),
                format!("{:.0}", t.pending_pod_seconds),
                format!("{:.1}%", t.peak_cpu_requested * 100.0),
                format!("{:.1}%", t.cpu_requested * 100.0),
                match s.pod_startup.sli_p99_all_ms {
                    Some(p) => format!("{p:.0}"),
                    None => format!("{} never", s.pod_startup.never_started),
                },
                format!("{:.0}", s.scheduling.p99_ms),
                format!("{:.2}", t.cost),
                if o.meets() {
                    "yes".into()
                } else {
                    format!("no: {}", o.unmet.join("; "))
                },
            ]
        })
        .collect();
    let head = [
        "setting",
        "pending peak/end",
        "pending pod-s",
        "cpu req peak",
        "cpu req avg",
        "startup SLI p99 ms",
        "sched p99 ms",
        "cost",
        "meets objective",
    ];
    aligned(&head, &rows)
}

/// `lo–hi`, or one value when they are equal.
fn span(lo: f64, hi: f64, decimals: usize) -> String {
    if (hi - lo).abs() < 0.5 * 10f64.powi(-(decimals as i32)) {
        format!("{lo:.decimals$}")
    } else {
        format!("{lo:.decimals$}–{hi:.decimals$}")
    }
}

/// A row per variant: how many seeds met the objective and the spread of
/// each figure over them.
fn seeds_table(groups: &[VariantRuns<'_>], share: f64) -> String {
    let rows: Vec<[String; 8]> = groups
        .iter()
        .map(|g| {
            let t = |f: fn(&Outcome) -> f64| g.spread(f);
            let (pl, ph) = t(|o| o.summary.over_time.pending_pod_seconds);
            let (wl, wh) = t(|o| o.summary.over_time.longest_wait_s);
            let (cl, ch) = t(|o| o.summary.over_time.peak_cpu_requested * 100.0);
            let never = g
                .runs
                .iter()
                .filter(|o| o.summary.pod_startup.sli_p99_all_ms.is_none())
                .count();
            let (sl, sh) = t(|o| o.summary.pod_startup.sli_p99_all_ms.unwrap_or(f64::NAN));
            let sli = match never {
                0 => span(sl, sh, 0),
                n if n == g.runs.len() => "never".into(),
                n => format!("{} ({n} never)", span(sl, sh, 0)),
            };
            let (kl, kh) = t(|o| o.summary.over_time.cost);
            let first_miss = g.runs.iter().find(|o| !o.meets());
            [
                g.label.to_string(),
                format!("{}/{}", g.meeting(), g.runs.len()),
                span(pl, ph, 0),
                span(wl, wh, 1),
                format!("{}%", span(cl, ch, 1)),
                sli,
                span(kl, kh, 2),
                match (g.meets(share), first_miss) {
                    (true, _) => "yes".into(),
                    (false, Some(m)) => {
                        format!("no: e.g. seed {}: {}", m.summary.seed, m.unmet.join("; "))
                    }
                    (false, None) => "no".into(),
                },
            ]
        })
        .collect();
    let head = [
        "setting",
        "seeds met",
        "pending pod-s",
        "longest wait s",
        "cpu req peak",
        "startup SLI p99 ms",
        "cost",
        "meets objective",
    ];
    aligned(&head, &rows)
}

/// Columns padded to their widest cell, the last one left ragged.
fn aligned<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, (c, w)) in cells.into_iter().zip(&widths).enumerate() {
            if i + 1 == n {
                let _ = write!(out, "{c}");
            } else {
                let _ = write!(out, "{c:<w$}  ");
            }
        }
        out.push('\n');
    };
    line(head.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `sweep.csv`: one row per variant, a column per varied path.
pub fn csv(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let paths: Vec<&str> = outcomes
        .first()
        .map(|o| o.settings.iter().map(|(p, _)| p.as_str()).collect())
        .unwrap_or_default();
    for p in &paths {
        let _ = write!(out, "{},", csv_field(p));
    }
    out.push_str("seed,pods,pending_pods,peak_pending_pods,pending_pod_seconds,longest_wait_s,cpu_requested_fraction,memory_requested_fraction,peak_cpu_requested_fraction,cpu_requested_over_time,memory_requested_over_time,gpu_requested_over_time,node_hours,cost,startup_p99_ms,startup_sli_p99_ms,never_started,scheduling_p99_ms,etcd_commit_p99_ms,meets_objective,unmet,digest\n");
    for o in outcomes {
        let s = &o.summary;
        for (_, v) in &o.settings {
            let _ = write!(out, "{},", csv_field(v));
        }
        let _ = write!(out, "{},", s.seed);
        let t = &s.over_time;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            s.pods.total,
            s.pods.unscheduled,
            t.peak_pending_pods,
            t.pending_pod_seconds,
            t.longest_wait_s,
            s.utilisation.cpu_fraction,
            s.utilisation.memory_fraction,
            t.peak_cpu_requested,
            t.cpu_requested,
            t.memory_requested,
            t.gpu_requested,
            t.node_hours,
            t.cost,
            s.pod_startup.created_to_running.p99_ms,
            s.pod_startup
                .sli_p99_all_ms
                .map_or(String::new(), |p| p.to_string()),
            s.pod_startup.never_started,
            s.scheduling.p99_ms,
            s.etcd.commit.p99_ms,
            o.meets(),
            csv_field(&o.unmet.join("; ")),
            s.digest
        );
    }
    out
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing the sweep chart: {e:?}")
}

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 760;

/// The sweep chart as SVG.
pub fn chart_svg(
    title: &str,
    outcomes: &[Outcome],
    per_variant: usize,
    objective: &Objective,
) -> Result<String, String> {
    let worst = worst_per_variant(outcomes, per_variant, objective.seed_share);
    let outcomes = worst.as_slice();
    register_font();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, title, outcomes, objective)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// The sweep chart as PNG bytes.
pub fn chart_png(
    title: &str,
    outcomes: &[Outcome],
    per_variant: usize,
    objective: &Objective,
) -> Result<Vec<u8>, String> {
    let worst = worst_per_variant(outcomes, per_variant, objective.seed_share);
    let outcomes = worst.as_slice();
    register_font();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, title, outcomes, objective)?;
        root.present().map_err(err)?;
    }
    super::charts::encode_png(&rgb, WIDTH, HEIGHT)
}

/// What the chart draws per variant: with one seed its run; with several,
/// each figure's worst over the seeds (most waiting, highest CPU peak,
/// slowest p99, none when any seed left pods unstarted), the mean cost, and
/// whether the variant met the objective in its share of seeds.
fn worst_per_variant(outcomes: &[Outcome], per_variant: usize, share: f64) -> Vec<Outcome> {
    if per_variant <= 1 {
        return outcomes.to_vec();
    }
    by_variant(outcomes, per_variant)
        .iter()
        .map(|g| {
            let mut w = g.runs[0].clone();
            let t = &mut w.summary.over_time;
            t.pending_pod_seconds = g.spread(|o| o.summary.over_time.pending_pod_seconds).1;
            t.peak_cpu_requested = g.spread(|o| o.summary.over_time.peak_cpu_requested).1;
            t.cost = g.cost();
            let p99s: Option<Vec<f64>> = g
                .runs
                .iter()
                .map(|o| o.summary.pod_startup.sli_p99_all_ms)
                .collect();
            w.summary.pod_startup.sli_p99_all_ms = p99s.map(|v| v.into_iter().fold(0.0, f64::max));
            w.unmet = if g.meets(share) {
                Vec::new()
            } else {
                vec!["missed".into()]
            };
            w
        })
        .collect()
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    outcomes: &[Outcome],
    objective: &Objective,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, (FONT, 20)).map_err(err)?;
    let (top, bottom) = root.split_vertically(HEIGHT / 2 - 20);
    let n = outcomes.len().max(1);
    let labels: Vec<String> = outcomes.iter().map(|o| o.label.clone()).collect();
    let x_label = move |x: &f64| -> String {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        labels.get(i as usize).cloned().unwrap_or_default()
    };
    let xr = -0.5..(n as f64 - 0.5);
    // Top: pending pods (bars) and CPU requested (line, right axis).
    let pending_max = outcomes
        .iter()
        .map(|o| o.summary.over_time.pending_pod_seconds)
        .fold(0.0, f64::max)
        .max(1.0);
    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .caption(
            "pod-seconds spent waiting for a node (bars) and CPU requested of allocatable at the peak (line)",
            (FONT, 15),
        )
        .build_cartesian_2d(xr.clone(), 0f64..pending_max * 1.15)
        .map_err(err)?
        .set_secondary_coord(xr.clone(), 0f64..100.0);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(30))
        .x_label_formatter(&x_label)
        .y_desc("pod-seconds pending")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(err)?;
    chart
        .configure_secondary_axes()
        .y_desc("CPU requested, %")
        .y_label_formatter(&|y| format!("{y:.0}%"))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(outcomes.iter().enumerate().map(|(i, o)| {
            let c = if o.meets() { MEETS } else { MISSES };
            Rectangle::new(
                [
                    (i as f64 - 0.3, 0.0),
                    (i as f64 + 0.3, o.summary.over_time.pending_pod_seconds),
                ],
                c.mix(0.8).filled(),
            )
        }))
        .map_err(err)?;
    let cpu: Vec<(f64, f64)> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| (i as f64, o.summary.over_time.peak_cpu_requested * 100.0))
        .collect();
    chart
        .draw_secondary_series(LineSeries::new(cpu.clone(), PALETTE[0].stroke_width(2)))
        .map_err(err)?;
    chart
        .draw_secondary_series(cpu.iter().map(|p| Circle::new(*p, 4, PALETTE[0].filled())))
        .map_err(err)?;
    if let Some(limit) = objective.max_cpu_requested {
        chart
            .draw_secondary_series(DashedLineSeries::new(
                vec![(-0.5, limit * 100.0), (n as f64 - 0.5, limit * 100.0)],
                6,
                4,
                PALETTE[0].stroke_width(1),
            ))
            .map_err(err)?;
        chart
            .draw_secondary_series(std::iter::once(Text::new(
                format!("objective: CPU requested <= {:.0}%", limit * 100.0),
                (-0.45, limit * 100.0 + 2.0),
                (FONT, 12).into_font().color(&PALETTE[0]),
            )))
            .map_err(err)?;
    }
    // Bottom: pod startup p99 with the objective, and the cost when priced.
    let priced = crate::scenario::recommend::priced(outcomes);
    let cost_max = outcomes
        .iter()
        .map(|o| o.summary.over_time.cost)
        .chain(objective.max_cost)
        .fold(0.0, f64::max)
        .max(1e-6);
    let limit_ms = objective.pod_startup_p99.map(|d| d.as_secs_f64() * 1000.0);
    let p99_max = outcomes
        .iter()
        .filter_map(|o| o.summary.pod_startup.sli_p99_all_ms)
        .chain(limit_ms)
        .fold(0.0, f64::max)
        .max(1.0);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .margin_right(72)
        .caption(
            "pod startup SLI p99, image pulls excluded (green: meets the objective; at the top: pods never started)",
            (FONT, 15),
        )
        .right_y_label_area_size(if priced { 60 } else { 0 })
        .build_cartesian_2d(xr.clone(), 0f64..p99_max * 1.15)
        .map_err(err)?
        .set_secondary_coord(xr, 0f64..cost_max * 1.15);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(30))
        .x_label_formatter(&x_label)
        .x_desc(outcomes.first().map_or(String::new(), |o| {
            o.settings
                .iter()
                .map(|(p, _)| p.clone())
                .collect::<Vec<_>>()
                .join(" × ")
        }))
        .y_desc("milliseconds")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(err)?;
    if let Some(l) = limit_ms {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, l), (n as f64 - 0.5, l)],
                RGBColor(200, 0, 0).stroke_width(2),
            )))
            .map_err(err)?
            .label(format!("objective: p99 <= {:.0} ms", l))
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 18, y)],
                    RGBColor(200, 0, 0).stroke_width(2),
                )
            });
    }
    let p99: Vec<(f64, f64)> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let p = o.summary.pod_startup.sli_p99_all_ms;
            (i as f64, p.unwrap_or(p99_max * 1.1))
        })
        .collect();
    chart
        .draw_series(LineSeries::new(p99.clone(), PALETTE[6].stroke_width(1)))
        .map_err(err)?;
    chart
        .draw_series(
            outcomes
                .iter()
                .zip(&p99)
                .map(|(o, p)| Circle::new(*p, 6, if o.meets() { MEETS } else { MISSES }.filled())),
        )
        .map_err(err)?;
    if priced {
        chart
            .configure_secondary_axes()
            .y_desc("cost")
            .y_label_formatter(&|y| format!("{y:.2}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(err)?;
        let cost: Vec<(f64, f64)> = outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| (i as f64, o.summary.over_time.cost))
            .collect();
        chart
            .draw_secondary_series(LineSeries::new(cost, PALETTE[4].stroke_width(2)))
            .map_err(err)?
            .label("cost of the run (right axis)")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], PALETTE[4].stroke_width(2))
            });
    }
    if limit_ms.is_some() || priced {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FONT, 13))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}
