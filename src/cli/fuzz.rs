//! `kubesim fuzz SCENARIO --seeds A..B [--jobs N] [--out DIR] [--time-limit D]`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kubesim::faults::replay::{write_failing_seed, DETERMINISM};
use kubesim::faults::swarm::{fuzz, SeedOutcome, SeedRange};
use kubesim::faults::Checks;
use kubesim::scenario::Scenario;
use kubesim::sim::SimDuration;

/// At most this many failing seeds get a directory (each holds a full
/// trace); the table still counts every one.
pub const MAX_SEED_DIRS: usize = 10;

pub struct FuzzArgs {
    pub seeds: SeedRange,
    pub jobs: Option<usize>,
    pub out: Option<PathBuf>,
    pub time_limit: Option<SimDuration>,
}

pub fn fuzz_cmd(path: &Path, scenario: &Scenario, args: FuzzArgs) -> ExitCode {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let out = args.out.unwrap_or_else(|| {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        PathBuf::from("runs").join(format!("fuzz-{stem}"))
    });
    let checkers = Checks::for_scenario(scenario).names();
    println!(
        "fuzz     {} seeds {} on {} jobs, {} checkers: {}",
        scenario.name,
        args.seeds,
        jobs,
        checkers.len(),
        checkers.join(", ")
    );
    let bar = progress_bar(args.seeds.len());
    let started = Instant::now();
    let deadline = args
        .time_limit
        .map(|d| started + Duration::from_nanos(d.nanos()));
    let on_done = |o: &SeedOutcome| {
        bar.inc(1);
        if o.failed() {
            bar.println(format!("seed {}: {}", o.seed, o.violations[0]));
        }
    };
    let stop = || deadline.is_some_and(|d| Instant::now() >= d);
    let campaign = match fuzz(scenario, args.seeds, jobs, &stop, &on_done) {
        Ok(c) => c,
        Err(e) => {
            bar.finish_and_clear();
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    bar.finish_and_clear();
    if campaign.stopped {
        println!(
            "stopped  by --time-limit after {} of {} seeds",
            campaign.outcomes.len(),
            args.seeds.len()
        );
    }
    let mut names = checkers.clone();
    names.push(DETERMINISM);
    println!("{}", campaign.table(&names, started.elapsed()));
    let failing: Vec<&SeedOutcome> = campaign.failing().collect();
    if failing.is_empty() {
        return ExitCode::SUCCESS;
    }
    for o in failing.iter().take(MAX_SEED_DIRS) {
        let dir = out.join(format!("seed-{}", o.seed));
        match write_failing_seed(path, scenario, o, &dir) {
            Ok(r) => {
                println!("seed {}: {}", o.seed, dir.display());
                for v in r.violations.iter().take(3) {
                    println!("    {v}");
                }
                println!("    reproduce: {}", r.command);
            }
            Err(e) => eprintln!("error: seed {}: {e}", o.seed),
        }
    }
    if failing.len() > MAX_SEED_DIRS {
        let rest: Vec<String> = failing[MAX_SEED_DIRS..]
            .iter()
            .map(|o| o.seed.to_string())
            .collect();
        println!(
            "{} more failing seeds without a directory (fuzz them alone with --seeds N): {}",
            rest.len(),
            rest.join(" ")
        );
    }
    ExitCode::from(1)
}

fn progress_bar(len: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {per_sec}  {elapsed} wall  eta {eta}",
        )
        .expect("static template"),
    );
    bar
}
