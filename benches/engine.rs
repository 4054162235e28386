//! Bare-engine throughput: schedule and deliver timer events with a steady
//! number pending (the "hold" model), through the queue alone and through the
//! full engine with actor dispatch, epochs and liveness checks.
//!
//! Targets (issue 2): >= 10 M events/s with 10,000 pending and >= 5 M/s with
//! 1,000,000 pending, on one core. A `BinaryHeap` baseline runs beside them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kubesim::sim::queue::EventQueue;
use kubesim::sim::{Actor, Ctx, Engine, SimDuration, SimTime, Trace, TraceLevel, TraceSink};

/// Mean timer delay: 10 s, like a heartbeat period.
const MEAN_NS: u64 = 10_000_000_000;
const BATCH: u64 = 1_000_000;

struct XorShift(u64);
impl XorShift {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    #[inline]
    fn delay(&mut self) -> u64 {
        1 + self.next() % (2 * MEAN_NS)
    }
}

/// A timer payload the size of a small closed enum variant.
#[derive(Clone, Copy)]
struct Tick {
    _target: u32,
    _kind: u32,
    _gen: u64,
}

impl kubesim::sim::EventTag for Tick {
    fn tag(&self) -> u64 {
        self._gen
    }
    fn kind(&self) -> &'static str {
        "Tick"
    }
}

fn prefill_queue(pending: usize) -> (EventQueue<Tick>, XorShift) {
    let mut q = EventQueue::new();
    let mut r = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in 0..pending {
        q.push(
            SimTime(r.delay()),
            Tick {
                _target: i as u32,
                _kind: 0,
                _gen: 0,
            },
        );
    }
    (q, r)
}

fn queue_hold(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_hold");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10);
    for pending in [10_000usize, 1_000_000] {
        g.bench_with_input(BenchmarkId::new("radix", pending), &pending, |b, &n| {
            let (mut q, mut r) = prefill_queue(n);
            b.iter(|| {
                for _ in 0..BATCH {
                    let (t, _, ev) = q.pop().unwrap();
                    q.push(SimTime(t.0 + r.delay()), black_box(ev));
                }
            });
        });
        g.bench_with_input(
            BenchmarkId::new("binary_heap", pending),
            &pending,
            |b, &n| {
                let mut h = BinaryHeap::new();
                let mut r = XorShift(0x9E37_79B9_7F4A_7C15);
                let mut seq = 0u64;
                for _ in 0..n {
                    seq += 1;
                    h.push(Reverse((r.delay(), seq)));
                }
                b.iter(|| {
                    for _ in 0..BATCH {
                        let Reverse((t, _)) = h.pop().unwrap();
                        seq += 1;
                        h.push(Reverse((t + r.delay(), black_box(seq))));
                    }
                });
            },
        );
    }
    g.finish();
}

/// One actor per timer chain would be unrealistic at 1 M; a few thousand
/// actors each own many timers, as kubelets own their pods' probe timers.
struct Heartbeater {
    name: String,
    rng: XorShift,
}

impl Actor<Tick, u64> for Heartbeater {
    fn name(&self) -> &str {
        &self.name
    }
    fn start(&mut self, _ctx: &mut Ctx<'_, Tick, u64>) {}
    #[inline]
    fn handle(&mut self, t: Tick, ctx: &mut Ctx<'_, Tick, u64>) {
        *ctx.shared += 1;
        ctx.timer(SimDuration(self.rng.delay()), t);
    }
    fn crash(&mut self, _now: SimTime) {}
}

fn engine_hold(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_hold");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10);
    for pending in [10_000usize, 1_000_000] {
        g.bench_with_input(BenchmarkId::from_parameter(pending), &pending, |b, &n| {
            let trace = Trace::new(TraceLevel::Faults, TraceSink::Discard);
            let mut e: Engine<Tick, u64> = Engine::new(1, 0, trace);
            let actors = 1000u32;
            for i in 0..actors {
                e.add(Box::new(Heartbeater {
                    name: format!("hb/{i}"),
                    rng: XorShift(7 + i as u64),
                }));
            }
            let mut r = XorShift(99);
            for i in 0..n {
                e.inject(
                    SimTime(r.delay()),
                    i as u32 % actors,
                    Tick {
                        _target: 0,
                        _kind: 0,
                        _gen: 0,
                    },
                );
            }
            let mut horizon = 0u64;
            b.iter(|| {
                // Advance until BATCH more events were delivered.
                let target = e.shared + BATCH;
                while e.shared < target {
                    horizon += MEAN_NS / 8;
                    e.run_until(SimTime(horizon), |_| {});
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, queue_hold, engine_hold);
criterion_main!(benches);
