//! Fuzzing throughput: seeds of `scenarios/fuzz-failover.yaml` (20 nodes, a
//! 40-replica Deployment behind a Service, 10 minutes, node crashes,
//! partitions and etcd leader kills drawn from each seed) run as
//! `kubesim fuzz` runs them: trace level `faults`, no sink, every checker on.
//!
//! `one_seed_checked` is the CPU one seed costs; the bar is 2,000
//! seeds a minute on 2 cores, that is at most 60 ms a seed. `campaign_2_jobs`
//! runs 16 seeds on two threads, the swarm's own scheduling included; its
//! throughput in elements/s times 60 is seeds a minute.
//! `one_seed_unchecked` is the same run without checkers, to show what
//! checking costs.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kubesim::faults::swarm::{fuzz, run_seed, SeedRange};
use kubesim::scenario::load_file;
use kubesim::scenario::run::{run, RunOptions};
use kubesim::sim::{TraceLevel, TraceSink};

/// The allocator the `kubesim` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/fuzz-failover.yaml");

fn seeds(c: &mut Criterion) {
    let s = load_file(Path::new(EXAMPLE)).expect("the example loads");
    let mut g = c.benchmark_group("fuzz_failover");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    let mut seed = 0;
    g.bench_function("one_seed_checked", |b| {
        b.iter(|| {
            seed += 1;
            run_seed(&s, seed).expect("runs")
        })
    });
    let mut seed = 0;
    g.bench_function("one_seed_unchecked", |b| {
        b.iter(|| {
            seed += 1;
            let opts = RunOptions {
                seed: Some(seed),
                trace_level: TraceLevel::Faults,
                sink: TraceSink::Discard,
                ..RunOptions::default()
            };
            run(&s, opts, |_| {}).expect("runs")
        })
    });
    g.throughput(Throughput::Elements(16));
    g.sample_size(10);
    let mut first = 0;
    g.bench_function("campaign_2_jobs", |b| {
        b.iter(|| {
            let range = SeedRange {
                first: first + 1,
                last: first + 16,
            };
            first += 16;
            fuzz(&s, range, 2, &|| false, &|_| {}).expect("runs")
        })
    });
    g.finish();
}

criterion_group!(benches, seeds);
criterion_main!(benches);
