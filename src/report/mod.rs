//! What a run leaves behind: measurements and the summary.
pub mod stats;
pub mod summary;
