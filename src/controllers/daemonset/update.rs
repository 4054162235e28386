//! A DaemonSet's rolling update (`update.go`, `rollingUpdate`): per node,
//! the old pod and the new one; with no surge, old pods are deleted while
//! fewer than `maxUnavailable` nodes lack an available pod (unavailable old
//! pods go at once); with surge, a new pod is started beside the old one on
//! up to `maxSurge` nodes and the old one goes when the new is available.
//! Both bounds are resolved against the desired node count, rounded up.

use crate::controllers::deployment::util::{scaled_value, IntOrPercent};

/// One node's daemon pods, split by revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSlot {
    pub node: String,
    /// The pod of the current template: (name, available).
    pub new: Option<(String, bool)>,
    /// A pod of an older template: (name, available).
    pub old: Option<(String, bool)>,
    /// More than one pod of a kind (`findUpdatedPodsOnNode` fails).
    pub duplicate: bool,
}

/// What to do this sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub delete: Vec<String>,
    pub create_on: Vec<String>,
}

/// `maxSurge` and `maxUnavailable` against `desired`, rounded up; when both
/// come to 0 one pod may be unavailable.
pub fn bounds(surge: &IntOrPercent, unavailable: &IntOrPercent, desired: i64) -> (i64, i64) {
    let s = scaled_value(surge, desired, true).unwrap_or(0).max(0);
    let mut u = scaled_value(unavailable, desired, true).unwrap_or(1).max(0);
    if s == 0 && u == 0 {
        u = 1;
    }
    (s, u)
}

pub fn plan(slots: &[NodeSlot], max_surge: i64, max_unavailable: i64) -> Plan {
    let mut out = Plan::default();
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut candidates = Vec::new();
        for s in slots {
            if s.duplicate {
                unavailable += 1;
                continue;
            }
            match (&s.old, &s.new) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (None, Some((_, avail))) => {
                    if !avail {
                        unavailable += 1;
                    }
                }
                (Some((name, avail)), None) => {
                    if !avail {
                        out.delete.push(name.clone());
                    } else {
                        candidates.push(name.clone());
                    }
                }
            }
        }
        let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i64) as usize;
        out.delete.extend(candidates.into_iter().take(room));
        return out;
    }
    let mut surging = 0;
    let mut candidates = Vec::new();
    for s in slots {
        if s.duplicate {
            surging += 1;
            continue;
        }
        match (&s.old, &s.new) {
            (None, _) => {}
            (Some((_, avail)), None) => {
                if !avail {
                    out.create_on.push(s.node.clone());
                } else if surging < max_surge {
                    candidates.push(s.node.clone());
                }
            }
            (Some((old, _)), Some((_, new_avail))) => {
                if *new_avail {
                    out.delete.push(old.clone());
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = (max_surge - surging).clamp(0, candidates.len() as i64) as usize;
    out.create_on.extend(candidates.into_iter().take(room));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(node: &str, old: Option<bool>, new: Option<bool>) -> NodeSlot {
        NodeSlot {
            node: node.into(),
            old: old.map(|a| (format!("old-{node}"), a)),
            new: new.map(|a| (format!("new-{node}"), a)),
            duplicate: false,
        }
    }

    #[test]
    fn bounds_round_up_and_never_both_zero() {
        let p = |s: &str| IntOrPercent::Str(s.into());
        assert_eq!(bounds(&IntOrPercent::Int(0), &p("10%"), 5), (0, 1));
        assert_eq!(bounds(&p("25%"), &IntOrPercent::Int(0), 10), (3, 0));
        assert_eq!(
            bounds(&IntOrPercent::Int(0), &IntOrPercent::Int(0), 4),
            (0, 1)
        );
    }

    #[test]
    fn without_surge_replaces_up_to_max_unavailable() {
        let slots = [
            slot("a", Some(true), None),
            slot("b", Some(true), None),
            slot("c", Some(false), None),
            slot("d", None, Some(false)),
        ];
        // d's new pod is not yet available: one of the two left goes, plus
        // c's unavailable old pod which costs nothing.
        let p = plan(&slots, 0, 2);
        assert_eq!(p.delete, vec!["old-c", "old-a"]);
        assert!(p.create_on.is_empty());
    }

    #[test]
    fn with_surge_starts_new_beside_old_then_retires_old() {
        let slots = [
            slot("a", Some(true), Some(true)),
            slot("b", Some(true), Some(false)),
            slot("c", Some(true), None),
            slot("d", Some(true), None),
        ];
        let p = plan(&slots, 2, 0);
        assert_eq!(p.delete, vec!["old-a"]);
        assert_eq!(p.create_on, vec!["c"]);
    }
}
