//! The network: every component is an endpoint; links have latency
//! distributions and loss; partitions cut sets of endpoints apart.
//!
//! Delivery on one directed link is FIFO, as on a TCP connection: a message
//! never overtakes an earlier one on the same link. A message to a crashed
//! endpoint is answered by a connection refusal, as a TCP RST would be; a
//! message across a partition or lost to the loss rate simply vanishes, and
//! the sender learns of it only through its own timeouts.

use std::collections::BTreeMap;

use super::msg::{Message, Payload};
use super::world::World;
use crate::sim::{ComponentId, Ctx, LatencyDist, RngStream, SimDuration, SimTime};

/// Link behaviour between two endpoints.
#[derive(Clone, Debug)]
pub struct LinkModel {
    pub latency: LatencyDist,
    pub loss: f64,
}

/// The network model, shared by all components through [`World`].
pub struct Network {
    pub default_link: LinkModel,
    /// Per-pair overrides (both directions stored).
    pub links: BTreeMap<(ComponentId, ComponentId), LinkModel>,
    /// Partition label per endpoint: endpoints in different non-zero groups
    /// cannot reach each other; group 0 reaches only group 0.
    group: Vec<u32>,
    /// Per-sender RNG streams, derived from the sender's name, so adding a
    /// component never shifts another's latency draws.
    rngs: Vec<RngStream>,
    /// Per sender: the last arrival time scheduled on each of its links.
    last_arrival: Vec<BTreeMap<ComponentId, SimTime>>,
    pub sent: u64,
    pub dropped: u64,
}

impl Network {
    pub fn new(default_link: LinkModel) -> Self {
        Network {
            default_link,
            links: BTreeMap::new(),
            group: Vec::new(),
            rngs: Vec::new(),
            last_arrival: Vec::new(),
            sent: 0,
            dropped: 0,
        }
    }

    /// Registers endpoint `id` (in component order) with its RNG stream.
    pub fn add_endpoint(&mut self, id: ComponentId, seed: u64, name: &str) {
        debug_assert_eq!(id as usize, self.rngs.len());
        self.rngs
            .push(RngStream::derive(seed, &format!("net/{name}")));
        self.group.push(0);
        self.last_arrival.push(BTreeMap::new());
    }

    /// Cuts `side` off from everyone else (each call makes a new island).
    pub fn partition(&mut self, side: &[ComponentId]) -> u32 {
        let label = self.group.iter().copied().max().unwrap_or(0) + 1;
        for &id in side {
            if let Some(g) = self.group.get_mut(id as usize) {
                *g = label;
            }
        }
        label
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
    }

    pub fn reachable(&self, a: ComponentId, b: ComponentId) -> bool {
        self.group.get(a as usize) == self.group.get(b as usize)
    }

    /// Arrival time for a message from `from` to `to` sent at `now`, or `None`
    /// if it is lost.
    fn route(&mut self, from: ComponentId, to: ComponentId, now: SimTime) -> Option<SimTime> {
        self.sent += 1;
        if from == to {
            return Some(now);
        }
        if !self.reachable(from, to) {
            self.dropped += 1;
            return None;
        }
        // Borrow the link and the sender's stream separately: no clone.
        let link = if self.links.is_empty() {
            &self.default_link
        } else {
            self.links.get(&(from, to)).unwrap_or(&self.default_link)
        };
        let rng = &mut self.rngs[from as usize];
        if link.loss > 0.0 && rng.chance(link.loss) {
            self.dropped += 1;
            return None;
        }
        let lat = link.latency.sample(rng);
        let at = now.after(lat);
        let last = self.last_arrival[from as usize]
            .entry(to)
            .or_insert(SimTime::ZERO);
        let at = at.max(*last);
        *last = at;
        Some(at)
    }
}

/// Sends `msg` from the current component to `to` over the network.
/// `refusal_id` is echoed back in a [`Message::Refused`] if `to` is down.
pub fn send(ctx: &mut Ctx<'_, Payload, World>, to: ComponentId, msg: Message, refusal_id: u64) {
    let from = ctx.me;
    let now = ctx.now;
    if !ctx.is_alive(to) {
        // Connection refused: comes back after one network hop, if the path exists.
        if let Some(at) = ctx.shared.net.route(from, to, now) {
            let back = at.since(now);
            ctx.deliver_at(
                from,
                now.after(back),
                Payload::Msg {
                    from: to,
                    msg: Message::Refused { req: refusal_id },
                },
            );
        }
        return;
    }
    if let Some(at) = ctx.shared.net.route(from, to, now) {
        ctx.deliver_at(to, at, Payload::Msg { from, msg });
    }
}

/// The default intra-datacenter link: one-way latency log-normal with median
/// 100 µs and p99 500 µs, i.e. round trips of "up to several hundred
/// microseconds" as etcd's tuning guide describes a datacenter.
pub fn datacenter_link() -> LinkModel {
    LinkModel {
        latency: LatencyDist::log_normal(
            SimDuration::from_micros(100),
            SimDuration::from_micros(500),
        ),
        loss: 0.0,
    }
}
