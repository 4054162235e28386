//! The event queue: a monotone priority queue of `(time, seq, event)`.
//!
//! A discrete-event simulation only ever schedules into the future, so the
//! keys popped are non-decreasing. That admits a *radix heap*: entries sit in
//! buckets by where their key first differs from the last key popped; a pop
//! takes the lowest non-empty bucket, hands out its minimum and redistributes
//! the rest into lower buckets. Times are split into 4-bit digits: a bucket is
//! (the highest differing digit, the entry's value of that digit), so an entry
//! moves down at most 16 times in its life, and in practice three or four;
//! push is O(1) and pop amortised small, independent of how many events are
//! pending. A binary heap's `log n` cache misses are what makes it slow at a
//! million pending heartbeats.
//!
//! Events scheduled for the current instant (the bulk of message hand-offs
//! with zero delay) bypass the buckets through a FIFO lane.
//!
//! Ordering is total: `(time, seq)` where `seq` is the insertion sequence, so
//! two events at the same instant are delivered in the order they were
//! scheduled, on every machine.

use std::collections::VecDeque;

use super::time::SimTime;

/// Bucket 0 holds the key equal to the last popped; 1..=64 keys with the same
/// time and a sequence differing at that bit; from [`TIME_BASE`], keys whose
/// time differs, at `level * 16 + digit` for the highest differing 4-bit digit.
const TIME_BASE: usize = 65;
const BUCKETS: usize = TIME_BASE + 16 * 16;
const WORDS: usize = BUCKETS.div_ceil(64);

struct Entry<E> {
    time: u64,
    seq: u64,
    event: E,
}

/// A deterministic event queue ordered by `(time, insertion sequence)`.
pub struct EventQueue<E> {
    buckets: Vec<Vec<Entry<E>>>,
    /// Bit `i` set when bucket `i` is non-empty.
    occupied: [u64; WORDS],
    /// The last key handed out by the radix part; every stored key is >= it.
    last_time: u64,
    last_seq: u64,
    /// Events scheduled at exactly `last_time` after the clock reached it.
    now_lane: VecDeque<Entry<E>>,
    next_seq: u64,
    len: usize,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: [0; WORDS],
            last_time: 0,
            last_seq: 0,
            now_lane: VecDeque::new(),
            next_seq: 1,
            len: 0,
        }
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The instant of the last event popped (the simulation's "now").
    pub fn now(&self) -> SimTime {
        SimTime(self.last_time)
    }

    /// Schedules `event` at `at`. An instant in the past is clamped to now:
    /// the caller asked for "as soon as possible", and time never runs back.
    /// Returns the event's sequence number.
    #[inline]
    pub fn push(&mut self, at: SimTime, event: E) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.len += 1;
        let time = at.0.max(self.last_time);
        let entry = Entry { time, seq, event };
        if time == self.last_time {
            // Same instant as now: later than anything already queued for now.
            self.now_lane.push_back(entry);
        } else {
            self.insert(entry);
        }
        seq
    }

    #[inline]
    fn bucket_of(&self, time: u64, seq: u64) -> usize {
        if time != self.last_time {
            let high = 63 - (time ^ self.last_time).leading_zeros() as usize;
            let level = high / 4;
            let digit = (time >> (level * 4)) as usize & 15;
            TIME_BASE + level * 16 + digit
        } else {
            64 - (seq ^ self.last_seq).leading_zeros() as usize
        }
    }

    #[inline]
    fn insert(&mut self, entry: Entry<E>) {
        let b = self.bucket_of(entry.time, entry.seq);
        self.occupied[b / 64] |= 1u64 << (b % 64);
        self.buckets[b].push(entry);
    }

    /// Whether a radix bucket holds a key at the current instant.
    #[inline]
    fn radix_has_now(&self) -> bool {
        // Buckets 0..=64: bits 0..63 of word 0 and bit 0 of word 1.
        self.occupied[0] != 0 || self.occupied[1] & 1 != 0
    }

    /// Removes and returns the earliest event with its instant and sequence.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, u64, E)> {
        // Radix entries at the current instant were queued before the clock
        // reached it, so they precede everything in the now-lane.
        if !self.radix_has_now() {
            if let Some(e) = self.now_lane.pop_front() {
                self.len -= 1;
                return Some((SimTime(e.time), e.seq, e.event));
            }
        }
        let e = self.pop_radix()?;
        self.len -= 1;
        Some((SimTime(e.time), e.seq, e.event))
    }

    /// Time of the earliest pending event without removing it.
    pub fn peek_time(&mut self) -> Option<SimTime> {
        if !self.radix_has_now() && !self.now_lane.is_empty() {
            return Some(SimTime(self.last_time));
        }
        // The minimum of the lowest non-empty bucket is the earliest event.
        let b = self.lowest_bucket()?;
        self.buckets[b].iter().map(|e| e.time).min().map(SimTime)
    }

    /// Puts back the event just returned by [`pop`](Self::pop), so that it is
    /// the next one popped again. Used by a run loop that stops at a horizon.
    pub fn unpop(&mut self, time: SimTime, seq: u64, event: E) {
        self.len += 1;
        let entry = Entry {
            time: time.0,
            seq,
            event,
        };
        if time.0 == self.last_time && seq != self.last_seq {
            self.now_lane.push_front(entry);
        } else {
            // The key equals the last popped key: bucket 0, popped first.
            self.occupied[0] |= 1;
            self.buckets[0].push(entry);
        }
    }

    #[inline]
    fn lowest_bucket(&self) -> Option<usize> {
        self.occupied
            .iter()
            .position(|w| *w != 0)
            .map(|i| i * 64 + self.occupied[i].trailing_zeros() as usize)
    }

    fn pop_radix(&mut self) -> Option<Entry<E>> {
        let b = self.lowest_bucket()?;
        if b == 0 {
            let e = self.buckets[0].pop();
            if self.buckets[0].is_empty() {
                self.occupied[0] &= !1;
            }
            return e;
        }
        let mut bucket = std::mem::take(&mut self.buckets[b]);
        self.clear_bucket_bit(b);
        // Find the minimum; it becomes the new reference key.
        let mut min_i = 0;
        for i in 1..bucket.len() {
            let (a, m) = (&bucket[i], &bucket[min_i]);
            if (a.time, a.seq) < (m.time, m.seq) {
                min_i = i;
            }
        }
        let min = bucket.swap_remove(min_i);
        self.last_time = min.time;
        self.last_seq = min.seq;
        for e in bucket.drain(..) {
            self.insert(e);
        }
        // Hand the (now empty) allocation back so buckets keep their capacity.
        self.buckets[b] = bucket;
        Some(min)
    }

    fn clear_bucket_bit(&mut self, b: usize) {
        self.occupied[b / 64] &= !(1u64 << (b % 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_instant_events_keep_insertion_order() {
        let mut q = EventQueue::new();
        q.push(SimTime(5), "a");
        q.push(SimTime(5), "b");
        q.push(SimTime(3), "c");
        assert_eq!(q.pop().unwrap().2, "c");
        // Scheduled at now=3 for now: after nothing else at 3.
        q.push(SimTime(3), "d");
        assert_eq!(q.pop().unwrap().2, "d");
        assert_eq!(q.pop().unwrap().2, "a");
        q.push(SimTime(5), "e");
        assert_eq!(q.pop().unwrap().2, "b");
        assert_eq!(q.pop().unwrap().2, "e");
        assert!(q.pop().is_none());
    }

    #[test]
    fn past_instants_are_clamped_to_now() {
        let mut q = EventQueue::new();
        q.push(SimTime(10), 1);
        q.pop();
        q.push(SimTime(2), 2);
        let (t, _, v) = q.pop().unwrap();
        assert_eq!((t, v), (SimTime(10), 2));
    }

    proptest! {
        /// The queue pops exactly what a sort by (time, seq) would, under any
        /// interleaving of pushes and pops that never schedules into the past.
        #[test]
        fn matches_a_sorted_reference(ops in proptest::collection::vec((0u8..4, 0u64..50), 1..400)) {
            let mut q = EventQueue::new();
            let mut reference: Vec<(u64, u64)> = Vec::new();
            let mut now = 0u64;
            for (op, delta) in ops {
                if op == 0 && !reference.is_empty() {
                    reference.sort();
                    let expect = reference.remove(0);
                    let (t, seq, _) = q.pop().unwrap();
                    prop_assert_eq!((t.0, seq), expect);
                    now = t.0;
                } else {
                    let t = now + if op == 1 { 0 } else { delta * delta * 1_000_003 };
                    let seq = q.push(SimTime(t), ());
                    reference.push((t, seq));
                }
            }
            reference.sort();
            for expect in reference {
                let (t, seq, _) = q.pop().unwrap();
                prop_assert_eq!((t.0, seq), expect);
            }
            prop_assert!(q.pop().is_none());
        }
    }
}
