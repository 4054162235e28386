//! A simulator people feed their own files into must be safe to feed
//! anything. Every file of `tests/data/hostile/` (each says on its first line
//! what it checks), and a few inputs that cannot be committed (a FIFO, a file
//! past the size cap, nesting 100,000 deep), go through `kubesim validate`
//! and a short `kubesim run` under 10 s of wall time and 1 GiB of address
//! space. Each must end with exit 2 and an error naming file:line:col, or,
//! for the few that are legal, run to completion with exit 0.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WALL: Duration = Duration::from_secs(10);
/// 1 GiB of address space, in KiB for `ulimit -v`.
const MEMORY_KIB: u64 = 1 << 20;

/// The corpus files that are legal Kubernetes and must run.
const RUNS: &[&str] = &[
    // periodSeconds 0 is defaulted to 10 s: the run ends.
    "probe-period-zero.yaml",
    // 10^9 completions, 2 at a time: nothing allocated per completion.
    "huge-job-completions.yaml",
    "huge-indexed-job.yaml",
];

struct Outcome {
    code: Option<i32>,
    stderr: String,
    took: Duration,
}

/// Runs the binary with `args` under the memory limit, killing it at the
/// wall-time limit (then `code` is None).
fn kubesim_limited(args: &[&str]) -> Outcome {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_kubesim"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut stderr = child.stderr.take().expect("piped");
    // Read stderr on a thread so a chatty child cannot block on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status.code();
        }
        if start.elapsed() > WALL {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code,
        stderr: reader.join().unwrap_or_default(),
        took: start.elapsed(),
    }
}

/// Whether `line` is `error: FILE:LINE:COL: …` with numbers.
fn located(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("error: ") else {
        return false;
    };
    let Some(head) = rest.split(": ").next() else {
        return false;
    };
    let mut parts = head.rsplitn(3, ':');
    let col = parts.next().and_then(|c| c.parse::<u32>().ok());
    let line_no = parts.next().and_then(|l| l.parse::<u32>().ok());
    let file = parts.next().unwrap_or("");
    col.is_some_and(|c| c >= 1) && line_no.is_some_and(|l| l >= 1) && !file.is_empty()
}

/// Checks one input both ways; returns a description of what went wrong.
fn check(path: &Path, must_run: bool, out: &Path) -> Vec<String> {
    let shown = path.display().to_string();
    let out_dir = out.join(path.file_stem().unwrap_or_default());
    let out_dir = out_dir.display().to_string();
    let mut problems = Vec::new();
    for args in [
        vec!["validate", shown.as_str()],
        vec![
            "run",
            shown.as_str(),
            "--until",
            "30s",
            "--no-report",
            "--out",
            out_dir.as_str(),
        ],
    ] {
        let o = kubesim_limited(&args);
        let what = format!("{shown}: `kubesim {}`", args[0]);
        match (o.code, must_run) {
            (None, _) => problems.push(format!("{what}: killed after {:?}", o.took)),
            (Some(0), true) => {}
            (Some(2), false) => {
                if !o.stderr.lines().any(located) {
                    problems.push(format!("{what}: no file:line:col in {:?}", o.stderr));
                }
                if o.stderr.contains("panicked") {
                    problems.push(format!("{what}: panicked: {}", o.stderr));
                }
            }
            (Some(c), _) => problems.push(format!(
                "{what}: exit {c} (want {}): {}",
                if must_run { 0 } else { 2 },
                o.stderr.chars().take(400).collect::<String>()
            )),
        }
    }
    problems
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the corpus exists")
        .map(|e| e.expect("lists").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

const BASE: &str = "name: hostile\nduration: 1m\ncluster:\n  nodePools:\n    - {name: w, count: 1, capacity: {cpu: \"4\", memory: 8Gi}}\n";

/// Inputs made here because they cannot be committed, or would be large.
#[cfg(unix)]
fn generated(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("writes");
        out.push(p);
    };
    // Flow nesting 100,000 deep (took 30 s, quadratic) and the mapping twin.
    write(
        "deep-100k.yaml",
        &format!("name: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
    );
    write(
        "deep-map-100k.yaml",
        &format!("name: {}1{}\n", "{a: ".repeat(100_000), "}".repeat(100_000)),
    );
    // A FIFO nobody writes to: opening it would block for ever.
    let fifo = dir.join("manifests.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    write(
        "include-fifo.yaml",
        &format!("{BASE}objects:\n  - include: manifests.fifo\n"),
    );
    // A sparse 65 MiB file: one past the 64 MiB cap.
    let big = std::fs::File::create(dir.join("big.yaml")).expect("creates");
    big.set_len((64 << 20) + 1).expect("sizes");
    write(
        "include-big.yaml",
        &format!("{BASE}objects:\n  - include: big.yaml\n"),
    );
    // An included manifest in Latin-1: located in the included file.
    std::fs::write(
        dir.join("latin1-pod.yaml"),
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: caf\xe9}\n",
    )
    .expect("writes");
    write(
        "include-latin1.yaml",
        &format!("{BASE}objects:\n  - include: latin1-pod.yaml\n"),
    );
    // The same alias bomb inside an included manifest.
    let mut bomb = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nx0: &x0 [a, b, c, d, e, f, g, h, i, j]\n");
    for i in 1..12 {
        bomb.push_str(&format!(
            "x{i}: &x{i} [{}]\n",
            vec![format!("*x{}", i - 1); 10].join(", ")
        ));
    }
    std::fs::write(dir.join("bomb.yaml"), bomb).expect("writes");
    write(
        "include-bomb.yaml",
        &format!("{BASE}objects:\n  - include: bomb.yaml\n"),
    );
    out
}

#[cfg(unix)]
#[test]
fn every_hostile_input_ends_quickly_with_a_located_error_or_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let made = tmp.path().join("made");
    std::fs::create_dir(&made).expect("mkdir");
    let out = tmp.path().join("runs");
    let mut inputs = corpus();
    // One file per case of the issue, and then some: 40 committed.
    assert!(inputs.len() >= 40, "corpus has {} files", inputs.len());
    for f in RUNS {
        assert!(
            inputs.iter().any(|p| p.ends_with(f)),
            "{f} is in the corpus"
        );
    }
    inputs.extend(generated(&made));
    let mut problems = Vec::new();
    for p in &inputs {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        problems.extend(check(p, RUNS.contains(&name), &out));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_corpus_file_says_what_it_checks() {
    for p in corpus() {
        let bytes = std::fs::read(&p).expect("reads");
        let name = p.display();
        // UTF-16 files carry their comment in UTF-16; the rest in ASCII.
        let big_endian = match bytes.as_slice() {
            [0xFE, 0xFF, ..] | [0, _, ..] => Some(true),
            [0xFF, 0xFE, ..] | [_, 0, ..] => Some(false),
            _ => None,
        };
        let text: String = match big_endian {
            None => String::from_utf8_lossy(&bytes).into_owned(),
            Some(be) => {
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|c| {
                        let pair = [c[0], c[1]];
                        if be {
                            u16::from_be_bytes(pair)
                        } else {
                            u16::from_le_bytes(pair)
                        }
                    })
                    .collect();
                String::from_utf16_lossy(&units)
            }
        };
        let first = text
            .trim_start_matches('\u{feff}')
            .lines()
            .next()
            .unwrap_or("");
        assert!(
            first.starts_with("# checks: "),
            "{name}: first line {first:?}"
        );
    }
}

#[test]
fn located_reads_file_line_and_column() {
    assert!(located("error: a.yaml:3:17: cannot read the scenario: …"));
    assert!(located("error: /tmp/x/b.yaml:1:1: YAML syntax error: x"));
    assert!(!located("error: a.yaml: cannot read it"));
    assert!(!located("a.yaml:3:1: no prefix"));
}
