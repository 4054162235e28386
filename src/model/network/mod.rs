//! The network: every component is an endpoint; links have latency
//! distributions and packet loss; partitions cut sets of endpoints apart.
//!
//! Components talk over TCP (HTTP/2 to the apiserver, gRPC to etcd,
//! rafthttp between etcd members), so the model is a stream, not datagrams:
//! - Delivery on one directed link is FIFO: a message never overtakes an
//!   earlier one on the same link.
//! - `loss` is per-segment packet loss that TCP repairs: a lost segment is
//!   retransmitted after the retransmission timeout (Linux's 200 ms minimum,
//!   doubling on each further loss), and everything behind it on the link
//!   waits (head-of-line blocking). Nothing is ever silently dropped.
//! - A partition stalls the connections that cross it ([`connection`]):
//!   their messages are held, and delivered in order at the first
//!   retransmission after the heal, unless the partition outlasts the
//!   connection's keepalive; then the connection breaks, what it held is
//!   gone, and both ends are told ([`Message::ConnectionLost`]) so a
//!   watcher resumes from its last revision.
//! - A message to a crashed endpoint is answered by a connection refusal,
//!   as a TCP RST would be (across a cut, at the first SYN retry after the
//!   heal); a process that crashes closes its connections
//!   (its peers see them end), a machine that dies does not.

pub mod connection;
pub mod degrade;
pub mod one_way;

use std::collections::{BTreeMap, BTreeSet};

pub use connection::{close_connections, connection_lost, heal, partition};
pub use degrade::{degrade_links, restore_links, Degradation};
pub use one_way::{partition_between, partition_one_way};

use super::msg::{Message, Payload};
use super::world::World;
use crate::sim::{ComponentId, Ctx, LatencyDist, RngStream, SimDuration, SimTime};

/// Linux's `TCP_RTO_MIN`: on a datacenter link (round trips far below it)
/// the retransmission timeout is this floor.
pub const RTO_MIN: SimDuration = SimDuration::from_millis(200);
/// Linux's `TCP_RTO_MAX`: the back-off between retransmissions stops growing.
pub const RTO_MAX: SimDuration = SimDuration::from_secs(120);
/// Linux's `tcp_retries2` (15): the retransmissions a segment gets.
const MAX_RETRANSMISSIONS: u32 = 15;
/// client-go's HTTP/2 health check: a ping after 30 s without a frame read
/// (`ReadIdleTimeout`), the connection closed when it goes 15 s unanswered
/// (`PingTimeout`). The default keepalive of an endpoint.
pub const CLIENT_GO_KEEPALIVE: SimDuration = SimDuration::from_secs(45);
/// The apiserver's etcd client: gRPC keepalive time 30 s, timeout 10 s.
pub const ETCD_CLIENT_KEEPALIVE: SimDuration = SimDuration::from_secs(40);
/// rafthttp's stream read timeout (5 s): a peer stream that carries no
/// heartbeat for that long is closed.
pub const RAFT_STREAM_KEEPALIVE: SimDuration = SimDuration::from_secs(5);

/// Link behaviour between two endpoints.
#[derive(Clone, Debug)]
pub struct LinkModel {
    pub latency: LatencyDist,
    /// Probability that one segment is lost (and retransmitted).
    pub loss: f64,
}

/// One direction of a connection.
#[derive(Default)]
struct Flow {
    /// The last arrival scheduled on this flow (FIFO).
    last_arrival: SimTime,
    /// Messages held while the connection is stalled by a partition: when
    /// each was first sent, the message, and the id a refusal echoes.
    held: Vec<(SimTime, Message, u64)>,
}

/// Where a message goes.
enum Route {
    At(SimTime),
    /// Across a partition: held on the stalled connection.
    Held,
}

/// The network model, shared by all components through [`World`].
pub struct Network {
    pub default_link: LinkModel,
    /// Per-pair overrides (both directions stored).
    pub links: BTreeMap<(ComponentId, ComponentId), LinkModel>,
    /// Partition label per endpoint: endpoints in different groups cannot
    /// reach each other.
    group: Vec<u32>,
    /// Directed cuts (`from`, `to`): `from`'s segments to `to` are lost
    /// until the heal ([`one_way`]).
    cuts: BTreeSet<(ComponentId, ComponentId)>,
    /// Degraded links: extra delay and loss for a while ([`degrade`]).
    degraded: Vec<Degradation>,
    /// Per-sender RNG streams, derived from the sender's name, so adding a
    /// component never shifts another's latency draws.
    rngs: Vec<RngStream>,
    /// Per sender: its flows, by receiver.
    flows: Vec<BTreeMap<ComponentId, Flow>>,
    /// Per endpoint: how long a connection it dials survives silence.
    keepalive: Vec<SimDuration>,
    /// Connections stalled by partitions, by (lower id, higher id).
    stalls: connection::Stalls,
    pub sent: u64,
    /// Segments lost and retransmitted.
    pub retransmitted: u64,
    /// Messages lost with a connection that broke (or to nowhere).
    pub dropped: u64,
}

impl Network {
    pub fn new(default_link: LinkModel) -> Self {
        Network {
            default_link,
            links: BTreeMap::new(),
            group: Vec::new(),
            cuts: BTreeSet::new(),
            degraded: Vec::new(),
            rngs: Vec::new(),
            flows: Vec::new(),
            keepalive: Vec::new(),
            stalls: connection::Stalls::default(),
            sent: 0,
            retransmitted: 0,
            dropped: 0,
        }
    }

    /// Registers endpoint `id` (in component order) with its RNG stream.
    pub fn add_endpoint(&mut self, id: ComponentId, seed: u64, name: &str) {
        debug_assert_eq!(id as usize, self.rngs.len());
        self.rngs
            .push(RngStream::derive(seed, &format!("net/{name}")));
        self.group.push(0);
        self.flows.push(BTreeMap::new());
        self.keepalive.push(CLIENT_GO_KEEPALIVE);
    }

    /// Sets how long a connection of `id` survives a silent peer: the
    /// keepalive of the client library it dials with. A connection lives
    /// as long as the longer of its two ends' keepalives: the dialler's.
    pub fn set_keepalive(&mut self, id: ComponentId, keepalive: SimDuration) {
        self.keepalive[id as usize] = keepalive;
    }

    /// Whether a connection between `a` and `b` can work: segments get
    /// through both ways (a SYN needs its SYN-ACK, a request its answer).
    pub fn reachable(&self, a: ComponentId, b: ComponentId) -> bool {
        self.carries(a, b) && self.carries(b, a)
    }

    /// Whether `from`'s segments reach `to`: same partition island, and no
    /// one-way cut from `from` to `to`.
    pub fn carries(&self, from: ComponentId, to: ComponentId) -> bool {
        self.group.get(from as usize) == self.group.get(to as usize)
            && (self.cuts.is_empty() || !self.cuts.contains(&(from, to)))
    }

    /// How many endpoints there are (component ids `0..n`).
    pub fn endpoints(&self) -> usize {
        self.group.len()
    }

    fn link(&self, from: ComponentId, to: ComponentId) -> &LinkModel {
        if self.links.is_empty() {
            &self.default_link
        } else {
            self.links.get(&(from, to)).unwrap_or(&self.default_link)
        }
    }

    /// The extra delay TCP adds to a segment sent at `now`: each loss costs
    /// a retransmission timeout, doubling, capped at [`RTO_MAX`].
    fn retransmission_delay(&mut self, from: ComponentId, loss: f64) -> SimDuration {
        let mut delay = SimDuration::ZERO;
        let mut rto = RTO_MIN;
        let rng = &mut self.rngs[from as usize];
        for _ in 0..MAX_RETRANSMISSIONS {
            if !rng.chance(loss) {
                break;
            }
            self.retransmitted += 1;
            delay = delay + rto;
            rto = (rto + rto).min(RTO_MAX);
        }
        delay
    }

    /// Where a message from `from` to `to` sent at `now` goes.
    fn route(&mut self, from: ComponentId, to: ComponentId, now: SimTime) -> Route {
        self.sent += 1;
        if from == to {
            return Route::At(now);
        }
        if !self.carries(from, to) || (!self.carries(to, from) && self.stalls.broken(from, to)) {
            // Cut this way; or cut the other way on a connection that
            // broke, whose new dial's SYN-ACK cannot come back.
            return Route::Held;
        }
        let at = self.arrival(from, to, now);
        Route::At(at)
    }

    /// The arrival of a segment put on the reachable link `from → to` at
    /// `now`: latency, retransmissions, and never before the one ahead.
    fn arrival(&mut self, from: ComponentId, to: ComponentId, now: SimTime) -> SimTime {
        // Borrow the link and the sender's stream separately: no clone.
        let (loss, delay) = if self.degraded.is_empty() {
            (self.link(from, to).loss, SimDuration::ZERO)
        } else {
            degrade::effect(&self.degraded, self.link(from, to).loss, from, to)
        };
        let extra = if loss > 0.0 {
            self.retransmission_delay(from, loss)
        } else {
            SimDuration::ZERO
        };
        let link = if self.links.is_empty() {
            &self.default_link
        } else {
            self.links.get(&(from, to)).unwrap_or(&self.default_link)
        };
        let lat = link.latency.sample(&mut self.rngs[from as usize]);
        let at = now.after(lat).after(extra).after(delay);
        let flow = self.flows[from as usize].entry(to).or_default();
        let at = at.max(flow.last_arrival);
        flow.last_arrival = at;
        at
    }
}

/// Sends `msg` from the current component to `to` over the network.
/// `refusal_id` is echoed back in a [`Message::Refused`] if `to` is down.
pub fn send(ctx: &mut Ctx<'_, Payload, World>, to: ComponentId, msg: Message, refusal_id: u64) {
    let from = ctx.me;
    let now = ctx.now;
    if !ctx.is_alive(to) {
        // Connection refused: the RST comes back after one network hop, if
        // the path exists. Across a partition the SYN goes unanswered and
        // is retried: the dial waits for the heal, when the first SYN
        // retry after it meets the refusal (or the endpoint, if it is up
        // again by then).
        if !ctx.shared.net.reachable(from, to) {
            connection::hold_dial(ctx, from, to, msg, refusal_id);
            return;
        }
        let at = ctx.shared.net.arrival(from, to, now);
        ctx.deliver_at(
            from,
            now.after(at.since(now)),
            Payload::Msg {
                from: to,
                msg: Message::Refused { req: refusal_id },
            },
        );
        return;
    }
    match ctx.shared.net.route(from, to, now) {
        Route::At(at) => {
            if !ctx.shared.net.carries(to, from) {
                // A one-way cut the other way: this data arrives, but no
                // ACK returns, so the connection stalls all the same.
                connection::ensure_stall(ctx, from, to);
            }
            ctx.deliver_at(to, at, Payload::Msg { from, msg })
        }
        Route::Held => connection::hold(ctx, from, to, msg, refusal_id),
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
