//! `kubesim live ...`: the live run's session around `run_cmd` (the nodes
//! started before the clock, stopped and counted after), `--compare` (the
//! simulation of the same scenario and seed, then the comparison), and the
//! commands that need no scenario: `live image build` (an OCI archive from
//! busybox-static or a static binary) and `live cleanup DIR` (what a
//! `kill -9`ed live run left).
//!
//! `LiveArgs` lets arguments and subcommands conflict, so `kubesim live
//! SCENARIO` sits beside the subcommands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kubesim::live::pacer::WallClock;
use kubesim::live::session::LiveSession;
use kubesim::live::{cleanup, image};
use kubesim::report::compare::Comparison;

/// `kubesim live SCENARIO`: the scenario's control plane on the wall
/// clock, its kubelets driving real containerd nodes; or one of the
/// subcommands.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LiveArgs {
    #[command(subcommand)]
    pub command: Option<LiveCommand>,
    /// The scenario to run on real nodes (needs root, containerd, runc and
    /// busybox-static).
    pub scenario: Option<PathBuf>,
    /// The run directory [default: runs/<scenario name>-live]. Its nodes/
    /// holds each node's containerd; keep the path short (socket paths
    /// are limited to 108 bytes).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop this long after the start instead of at the scenario's
    /// duration (Ctrl-C stops at once, cleanly).
    #[arg(long, value_parser = crate::duration_arg)]
    pub until: Option<kubesim::sim::SimDuration>,
    /// Skip the charts and report.html.
    #[arg(long)]
    pub no_report: bool,
    /// Then simulate the same scenario and seed into DIR/sim and compare
    /// the two: per pod lifecycle instants, latency distributions (p50,
    /// p90, KS distance, a chart) and the controller's scaling steps, in
    /// compare.json and report.html.
    #[arg(long)]
    pub compare: bool,
}

#[derive(Subcommand)]
pub enum LiveCommand {
    /// Images for live nodes, without a registry.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Kill and remove what a killed live run left in DIR: containerd
    /// daemons, shims, task processes, containers, snapshots, mounts, cgroups.
    Cleanup {
        /// The live run's directory (it holds nodes/).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build an OCI image archive from Debian's busybox-static, or from a
    /// static binary run as /NAME.
    Build {
        /// The image's name (busybox-web → docker.io/library/busybox-web:latest).
        name: String,
        /// A static binary to install as /NAME and run as the entrypoint.
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Where to write the archive [default: NAME.tar, '/' and ':' as '_'].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn live_cmd(args: LiveArgs) -> ExitCode {
    match args.command {
        Some(LiveCommand::Image {
            command: ImageCommand::Build { name, binary, out },
        }) => image_build(&name, binary, out),
        Some(LiveCommand::Cleanup { dir }) => cleanup_cmd(&dir),
        None => {
            eprintln!("error: kubesim live needs a SCENARIO, or `image build` / `cleanup DIR`");
            ExitCode::from(2)
        }
    }
}

fn image_build(name: &str, binary: Option<PathBuf>, out: Option<PathBuf>) -> ExitCode {
    let source = binary.map_or(image::ImageSource::Busybox, image::ImageSource::Binary);
    let built = match image::build(name, &source) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let out =
        out.unwrap_or_else(|| PathBuf::from(format!("{}.tar", name.replace(['/', ':'], "_"))));
    if let Err(e) = std::fs::write(&out, &built.archive) {
        eprintln!("error: writing {}: {e}", out.display());
        return ExitCode::from(1);
    }
    println!(
        "{}: manifest {}, {} bytes -> {}",
        built.name,
        built.manifest_digest,
        built.archive.len(),
        out.display()
    );
    ExitCode::SUCCESS
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
}

fn cleanup_cmd(dir: &Path) -> ExitCode {
    let rt = runtime();
    let nodes = match rt.block_on(cleanup::cleanup(dir)) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for n in &nodes {
        println!("{}: found   {}", n.node, n.found);
        println!("{}: removed {}", n.node, n.removed);
    }
    match rt.block_on(cleanup::count_leftovers(dir)) {
        Ok(left) if left.total() == 0 => {
            println!("{} node(s) clean", nodes.len());
            ExitCode::SUCCESS
        }
        Ok(left) => {
            eprintln!("error: still left: {left}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: recounting: {e}");
            ExitCode::from(1)
        }
    }
}

/// Starts the live nodes of `scenario` under `out` and turns the scenario
/// into its live form; the clock starts when the run does.
pub fn start_session(
    out: &Path,
    scenario: &mut kubesim::scenario::Scenario,
) -> Result<(LiveSession, WallClock), ExitCode> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    // A second handler cannot be set (tests run several in one process):
    // then Ctrl-C ends the process as usual and `live cleanup` is the way.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    let (clock, answers) = WallClock::start(interrupted);
    let dir = match std::fs::canonicalize(out) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {}: {e}", out.display());
            return Err(ExitCode::from(1));
        }
    };
    let started = std::time::Instant::now();
    match LiveSession::start(&dir, scenario, answers) {
        Ok(s) => {
            s.adapt(scenario);
            println!(
                "live     {} containerd nodes up in {:.2}s under {}",
                scenario.nodes.len(),
                started.elapsed().as_secs_f64(),
                dir.join("nodes").display()
            );
            Ok((s, clock))
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            Err(ExitCode::from(e.code))
        }
    }
}

/// `--compare` after a live run into `out`: `simulate(seed, until, dir)`
/// runs the simulation of the same scenario for as long as the live run
/// lasted, then the comparison is written and shown, and the live run's
/// report rebuilt with it.
pub fn compare(
    out: &Path,
    report: bool,
    simulate: impl FnOnce(u64, kubesim::sim::SimDuration, PathBuf) -> ExitCode,
) -> ExitCode {
    let summary: kubesim::report::summary::Summary =
        match super::calibrate::read_json(&out.join("summary.json")) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
    let until = kubesim::sim::SimDuration((summary.simulated_s * 1e9).round() as u64);
    let sim_dir = out.join("sim");
    println!(
        "compare  simulating the same scenario (seed {}, {}) into {}",
        summary.seed,
        until,
        sim_dir.display()
    );
    let code = simulate(summary.seed, until, sim_dir.clone());
    if code != ExitCode::SUCCESS {
        return code;
    }
    let comparison = match Comparison::of_runs(out, &sim_dir, summary.seed) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: comparing: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = comparison.write(out) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    print!("{}", comparison.render());
    if report {
        if let Err(e) = kubesim::report::output::write_report(out) {
            eprintln!("error: rebuilding the report: {e}");
            return ExitCode::from(1);
        }
    }
    println!(
        "compare  {} and {}",
        out.join("compare.json").display(),
        out.join("charts/compare.svg").display()
    );
    ExitCode::SUCCESS
}

/// Removes every container, stops every node and says what is left.
pub fn end_session(session: LiveSession) {
    match session.shutdown() {
        Ok(left) if left.total() == 0 => {
            println!("live     nodes stopped; nothing left ({left})")
        }
        Ok(left) => eprintln!("warning: left after the live run: {left}"),
        Err(e) => eprintln!("warning: stopping the live nodes: {e}"),
    }
}
