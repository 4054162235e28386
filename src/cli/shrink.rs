//! `kubesim shrink REPRO [--out DIR] [--checker NAME]`: the smallest
//! scenario that still fails the same checker ([`kubesim::faults::shrink`]).
//!
//! Exit codes: 0 shrunk (`DIR/min.yaml` written), 1 the input does not
//! fail, 2 bad input (a located error).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use kubesim::faults::shrink::{shrink_file, ShrinkError, Size};

pub fn shrink_cmd(repro: &Path, out: Option<PathBuf>, checker: Option<&str>) -> ExitCode {
    let started = Instant::now();
    let found = match shrink_file(repro, checker) {
        Ok(f) => f,
        Err(ShrinkError::Load(errors)) => {
            crate::print_errors(&errors);
            return ExitCode::from(2);
        }
        Err(ShrinkError::DoesNotFail(reported)) => {
            let asked = checker.map_or("any checker".to_string(), |c| format!("checker `{c}`"));
            let others = if reported.is_empty() {
                "no checker reported a violation".to_string()
            } else {
                format!("reported: {}", reported.join(", "))
            };
            eprintln!(
                "{}: does not fail: {asked} finds nothing to report on its run ({others}); nothing to shrink",
                repro.display()
            );
            return ExitCode::from(1);
        }
    };
    let dir = out.unwrap_or_else(|| repro.parent().map(Path::to_path_buf).unwrap_or_default());
    let target = dir.join("min.yaml");
    let written =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&target, &found.shrunk.text));
    if let Err(e) = written {
        eprintln!("error: cannot write {}: {e}", target.display());
        return ExitCode::from(1);
    }
    let s = &found.shrunk;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "shrunk {} to {} (still fails checker {})",
        repro.display(),
        target.display(),
        found.checker
    );
    for line in table(&s.before, &s.after) {
        let _ = writeln!(o, "  {line}");
    }
    let _ = writeln!(
        o,
        "  {} runs tried in {:.1}s",
        s.runs,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// `what  before → after` rows.
fn table(b: &Size, a: &Size) -> Vec<String> {
    let rows = [
        (
            "timeline entries",
            b.timeline.to_string(),
            a.timeline.to_string(),
        ),
        ("objects", b.objects.to_string(), a.objects.to_string()),
        ("replicas", b.replicas.to_string(), a.replicas.to_string()),
        ("nodes", b.nodes.to_string(), a.nodes.to_string()),
        ("duration", b.duration.to_string(), a.duration.to_string()),
    ];
    rows.iter()
        .map(|(what, x, y)| format!("{what:<17} {x:>8} → {y}"))
        .collect()
}
