//! NodeName: a pod that names a node fits only there.

/// Upstream's reason when it does not.
pub const REASON: &str = "node(s) didn't match the requested node name";

pub fn filter(wanted: Option<&str>, node: &str) -> Option<&'static str> {
    match wanted {
        Some(w) if !w.is_empty() && w != node => Some(REASON),
        _ => None,
    }
}
