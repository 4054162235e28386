//! Writes everything a person reads of a run into its directory, from the
//! trace alone: what `kubesim run` does after every run and `kubesim report
//! DIR` does again for a saved one. One pass over the trace feeds the chart
//! series, the Perfetto export and the narration.
//!
//! `DIR/charts/*.svg|png`, `DIR/timeseries.csv`, `DIR/trace.perfetto.json`
//! and `DIR/report.html` (which also reads `DIR/summary.json` and
//! `DIR/scenario.yaml` when they are there).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::charts::charts;
use super::compare::Comparison;
use super::html::{report_html, HtmlInput};
use super::narrate::{narrate, Line};
use super::perfetto::PerfettoWriter;
use super::series::{RunSeries, SeriesReader};
use super::spans::{event_name, is_unread_write, parse_span};
use super::summary::Summary;

/// The most narrated lines the HTML page holds; the rest are counted.
const NARRATION_IN_PAGE: usize = 5_000;

/// What was written, for the caller to list.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// Events in the Perfetto export.
    pub perfetto_events: u64,
}

/// `timeseries.csv`: one row per change of a charted series, long format
/// (`t_seconds,series,value`), series in a stable order.
pub fn timeseries_csv(s: &RunSeries) -> String {
    let mut out = String::from("t_seconds,series,value\n");
    for (name, series) in s.named() {
        for (t, v) in series {
            out.push_str(&format!("{t:.6},{name},{v}\n"));
        }
    }
    out
}

fn write(path: PathBuf, bytes: &[u8], w: &mut Written) -> Result<(), String> {
    std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    w.files.push(path);
    Ok(())
}

/// Calls `f(line, event)` for every trace line some report reads: the
/// event name is read from the record's prefix once, and Lease and Event
/// writes (most of a long trace) are skipped unparsed. Errors carry the
/// line number.
pub fn each_line(
    mut input: impl BufRead,
    mut f: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut buf = String::with_capacity(4096);
    for i in 1u64.. {
        buf.clear();
        let read = input
            .read_line(&mut buf)
            .map_err(|e| format!("trace line {i}: {e}"))?;
        if read == 0 {
            return Ok(());
        }
        let line = buf.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let event = event_name(line).unwrap_or("");
        if is_unread_write(line, event) {
            continue;
        }
        f(line, event).map_err(|e| format!("trace line {i}: {e}"))?;
    }
    Ok(())
}

/// What the series pass over a trace yields.
pub struct TraceReading {
    pub series: RunSeries,
    pub narration: Vec<Line>,
    pub narration_omitted: u64,
}

/// The readers one pass over trace lines feeds: the chart series, the
/// narration and, when given, the Perfetto export. Span records are parsed
/// once for both of their readers.
pub struct Readers<W: std::io::Write> {
    series: SeriesReader,
    pub perfetto: Option<PerfettoWriter<W>>,
    narration: Vec<Line>,
    omitted: u64,
}

impl<W: std::io::Write> Readers<W> {
    pub fn new(perfetto: Option<PerfettoWriter<W>>) -> Self {
        Readers {
            series: SeriesReader::default(),
            perfetto,
            narration: Vec::new(),
            omitted: 0,
        }
    }

    /// Reads one line whose event name the caller has read.
    pub fn line(&mut self, line: &str, event: &str) -> Result<(), String> {
        if let Some(span) = parse_span(line, event) {
            let span = span?;
            self.series.span(&span);
            if let Some(p) = &mut self.perfetto {
                p.span(&span);
            }
            return Ok(());
        }
        self.series.other_line(line)?;
        if let Some(p) = &mut self.perfetto {
            p.record(line, event)?;
        }
        if let Some(l) = narrate(line) {
            if self.narration.len() < NARRATION_IN_PAGE {
                self.narration.push(l);
            } else {
                self.omitted += 1;
            }
        }
        Ok(())
    }

    /// The series and narration, and the Perfetto writer still to finish.
    pub fn finish(self) -> (TraceReading, Option<PerfettoWriter<W>>) {
        (
            TraceReading {
                series: self.series.finish(),
                narration: self.narration,
                narration_omitted: self.omitted,
            },
            self.perfetto,
        )
    }
}

/// Reads a trace into the chart series and the narration.
pub fn read_trace(input: impl BufRead) -> Result<TraceReading, String> {
    let mut readers: Readers<std::io::Sink> = Readers::new(None);
    each_line(input, |line, event| readers.line(line, event))?;
    Ok(readers.finish().0)
}

/// Streams a trace's Perfetto export into `sink`; returns the event count.
pub fn export_perfetto<W: std::io::Write>(
    input: impl BufRead,
    sink: W,
    title: &str,
) -> Result<u64, String> {
    let mut perfetto = PerfettoWriter::new(sink);
    each_line(input, |line, event| perfetto.record(line, event))?;
    let events = perfetto.events();
    perfetto.finish(title).map_err(|e| e.to_string())?;
    Ok(events)
}

fn open_trace(trace: &Path) -> Result<std::io::BufReader<std::fs::File>, String> {
    let file =
        std::fs::File::open(trace).map_err(|e| format!("reading {}: {e}", trace.display()))?;
    Ok(std::io::BufReader::with_capacity(1 << 20, file))
}

/// The report files a run writes beside its trace and summary, and
/// `compare.json`: a comparison belongs to the live run it was made after.
const REPORT_FILES: [&str; 4] = [
    "report.html",
    "timeseries.csv",
    "trace.perfetto.json",
    "compare.json",
];

/// Removes the report files of an earlier run in `dir`, so a run with
/// `--no-report` (or one whose charts differ) leaves none that are not its own.
pub fn remove_report(dir: &Path) -> Result<(), String> {
    let gone = |r: std::io::Result<()>, p: &Path| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing {}: {e}", p.display()))
        }
        _ => Ok(()),
    };
    for f in REPORT_FILES {
        let p = dir.join(f);
        gone(std::fs::remove_file(&p), &p)?;
    }
    let charts = dir.join("charts");
    gone(std::fs::remove_dir_all(&charts), &charts)
}

/// Why `kubesim report` could not run: bad input (exit 2) or a failure
/// writing the outputs (exit 1).
#[derive(Debug)]
pub enum ReportError {
    Input(String),
    Io(String),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Input(m) | ReportError::Io(m) => f.write_str(m),
        }
    }
}

/// Checks that `dir/trace.jsonl` is a whole kubesim trace before anything is
/// written: it exists, is not empty, every line is complete, and it ends
/// with the `RunEnd` record every run writes last (a trace without it was
/// cut off: the run was killed, or the file truncated).
pub fn check_trace(dir: &Path) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    if dir.is_file() {
        return Err(format!(
            "{}: a file; `kubesim report` takes the run directory that holds trace.jsonl",
            dir.display()
        ));
    }
    if !dir.is_dir() {
        return Err(format!("{}: no such run directory", dir.display()));
    }
    let trace = dir.join("trace.jsonl");
    let shown = trace.display();
    let mut file = std::fs::File::open(&trace).map_err(|e| format!("{shown}: {e}"))?;
    let len = file.metadata().map_err(|e| format!("{shown}: {e}"))?.len();
    if len == 0 {
        return Err(format!("{shown} is empty: the run wrote no trace"));
    }
    let is_record = |l: &str| {
        serde_json::from_str::<serde_json::Value>(l)
            .is_ok_and(|v| v["t"].is_u64() && v["event"].is_string())
    };
    let mut first = String::new();
    std::io::BufReader::new(&mut file)
        .take(1 << 24)
        .read_line(&mut first)
        .map_err(|e| format!("{shown}: line 1: {e}"))?;
    if !is_record(first.trim_end()) {
        return Err(format!("{shown}: line 1 is not a kubesim trace record"));
    }
    // The last record is short (RunEnd): the file's tail is enough.
    let from = len.saturating_sub(1 << 16);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(from))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(|e| format!("{shown}: {e}"))?;
    let tail = String::from_utf8_lossy(&tail);
    let last = tail
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or("");
    if !tail.ends_with('\n') || !is_record(last) {
        return Err(format!(
            "{shown}: cut off: its last line is incomplete (the run was interrupted or the file truncated)"
        ));
    }
    if event_name(last) != Some("RunEnd") {
        return Err(format!(
            "{shown}: cut off: it ends without the RunEnd record every run writes last"
        ));
    }
    Ok(())
}

/// Reads `dir/trace.jsonl` and writes every report file of the run.
pub fn write_report(dir: &Path) -> Result<Written, ReportError> {
    check_trace(dir).map_err(ReportError::Input)?;
    write_report_unchecked(dir)
}

fn write_report_unchecked(dir: &Path) -> Result<Written, ReportError> {
    let trace = dir.join("trace.jsonl");
    let title = run_files(dir).map_err(ReportError::Io)?.title;
    let perfetto_path = dir.join("trace.perfetto.json");
    // Two passes over the trace on two threads: the Perfetto export (the
    // larger share of the work on a long run) beside the series, the
    // narration and the charts.
    let (reading, perfetto_events) = std::thread::scope(|scope| {
        let exporter = scope.spawn(|| {
            let input = open_trace(&trace)?;
            let file = std::fs::File::create(&perfetto_path)
                .map_err(|e| format!("writing {}: {e}", perfetto_path.display()))?;
            export_perfetto(
                input,
                std::io::BufWriter::with_capacity(1 << 20, file),
                &title,
            )
            .map_err(|e| format!("{}: {e}", perfetto_path.display()))
        });
        let reading = open_trace(&trace)
            .and_then(|input| read_trace(input).map_err(|e| format!("{}: {e}", trace.display())));
        let exported = exporter
            .join()
            .unwrap_or_else(|_| Err("the Perfetto export failed".into()));
        // A line the readers cannot read is bad input (exit 2), found before
        // the export's failure on the same line; the export's own errors are
        // the writing's.
        let reading = reading.map_err(ReportError::Input)?;
        Ok::<_, ReportError>((reading, exported.map_err(ReportError::Io)?))
    })?;
    write_outputs(dir, &reading, perfetto_events).map_err(ReportError::Io)
}

/// Finishes a one-pass reading that also fed the Perfetto export (the live
/// report), then writes the charts, the CSV and the page.
pub fn finish_outputs(
    dir: &Path,
    readers: Readers<std::io::BufWriter<std::fs::File>>,
    perfetto_path: &Path,
) -> Result<Written, String> {
    let title = run_files(dir)?.title;
    let (reading, perfetto) = readers.finish();
    let mut events = 0;
    if let Some(p) = perfetto {
        events = p.events();
        p.finish(&title)
            .map_err(|e| format!("writing {}: {e}", perfetto_path.display()))?;
    }
    write_outputs(dir, &reading, events)
}

/// What the run directory holds besides its trace: the summary, the
/// scenario as run, the run's name and the Perfetto title.
struct RunFiles {
    summary: Option<Summary>,
    scenario: Option<String>,
    run: String,
    title: String,
}

fn run_files(dir: &Path) -> Result<RunFiles, String> {
    let summary_path = dir.join("summary.json");
    let summary: Option<Summary> = match std::fs::read_to_string(&summary_path) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a kubesim summary: {e}", summary_path.display()))?,
        ),
        Err(_) => None,
    };
    let run = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let title = summary.as_ref().map_or(run.clone(), |s| {
        format!("{} (seed {}, digest {})", s.scenario, s.seed, s.digest)
    });
    Ok(RunFiles {
        summary,
        scenario: std::fs::read_to_string(dir.join("scenario.yaml")).ok(),
        run,
        title,
    })
}

/// Writes the charts, `timeseries.csv` and `report.html` of a read trace
/// (the Perfetto export is already written).
fn write_outputs(
    dir: &Path,
    reading: &TraceReading,
    perfetto_events: u64,
) -> Result<Written, String> {
    let files = run_files(dir)?;
    let mut w = Written::default();
    let svgs = write_charts(dir, &reading.series, &mut w)?;
    write(
        dir.join("timeseries.csv"),
        timeseries_csv(&reading.series).as_bytes(),
        &mut w,
    )?;
    w.perfetto_events = perfetto_events;
    w.files.push(dir.join("trace.perfetto.json"));
    let compare = match Comparison::read(dir).transpose()? {
        Some(c) => {
            let svg = super::compare::chart::svg(&c.chart_panels())?;
            Some((c, svg))
        }
        None => None,
    };
    let page = report_html(&HtmlInput {
        run: &files.run,
        summary: files.summary.as_ref(),
        scenario: files.scenario.as_deref(),
        charts: &svgs,
        narration: &reading.narration,
        narration_omitted: reading.narration_omitted,
        compare: compare.as_ref().map(|(c, s)| (c, s.as_str())),
    });
    write(dir.join("report.html"), page.as_bytes(), &mut w)?;
    Ok(w)
}

/// Writes the charts of `series` under `dir/charts`; returns each chart's
/// heading and SVG for the HTML page.
fn write_charts(
    dir: &Path,
    series: &RunSeries,
    w: &mut Written,
) -> Result<Vec<(String, String)>, String> {
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir)
        .map_err(|e| format!("creating {}: {e}", charts_dir.display()))?;
    let mut svgs = Vec::new();
    for spec in charts(series) {
        let stem = spec.file_stem();
        let svg = spec.svg(series)?;
        write(charts_dir.join(format!("{stem}.svg")), svg.as_bytes(), w)?;
        write(
            charts_dir.join(format!("{stem}.png")),
            &spec.png(series)?,
            w,
        )?;
        svgs.push((spec.heading(), svg));
    }
    Ok(svgs)
}
