//! Loading a long timeline costs bounded memory and allocations (issue 18):
//! 20,000 bare-Pod `apply:` entries, as `scripts/gen-bare-pods.py` writes
//! them, loaded under an allocator that counts what this test's thread
//! allocates. The counts are deterministic (one thread, the same code
//! path), so the bounds are not timings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the allocations of threads that set `ON`.
struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static CALLS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.with(Cell::get) {
            let live = LIVE.with(|c| c.get()) + l.size();
            LIVE.with(|c| c.set(live));
            PEAK.with(|p| p.set(p.get().max(live)));
            CALLS.with(|c| c.set(c.get() + 1));
        }
        System.alloc(l)
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if ON.with(Cell::get) {
            LIVE.with(|c| c.set(c.get().wrapping_sub(l.size())));
        }
        System.dealloc(p, l)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// What `scripts/gen-bare-pods.py N OUT 1000` writes, less the description.
fn bare_pods(n: usize) -> String {
    let mut s = String::from(
        "name: bare-pods\nseed: 1\nduration: 2000s\ntraceLevel: faults\ncluster:\n  \
         apiserver: {maxRequestsInflight: 4000, maxMutatingRequestsInflight: 2000}\n  \
         controllerManager: {kubeApiQps: 2000, kubeApiBurst: 2000}\n  \
         images: {busybox:1.36: 4Mi}\n  nodePools:\n    - name: node\n      count: 1000\n      \
         capacity: {cpu: \"16\", memory: 64Gi}\n      preloadedImages: [busybox:1.36]\ntimeline:\n",
    );
    for i in 0..n {
        let at = 1 + i * 600 / n;
        s.push_str(&format!(
            "  - {{at: {at}s, apply: {{apiVersion: v1, kind: Pod, metadata: {{name: pod-{i}, namespace: default, \
             annotations: {{kubesim.io/run-for: 600s}}}}, spec: {{restartPolicy: Never, containers: [{{name: work, \
             image: busybox:1.36, resources: {{requests: {{cpu: \"1\", memory: 2Gi}}, limits: {{cpu: \"1\", memory: 2Gi}}}}}}]}}}}}}\n"
        ));
    }
    s
}

#[test]
fn twenty_thousand_bare_pods_load_in_bounded_memory_and_allocations() {
    const N: usize = 20_000;
    let text = bare_pods(N);
    // Each entry is about 300 bytes of text.
    assert!(
        text.len() / N > 280 && text.len() / N < 320,
        "{}",
        text.len() / N
    );
    ON.with(|o| o.set(true));
    let scenario = kubesim::scenario::load_str("bare.yaml", &text, std::path::Path::new("."));
    let (peak, retained, calls) = (
        PEAK.with(Cell::get),
        LIVE.with(Cell::get),
        CALLS.with(Cell::get),
    );
    let scenario = scenario.unwrap_or_else(|e| panic!("{e:?}"));
    ON.with(|o| o.set(false));
    assert_eq!(scenario.timeline.len(), N);
    let (peak, retained, calls) = (peak / N, retained / N, calls / N);
    eprintln!("per entry: peak {peak} B, retained {retained} B, {calls} allocations");
    // Before issue 18 an entry cost 19,980 B at the peak, 13,602 B kept in
    // the loaded scenario and 1,080 allocations (each pod decoded through
    // k8s-openapi into its own typed spec, JSON and model, and a second
    // copy of the object kept to check patches against).
    //
    // Now, at the peak, the entry's tree (44 nodes of 40 B, the 38 scalars'
    // text, one `(key, value)` pair per mapping entry: about 2,400 B) and
    // its `TimelineSpec` (520 B, its actions boxed) live together with the
    // steps built so far; kept: the step (176 B), its `Arc<Object>` (480 B
    // plus the Arc's counts), the object's own name, namespace and
    // annotation map (the decoded spec is shared by every pod of the same
    // shape): about 1,400 B.
    assert!(peak <= 5_500, "peak {peak} B per entry");
    assert!(retained <= 2_000, "retained {retained} B per entry");
    // The tree's ~45 allocations per entry, the spec's ~10, the shape key,
    // the object copy and its step: about 230, not 1,080.
    assert!(calls <= 300, "{calls} allocations per entry");
}
