//! What the invariant checkers cost a fuzzed run: `fuzz-failover` (20
//! nodes, 40 replicas, drawn node crashes, partitions and leader kills,
//! 10 minutes) at the cheapest trace level, checkers off and on, over a
//! few seeds in turn. Budget (issue 16): the checkers add at most ~10 ms
//! to a run of ~40 ms.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kubesim::scenario::load_file;
use kubesim::scenario::run::{run, RunOptions};
use kubesim::sim::TraceLevel;

fn fuzz_run(c: &mut Criterion) {
    let s = load_file(Path::new("scenarios/fuzz-failover.yaml")).expect("loads");
    let mut g = c.benchmark_group("fuzz-failover");
    g.sample_size(20);
    for checks in [false, true] {
        let mut seed = 0;
        g.bench_with_input(BenchmarkId::new("checks", checks), &checks, |b, &checks| {
            b.iter(|| {
                seed = seed % 8 + 1;
                let opts = RunOptions {
                    seed: Some(seed),
                    trace_level: TraceLevel::Faults,
                    checks,
                    ..RunOptions::default()
                };
                run(&s, opts, |_| {}).expect("runs").violations.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fuzz_run);
criterion_main!(benches);
