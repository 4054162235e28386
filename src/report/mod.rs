//! What a run leaves behind: measurements, the summary, and the charts and
//! time series read back from its trace.
pub mod bootstrap;
pub mod charts;
pub mod compare;
pub mod html;
pub mod live;
pub mod narrate;
pub mod output;
pub mod over_time;
pub mod perfetto;
pub mod pod_milestones;
pub mod series;
pub mod spans;
pub mod stats;
pub mod summary;
pub mod sweep_report;
