//! Subcommands of the `kubesim` binary that need more than a screen.
//! Library code they call lives in the library; this is argument handling,
//! progress and printing.

pub mod calibrate;
pub mod fuzz;
pub mod live;
pub mod shrink;
