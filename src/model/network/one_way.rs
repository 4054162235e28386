//! Partitions that are not islands: one-way cuts and cuts between two
//! chosen groups.
//!
//! A one-way cut from A to B loses A's segments to B while B's reach A.
//! TCP cannot live on that: B's data arrives and A's application reads it,
//! but A's ACKs (and every answer A sends) are lost, so B retransmits, and
//! A's own data to B is held as in a symmetric cut. Every request/response
//! round trip across the cut fails, so the HTTP/2 and gRPC health checks of
//! both ends run out and the connection breaks at stall + keepalive, as it
//! does under a symmetric cut. The model: the cut direction is held
//! ([`super::connection`]), the open direction still delivers until the
//! connection breaks (TCP hands arriving data up whatever happens to the
//! ACKs; the send window of a few MB covers what control-plane traffic sends
//! in a keepalive), and once broken nothing crosses either way until the
//! heal, because a new connection's SYN or SYN-ACK would cross the cut.
//! `heal` ends one-way cuts and group cuts with the islands.

use super::connection::stall_cut_connections;
use crate::model::msg::Payload;
use crate::model::world::World;
use crate::sim::{ComponentId, Ctx};

/// Cuts what each of `from` sends to each of `to` (`None`: to every other
/// endpoint); the reverse direction still carries.
pub fn partition_one_way(
    ctx: &mut Ctx<'_, Payload, World>,
    from: &[ComponentId],
    to: Option<&[ComponentId]>,
) {
    let net = &mut ctx.shared.net;
    let everyone: Vec<ComponentId> = (0..net.endpoints() as ComponentId).collect();
    let to = to.unwrap_or(&everyone);
    for &a in from {
        for &b in to {
            if a != b && !from.contains(&b) {
                net.cuts.insert((a, b));
            }
        }
    }
    stall_cut_connections(ctx);
}

/// Cuts every pair of endpoints in two different `groups`, both ways;
/// endpoints within a group, and everyone in no group, reach each other
/// and everyone else as before.
pub fn partition_between(ctx: &mut Ctx<'_, Payload, World>, groups: &[Vec<ComponentId>]) {
    let net = &mut ctx.shared.net;
    for (i, g) in groups.iter().enumerate() {
        for (j, h) in groups.iter().enumerate() {
            if i == j {
                continue;
            }
            for &a in g {
                for &b in h {
                    if a != b {
                        net.cuts.insert((a, b));
                    }
                }
            }
        }
    }
    stall_cut_connections(ctx);
}
