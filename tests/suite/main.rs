//! The integration tests, one module per subject, in one test binary: one
//! link instead of forty, which is most of what a cold `cargo test` costs.
//! Live mode (tests/live.rs, tests/live_containerd.rs: real containerd
//! on the wall clock), the loader's counting allocator (tests/load_scale.rs)
//! and the planted bugs (their cargo feature) keep binaries of their own.

mod apiserver;
mod autoscaler;
mod calibrate;
mod checkers;
mod cli;
mod common;
mod component_faults;
mod controller_oracles;
mod controllers;
mod determinism;
mod disruption;
mod dra;
mod drawn_network_workload;
mod driver_rate;
mod etcd;
mod explain;
mod faults_profile;
mod fuzz;
mod fuzz_input;
mod generated_workloads;
mod heartbeat;
mod helm_chart;
mod hostile;
mod immutability;
mod jobs;
mod kubelet;
mod kubelet_probes;
mod kubelet_status;
mod namespace;
mod network_faults;
mod node_lifecycle;
mod outputs;
mod over_time;
mod pod_gc;
mod realworld;
mod recovery;
mod report;
mod scheduler;
mod scheduler_features;
mod scheduler_oracles;
mod scheduling_queue;
mod shrink;
mod statefulset_policies;
mod storage;
mod sweep;
mod workload_faults;
mod workloads;
