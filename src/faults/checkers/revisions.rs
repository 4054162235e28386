//! resourceVersions only grow, and every watch stream delivers each key's
//! changes in order.
//!
//! - etcd's committed revisions strictly increase.
//! - On one stream (a consumer's watch id; a new id is a new stream, and a
//!   batch out of sequence means the owner restarts it), object events'
//!   revisions strictly increase and a bookmark never goes back.
//! - On an unfiltered stream, the change delivered for an object after an
//!   earlier delivered change of it is the object's next committed change:
//!   none is skipped, none was never committed. Objects are told apart by
//!   uid, so a recreated name is a new object. A node's pod stream is
//!   filtered (a pod enters it when bound) and is checked for order only.

use std::collections::BTreeMap;

use super::Checker;
use crate::api::Object;
use crate::faults::observe::{Observation, RecordRef, Violation};
use crate::model::apiserver::request::{EventType, WatchEvent};
use crate::model::etcd::store::WatchedChange;
use crate::sim::{ComponentId, SimTime};

const NAME: &str = "revisions";

#[derive(Default)]
struct Stream {
    watch_id: u64,
    /// The newest revision delivered (event or bookmark).
    last: u64,
    /// Object uid → the revision of its last delivered change.
    seen: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct Revisions {
    last_commit: u64,
    /// Object uid → its committed revisions, in order.
    history: BTreeMap<String, Vec<u64>>,
    /// (consumer, reflector of it) → its current stream.
    streams: BTreeMap<(ComponentId, u64), Stream>,
}

fn uid_of(c: &WatchedChange) -> Option<&str> {
    let o = c.value.as_deref().or(c.prev.as_deref())?;
    Some(o.meta.uid.as_str()).filter(|u| !u.is_empty())
}

impl Revisions {
    fn committed(&mut self, at: SimTime, c: &WatchedChange, out: &mut Vec<Violation>) {
        if c.revision <= self.last_commit {
            out.push(violation(
                at,
                format!(
                    "etcd committed revision {} after {}",
                    c.revision, self.last_commit
                ),
                c.key.to_string(),
                c.revision,
            ));
        }
        self.last_commit = self.last_commit.max(c.revision);
        if let Some(uid) = uid_of(c) {
            match self.history.get_mut(uid) {
                Some(h) => h.push(c.revision),
                None => {
                    self.history.insert(uid.to_string(), vec![c.revision]);
                }
            }
        }
    }

    fn delivered(
        &mut self,
        at: SimTime,
        stream: (ComponentId, u64),
        watch_id: u64,
        filtered: bool,
        events: &[WatchEvent],
        out: &mut Vec<Violation>,
    ) {
        let s = self.streams.entry(stream).or_default();
        if s.watch_id != watch_id {
            *s = Stream {
                watch_id,
                ..Stream::default()
            };
        }
        for ev in events {
            let rv = ev.resource_version;
            let Some(obj) = ev
                .object
                .as_deref()
                .filter(|_| ev.type_ != EventType::Bookmark)
            else {
                if rv < s.last {
                    out.push(violation(
                        at,
                        format!(
                            "watch {watch_id} of component {} sent a bookmark at {rv} after {}",
                            stream.0, s.last
                        ),
                        String::new(),
                        rv,
                    ));
                }
                s.last = s.last.max(rv);
                continue;
            };
            if rv <= s.last {
                let m = format!(
                    "watch {watch_id} of component {} delivered {} at {rv} after revision {}",
                    stream.0,
                    obj.key(),
                    s.last
                );
                out.push(violation(at, m, obj.key().to_string(), rv));
            }
            s.last = s.last.max(rv);
            if !filtered && !obj.meta.uid.is_empty() {
                Self::in_sequence(&self.history, s, stream.0, at, obj, rv, out);
            }
        }
    }

    /// The object's change at `rv` follows the one this stream last gave.
    #[allow(clippy::too_many_arguments)]
    fn in_sequence(
        history: &BTreeMap<String, Vec<u64>>,
        s: &mut Stream,
        consumer: ComponentId,
        at: SimTime,
        obj: &Object,
        rv: u64,
        out: &mut Vec<Violation>,
    ) {
        let uid = obj.meta.uid.as_str();
        let Some(prev) = s.seen.get_mut(uid) else {
            s.seen.insert(uid.to_string(), rv);
            return;
        };
        let before = std::mem::replace(prev, rv);
        let Some(h) = history.get(uid) else { return };
        let next = h.get(h.partition_point(|r| *r <= before)).copied();
        if next != Some(rv) {
            let what = match next {
                Some(n) if n < rv => format!("skipped its change at {n}"),
                _ => format!("delivered {rv}, which etcd never committed for it"),
            };
            let m = format!(
                "watch {} of component {consumer} gave {} at {before}, then at {rv}: {what}",
                s.watch_id,
                obj.key()
            );
            out.push(violation(at, m, obj.key().to_string(), rv));
        }
    }
}

fn violation(at: SimTime, message: String, key: String, rv: u64) -> Violation {
    let records = vec![RecordRef {
        at,
        event: "Write",
        key: Some(key.clone()).filter(|k| !k.is_empty()),
        rv: Some(rv),
    }];
    Violation {
        checker: NAME,
        at,
        objects: if key.is_empty() {
            Vec::new()
        } else {
            vec![key]
        },
        message,
        records,
    }
}

impl Checker for Revisions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, at: SimTime, o: &Observation<'_>, out: &mut Vec<Violation>) {
        match *o {
            Observation::Committed(c) => self.committed(at, c, out),
            Observation::WatchDelivered {
                consumer,
                watch_id,
                filtered,
                events,
            } => {
                // A reflector numbers its streams from its kind's base.
                let stream = (consumer, watch_id >> 40);
                self.delivered(at, stream, watch_id, filtered, events, out)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::read::fixtures::{change, pod};
    use super::*;

    fn ev(o: &Object, rv: u64) -> WatchEvent {
        let mut o = o.clone();
        o.meta.resource_version = rv;
        WatchEvent {
            type_: EventType::Modified,
            object: Some(Arc::new(o)),
            resource_version: rv,
        }
    }

    fn deliver<'a>(watch_id: u64, events: &'a [WatchEvent]) -> Observation<'a> {
        Observation::WatchDelivered {
            consumer: 3,
            watch_id,
            filtered: false,
            events,
        }
    }

    #[test]
    fn a_skipped_change_on_one_stream_is_caught_and_a_restarted_stream_may_skip() {
        let mut c = Revisions::default();
        let mut out = Vec::new();
        let p = pod("web", 100, None);
        for rv in [4, 5, 6] {
            c.observe(
                SimTime(1),
                &Observation::Committed(&change(rv, Some(&p), Some(&p))),
                &mut out,
            );
        }
        // 4, 5, 6 on stream 1: every change in order.
        c.observe(SimTime(2), &deliver(1, &[ev(&p, 4), ev(&p, 5)]), &mut out);
        c.observe(SimTime(2), &deliver(1, &[ev(&p, 6)]), &mut out);
        // Stream 2 (a relist) starts at 4 and jumps to 6: a new stream, legal.
        c.observe(SimTime(3), &deliver(2, &[ev(&p, 4)]), &mut out);
        assert!(out.is_empty(), "{out:?}");
        c.observe(SimTime(3), &deliver(2, &[ev(&p, 6)]), &mut out);
        // On stream 2, 4 then 6 skips 5.
        assert_eq!(out.len(), 1);
        assert!(
            out[0].message.contains("skipped its change at 5"),
            "{}",
            out[0]
        );
    }

    #[test]
    fn revisions_going_back_are_caught() {
        let mut c = Revisions::default();
        let mut out = Vec::new();
        let (a, b) = (pod("a", 1, None), pod("b", 1, None));
        c.observe(
            SimTime(1),
            &Observation::Committed(&change(7, None, Some(&a))),
            &mut out,
        );
        c.observe(
            SimTime(1),
            &Observation::Committed(&change(8, None, Some(&b))),
            &mut out,
        );
        assert!(out.is_empty());
        // A commit at 8 again, and a stream giving b at 8 then a at 7.
        c.observe(
            SimTime(1),
            &Observation::Committed(&change(8, Some(&b), Some(&b))),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        c.observe(SimTime(2), &deliver(1, &[ev(&b, 8), ev(&a, 7)]), &mut out);
        assert_eq!(out.len(), 2);
        assert!(
            out[1].message.contains("at 7 after revision 8"),
            "{}",
            out[1]
        );
    }
}
