//! The apiserver's side of storage: the watch cache's recovery and the
//! storage compactor.
//!
//! The watch cache follows one etcd watch. When its connection to etcd
//! ends, it resumes on the next endpoint from the last revision it holds;
//! when etcd can no longer replay from there (compacted), it takes the
//! member's snapshot as upstream's cacher relists, and ends every client
//! watch so clients resume (and, being behind the new history, relist).
//! The compactor compacts etcd every interval to the revision it saw one
//! interval earlier, so at least one interval of history always remains.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ApiServer, ETCD_TIMEOUT_MESSAGE};
use crate::api::{Object, ObjectKey};
use crate::model::apiserver::request::{ApiRequest, WatchBatch};
use crate::model::etcd::store::WatchedChange;
use crate::model::msg::{Message, Payload, Timer};
use crate::model::network::{connection_lost, send};
use crate::model::world::World;
use crate::sim::{ComponentId, Ctx};

impl ApiServer {
    /// A connection ended. A client's: its watches are gone with it. The
    /// current etcd endpoint's: proposals on it fail (their outcome is
    /// unknown to the caller), and the watch resumes on the next endpoint.
    pub(super) fn on_connection_lost(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        from: ComponentId,
        stall: u64,
    ) {
        if !connection_lost(ctx, from, stall) {
            return;
        }
        let Some(i) = self.etcd_members.iter().position(|m| *m == from) else {
            let before = self.watchers.len();
            self.watchers.retain(|w| w.client != from);
            if self.watchers.len() != before {
                self.reindex_watchers();
            }
            return;
        };
        if i != self.endpoint {
            return;
        }
        for (_, (slot, _)) in std::mem::take(&mut self.etcd_pending) {
            let id = self.slots[slot as usize]
                .as_ref()
                .map(|f| f.req.id)
                .unwrap_or(0);
            let resp = Self::error(id, 504, "Timeout", ETCD_TIMEOUT_MESSAGE.into());
            self.finish(ctx, slot, resp);
        }
        self.fail_over(ctx, None);
    }

    /// etcd could not replay from our revision: `objects` is its key space
    /// at `revision`. The cache is replaced and every watcher's stream ends
    /// (upstream's cacher terminates all watchers on a relist).
    pub(super) fn on_etcd_snapshot(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        revision: u64,
        objects: Vec<Arc<Object>>,
    ) {
        if revision < self.revision {
            // A stale answer from an endpoint we have left.
            return;
        }
        let fresh: BTreeMap<ObjectKey, Arc<Object>> =
            objects.into_iter().map(|o| (o.key(), o)).collect();
        self.trace_missed(ctx, &fresh);
        self.cache = fresh;
        self.revision = revision;
        self.history.clear();
        self.ready = true;
        for w in std::mem::take(&mut self.watchers) {
            let batch = WatchBatch {
                watch_id: w.watch_id,
                seq: w.seq + 1,
                events: Vec::new(),
                gone: false,
                closed: true,
            };
            send(ctx, w.client, Message::Watch(Box::new(batch)), 0);
        }
        self.reindex_watchers();
    }

    /// What the snapshot shows that the cache missed, as `Write` records
    /// (newer objects, and deletions of keys that are gone), so the trace
    /// still holds every object state the cluster's readers could see.
    fn trace_missed(
        &self,
        ctx: &mut Ctx<'_, Payload, World>,
        fresh: &BTreeMap<ObjectKey, Arc<Object>>,
    ) {
        for (k, o) in fresh {
            if o.meta.resource_version > self.revision {
                let c = WatchedChange {
                    revision: o.meta.resource_version,
                    key: k.clone(),
                    value: Some(o.clone()),
                    prev: self.cache.get(k).cloned(),
                };
                self.trace_write(ctx, &c, c.prev.is_some());
            }
        }
        for (k, o) in &self.cache {
            if !fresh.contains_key(k) {
                let c = WatchedChange {
                    revision: self.revision,
                    key: k.clone(),
                    value: None,
                    prev: Some(o.clone()),
                };
                self.trace_write(ctx, &c, true);
            }
        }
    }

    /// A request while the cache is not ready: upstream answers 429 "storage
    /// is (re)initializing" with Retry-After 1 (a refused watch backs off
    /// in its client).
    pub(super) fn not_ready(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        client: ComponentId,
        req: &ApiRequest,
    ) {
        let mut resp = Self::error(
            req.id,
            429,
            "TooManyRequests",
            "storage is (re)initializing".into(),
        );
        resp.retry_after = Some(1);
        Self::trace_request(ctx, client, req, super::Span::refused(ctx.now));
        Self::respond(ctx, client, resp);
    }

    /// The storage compactor's tick: compact to the revision seen at the
    /// previous tick (nothing at the first), then remember this one.
    pub(super) fn compact(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if self.cfg.compaction_interval.is_zero() {
            return;
        }
        ctx.timer(
            self.cfg.compaction_interval,
            Payload::Timer(Timer::EtcdCompact),
        );
        if self.compact_next > 0 {
            let to = self.etcd_members[self.endpoint];
            let revision = self.compact_next;
            send(ctx, to, Message::EtcdCompact { revision }, 0);
        }
        self.compact_next = self.revision;
    }
}
