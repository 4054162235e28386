//! A reflector: list a kind, then watch it from the list's revision. When
//! the stream ends (its connection broke, the apiserver closed it) it
//! watches again from the last revision it saw, as client-go's Reflector
//! does; only `410 Gone` (that revision left the watch cache) makes it list
//! again. The owner keeps the cache.

use std::sync::Arc;

use super::apiserver::request::{ApiRequest, ApiResponse, Verb, WatchBatch, WatchEvent};
use super::client::ApiClient;
use super::msg::Payload;
use super::world::World;
use crate::api::{Kind, Object};
use crate::faults::Observation;
use crate::sim::Ctx;

/// What a watch batch meant for the owner.
pub enum Delivery {
    /// Events to apply to the cache, in order.
    Events(Vec<WatchEvent>),
    /// The stream broke; a relist was started (its items replace the cache).
    Relisting,
    /// The stream ended; a new watch from the last revision was sent.
    Rewatching,
    /// A batch of an older stream: ignore.
    Stale,
}

/// The tag a reflector's WATCH carries: none of its owner's LIST tags (which
/// start at 0), so a watch's end can never be taken for the answer to a
/// LIST. A stream's end arrives as a closed batch, not as a tagged answer.
pub const WATCH_TAG: u64 = u64::MAX;

pub struct Reflector {
    pub kind: Kind,
    /// Tag the owner's client uses for this reflector's LIST.
    pub list_tag: u64,
    /// Watch stream ids are `base + n`, distinct per reflector of a client.
    base: u64,
    watch_id: u64,
    seq: u64,
    /// The newest resourceVersion seen (list, event or bookmark): where a
    /// new watch resumes.
    last_rv: u64,
    pub synced: bool,
}

impl Reflector {
    pub fn new(kind: Kind, list_tag: u64) -> Self {
        let base = (kind.ordinal() + 1) << 40;
        Reflector {
            kind,
            list_tag,
            base,
            watch_id: base,
            seq: 0,
            last_rv: 0,
            synced: false,
        }
    }

    /// Sends the LIST.
    pub fn list(&mut self, client: &mut ApiClient, ctx: &mut Ctx<'_, Payload, World>) {
        let req = ApiRequest::new(Verb::List, self.kind, "", "");
        client.request(ctx, req, self.list_tag);
    }

    /// Handles the LIST's answer: `Some(items)` to replace the cache with
    /// (and the watch is opened), `None` if it failed (the owner retries).
    pub fn on_list(
        &mut self,
        resp: Option<&ApiResponse>,
        client: &mut ApiClient,
        ctx: &mut Ctx<'_, Payload, World>,
    ) -> Option<Vec<Arc<Object>>> {
        let r = resp.filter(|r| r.ok())?;
        self.last_rv = r.resource_version;
        self.watch(client, ctx);
        self.synced = true;
        Some(r.items.clone())
    }

    /// Opens a new stream from the last revision seen.
    fn watch(&mut self, client: &mut ApiClient, ctx: &mut Ctx<'_, Payload, World>) {
        self.watch_id += 1;
        self.seq = 0;
        let mut w = ApiRequest::new(Verb::Watch, self.kind, "", "");
        w.resource_version = self.last_rv;
        w.watch_id = self.watch_id;
        client.request(ctx, w, WATCH_TAG);
    }

    /// Whether `b` belongs to this reflector's streams.
    pub fn owns(&self, b: &WatchBatch) -> bool {
        b.watch_id > self.base && b.watch_id < self.base + (1 << 40)
    }

    pub fn on_batch(
        &mut self,
        b: WatchBatch,
        client: &mut ApiClient,
        ctx: &mut Ctx<'_, Payload, World>,
    ) -> Delivery {
        if b.watch_id != self.watch_id {
            return Delivery::Stale;
        }
        if b.closed {
            ctx.shared.stats.watch_restarts += 1;
            self.watch(client, ctx);
            return Delivery::Rewatching;
        }
        if b.gone || b.seq != self.seq + 1 {
            if !b.gone {
                // A stream over TCP has no gaps: count it, a checker's bug.
                ctx.shared.stats.watch_gaps += 1;
            }
            ctx.shared.stats.watch_relists += 1;
            self.watch_id += 1;
            self.list(client, ctx);
            return Delivery::Relisting;
        }
        self.seq = b.seq;
        let delivered = Observation::WatchDelivered {
            consumer: ctx.me,
            watch_id: b.watch_id,
            filtered: false,
            events: &b.events,
        };
        ctx.shared.observe(ctx.now, delivered);
        if let Some(rv) = b.events.iter().map(|e| e.resource_version).max() {
            self.last_rv = self.last_rv.max(rv);
        }
        Delivery::Events(b.events)
    }
}
