//! `report.html`: one self-contained page per run — the summary, every chart
//! inlined as SVG, the narrated timeline, the scenario as run, the seed and
//! the digest — that opens in a browser with no network and no other file.
//!
//! The page carries a few lines of script: a filter for the timeline's
//! voices, and a self-check that records on `<body>` how many charts were
//! laid out with a size (`data-charts-rendered`) and any script error
//! (`data-errors`), which the headless-browser test reads back.

use std::fmt::Write as _;

use super::narrate::{clock, Line};
use super::summary::Summary;

/// What the page is made of.
pub struct HtmlInput<'a> {
    /// The run's directory name, for the title when there is no summary.
    pub run: &'a str,
    pub summary: Option<&'a Summary>,
    /// The scenario file as run.
    pub scenario: Option<&'a str>,
    /// (heading, SVG document) per chart, in report order.
    pub charts: &'a [(String, String)],
    pub narration: &'a [Line],
    /// Narrated lines left out of the page (kept to a readable length).
    pub narration_omitted: u64,
    /// A live run's comparison with its simulation, and its chart's SVG.
    pub compare: Option<(&'a super::compare::Comparison, &'a str)>,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font-family:"DejaVu Sans",Verdana,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#0b3d62;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:24px}
header p{margin:2px 0;opacity:.9}
main{max-width:1160px;margin:0 auto;padding:8px 24px 40px}
h2{border-bottom:2px solid #0072b2;padding-bottom:4px;margin-top:34px}
nav a{margin-right:14px;color:#0072b2}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:10px}
.figure{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px}
.figure b{display:block;font-size:22px}
.figure.bad b{color:#c00}
.figure.good b{color:#007a55}
figure{margin:18px 0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
figure svg{max-width:100%;height:auto;display:block}
figcaption{font-weight:bold;margin:4px 6px 8px}
table{border-collapse:collapse;background:#fff;width:100%}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}
.timeline{font-family:"DejaVu Sans Mono",monospace;font-size:13px;max-height:640px;overflow:auto;background:#fff;border:1px solid #ddd}
.timeline div{white-space:pre-wrap;padding:1px 8px;border-bottom:1px solid #f0f0f0}
.timeline .t{color:#777}
.v-kubectl{background:#eef6fc}.v-warning{background:#fff1f0}.v-fault{background:#fde8d7;font-weight:bold}.v-status{color:#005a8c}
pre.scenario{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;font-size:13px}
code{background:#eee;padding:1px 4px;border-radius:3px}
header code{background:rgba(255,255,255,.18);color:#fff}
label{margin-right:12px}
"#;

const SCRIPT: &str = r#"
window.addEventListener('error', function (e) {
  var b = document.body, n = parseInt(b.dataset.errors || '0', 10) + 1;
  b.dataset.errors = String(n);
  b.dataset.lastError = String(e.message);
});
function kubesimFilter() {
  var boxes = document.querySelectorAll('input[data-voice]');
  var shown = {};
  boxes.forEach(function (b) { shown[b.dataset.voice] = b.checked; });
  document.querySelectorAll('.timeline div').forEach(function (d) {
    d.style.display = shown[d.dataset.voice] === false ? 'none' : '';
  });
}
window.addEventListener('load', function () {
  var charts = document.querySelectorAll('figure svg'), drawn = 0;
  charts.forEach(function (s) {
    var r = s.getBoundingClientRect();
    if (r.width > 100 && r.height > 50 && s.querySelectorAll('text').length > 0) { drawn += 1; }
  });
  document.body.dataset.charts = String(charts.length);
  document.body.dataset.chartsRendered = String(drawn);
  document.body.dataset.errors = document.body.dataset.errors || '0';
  document.querySelectorAll('input[data-voice]').forEach(function (b) {
    b.addEventListener('change', kubesimFilter);
  });
});
"#;

fn figure(out: &mut String, label: &str, value: String, verdict: Option<bool>) {
    let class = match verdict {
        Some(true) => " good",
        Some(false) => " bad",
        None => "",
    };
    let _ = write!(
        out,
        "<div class=\"figure{class}\">{}<b>{}</b></div>",
        escape(label),
        escape(&value)
    );
}

fn summary_section(out: &mut String, s: &Summary) {
    out.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"figures\">");
    let phases: Vec<String> = s
        .pods
        .by_phase
        .iter()
        .map(|(p, n)| format!("{n} {p}"))
        .collect();
    figure(
        out,
        "pods at the end",
        if phases.is_empty() {
            "none".into()
        } else {
            phases.join(", ")
        },
        None,
    );
    figure(
        out,
        "pending without a node at the end",
        s.pods.unscheduled.to_string(),
        Some(s.pods.unscheduled == 0),
    );
    figure(
        out,
        "nodes ready / total",
        format!("{} / {}", s.nodes.ready, s.nodes.total),
        Some(s.nodes.ready == s.nodes.total),
    );
    let run = &s.pod_startup.created_to_running;
    if run.count > 0 {
        figure(
            out,
            &format!(
                "pod startup p99, created to Running ({} pods; SLO 5 s)",
                run.count
            ),
            format!("{:.0} ms", run.p99_ms),
            Some(run.p99_ms <= super::charts::STARTUP_SLO_SECONDS * 1000.0),
        );
    }
    if s.scheduling.count > 0 {
        figure(
            out,
            "scheduling latency p99, created to bound",
            format!("{:.0} ms", s.scheduling.p99_ms),
            None,
        );
    }
    figure(
        out,
        "etcd commit p50 / p99",
        format!(
            "{:.1} / {:.1} ms",
            s.etcd.commit.p50_ms, s.etcd.commit.p99_ms
        ),
        None,
    );
    let b = &s.bootstrap;
    let at = |t: Option<f64>| t.map_or("never".to_string(), |t| format!("{t:.2} s"));
    figure(
        out,
        &format!(
            "bootstrap (apart from the figures above): etcd leader / {} nodes Ready",
            b.nodes
        ),
        match b.nodes {
            0 => at(b.etcd_leader_s),
            _ => format!("{} / {}", at(b.etcd_leader_s), at(b.nodes_ready_s)),
        },
        Some(b.end_s.is_some()),
    );
    figure(
        out,
        "bootstrap etcd commit p99",
        format!("{:.1} ms (n={})", b.etcd_commit.p99_ms, b.etcd_commit.count),
        None,
    );
    figure(
        out,
        "etcd leader changes",
        s.etcd.leader_changes.to_string(),
        None,
    );
    let requests: u64 = s.apiserver.requests_by_code.values().sum();
    let errors: u64 = s
        .apiserver
        .requests_by_code
        .iter()
        .filter(|(c, _)| **c >= 500)
        .map(|(_, n)| n)
        .sum();
    figure(
        out,
        "apiserver requests (5xx)",
        format!("{requests} ({errors})"),
        Some(errors == 0),
    );
    figure(
        out,
        "simulated / events / trace records",
        format!("{} s / {} / {}", s.simulated_s, s.events, s.trace_records),
        None,
    );
    out.push_str("</div>");
    if !s.actions.is_empty() {
        out.push_str("<h3>Timeline actions</h3><table><tr><th>at</th><th>line</th><th>action</th><th>result</th></tr>");
        for a in &s.actions {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                clock((a.at_s * 1e9).round() as u64),
                a.line,
                escape(&a.action),
                escape(&a.result)
            );
        }
        out.push_str("</table>");
    }
    let loading: Vec<&String> = s
        .loading
        .converted
        .iter()
        .chain(&s.loading.not_simulated)
        .chain(&s.loading.warnings)
        .collect();
    if !loading.is_empty() {
        out.push_str("<h3>Loading</h3><ul>");
        for l in loading {
            let _ = write!(out, "<li>{}</li>", escape(l));
        }
        out.push_str("</ul>");
    }
    out.push_str("<h3>The run in text</h3><pre class=\"scenario\">");
    out.push_str(&escape(&s.render()));
    out.push_str("</pre></section>");
}

/// The whole page.
pub fn report_html(input: &HtmlInput<'_>) -> String {
    let mut out =
        String::with_capacity(64 * 1024 + input.charts.iter().map(|c| c.1.len()).sum::<usize>());
    let title = input.summary.map_or(input.run, |s| s.scenario.as_str());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>kubesim: {}</title><style>{STYLE}</style><script>{SCRIPT}</script></head><body>",
        escape(title)
    );
    out.push_str("<header>");
    let _ = write!(out, "<h1>kubesim run: {}</h1>", escape(title));
    if let Some(s) = input.summary {
        if !s.description.is_empty() {
            let _ = write!(out, "<p>{}</p>", escape(&s.description));
        }
        let _ = write!(
            out,
            "<p>seed <code>{}</code> &middot; {} s of virtual time &middot; digest <code id=\"digest\">{}</code></p>",
            s.seed,
            s.simulated_s,
            escape(&s.digest)
        );
    }
    out.push_str("</header><main><nav>");
    let compare = input.compare.map(|_| ("compare", "Live vs simulated"));
    for (id, name) in [
        ("summary", "Summary"),
        ("charts", "Charts"),
        ("timeline", "Timeline"),
        ("scenario", "Scenario"),
    ]
    .into_iter()
    .chain(compare)
    {
        let _ = write!(out, "<a href=\"#{id}\">{name}</a>");
    }
    out.push_str("</nav>");
    match input.summary {
        Some(s) => summary_section(&mut out, s),
        None => out.push_str(
            "<section id=\"summary\"><h2>Summary</h2><p>No summary.json in the run directory.</p></section>",
        ),
    }
    out.push_str("<section id=\"charts\"><h2>Charts</h2>");
    if input.charts.is_empty() {
        out.push_str("<p>The trace holds nothing to chart.</p>");
    }
    for (heading, svg) in input.charts {
        let _ = write!(out, "<figure><figcaption>{}</figcaption>", escape(heading));
        // plotters writes a bare <svg> element: it can be inlined as is.
        out.push_str(svg.trim());
        out.push_str("</figure>");
    }
    out.push_str("</section>");
    if let Some((c, svg)) = input.compare {
        super::compare::html::section(&mut out, c, svg);
    }
    out.push_str("<section id=\"timeline\"><h2>Narrated timeline</h2>");
    out.push_str("<p>What <code>kubesim run --narrate</code> prints: kubectl's output, <code>kubectl get events</code>, <code>kubectl rollout status</code>, Service endpoints and faults, in virtual time. Show: ");
    for voice in ["kubectl", "event", "warning", "status", "fault"] {
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" checked data-voice=\"{voice}\"> {voice}</label>"
        );
    }
    out.push_str("</p><div class=\"timeline\">");
    for l in input.narration {
        let v = l.voice.as_str();
        let _ = write!(
            out,
            "<div class=\"v-{v}\" data-voice=\"{v}\"><span class=\"t\">{}</span>  {}</div>",
            clock(l.t),
            escape(&l.text)
        );
    }
    out.push_str("</div>");
    if input.narration_omitted > 0 {
        let _ = write!(
            out,
            "<p>{} more lines are in <code>trace.jsonl</code>; <code>kubesim run --narrate</code> prints them all.</p>",
            input.narration_omitted
        );
    }
    out.push_str("</section><section id=\"scenario\"><h2>The scenario as run</h2>");
    match input.scenario {
        Some(text) => {
            out.push_str("<pre class=\"scenario\">");
            out.push_str(&escape(text));
            out.push_str("</pre>");
        }
        None => out.push_str("<p>No scenario.yaml in the run directory.</p>"),
    }
    out.push_str("<p>Beside this page: <code>trace.jsonl</code> (the trace), <code>summary.json</code>, <code>timeseries.csv</code>, <code>charts/</code> (SVG and PNG) and <code>trace.perfetto.json</code> (open it in ui.perfetto.dev). <code>kubesim report DIR</code> rebuilds them all from the trace.</p>");
    out.push_str("</section></main></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::narrate::Voice;

    #[test]
    fn the_page_escapes_what_it_shows_and_inlines_charts() {
        let charts = vec![(
            "Pods <by> phase".to_string(),
            "<svg width=\"10\" height=\"10\"><text>x</text></svg>".to_string(),
        )];
        let narration = vec![Line {
            t: 1_500_000_000,
            voice: Voice::Warning,
            text: "pod <web> & \"friends\"".into(),
        }];
        let page = report_html(&HtmlInput {
            run: "r",
            summary: None,
            scenario: Some("name: a<b"),
            charts: &charts,
            narration: &narration,
            narration_omitted: 3,
            compare: None,
        });
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<figcaption>Pods &lt;by&gt; phase</figcaption><svg"));
        assert!(page.contains("pod &lt;web&gt; &amp; &quot;friends&quot;"));
        assert!(page.contains("0:00:01.500"));
        assert!(page.contains("name: a&lt;b"));
        assert!(page.contains("3 more lines"));
        for fetch in ["src=\"http", "href=\"http", "@import", "url("] {
            assert!(!page.contains(fetch), "no network reference: {fetch}");
        }
    }
}
