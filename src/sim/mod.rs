//! The simulation engine: virtual time, the event queue, seeded RNG streams,
//! latency distributions and the trace. Nothing here knows about Kubernetes.

pub mod digest;
pub mod dist;
pub mod engine;
pub mod queue;
pub mod rng;
pub mod time;
pub mod trace;

pub use digest::{Divergence, EventLog, EventTag, LoggedEvent, RunDigest};
pub use dist::{LatencyDist, LatencySpec};
pub use engine::{Actor, ComponentId, Ctx, Engine, External, Lifecycle, Pacer};
pub use rng::RngStream;
pub use time::{parse_duration, SimDuration, SimTime};
pub use trace::{Trace, TraceLevel, TraceObserver, TraceSink};
