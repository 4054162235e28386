//! The `kubesim` command: run a scenario, or validate scenario files.
//!
//! Exit codes: 0 success, 1 an I/O failure writing outputs, 2 bad input
//! (a scenario or flag that does not load).

use std::fs::File;
use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod cli;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use kubesim::api::manifest::LoadError;

/// The simulator allocates and frees small objects (requests, watch events,
/// object versions) at a high rate; mimalloc handles that pattern markedly
/// faster than glibc's allocator. Allocation order never affects results.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use kubesim::scenario::run::{run, RunOptions};
use kubesim::scenario::{load_file, Scenario};
use kubesim::sim::{parse_duration, SimDuration, SimTime, TraceLevel, TraceSink};

#[derive(Parser)]
#[command(
    name = "kubesim",
    version,
    about = "A deterministic discrete-event simulator of a Kubernetes cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Live mode: real containerd nodes (image build, cleanup).
    Live(cli::live::LiveArgs),
    /// Run a scenario; print a summary and the trace digest.
    Run {
        /// The scenario YAML.
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's duration (virtual time, e.g. 90s, 1h).
        #[arg(long, value_parser = duration_arg)]
        until: Option<SimDuration>,
        /// Where to write trace.jsonl and summary.json [default: runs/<scenario file name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// What the trace keeps [default: the scenario's `traceLevel`, else full]
        #[arg(long, value_enum)]
        trace_level: Option<LevelArg>,
        /// Skip the charts, report.html, trace.perfetto.json and
        /// timeseries.csv (trace and summary only); those of an earlier run
        /// in the same directory are removed.
        #[arg(long)]
        no_report: bool,
        /// Print, as the run goes, what a person watching would read:
        /// kubectl's output, `kubectl get events`, `kubectl rollout status`,
        /// Service endpoints and injected faults, with virtual timestamps.
        #[arg(long)]
        narrate: bool,
        /// For a scenario with `faults:`: write it to FILE with the faults
        /// this seed drew as explicit timeline entries and no `faults:`
        /// section; running FILE with the same seed is the same run.
        #[arg(long, value_name = "FILE")]
        write_repro: Option<PathBuf>,
        /// Run the invariant checkers `kubesim fuzz` runs (the run is the
        /// same run: same digest); print what they find and exit 1 when
        /// any invariant was broken.
        #[arg(long)]
        check: bool,
    },
    /// Rebuild a saved run's charts, timeseries.csv, trace.perfetto.json and
    /// report.html from its trace.
    Report {
        /// A run directory holding trace.jsonl (exit 2 when it is missing,
        /// empty, cut off or not a kubesim trace).
        dir: PathBuf,
    },
    /// Fit the kubelet's latency distributions (sandbox create, container
    /// start and stop, image unpack) from a `kubesim live` run into a
    /// `cluster.kubelet` block, then check the fit: simulate the run's
    /// scenario with and without it and compare pod startup with live.
    Calibrate {
        /// The live run's directory.
        live_dir: PathBuf,
        /// Where to write the block [default: LIVE_DIR/calibrated-kubelet.yaml].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only fit and write; skip the check's two simulations.
        #[arg(long)]
        no_check: bool,
    },
    /// Run a scenario over a range of settings (and seeds), in parallel, and
    /// name the cheapest (unpriced: the smallest) setting that meets its
    /// objective.
    Sweep {
        /// The scenario YAML.
        scenario: PathBuf,
        /// PATH=VALUES, repeatable: a path into the scenario
        /// (cluster.nodePools.worker.count; list entries by index or name)
        /// and a list (a,b,c) or an inclusive integer range (2..10:2).
        #[arg(long = "set", required = true)]
        set: Vec<String>,
        /// Override the scenario's seed for every variant.
        #[arg(long)]
        seed: Option<u64>,
        /// Run each variant under every seed of a range, both ends included
        /// (11..30, as `kubesim fuzz` takes it); the table gives each
        /// figure's spread, and a variant meets the objective in its
        /// `seedShare` of seeds.
        #[arg(long, conflicts_with = "seed")]
        seeds: Option<kubesim::faults::swarm::SeedRange>,
        /// Override the scenario's duration.
        #[arg(long, value_parser = duration_arg)]
        until: Option<SimDuration>,
        /// Where to write sweep.csv, sweep.txt and sweep.svg|png
        /// [default: runs/sweep-<scenario file name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Runs at once [default: every core].
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Run a scenario over many seeds with its faults drawn from each and
    /// every invariant checker on; exit 1 when any seed broke one.
    Fuzz {
        /// The scenario YAML (usually with a `faults:` section).
        scenario: PathBuf,
        /// Seeds to run, both ends included: 1..10000, or one seed.
        #[arg(long, default_value = "1..100")]
        seeds: kubesim::faults::swarm::SeedRange,
        /// Runs at once [default: every core]; the results do not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
        /// Where failing seeds' directories go [default: runs/fuzz-<scenario file name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Start no seed after this much wall-clock time (e.g. 10m).
        #[arg(long, value_parser = duration_arg)]
        time_limit: Option<SimDuration>,
    },
    /// Check scenario, manifest or snapshot files without running them.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Shrink a failing repro (delta debugging over its faults, timeline,
    /// objects, replicas, nodes and horizon) to the smallest scenario the
    /// same checker still fails; writes DIR/min.yaml. Exit 1 when it does
    /// not fail.
    Shrink {
        /// A scenario whose faults are timeline entries (a repro.yaml).
        repro: PathBuf,
        /// Where to write min.yaml [default: the repro's directory].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The checker that must still fail [default: the first to report].
        #[arg(long)]
        checker: Option<String>,
    },
    /// Explain where the default scheduler profile puts a pod, node by node.
    Explain {
        /// Multi-document YAML of Nodes (with status) and Pods.
        snapshot: PathBuf,
        /// The pod to explain [default: the one pod without a node].
        #[arg(long)]
        pod: Option<String>,
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
}

/// Writes to stdout, ignoring a closed pipe (`kubesim … | head` must not
/// panic); what was not written is of no use to anyone.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub(crate) fn duration_arg(s: &str) -> Result<SimDuration, String> {
    let d = parse_duration(s).map_err(|e| e.0)?;
    if d.is_zero() {
        return Err("the run must last longer than zero".into());
    }
    Ok(d)
}

/// `--trace-level`, each level keeping everything of the ones below it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LevelArg {
    /// Every committed write with its full object, and everything below.
    Full,
    /// Every apiserver Request and etcd Commit span, and everything below.
    Spans,
    /// Writes without objects, pod lifecycle, Events, scheduling, rollout status.
    Events,
    /// Timeline actions, faults, elections, the bootstrap's end and RunEnd.
    Faults,
}

impl From<LevelArg> for TraceLevel {
    fn from(l: LevelArg) -> Self {
        match l {
            LevelArg::Full => TraceLevel::Full,
            LevelArg::Spans => TraceLevel::Spans,
            LevelArg::Events => TraceLevel::Events,
            LevelArg::Faults => TraceLevel::Faults,
        }
    }
}

fn print_errors(errors: &[LoadError]) {
    for e in errors {
        eprintln!("error: {e}");
    }
    eprintln!(
        "{} error{} found",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
}

fn load(path: &Path) -> Result<Scenario, ExitCode> {
    load_file(path).map_err(|errors| {
        print_errors(&errors);
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Live(args) => match args.scenario.clone() {
            Some(scenario) => live_run_cmd(&scenario, &args),
            None => cli::live::live_cmd(args),
        },
        Command::Validate { files } => validate(&files),
        Command::Explain {
            snapshot,
            pod,
            format,
        } => explain_cmd(&snapshot, pod.as_deref(), &format),
        Command::Run {
            scenario,
            seed,
            until,
            out,
            trace_level,
            no_report,
            narrate,
            write_repro,
            check,
        } => run_cmd(
            &scenario,
            seed,
            until,
            out,
            trace_level.map(TraceLevel::from),
            Outputs {
                report: !no_report,
                narrate,
                write_repro,
                check,
                live: false,
                as_live: false,
            },
        ),
        Command::Report { dir } => report_cmd(&dir),
        Command::Calibrate {
            live_dir,
            out,
            no_check,
        } => cli::calibrate::calibrate_cmd(&live_dir, out, !no_check),
        Command::Fuzz {
            scenario,
            seeds,
            jobs,
            out,
            time_limit,
        } => match load(&scenario) {
            Ok(s) => cli::fuzz::fuzz_cmd(
                &scenario,
                &s,
                cli::fuzz::FuzzArgs {
                    seeds,
                    jobs,
                    out,
                    time_limit,
                },
            ),
            Err(code) => code,
        },
        Command::Shrink {
            repro,
            out,
            checker,
        } => cli::shrink::shrink_cmd(&repro, out, checker.as_deref()),
        Command::Sweep {
            scenario,
            set,
            seed,
            seeds,
            until,
            out,
            jobs,
        } => sweep_cmd(&scenario, &set, (seed, seeds), until, out, jobs),
    }
}

fn explain_cmd(path: &Path, pod: Option<&str>, format: &str) -> ExitCode {
    let file = path.display().to_string();
    let text = match kubesim::api::source::read_source(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "error: {}: cannot read the snapshot: {e}",
                located(&file, &e)
            );
            return ExitCode::from(2);
        }
    };
    match kubesim::scheduler::explain::explain_snapshot(&file, &text, pod) {
        Err(errors) => {
            print_errors(&errors);
            ExitCode::from(2)
        }
        Ok(x) => {
            if format == "json" {
                outln!("{}", serde_json::to_string_pretty(&x).expect("serialises"));
            } else {
                out!("{}", x.table());
            }
            ExitCode::SUCCESS
        }
    }
}

/// `file:line:col` when a read error knows where in the file it is.
fn located(file: &str, e: &kubesim::api::source::SourceError) -> String {
    match e.pos {
        Some(p) => format!("{file}:{}:{}", p.line, p.col),
        None => file.to_string(),
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        match kubesim::scenario::validate::validate_file(f) {
            Err(errors) => {
                print_errors(&errors);
                failed = true;
            }
            Ok(v) => {
                outln!(
                    "{}: ok: read as {}: {}",
                    f.display(),
                    v.read_as.as_str(),
                    v.summary
                );
                for line in &v.notes {
                    outln!("  note: {line}");
                }
                for w in &v.warnings {
                    outln!("  warning: {w}");
                }
            }
        }
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// What a run prints and writes besides its trace and summary.
struct Outputs {
    report: bool,
    narrate: bool,
    write_repro: Option<PathBuf>,
    /// Run the invariant checkers; exit 1 when one is broken.
    check: bool,
    /// `kubesim live`: on the wall clock, with real containerd nodes.
    live: bool,
    /// The simulation of a live run (`kubesim live --compare`): the mapped
    /// images are on every node already, as they are on live nodes.
    as_live: bool,
}

/// The run directory's `scenario.yaml` becomes the repro (its lines are the
/// trace's), and `--write-repro` gets a copy with includes resolved from
/// its own directory.
fn write_repros(
    m: &kubesim::faults::repro::Materialized,
    out: &Path,
    extra: Option<&Path>,
) -> Result<(), String> {
    let mut targets = vec![out.join("scenario.yaml")];
    targets.extend(extra.map(Path::to_path_buf));
    for file in targets {
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let text = m
            .repro_for(&dir)
            .map_err(|e| format!("writing {}: {e}", file.display()))?;
        std::fs::write(&file, text).map_err(|e| format!("writing {}: {e}", file.display()))?;
    }
    Ok(())
}

/// Writes the repro, exactly the text the run ran, beside the run
/// directory's copy of the scenario; returns its path for the `rerun` line.
fn write_repro_copy(
    m: &kubesim::faults::repro::Materialized,
    copy: &Path,
) -> Result<PathBuf, String> {
    let stem = copy
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".into());
    let file = copy.with_file_name(format!("{stem}.repro.yaml"));
    let text = m.repro_as_run()?;
    std::fs::write(&file, text).map_err(|e| format!("writing {}: {e}", file.display()))?;
    Ok(file)
}

/// `kubesim live SCENARIO`, and with `--compare` the simulation of the
/// same scenario and seed into `sim/` beside it, then the comparison.
fn live_run_cmd(scenario: &Path, args: &cli::live::LiveArgs) -> ExitCode {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(scenario, true));
    // The comparison reads pods' milestones from the objects written.
    let level = args.compare.then_some(TraceLevel::Full);
    let outputs = |live| Outputs {
        report: !args.no_report,
        narrate: false,
        write_repro: None,
        check: false,
        live,
        as_live: !live,
    };
    let code = run_cmd(
        scenario,
        None,
        args.until,
        Some(out.clone()),
        level,
        outputs(true),
    );
    if !args.compare || code != ExitCode::SUCCESS {
        return code;
    }
    cli::live::compare(&out, !args.no_report, |seed, until, sim_out| {
        run_cmd(
            scenario,
            Some(seed),
            Some(until),
            Some(sim_out),
            level,
            outputs(false),
        )
    })
}

/// `runs/<scenario file stem>`, with `-live` for a live run.
fn default_out(path: &Path, live: bool) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let suffix = if live { "-live" } else { "" };
    PathBuf::from("runs").join(stem + suffix)
}

fn run_cmd(
    path: &Path,
    seed: Option<u64>,
    until: Option<SimDuration>,
    out: Option<PathBuf>,
    trace_level: Option<TraceLevel>,
    outputs: Outputs,
) -> ExitCode {
    let scenario = match load(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // Drawn faults run as their repro, so the trace's lines point into it.
    let faulted = match kubesim::faults::repro::materialize(path, &scenario, seed) {
        Ok(m) => m,
        Err(errors) => {
            print_errors(&errors);
            return ExitCode::from(2);
        }
    };
    if faulted.is_none() && outputs.write_repro.is_some() {
        eprintln!(
            "error: --write-repro: {} has no `faults:` section to write out",
            path.display()
        );
        return ExitCode::from(2);
    }
    let (scenario, faulted) = match faulted {
        Some(mut m) => {
            let s = std::mem::replace(&mut m.scenario, scenario);
            (s, Some(m))
        }
        None => (scenario, None),
    };
    let out = out.unwrap_or_else(|| default_out(path, outputs.live));
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("error: cannot create {}: {e}", out.display());
        return ExitCode::from(1);
    }
    // The scenario as run, for report.html and for whoever reads the run
    // later (not onto itself: a copy onto the same file empties it).
    let as_run = out.join("scenario.yaml");
    let same =
        std::fs::canonicalize(path).ok() == std::fs::canonicalize(&as_run).ok() && as_run.exists();
    if let Err(e) = (!same).then(|| std::fs::copy(path, &as_run)).transpose() {
        eprintln!(
            "error: copying {} into {}: {e}",
            path.display(),
            out.display()
        );
        return ExitCode::from(1);
    }
    // With every file it reads, laid out as they were, so the directory
    // alone reruns it; and no report of an earlier run left beside this one.
    let rerun = match kubesim::scenario::sources::copy_into(path, &out.join("scenario"))
        .and_then(|copy| kubesim::report::output::remove_report(&out).map(|_| copy))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    // A faulted run reruns from its repro: the drawn faults written out as
    // timeline entries beside the copied scenario (includes as written, so
    // they resolve to the copies), with the seed inside it.
    let rerun = match &faulted {
        Some(m) => match write_repros(m, &out, outputs.write_repro.as_deref())
            .and_then(|_| write_repro_copy(m, &rerun))
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        None => rerun,
    };
    let mut scenario = scenario;
    if outputs.as_live {
        kubesim::live::session::preload_images(&mut scenario);
    }
    let live = if outputs.live {
        match cli::live::start_session(&out, &mut scenario) {
            Ok(l) => Some(l),
            Err(code) => return code,
        }
    } else {
        None
    };
    let trace_path = out.join("trace.jsonl");
    let file = match File::create(&trace_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot create {}: {e}", trace_path.display());
            return ExitCode::from(1);
        }
    };
    let horizon = until.unwrap_or(scenario.duration);
    let bar = ProgressBar::with_draw_target(
        Some(horizon.nanos() / 1_000_000_000),
        ProgressDrawTarget::hidden(),
    );
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} s virtual  {elapsed} wall  eta {eta}")
            .expect("static template"),
    );
    // A progress bar would tear through the narration.
    let tty = std::io::stderr().is_terminal() && !outputs.narrate;
    let started = Instant::now();
    let level = trace_level.unwrap_or(scenario.trace_level);
    // The report is read from the trace as the run writes it, on another
    // thread; after the run only the charts and the page remain.
    let (feeder, report) = if outputs.report {
        match kubesim::report::live::start(&out) {
            Ok((f, l)) => (Some(f), Some(l)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        (None, None)
    };
    let narrate = outputs.narrate;
    if narrate && level < TraceLevel::Events {
        outln!("(trace level {level:?}: only actions and faults are narrated; events need --trace-level events or above)");
    }
    let observer: Option<kubesim::sim::TraceObserver> = (narrate || feeder.is_some()).then(|| {
        let mut feeder = feeder;
        Box::new(move |line: &str| {
            if narrate {
                if let Some(l) = kubesim::report::narrate::narrate(line) {
                    outln!("{l}");
                }
            }
            if let Some(f) = &mut feeder {
                f.feed(line);
            }
        }) as kubesim::sim::TraceObserver
    });
    let (session, pacer) = match live {
        Some((session, mut clock)) => {
            // Virtual time zero is now, after the nodes came up.
            clock.reset();
            let p: Box<dyn kubesim::sim::Pacer<kubesim::model::msg::Payload>> = Box::new(clock);
            (Some(session), Some(p))
        }
        None => (None, None),
    };
    let opts = RunOptions {
        seed,
        until,
        trace_level: level,
        sink: TraceSink::Writer(Box::new(BufWriter::with_capacity(1 << 20, file))),
        observer,
        checks: outputs.check,
        pacer,
        ..RunOptions::default()
    };
    let mut shown = false;
    let finished = run(&scenario, opts, |t: SimTime| {
        // Show the bar only for runs long enough to want one.
        if tty && !shown && started.elapsed().as_millis() > 1000 {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            shown = true;
        }
        bar.set_position(t.0 / 1_000_000_000);
    });
    bar.finish_and_clear();
    if let Some(session) = session {
        cli::live::end_session(session);
    }
    let finished = match finished {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: writing {}: {e}", trace_path.display());
            return ExitCode::from(1);
        }
    };
    let wall = started.elapsed().as_secs_f64();
    // Dropping the run's engine drops its trace, whose observer hands the
    // last lines to the report thread.
    let mut summary = {
        let f = finished;
        f.summary
    };
    summary.faults = faulted
        .as_ref()
        .map(|m| kubesim::report::summary::FaultsDrawn {
            seed: m.seed,
            drawn: m.schedule.faults.len(),
            skipped: m.schedule.skipped as usize,
        });
    let summary = &summary;
    let summary_path = out.join("summary.json");
    let json = serde_json::to_string_pretty(summary).expect("summary serialises");
    if let Err(e) = std::fs::write(&summary_path, json + "\n") {
        eprintln!("error: writing {}: {e}", summary_path.display());
        return ExitCode::from(1);
    }
    out!("{}", summary.render());
    if let Some(f) = &summary.faults {
        outln!("{}", f.line());
    }
    outln!(
        "wall     {:.2}s, {:.0} events/s, {:.0}× real time",
        wall,
        summary.events as f64 / wall.max(1e-9),
        summary.simulated_s / wall.max(1e-9)
    );
    outln!(
        "output   {} and {}",
        trace_path.display(),
        summary_path.display()
    );
    outln!(
        "rerun    kubesim {} {}{}",
        if outputs.live { "live" } else { "run" },
        rerun.display(),
        seed.map_or(String::new(), |s| format!(" --seed {s}"))
            + &until.map_or(String::new(), |u| format!(" --until {u}"))
    );
    if let Some(report) = report {
        let started = Instant::now();
        match report.finish(&out) {
            Ok(w) => outln!(
                "report   {} {:.2}s after the run ({} chart files, timeseries.csv, trace.perfetto.json with {} events)",
                out.join("report.html").display(),
                started.elapsed().as_secs_f64(),
                w.files.len().saturating_sub(3),
                w.perfetto_events
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let violated = summary.violations.as_ref().is_some_and(|v| !v.is_empty());
    if let Some(v) = &summary.violations {
        outln!("checks   {} violations", v.len());
        for line in v {
            outln!("         {line}");
        }
    }
    outln!("trace digest: {}", summary.trace_digest);
    outln!("digest: {}", summary.digest);
    if violated {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn report_cmd(dir: &Path) -> ExitCode {
    let started = Instant::now();
    match kubesim::report::output::write_report(dir) {
        Ok(w) => {
            for f in &w.files {
                outln!("{}", f.display());
            }
            outln!(
                "{} files in {:.2}s",
                w.files.len(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            let bad_input = matches!(e, kubesim::report::output::ReportError::Input(_));
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

/// The most runs one sweep keeps (each outcome holds its summary).
const MAX_SWEEP_RUNS: usize = 100_000;

fn sweep_cmd(
    path: &Path,
    set: &[String],
    (seed, seed_range): (Option<u64>, Option<kubesim::faults::swarm::SeedRange>),
    until: Option<SimDuration>,
    out: Option<PathBuf>,
    jobs: Option<usize>,
) -> ExitCode {
    use kubesim::report::sweep_report;
    use kubesim::scenario::sweep;
    let mut axes = Vec::new();
    for s in set {
        match sweep::parse_set(s) {
            Ok(a) => axes.push(a),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let file = path.display().to_string();
    let text = match kubesim::api::source::read_source(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "error: {}: cannot read the scenario: {e}",
                located(&file, &e)
            );
            return ExitCode::from(2);
        }
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let variants = match sweep::variants(&file, &text, &base, &axes) {
        Ok(v) => v,
        Err(errors) => {
            print_errors(&errors);
            return ExitCode::from(2);
        }
    };
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let objective = variants[0].scenario.objective.clone();
    let name = variants[0].scenario.name.clone();
    let seeds: Vec<Option<u64>> = match seed_range {
        None => vec![seed],
        Some(r) => (r.first..=r.last).map(Some).collect(),
    };
    let per = seeds.len();
    if variants.len().saturating_mul(per) > MAX_SWEEP_RUNS {
        eprintln!(
            "error: {} variants × {per} seeds are more than the {MAX_SWEEP_RUNS} runs one sweep takes",
            variants.len()
        );
        return ExitCode::from(2);
    }
    let seeds_note = if per == 1 {
        String::new()
    } else {
        format!(" × {per} seeds")
    };
    outln!(
        "sweep    {name}: {} variants{seeds_note} on {jobs} threads; objective: {}",
        variants.len(),
        objective.describe()
    );
    let started = Instant::now();
    let outcomes = match sweep::run_all(&variants, &seeds, until, jobs, &|_, o| {
        eprintln!(
            "  {} seed {}: {}",
            o.label,
            o.summary.seed,
            if o.meets() {
                "meets the objective"
            } else {
                "misses"
            }
        );
    }) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let wall = started.elapsed().as_secs_f64();
    let share = objective.seed_share;
    let table = sweep_report::table(&outcomes, per, share);
    out!("{table}");
    let verdict = kubesim::scenario::recommend::verdict(&outcomes, per, share);
    outln!("{verdict}");
    let events: u64 = outcomes.iter().map(|o| o.summary.events).sum();
    outln!(
        "wall     {wall:.2}s for {} runs, {:.0} events/s over {jobs} threads",
        outcomes.len(),
        events as f64 / wall.max(1e-9)
    );
    let out = out.unwrap_or_else(|| {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        PathBuf::from("runs").join(format!("sweep-{stem}"))
    });
    let title = format!("{name}: {verdict}");
    let written = std::fs::create_dir_all(&out)
        .map_err(|e| format!("creating {}: {e}", out.display()))
        .and_then(|_| {
            let svg = sweep_report::chart_svg(&title, &outcomes, per, &objective)?;
            let png = sweep_report::chart_png(&title, &outcomes, per, &objective)?;
            for (f, bytes) in [
                ("sweep.csv", sweep_report::csv(&outcomes).into_bytes()),
                ("sweep.txt", format!("{table}{verdict}\n").into_bytes()),
                ("sweep.svg", svg.into_bytes()),
                ("sweep.png", png),
            ] {
                let p = out.join(f);
                std::fs::write(&p, bytes).map_err(|e| format!("writing {}: {e}", p.display()))?;
            }
            Ok(())
        });
    if let Err(e) = written {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    outln!(
        "output   {}/sweep.csv, sweep.txt, sweep.svg and sweep.png",
        out.display()
    );
    ExitCode::SUCCESS
}
