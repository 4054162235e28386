//! The comparison's chart: for each latency compared, the live and the
//! simulated empirical CDFs on one panel (live solid, simulated dashed), with
//! p50, p90 and the KS distance in the legend. One panel per latency, two
//! to a row, so a class sees at a glance where the model is fast or slow.

use plotters::prelude::*;

use super::distribution::SideBySide;
use crate::report::charts::{cdf_points, encode_png, err, human_time, legend, register_font};
use crate::report::charts::{Area, FONT};
use crate::report::charts::{PALETTE, WIDTH};

const PANEL_HEIGHT: u32 = 320;

fn height(panels: usize) -> u32 {
    PANEL_HEIGHT * panels.div_ceil(2).max(1) as u32
}

/// The chart as SVG.
pub fn svg(panels: &[&SideBySide]) -> Result<String, String> {
    register_font();
    let mut buf = String::new();
    {
        let root =
            SVGBackend::with_string(&mut buf, (WIDTH, height(panels.len()))).into_drawing_area();
        draw(&root, panels)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// The chart as a PNG file's bytes.
pub fn png(panels: &[&SideBySide]) -> Result<Vec<u8>, String> {
    register_font();
    let (w, h) = (WIDTH, height(panels.len()));
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root, panels)?;
        root.present().map_err(err)?;
    }
    encode_png(&rgb, w, h)
}

fn draw<DB: DrawingBackend>(root: &Area<'_, DB>, panels: &[&SideBySide]) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let rows = panels.len().div_ceil(2).max(1);
    let areas = root.split_evenly((rows, 2));
    for (area, s) in areas.iter().zip(panels) {
        panel(area, s)?;
    }
    Ok(())
}

fn panel<DB: DrawingBackend>(area: &Area<'_, DB>, s: &SideBySide) -> Result<(), String> {
    let x_max = s
        .live
        .samples
        .iter()
        .chain(&s.simulated.samples)
        .fold(0.001f64, |m, x| m.max(*x))
        * 1.1;
    let caption = match s.ks {
        Some(d) => format!("{} (KS {d:.2})", s.name),
        None => s.name.clone(),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 17))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..x_max, 0f64..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| human_time(*x))
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .light_line_style(WHITE)
        .label_style((FONT, 12))
        .draw()
        .map_err(err)?;
    for (label, q, colour, dashed) in [
        ("live", &s.live, PALETTE[0], false),
        ("simulated", &s.simulated, PALETTE[1], true),
    ] {
        if q.samples.is_empty() {
            continue;
        }
        let points = cdf_points(&q.samples, x_max);
        let style = colour.stroke_width(2);
        let text = format!(
            "{label}: n={} p50 {} p90 {}",
            q.n,
            q.p50.map_or("-".into(), human_time),
            q.p90.map_or("-".into(), human_time)
        );
        let drawn = if dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 6, 4, style))
                .map_err(err)?
        } else {
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(err)?
        };
        drawn.label(text).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
        });
    }
    legend(&mut chart)
}
