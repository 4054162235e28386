//! Connections across partitions: stalls, keepalives, breaks.
//!
//! When a partition cuts a connection, TCP keeps retransmitting: nothing is
//! lost while the connection lives. The connection is *stalled*: its
//! messages are held in order. If the partition heals first, they go out at
//! the first retransmission after the heal (the back-off doubles from
//! [`RTO_MIN`], so a long stall resumes late, as real TCP does). If the
//! partition outlasts the connection's keepalive, the connection breaks:
//! what it held is gone and both ends get [`Message::ConnectionLost`] with
//! the stall's id at that instant, each end's own health check noticing.
//! A component that receives it asks [`connection_lost`] whether the
//! connection really broke (the partition may have healed meanwhile) and,
//! if it did, treats its streams on it as ended. What is sent on a broken
//! connection while the partition lasts waits as a new connection's dial
//! and goes out at the first SYN retry after the heal.

use std::collections::BTreeMap;

use super::{Flow, RTO_MAX, RTO_MIN};
use crate::model::msg::{Message, Payload};
use crate::model::world::World;
use crate::sim::{ComponentId, Ctx, SimDuration, SimTime};

/// Linux's initial retransmission timeout for a SYN (`TCP_TIMEOUT_INIT`).
const SYN_RTO: SimDuration = SimDuration::from_secs(1);

/// One stall of a connection: the id its keepalive checks carry.
#[derive(Clone, Copy)]
struct Stall {
    id: u64,
}

#[derive(Default)]
struct PairState {
    active: Option<Stall>,
    /// The connection broke while partitioned: what is sent now waits as
    /// a new connection's dial (SYNs retried after 1 s, 2 s, 4 s, ...).
    broken: bool,
    /// The stall that last broke this connection: the second end's check
    /// of the same stall must hear "broken" too.
    last_broken: u64,
}

/// Every connection that has been stalled, by (lower id, higher id).
#[derive(Default)]
pub struct Stalls {
    next_id: u64,
    pairs: BTreeMap<(ComponentId, ComponentId), PairState>,
}

impl Stalls {
    /// Whether the connection between `a` and `b` broke while cut.
    pub(super) fn broken(&self, a: ComponentId, b: ComponentId) -> bool {
        self.pairs.get(&pair(a, b)).is_some_and(|s| s.broken)
    }
}

fn pair(a: ComponentId, b: ComponentId) -> (ComponentId, ComponentId) {
    (a.min(b), a.max(b))
}

/// Holds `msg` on the stalled connection `from → to`, starting the stall
/// (and its keepalive checks) if this is the first message to wait.
pub(super) fn hold(
    ctx: &mut Ctx<'_, Payload, World>,
    from: ComponentId,
    to: ComponentId,
    msg: Message,
    refusal_id: u64,
) {
    let broken = ctx
        .shared
        .net
        .stalls
        .pairs
        .get(&pair(from, to))
        .is_some_and(|s| s.broken);
    if !broken {
        ensure_stall(ctx, from, to);
    }
    let now = ctx.now;
    let flow = ctx.shared.net.flows[from as usize].entry(to).or_default();
    flow.held.push((now, msg, refusal_id));
}

/// Holds `msg` as a dial to `to`, which is down, across a cut: no SYN-ACK
/// and no RST can come back, so nothing is known until the heal, when
/// [`release`] delivers it to `to` if it is up again or refuses it if not.
/// Without this the dial vanished, and a request without a deadline (a
/// watch) waited for an answer forever.
pub(super) fn hold_dial(
    ctx: &mut Ctx<'_, Payload, World>,
    from: ComponentId,
    to: ComponentId,
    msg: Message,
    refusal_id: u64,
) {
    let now = ctx.now;
    let net = &mut ctx.shared.net;
    let state = net.stalls.pairs.entry(pair(from, to)).or_default();
    state.active = None;
    state.broken = true;
    let flow = net.flows[from as usize].entry(to).or_default();
    flow.held.push((now, msg, refusal_id));
}

pub(super) fn ensure_stall(ctx: &mut Ctx<'_, Payload, World>, a: ComponentId, b: ComponentId) {
    let net = &mut ctx.shared.net;
    let key = pair(a, b);
    let state = net.stalls.pairs.entry(key).or_default();
    if state.active.is_some() {
        return;
    }
    net.stalls.next_id += 1;
    let id = net.stalls.next_id;
    state.active = Some(Stall { id });
    let keepalive = net.keepalive[a as usize].max(net.keepalive[b as usize]);
    let at = ctx.now.after(keepalive);
    for (to, from) in [(key.0, key.1), (key.1, key.0)] {
        ctx.deliver_at(
            to,
            at,
            Payload::Msg {
                from,
                msg: Message::ConnectionLost { stall: id },
            },
        );
    }
}

/// Cuts `side` off from everyone else (each call makes a new island); every
/// open connection across the cut stalls.
pub fn partition(ctx: &mut Ctx<'_, Payload, World>, side: &[ComponentId]) -> u32 {
    let net = &mut ctx.shared.net;
    let label = net.group.iter().copied().max().unwrap_or(0) + 1;
    for &id in side {
        if let Some(g) = net.group.get_mut(id as usize) {
            *g = label;
        }
    }
    stall_cut_connections(ctx);
    label
}

/// Every open connection that no longer works both ways stalls.
pub(super) fn stall_cut_connections(ctx: &mut Ctx<'_, Payload, World>) {
    let net = &mut ctx.shared.net;
    let cut: Vec<(ComponentId, ComponentId)> = net
        .flows
        .iter()
        .enumerate()
        .flat_map(|(from, flows)| flows.keys().map(move |&to| (from as ComponentId, to)))
        .filter(|&(from, to)| !net.reachable(from, to))
        .collect();
    for (a, b) in cut {
        ensure_stall(ctx, a, b);
    }
}

/// Heals every partition: stalled connections resume, each at its next
/// retransmission, in order.
pub fn heal(ctx: &mut Ctx<'_, Payload, World>) {
    let net = &mut ctx.shared.net;
    net.group.iter_mut().for_each(|g| *g = 0);
    net.cuts.clear();
    let waiting: Vec<((ComponentId, ComponentId), bool)> = net
        .stalls
        .pairs
        .iter_mut()
        .filter(|(_, s)| s.active.is_some() || s.broken)
        .map(|(k, s)| {
            let dialling = s.broken;
            s.active = None;
            s.broken = false;
            (*k, dialling)
        })
        .collect();
    for ((a, b), dialling) in waiting {
        release(ctx, a, b, dialling);
        release(ctx, b, a, dialling);
    }
}

/// The first instant at or after `now` of a retry schedule that starts at
/// `first` with `base` and doubles (capped at [`RTO_MAX`]).
fn next_retry(first: SimTime, base: SimDuration, now: SimTime) -> SimTime {
    let mut at = first.after(base);
    let mut interval = base;
    while at < now {
        interval = (interval + interval).min(RTO_MAX);
        at = at.after(interval);
    }
    at
}

/// Sends what `from → to` held. A stalled connection resumes at its
/// oldest segment's next retransmission; a broken one at the first new
/// connection's SYN that gets through (each message dialled when sent).
fn release(ctx: &mut Ctx<'_, Payload, World>, from: ComponentId, to: ComponentId, dialling: bool) {
    let now = ctx.now;
    let net = &mut ctx.shared.net;
    let Some(flow) = net.flows[from as usize].get_mut(&to) else {
        return;
    };
    let held = std::mem::take(&mut flow.held);
    let at = if dialling {
        held.iter()
            .map(|(t, _, _)| next_retry(*t, SYN_RTO, now))
            .min()
    } else {
        held.first().map(|(t, _, _)| next_retry(*t, RTO_MIN, now))
    };
    let Some(at) = at else {
        return;
    };
    let up = ctx.is_alive(to);
    for (_, msg, refusal_id) in held {
        if matches!(&msg, Message::Api(r) if r.deadline <= at) {
            // The client gave up on it meanwhile: its stream was reset.
            ctx.shared.net.dropped += 1;
            continue;
        }
        if !up {
            // The SYN meets a host whose process is gone: RST.
            let back = ctx.shared.net.arrival(to, from, at);
            ctx.deliver_at(
                from,
                back,
                Payload::Msg {
                    from: to,
                    msg: Message::Refused { req: refusal_id },
                },
            );
            continue;
        }
        let arrival = ctx.shared.net.arrival(from, to, at);
        ctx.deliver_at(to, arrival, Payload::Msg { from, msg });
    }
}

/// Whether the connection to `peer` ended, for a [`Message::ConnectionLost`]
/// carrying `stall`: 0 means the peer closed it (its process exited); a
/// stall id means a keepalive ran out, and the connection broke only if
/// that stall still stands (or the other end already broke it).
pub fn connection_lost(ctx: &mut Ctx<'_, Payload, World>, peer: ComponentId, stall: u64) -> bool {
    if stall == 0 {
        return true;
    }
    let me = ctx.me;
    let net = &mut ctx.shared.net;
    let Some(state) = net.stalls.pairs.get_mut(&pair(me, peer)) else {
        return false;
    };
    if state.active.is_some_and(|s| s.id == stall) {
        state.active = None;
        state.broken = true;
        state.last_broken = stall;
        let lost = drop_held(&mut net.flows, me, peer);
        net.dropped += lost;
        return true;
    }
    state.last_broken == stall
}

fn drop_held(flows: &mut [BTreeMap<ComponentId, Flow>], a: ComponentId, b: ComponentId) -> u64 {
    let mut n = 0;
    for (from, to) in [(a, b), (b, a)] {
        if let Some(f) = flows[from as usize].get_mut(&to) {
            n += f.held.len() as u64;
            f.held.clear();
        }
    }
    n
}

/// `id` crashed: its connections are gone with whatever they held. A
/// process that exits closes its sockets, so with `notify` each peer sees
/// its connection end (after what was already on the wire); a machine that
/// dies says nothing, and its peers find out by their own timeouts.
pub fn close_connections(ctx: &mut Ctx<'_, Payload, World>, id: ComponentId, notify: bool) {
    let net = &mut ctx.shared.net;
    let mut peers: Vec<ComponentId> = net.flows[id as usize].keys().copied().collect();
    for (p, flows) in net.flows.iter().enumerate() {
        if flows.contains_key(&id) {
            peers.push(p as ComponentId);
        }
    }
    peers.sort_unstable();
    peers.dedup();
    peers.retain(|&p| p != id);
    let mut told = Vec::new();
    for p in peers {
        let lost = drop_held(&mut net.flows, id, p);
        net.dropped += lost;
        // Across a partition the FIN cannot arrive: the stall stands, and
        // the peer's keepalive ends the connection.
        if !net.carries(id, p) {
            continue;
        }
        if let Some(s) = net.stalls.pairs.get_mut(&pair(id, p)) {
            s.active = None;
            s.broken = false;
        }
        if notify {
            let after = net.flows[id as usize]
                .get(&p)
                .map_or(ctx.now, |f| f.last_arrival.max(ctx.now));
            told.push((p, after));
        }
    }
    for (p, at) in told {
        ctx.deliver_at(
            p,
            at,
            Payload::Msg {
                from: id,
                msg: Message::ConnectionLost { stall: 0 },
            },
        );
    }
}
