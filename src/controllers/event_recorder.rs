//! A controller's event recorder: client-go's `EventCorrelator`
//! (`tools/record/events_cache.go`) in front of the Event sink, and the
//! recorder's naming (`<involvedObject.name>.<unix nanos in hex>`).
//!
//! Upstream each controller builds its own broadcaster, so each has its own
//! correlator: a spam filter (25 events per source and object, one more
//! every 5 minutes), an aggregator (ten distinct messages of one reason
//! within 10 minutes become one `(combined from similar events)` Event) and
//! a logger that turns a repeat of an identical Event into a PATCH of its
//! `count` and `lastTimestamp` instead of a second object.
//!
//! Upstream's names come from the wall clock's nanoseconds, which two calls
//! never share; the virtual clock does not move within an instant, so two
//! different Events about one object at one instant would collide and the
//! second create would fail with 409. A name already given at this instant
//! is moved on by one nanosecond instead, as the next wall-clock read would
//! be: deterministic, and of upstream's shape.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::controller::RecordedEvent;
use crate::api::object::{Body, Meta};
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, PatchOp, Verb};
use crate::sim::time::EPOCH_UNIX_SECS;
use crate::sim::{SimDuration, SimTime};

/// `maxLruCacheEntries`: each of the correlator's caches holds this many keys.
const LRU_ENTRIES: usize = 4096;
/// `defaultSpamBurst` and `defaultSpamQPS` (one token per 300 s).
const SPAM_BURST: u64 = 25;
const SPAM_REFILL: SimDuration = SimDuration::from_secs(300);
/// `defaultAggregateMaxEvents` and `defaultAggregateIntervalInSeconds`.
const AGGREGATE_MAX_EVENTS: usize = 10;
const AGGREGATE_INTERVAL: SimDuration = SimDuration::from_secs(600);

/// A least-recently-used map (groupcache's `lru.Cache`): `get` and `put`
/// make a key the newest; a put beyond capacity drops the oldest.
struct Lru<V> {
    entries: BTreeMap<String, (u64, V)>,
    by_age: BTreeMap<u64, String>,
    tick: u64,
}

impl<V> Default for Lru<V> {
    fn default() -> Self {
        Lru {
            entries: BTreeMap::new(),
            by_age: BTreeMap::new(),
            tick: 0,
        }
    }
}

impl<V> Lru<V> {
    /// Takes the key's value out (the caller puts it back, which makes it newest).
    fn take(&mut self, key: &str) -> Option<V> {
        let (age, v) = self.entries.remove(key)?;
        self.by_age.remove(&age);
        Some(v)
    }

    fn put(&mut self, key: String, v: V) {
        let _ = self.take(&key);
        self.tick += 1;
        self.by_age.insert(self.tick, key.clone());
        self.entries.insert(key, (self.tick, v));
        if self.entries.len() > LRU_ENTRIES {
            if let Some((_, oldest)) = self.by_age.pop_first() {
                self.entries.remove(&oldest);
            }
        }
    }
}

/// What the logger remembers of a posted Event (`eventLog`).
struct Logged {
    count: u64,
    first: SimTime,
    name: String,
    namespace: String,
}

/// What the aggregator remembers of a reason on an object (`aggregateRecord`).
struct Similar {
    messages: BTreeSet<String>,
    last: SimTime,
}

/// The spam filter's token bucket for a source and object, in nanoseconds
/// of credit (one event costs [`SPAM_REFILL`]), so the arithmetic is exact.
struct Bucket {
    credit: u64,
    at: SimTime,
}

/// One controller's correlator.
#[derive(Default)]
pub struct EventCorrelator {
    spam: Lru<Bucket>,
    similar: Lru<Similar>,
    logged: Lru<Logged>,
}

/// The last name given per object, shared by every controller of a process
/// so no two of its Events share a name: upstream names an Event by the
/// wall clock's nanoseconds, which never repeat; virtual time does, so a
/// name already given moves on a nanosecond, past the last one given.
#[derive(Default)]
pub struct EventNames {
    last: BTreeMap<(String, String), u128>,
}

/// Entries kept before the stale ones (all behind the clock) are dropped.
const NAMES_KEPT: usize = 4096;

impl EventNames {
    /// `<object>.<hex unix nanos>`: the instant's nanoseconds, or one past
    /// the last name given for this object in `namespace` if that is later.
    fn unique(&mut self, namespace: &str, object: &str, now: SimTime) -> String {
        let now_ns = EPOCH_UNIX_SECS as u128 * 1_000_000_000 + now.nanos() as u128;
        if self.last.len() >= NAMES_KEPT {
            // A name behind the clock can no longer collide with a new one.
            self.last.retain(|_, n| *n >= now_ns);
        }
        let last = self
            .last
            .entry((namespace.to_string(), object.to_string()))
            .or_insert(0);
        let nanos = if *last >= now_ns { *last + 1 } else { now_ns };
        *last = nanos;
        format!("{object}.{nanos:x}")
    }
}

/// The namespace an Event about `o` lives in: its own, or `default` for a
/// cluster-scoped object (as the recorder does).
fn event_namespace(o: &Object) -> String {
    if o.meta.namespace.is_empty() {
        "default".to_string()
    } else {
        o.meta.namespace.clone()
    }
}

/// `getSpamKey`: source and involved object.
fn spam_key(ev: &RecordedEvent, source: &str) -> String {
    let o = &ev.object;
    [
        source,
        o.kind.name(),
        &o.meta.namespace,
        &o.meta.name,
        &o.meta.uid,
        o.kind.api_version(),
    ]
    .join("\u{0}")
}

/// `EventAggregatorByReasonFunc`'s aggregate key: the spam key with type
/// and reason.
fn aggregate_key(ev: &RecordedEvent, source: &str) -> String {
    [spam_key(ev, source).as_str(), ev.type_, ev.reason].join("\u{0}")
}

/// `getEventKey`: everything but the timestamps, message included.
fn event_key(ev: &RecordedEvent, source: &str, message: &str) -> String {
    [aggregate_key(ev, source).as_str(), message].join("\u{0}")
}

impl EventCorrelator {
    /// The request that records `ev` on the apiserver: a create, a PATCH of
    /// the count of the identical Event already posted, or nothing when the
    /// spam filter holds it back.
    pub fn record(
        &mut self,
        names: &mut EventNames,
        ev: &RecordedEvent,
        source: &str,
        now: SimTime,
    ) -> Option<ApiRequest> {
        // Upstream's order (`EventCorrelate`): aggregate, observe, and only
        // then filter, so a held-back repeat still counts.
        let (message, key) = self.aggregate(ev, source, now);
        let req = self.observe(names, ev, source, now, message, key);
        self.spam_accept(spam_key(ev, source), now).then_some(req)
    }

    /// `eventObserve`: a repeat of a logged Event patches its count; a new
    /// one is created under a fresh name and logged.
    fn observe(
        &mut self,
        names: &mut EventNames,
        ev: &RecordedEvent,
        source: &str,
        now: SimTime,
        message: String,
        key: String,
    ) -> ApiRequest {
        if let Some(last) = self.logged.take(&key) {
            let count = last.count + 1;
            let mut req = ApiRequest::new(Verb::Patch, Kind::Event, &last.namespace, &last.name);
            req.patch = Some(PatchOp::Merge(json!({
                "count": count,
                "lastTimestamp": now.rfc3339(),
                "message": message,
            })));
            self.logged.put(key, Logged { count, ..last });
            return req;
        }
        let namespace = event_namespace(&ev.object);
        let name = names.unique(&namespace, &ev.object.meta.name, now);
        let body = event_object(ev, source, now, &name, &message);
        let mut req = ApiRequest::new(Verb::Create, Kind::Event, &namespace, "");
        req.body = Some(Arc::new(body));
        self.logged.put(
            key,
            Logged {
                count: 1,
                first: now,
                name,
                namespace,
            },
        );
        req
    }

    /// `EventSourceObjectSpamFilter.Filter`: a token bucket per source and
    /// object, full at first.
    fn spam_accept(&mut self, key: String, now: SimTime) -> bool {
        let full = SPAM_BURST * SPAM_REFILL.nanos();
        let mut b = self.spam.take(&key).unwrap_or(Bucket {
            credit: full,
            at: now,
        });
        b.credit = (b.credit + now.since(b.at).nanos()).min(full);
        b.at = now;
        let accept = b.credit >= SPAM_REFILL.nanos();
        if accept {
            b.credit -= SPAM_REFILL.nanos();
        }
        self.spam.put(key, b);
        accept
    }

    /// `EventAggregate`: the message to post and the logger's key. Below
    /// ten distinct messages the event is itself; from the tenth on, it is
    /// the combined Event, counted under the aggregate key.
    fn aggregate(&mut self, ev: &RecordedEvent, source: &str, now: SimTime) -> (String, String) {
        let agg = aggregate_key(ev, source);
        let mut rec = self
            .similar
            .take(&agg)
            .filter(|r| now.since(r.last) <= AGGREGATE_INTERVAL)
            .unwrap_or(Similar {
                messages: BTreeSet::new(),
                last: now,
            });
        rec.messages.insert(ev.message.clone());
        rec.last = now;
        let over = rec.messages.len() >= AGGREGATE_MAX_EVENTS;
        if over {
            // Upstream pops an arbitrary one; the first in order is as good
            // and does not depend on a hash seed.
            rec.messages.pop_first();
        }
        self.similar.put(agg.clone(), rec);
        if over {
            let message = format!("(combined from similar events): {}", ev.message);
            (message, agg)
        } else {
            (ev.message.clone(), event_key(ev, source, &ev.message))
        }
    }

    /// When the identical Event of `ev` was first posted, and how often
    /// (tests and the narrator's count).
    pub fn logged(&mut self, ev: &RecordedEvent, source: &str) -> Option<(SimTime, u64)> {
        let key = event_key(ev, source, &ev.message);
        let l = self.logged.take(&key)?;
        let out = (l.first, l.count);
        self.logged.put(key, l);
        Some(out)
    }
}

/// The core/v1 Event the recorder posts.
fn event_object(
    ev: &RecordedEvent,
    source: &str,
    now: SimTime,
    name: &str,
    message: &str,
) -> Object {
    let o = &ev.object;
    let body = json!({
        "involvedObject": {
            "apiVersion": o.kind.api_version(),
            "kind": o.kind.name(),
            "namespace": o.meta.namespace,
            "name": o.meta.name,
            "uid": o.meta.uid,
            "resourceVersion": o.meta.resource_version.to_string(),
        },
        "reason": ev.reason,
        "message": message,
        "type": ev.type_,
        "source": {"component": source},
        "firstTimestamp": now.rfc3339(),
        "lastTimestamp": now.rfc3339(),
        "count": 1,
        "reportingComponent": source,
    });
    let Json::Object(map) = body else {
        unreachable!("built as an object")
    };
    Object {
        kind: Kind::Event,
        meta: Meta {
            name: name.to_string(),
            namespace: event_namespace(o),
            ..Default::default()
        },
        body: Body::Json(Arc::new(map)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_event(reason: &'static str, message: &str) -> RecordedEvent {
        let mut pod = Object {
            kind: Kind::Pod,
            meta: Meta {
                name: "web-1".into(),
                namespace: "shop".into(),
                uid: "u1".into(),
                ..Default::default()
            },
            body: Body::Json(Arc::new(serde_json::Map::new())),
        };
        pod.meta.resource_version = 7;
        RecordedEvent {
            object: Arc::new(pod),
            type_: "Normal",
            reason,
            message: message.to_string(),
        }
    }

    fn created_name(req: &ApiRequest) -> String {
        assert_eq!(req.verb, Verb::Create);
        req.body
            .as_ref()
            .expect("a create has a body")
            .meta
            .name
            .clone()
    }

    #[test]
    fn two_events_about_one_object_at_one_instant_get_two_names() {
        let (mut c, mut names) = (EventCorrelator::default(), EventNames::default());
        let t = SimTime::ZERO.after(SimDuration::from_secs(5));
        let a = c
            .record(&mut names, &pod_event("Killing", "a"), "x", t)
            .unwrap();
        let b = c
            .record(&mut names, &pod_event("Evicted", "b"), "x", t)
            .unwrap();
        // EPOCH 1_735_689_600 s + 5 s = 1_735_689_605_000_000_000 ns
        // = 0x18_1a_3e_..., and the second name one nanosecond later.
        let nanos: u128 = 1_735_689_605_000_000_000;
        assert_eq!(created_name(&a), format!("web-1.{nanos:x}"));
        assert_eq!(created_name(&b), format!("web-1.{:x}", nanos + 1));
        // One nanosecond later the instant's own name is b's: it moves on
        // past b (nanos + 2) rather than collide with it.
        let later = t.after(SimDuration::from_nanos(1));
        let c3 = c.record(&mut names, &pod_event("Started", "c"), "x", later);
        assert_eq!(created_name(&c3.unwrap()), format!("web-1.{:x}", nanos + 2));
        // A second later nothing is in the way: the instant's own name.
        let much_later = t.after(SimDuration::from_secs(1));
        let c4 = c.record(&mut names, &pod_event("Pulled", "d"), "x", much_later);
        assert_eq!(
            created_name(&c4.unwrap()),
            format!("web-1.{:x}", nanos + 1_000_000_000)
        );
    }

    #[test]
    fn an_identical_event_patches_the_count_of_the_first() {
        let (mut c, mut names) = (EventCorrelator::default(), EventNames::default());
        let t = SimTime::ZERO.after(SimDuration::from_secs(5));
        let ev = pod_event("FailedCreate", "quota");
        let first = c.record(&mut names, &ev, "x", t).unwrap();
        let name = created_name(&first);
        let again = c.record(&mut names, &ev, "x", t).unwrap();
        // Same instant, same event: one object, count 2 (the logger's
        // count + 1), patched by the name the create used.
        assert_eq!(again.verb, Verb::Patch);
        assert_eq!(
            (again.namespace.as_str(), again.name.as_str()),
            ("shop", name.as_str())
        );
        let Some(PatchOp::Merge(p)) = &again.patch else {
            panic!("a merge patch")
        };
        assert_eq!(p["count"], 2);
        assert_eq!(p["lastTimestamp"], t.rfc3339());
        assert_eq!(c.logged(&ev, "x"), Some((t, 2)));
    }

    #[test]
    fn the_tenth_distinct_message_is_combined_and_the_spam_filter_holds_the_27th() {
        let (mut c, mut names) = (EventCorrelator::default(), EventNames::default());
        let t = SimTime::ZERO.after(SimDuration::from_secs(1));
        let mut reqs = Vec::new();
        for i in 0..27 {
            let ev = pod_event("FailedCreate", &format!("attempt {i}"));
            reqs.push(c.record(&mut names, &ev, "x", t));
        }
        // Messages 0..8 are nine distinct ones: posted as they are.
        for r in &reqs[..9] {
            let b = r.as_ref().unwrap().body.as_ref().unwrap();
            let Body::Json(m) = &b.body else { panic!() };
            assert!(!m["message"].as_str().unwrap().starts_with("(combined"));
        }
        // The 10th is created as the combined Event; 11th..25th patch it
        // (counts 2..16).
        let tenth = reqs[9].as_ref().unwrap();
        let Body::Json(m) = &tenth.body.as_ref().unwrap().body else {
            panic!()
        };
        assert_eq!(m["message"], "(combined from similar events): attempt 9");
        let Some(PatchOp::Merge(p)) = &reqs[24].as_ref().unwrap().patch else {
            panic!()
        };
        assert_eq!(p["count"], 16);
        // 25 tokens: the 26th and 27th events at the same instant are held.
        assert!(reqs[25].is_none() && reqs[26].is_none());
        // One token comes back 300 s later.
        let later = t.after(SimDuration::from_secs(300));
        let ev = pod_event("Other", "m");
        assert!(c.record(&mut names, &ev, "x", later).is_some());
        assert!(c.record(&mut names, &ev, "x", later).is_none());
    }
}
