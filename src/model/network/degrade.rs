//! Degraded links: for a while, a component's links (or only those to
//! chosen peers) add a fixed delay to every segment and lose segments with
//! a probability, on top of the link's own latency and `network.loss`.
//!
//! Loss goes through the same TCP repair as `network.loss` (a lost segment
//! arrives one retransmission timeout later, doubling; everything behind it
//! waits), so a degraded link slows a stream and never drops a message.
//! Losses on both ends' degradations are independent: a segment gets
//! through with probability (1 − link)(1 − a)(1 − b); the delays add.

use crate::model::msg::Payload;
use crate::model::world::World;
use crate::sim::{ComponentId, Ctx, SimDuration};

/// One degradation in force.
#[derive(Clone, Debug)]
pub struct Degradation {
    pub target: ComponentId,
    /// Only the links to these; `None` for every link of `target`.
    pub peers: Option<Vec<ComponentId>>,
    pub extra_latency: SimDuration,
    pub loss: f64,
}

impl Degradation {
    fn covers(&self, from: ComponentId, to: ComponentId) -> bool {
        let peer = |p: ComponentId| self.peers.as_ref().is_none_or(|ps| ps.contains(&p));
        (self.target == from && peer(to)) || (self.target == to && peer(from))
    }
}

/// The loss probability and added delay of a segment `from → to`, given
/// the link's own loss.
pub(super) fn effect(
    degraded: &[Degradation],
    link_loss: f64,
    from: ComponentId,
    to: ComponentId,
) -> (f64, SimDuration) {
    let mut through = 1.0 - link_loss;
    let mut delay = SimDuration::ZERO;
    let mut covered = false;
    for d in degraded.iter().filter(|d| d.covers(from, to)) {
        through *= 1.0 - d.loss;
        delay = delay + d.extra_latency;
        covered = true;
    }
    // An uncovered link keeps its own figure exactly (1 − (1 − p) need not
    // round back to p).
    (if covered { 1.0 - through } else { link_loss }, delay)
}

/// Puts `d` in force until [`restore_links`] of its target.
pub fn degrade_links(ctx: &mut Ctx<'_, Payload, World>, d: Degradation) {
    ctx.shared.net.degraded.push(d);
}

/// Ends every degradation of the `targets`; returns how many ended.
pub fn restore_links(ctx: &mut Ctx<'_, Payload, World>, targets: &[ComponentId]) -> usize {
    let net = &mut ctx.shared.net;
    let before = net.degraded.len();
    net.degraded.retain(|d| !targets.contains(&d.target));
    before - net.degraded.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_combine_independently_and_delays_add() {
        let d = |target, peers: Option<Vec<ComponentId>>, ms, loss| Degradation {
            target,
            peers,
            extra_latency: SimDuration::from_millis(ms),
            loss,
        };
        let all = [d(1, None, 100, 0.5), d(2, Some(vec![1]), 50, 0.5)];
        // 1 → 2 is covered by both: through 0.9 · 0.5 · 0.5 = 0.225, so a
        // loss of 0.775 (with the link's own 0.1); 100 ms + 50 ms of delay.
        let (loss, delay) = effect(&all, 0.1, 1, 2);
        assert!((loss - 0.775).abs() < 1e-12, "{loss}");
        assert_eq!(delay, SimDuration::from_millis(150));
        // 2 → 3: the second only covers 2's link to 1; nothing applies.
        assert_eq!(effect(&all, 0.0, 2, 3), (0.0, SimDuration::ZERO));
        // 3 → 1: the first covers every link of 1.
        assert_eq!(effect(&all, 0.0, 3, 1).1, SimDuration::from_millis(100));
    }
}
