//! Live mode: the modelled control plane on the wall clock, driving real
//! containerd nodes (issue 17).
//!
//! - `pacer`: the wall clock the engine sleeps on, and the channel real
//!   runtimes answer through.

pub mod pacer;
