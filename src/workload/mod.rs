//! Workloads a planner offers the cluster: generators (arrival processes
//! creating Pods or Jobs from a template, their sizes and run times drawn
//! from distributions) and imports of real traces, all submitted during the
//! run by one more API client, the [`submitter::WorkloadSubmitter`], through
//! the modelled apiserver.
//!
//! What lives here: the `workload:` section's types ([`spec`]), arrival
//! processes ([`arrival`]), templates ([`template`]), the compact task table
//! a trace becomes ([`task`]), the trace readers ([`alibaba`], with
//! [`trace_file`] for opening a file safely), a live cluster's dump
//! ([`cluster_dump`]) and the submitter. What must
//! not: anything that reaches into the cluster's state; the submitter only
//! sends requests, as a batch front end would.

pub mod alibaba;
pub mod arrival;
pub mod borg;
pub mod cluster_dump;
pub mod generator;
pub mod spec;
pub mod submitter;
pub mod task;
pub mod template;
pub mod trace_file;

use std::fmt;
use std::sync::Arc;

use crate::model::client::RateLimit;

/// The extended resource of NVIDIA's device plugin.
pub const GPU: &str = "nvidia.com/gpu";
/// GPU feature discovery's label for a node's GPU model.
pub const GPU_PRODUCT_LABEL: &str = "nvidia.com/gpu.product";

/// A loaded `workload:` section.
#[derive(Debug)]
pub struct Workload {
    pub client: RateLimit,
    pub generators: Vec<Arc<generator::Generator>>,
    pub imports: Vec<Arc<TaskImport>>,
}

impl Workload {
    pub fn is_empty(&self) -> bool {
        self.generators.is_empty() && self.imports.iter().all(|i| i.tasks.is_empty())
    }
}

/// A trace's tasks, submitted as Pods from one template.
#[derive(Debug)]
pub struct TaskImport {
    /// Where they came from, for the summary (`alibabaGpuV2023 <file>`).
    pub source: String,
    pub template: template::Template,
    pub tasks: task::TaskTable,
}

/// A machine of a trace's node list, to become a simulated node.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    pub name: String,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub gpus: u64,
    pub gpu_model: String,
}

/// A problem in a trace file: its line (when known), column and what is
/// wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceError {
    pub line: Option<u32>,
    pub column: String,
    pub message: String,
}

impl TraceError {
    pub fn file(message: impl Into<String>) -> Self {
        TraceError {
            line: None,
            column: String::new(),
            message: message.into(),
        }
    }

    pub fn at(line: u32, column: &str, message: impl Into<String>) -> Self {
        TraceError {
            line: Some(line),
            column: column.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if !self.column.is_empty() {
            write!(f, "{}: ", self.column)?;
        }
        f.write_str(&self.message)
    }
}
