//! The comparison's section of `report.html`: the chart, a table of the
//! latencies (p50, p90, KS), the controller's scaling steps, and the
//! lifecycle instants of every pod in both runs.

use std::fmt::Write as _;

use super::lifecycle::MILESTONES;
use super::{Comparison, PodSide};
use crate::report::html::escape;

fn ms(s: Option<f64>) -> String {
    s.map_or("–".into(), |s| format!("{:.0} ms", s * 1e3))
}

/// Appends the section (`id="compare"`) to `out`.
pub fn section(out: &mut String, c: &Comparison, chart_svg: &str) {
    out.push_str("<section id=\"compare\"><h2>Live vs simulated</h2>");
    let _ = write!(
        out,
        "<p>The same scenario and seed (<code>{}</code>) run on real containerd nodes and simulated (<code>sim/</code>). Solid: live; dashed: simulated.</p><figure>",
        c.seed
    );
    out.push_str(chart_svg.trim());
    out.push_str("</figure><table><tr><th>latency</th><th>live p50</th><th>live p90</th><th>sim p50</th><th>sim p90</th><th>KS</th><th>n live/sim</th></tr>");
    for s in c.latencies.iter().chain(&c.steps) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td></tr>",
            escape(&s.name),
            ms(s.live.p50),
            ms(s.live.p90),
            ms(s.simulated.p50),
            ms(s.simulated.p90),
            s.ks.map_or("–".into(), |d| format!("{d:.2}")),
            s.live.n,
            s.simulated.n
        );
    }
    out.push_str("</table>");
    scaling(out, c);
    pods(out, c);
    out.push_str("</section>");
}

fn scaling(out: &mut String, c: &Comparison) {
    let verdict = if c.scaling.same {
        "the same in both runs".to_string()
    } else {
        format!(
            "different from step {}",
            c.scaling.first_difference.unwrap_or(0) + 1
        )
    };
    let _ = write!(
        out,
        "<h3>Controller steps</h3><p>The deployment controller's ScalingReplicaSet events: {verdict}.</p><table><tr><th>#</th><th>live</th><th>simulated</th></tr>"
    );
    let n = c.scaling.live.len().max(c.scaling.simulated.len());
    for i in 0..n {
        let cell = |v: &Vec<String>| v.get(i).map_or("–".into(), |s| escape(s));
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            cell(&c.scaling.live),
            cell(&c.scaling.simulated)
        );
    }
    out.push_str("</table>");
}

fn pods(out: &mut String, c: &Comparison) {
    out.push_str("<h3>Pods</h3><p>Seconds since each run's start; pods matched by their controller and creation order.</p><table><tr><th>pod</th><th>run</th><th>name</th><th>node</th>");
    for m in MILESTONES {
        let _ = write!(out, "<th>{m}</th>");
    }
    out.push_str("</tr>");
    for row in &c.pods {
        for (run, side) in [("live", &row.live), ("sim", &row.simulated)] {
            let _ = write!(out, "<tr><td>{}</td><td>{run}</td>", escape(&row.identity));
            match side {
                Some(PodSide { name, node, at }) => {
                    let _ = write!(
                        out,
                        "<td>{}</td><td>{}</td>",
                        escape(name),
                        escape(node.as_deref().unwrap_or("–"))
                    );
                    for t in at {
                        let _ = write!(
                            out,
                            "<td>{}</td>",
                            t.map_or("–".into(), |t| format!("{t:.3}"))
                        );
                    }
                }
                None => {
                    let _ = write!(
                        out,
                        "<td colspan=\"{}\">not in this run</td>",
                        2 + MILESTONES.len()
                    );
                }
            }
            out.push_str("</tr>");
        }
    }
    out.push_str("</table>");
}
