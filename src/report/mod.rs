//! What a run leaves behind: measurements, the summary, and the charts and
//! time series read back from its trace.
pub mod charts;
pub mod output;
pub mod series;
pub mod stats;
pub mod summary;
