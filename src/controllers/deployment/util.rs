//! The Deployment controller's arithmetic (`deployment/util`, `rolling.go`,
//! `sync.go`): how maxSurge and maxUnavailable resolve, how far the new
//! ReplicaSet may grow and the old ones shrink, how a resize during a rollout
//! is shared out, and when a rollout counts as complete, progressing or timed
//! out. Pure functions over small views, so upstream's tables test them.

use crate::sim::{SimDuration, SimTime};

pub use crate::api::int_or_percent::{scaled_value, IntOrPercent};

/// The rollout strategy as the controller reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    Recreate,
    RollingUpdate {
        max_surge: IntOrPercent,
        max_unavailable: IntOrPercent,
    },
}

/// What the arithmetic reads of a Deployment.
#[derive(Clone, Debug)]
pub struct DeploySpec {
    pub replicas: i64,
    pub strategy: Strategy,
    /// `status.replicas`, the fallback for a ReplicaSet's max-replicas.
    pub status_replicas: i64,
}

/// `ResolveFenceposts`: surge rounds up, unavailability down, and both zero
/// means one may be unavailable.
pub fn resolve_fenceposts(
    surge: &IntOrPercent,
    unavailable: &IntOrPercent,
    desired: i64,
) -> Result<(i64, i64), String> {
    let s = scaled_value(surge, desired, true)?;
    let mut u = scaled_value(unavailable, desired, false)?;
    if s == 0 && u == 0 {
        u = 1;
    }
    Ok((s, u))
}

pub fn max_unavailable(d: &DeploySpec) -> i64 {
    match &d.strategy {
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } if d.replicas > 0 => {
            let (_, u) =
                resolve_fenceposts(max_surge, max_unavailable, d.replicas).unwrap_or((0, 1));
            u.min(d.replicas)
        }
        _ => 0,
    }
}

pub fn min_available(d: &DeploySpec) -> i64 {
    match d.strategy {
        Strategy::RollingUpdate { .. } => d.replicas - max_unavailable(d),
        Strategy::Recreate => 0,
    }
}

pub fn max_surge(d: &DeploySpec) -> i64 {
    match &d.strategy {
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } => resolve_fenceposts(max_surge, max_unavailable, d.replicas)
            .map(|(s, _)| s)
            .unwrap_or(0),
        Strategy::Recreate => 0,
    }
}

/// What the arithmetic reads of a ReplicaSet.
#[derive(Clone, Debug, Default)]
pub struct RsState {
    pub name: String,
    pub created: SimTime,
    /// `spec.replicas`.
    pub replicas: i64,
    /// `status.replicas`, `readyReplicas`, `availableReplicas`.
    pub actual: i64,
    pub ready: i64,
    pub available: i64,
    /// `deployment.kubernetes.io/max-replicas`, if present.
    pub max_replicas: Option<i64>,
    /// `deployment.kubernetes.io/desired-replicas`, if present.
    pub desired: Option<i64>,
}

/// An old ReplicaSet as `cleanupDeployment` weighs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanupCandidate {
    pub revision: i64,
    pub created: SimTime,
    /// `spec.replicas` and `status.replicas`.
    pub replicas: i64,
    pub actual: i64,
    /// `metadata.generation > status.observedGeneration`: its controller
    /// has not caught up, so its counts cannot be trusted.
    pub stale: bool,
    pub deleting: bool,
}

/// `cleanupDeployment`: of the old ReplicaSets not already being deleted,
/// the oldest (by revision, then age) beyond `limit` that are empty and
/// settled; their indexes into `old`.
pub fn cleanup_deployment(old: &[CleanupCandidate], limit: i64) -> Vec<usize> {
    let mut alive: Vec<usize> = (0..old.len()).filter(|&i| !old[i].deleting).collect();
    let diff = alive.len() as i64 - limit;
    if diff <= 0 {
        return Vec::new();
    }
    alive.sort_by_key(|&i| (old[i].revision, old[i].created, i));
    alive
        .into_iter()
        .take(diff as usize)
        .filter(|&i| old[i].actual == 0 && old[i].replicas == 0 && !old[i].stale)
        .collect()
}

/// `NewRSNewReplicas`: the new ReplicaSet's next size.
pub fn new_rs_new_replicas(d: &DeploySpec, all: &[RsState], new: &RsState) -> i64 {
    match d.strategy {
        Strategy::RollingUpdate { .. } => {
            let max_total = d.replicas + max_surge(d);
            let current: i64 = all.iter().map(|r| r.replicas).sum();
            if current >= max_total {
                return new.replicas;
            }
            let up = (max_total - current).min(d.replicas - new.replicas);
            new.replicas + up
        }
        Strategy::Recreate => d.replicas,
    }
}

/// `reconcileNewReplicaSet`: the new size, if the new ReplicaSet changes.
pub fn reconcile_new(d: &DeploySpec, all: &[RsState], new: &RsState) -> Option<i64> {
    if new.replicas == d.replicas {
        return None;
    }
    if new.replicas > d.replicas {
        return Some(d.replicas);
    }
    let n = new_rs_new_replicas(d, all, new);
    (n != new.replicas).then_some(n)
}

/// `cleanupUnhealthyReplicas`: scale old ReplicaSets (oldest first) down by
/// their unavailable pods, at most `max_cleanup` in all. Returns how many
/// it removed, or `None` where upstream returns an error: a set whose
/// status lags its spec (more available than it should have) would be
/// "scaled down" to above its size, and the sync scales nothing.
pub fn cleanup_unhealthy(old: &mut [RsState], max_cleanup: i64) -> Option<i64> {
    let mut total = 0;
    for rs in old.iter_mut() {
        if total >= max_cleanup {
            break;
        }
        if rs.replicas == 0 || rs.replicas == rs.available {
            continue;
        }
        let down = (max_cleanup - total).min(rs.replicas - rs.available);
        if down < 0 {
            return None;
        }
        rs.replicas -= down;
        total += down;
    }
    Some(total)
}

/// `scaleDownOldReplicaSetsForRollingUpdate`: shrink old ReplicaSets
/// (oldest first) while availability stays at or above the minimum.
pub fn scale_down_old_for_rolling_update(
    d: &DeploySpec,
    all_available: i64,
    old: &mut [RsState],
) -> i64 {
    let min = min_available(d);
    if all_available <= min {
        return 0;
    }
    let total_down = all_available - min;
    let mut done = 0;
    for rs in old.iter_mut() {
        if done >= total_down {
            break;
        }
        if rs.replicas == 0 {
            continue;
        }
        let down = rs.replicas.min(total_down - done);
        rs.replicas -= down;
        done += down;
    }
    done
}

/// `reconcileOldReplicaSets`: old ReplicaSets must be sorted oldest first
/// and hold only the active ones. Returns how many replicas it took away.
pub fn reconcile_old(
    d: &DeploySpec,
    all: &[RsState],
    old: &mut [RsState],
    new: Option<&RsState>,
) -> i64 {
    let old_pods: i64 = old.iter().map(|r| r.replicas).sum();
    if old_pods == 0 {
        return 0;
    }
    let all_pods: i64 = all.iter().map(|r| r.replicas).sum();
    let min = d.replicas - max_unavailable(d);
    let new_unavailable = new.map_or(0, |n| n.replicas - n.available);
    let max_scaled_down = all_pods - min - new_unavailable;
    if max_scaled_down <= 0 {
        return 0;
    }
    // Upstream logs the error and reports nothing scaled: this sync only
    // writes status, and the next one sees the ReplicaSet's fresh counts.
    let Some(cleaned) = cleanup_unhealthy(old, max_scaled_down) else {
        return 0;
    };
    // Availability after the cleanup: the old sets lost only unavailable pods.
    let available: i64 = all.iter().map(|r| r.available).sum();
    let scaled = scale_down_old_for_rolling_update(d, available, old);
    cleaned + scaled
}

pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";

/// `getReplicaSetFraction`.
pub fn replica_set_fraction(rs: &RsState, d: &DeploySpec) -> i64 {
    if d.replicas == 0 {
        return -rs.replicas;
    }
    let deployment_max = d.replicas + max_surge(d);
    let before = match rs.max_replicas {
        Some(v) if v != 0 => v,
        _ => d.status_replicas,
    };
    if before == 0 {
        return 0;
    }
    let scaled = (rs.replicas * deployment_max) as f64 / before as f64;
    // integer.RoundToInt32 is math.Round: halves away from zero.
    scaled.round() as i64 - rs.replicas
}

/// `GetProportion`.
fn proportion(rs: &RsState, d: &DeploySpec, to_add: i64, added: i64) -> i64 {
    if rs.replicas == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let left = to_add - added;
    if left > 0 {
        fraction.min(left)
    } else {
        fraction.max(left)
    }
}

/// `dc.scale`: new sizes for `sets` (new first, if any, then old) when the
/// Deployment was resized, or `None` if nothing changes.
pub fn proportional_scale(
    d: &DeploySpec,
    new: Option<usize>,
    sets: &[RsState],
) -> Option<Vec<i64>> {
    let active: Vec<usize> = (0..sets.len()).filter(|i| sets[*i].replicas > 0).collect();
    let mut out: Vec<i64> = sets.iter().map(|r| r.replicas).collect();
    // One active set, or none and then the newest: it takes everything.
    let only = match active.len() {
        1 => Some(active[0]),
        0 => (0..sets.len()).max_by_key(|i| (sets[*i].created, *i)),
        _ => None,
    };
    if let Some(i) = only {
        if sets[i].replicas == d.replicas {
            return None;
        }
        out[i] = d.replicas;
        return Some(out);
    }
    if let Some(n) = new {
        let rs = &sets[n];
        if rs.replicas == d.replicas && rs.desired == Some(d.replicas) && rs.available == d.replicas
        {
            // Saturated: the old ones go.
            for i in active.iter().filter(|i| **i != n) {
                out[*i] = 0;
            }
            return Some(out);
        }
    }
    if let Strategy::RollingUpdate { .. } = d.strategy {
        let allowed = if d.replicas > 0 {
            d.replicas + max_surge(d)
        } else {
            0
        };
        let current: i64 = active.iter().map(|i| sets[*i].replicas).sum();
        let to_add = allowed - current;
        if to_add == 0 {
            return None;
        }
        let mut order = active.clone();
        // By size, ties newer first when growing, older first when shrinking.
        order.sort_by(|a, b| {
            let (x, y) = (&sets[*a], &sets[*b]);
            y.replicas.cmp(&x.replicas).then_with(|| {
                if to_add > 0 {
                    y.created.cmp(&x.created)
                } else {
                    x.created.cmp(&y.created)
                }
            })
        });
        let mut added = 0;
        let mut deltas = vec![0i64; sets.len()];
        for i in &order {
            let p = proportion(&sets[*i], d, to_add, added);
            deltas[*i] = p;
            added += p;
        }
        for (k, i) in order.iter().enumerate() {
            let mut n = sets[*i].replicas + deltas[*i];
            if k == 0 {
                n += to_add - added;
                n = n.max(0);
            }
            out[*i] = n;
        }
        return Some(out);
    }
    None
}

/// The counts a Deployment's status holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i64,
    pub updated: i64,
    pub ready: i64,
    pub available: i64,
    pub observed_generation: i64,
}

/// `DeploymentComplete`.
pub fn deployment_complete(desired: i64, generation: i64, s: &Counts) -> bool {
    s.updated == desired
        && s.replicas == desired
        && s.available == desired
        && s.observed_generation >= generation
}

/// `DeploymentProgressing`: more updated, fewer old, more ready or available.
pub fn deployment_progressing(old: &Counts, new: &Counts) -> bool {
    let old_old = old.replicas - old.updated;
    let new_old = new.replicas - new.updated;
    new.updated > old.updated
        || new_old < old_old
        || new.ready > old.ready
        || new.available > old.available
}

/// `DeploymentTimedOut` for a Progressing condition last updated at
/// `last_update` (second resolution, as stored).
pub fn timed_out(
    progress_deadline: Option<i64>,
    reason: &str,
    last_update: SimTime,
    now: SimTime,
) -> bool {
    let Some(secs) = progress_deadline.filter(|s| *s != i32::MAX as i64) else {
        return false;
    };
    match reason {
        NEW_RS_AVAILABLE => false,
        TIMED_OUT => true,
        _ => last_update.after(SimDuration::from_secs(secs.max(0) as u64)) < now,
    }
}

pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

/// `controller.ComputeHash`, in spirit: FNV-1a (32 bit) over the template's
/// canonical JSON and the collision count, spelled with the apiserver's
/// safe alphabet. Upstream hashes Go's dump of the struct, so the strings
/// differ from a real cluster's; what matters (a stable name per template,
/// a new one per collision) is the same.
pub fn pod_template_hash(template: &serde_json::Value, collision_count: Option<i64>) -> String {
    fn canonical(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(k);
                    out.push(':');
                    canonical(&m[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for x in a {
                    canonical(x, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(template, &mut text);
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |b: u8| {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    };
    text.bytes().for_each(&mut feed);
    if let Some(c) = collision_count {
        (c as u32).to_le_bytes().into_iter().for_each(&mut feed);
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_changes_with_the_collision_count() {
        let t = serde_json::json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let a = pod_template_hash(&t, None);
        assert_eq!(a, pod_template_hash(&t, None));
        assert_ne!(a, pod_template_hash(&t, Some(1)));
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
