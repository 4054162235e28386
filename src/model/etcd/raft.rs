//! An etcd member as a deterministic Raft state machine.
//!
//! Follows etcd's raft library in what shows in a cluster's behaviour: a
//! logical clock of ticks (one per heartbeat interval), election timeouts
//! randomised in `[electionTicks, 2*electionTicks)` from the member's own
//! seeded stream, pre-vote and check-quorum (both on in etcd 3.5+), log
//! replication with a WAL fsync on leader and followers before an entry counts
//! toward the quorum, a no-op entry on election, commit only of entries from
//! the leader's own term, and proposals that wait for a leader until etcd's
//! request timeout (`5s + 2 * election timeout`) answers "request timed out".
//!
//! Persistent state (term, vote, the fsynced log) survives a crash; anything
//! not yet fsynced is lost with the process.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::store::{Proposal, WatchedChange};
use crate::faults::Observation;
use crate::model::msg::{Message, Payload, Timer};
use crate::model::network::{connection_lost, send};
use crate::model::world::World;
use crate::sim::{Actor, ComponentId, Ctx, LatencyDist, SimDuration, SimTime, TraceLevel};

/// Timing of the etcd group.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `--heartbeat-interval` (100 ms): one raft tick.
    pub heartbeat_interval: SimDuration,
    /// `--election-timeout` in ticks (1000 ms / 100 ms = 10).
    pub election_ticks: u32,
    /// WAL fdatasync latency.
    pub wal_fsync: LatencyDist,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Most entries in one append message.
    pub max_batch: usize,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            heartbeat_interval: SimDuration::from_millis(100),
            election_ticks: 10,
            // etcd's guidance: p99 WAL fsync under 10 ms; SSDs do well under 1 ms
            // at the median.
            wal_fsync: LatencyDist::log_normal(
                SimDuration::from_micros(800),
                SimDuration::from_millis(8),
            ),
            pre_vote: true,
            check_quorum: true,
            max_batch: 1024,
        }
    }
}

impl EtcdConfig {
    /// etcd's server-side request timeout: 5 s + 2 × election timeout.
    pub fn request_timeout(&self) -> SimDuration {
        SimDuration::from_secs(5)
            + self
                .heartbeat_interval
                .saturating_mul(2 * self.election_ticks as u64)
    }
}

/// Raft messages between members.
#[derive(Debug)]
pub enum RaftMsg {
    Append {
        term: u64,
        leader: u32,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    AppendResp {
        term: u64,
        from: u32,
        success: bool,
        match_index: u64,
    },
    Vote {
        term: u64,
        candidate: u32,
        last_index: u64,
        last_term: u64,
        pre: bool,
    },
    VoteResp {
        term: u64,
        from: u32,
        granted: bool,
        pre: bool,
    },
    /// A follower forwards a client proposal to the leader.
    Forward(Arc<Proposal>),
    /// The leader's log no longer holds what the follower needs.
    Snapshot {
        term: u64,
        leader: u32,
        index: u64,
        snap_term: u64,
    },
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub term: u64,
    pub data: Option<Arc<Proposal>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// One etcd member.
pub struct EtcdMember {
    name: String,
    idx: u32,
    /// Component ids of all members, by member index.
    peers: Vec<ComponentId>,
    cfg: Arc<EtcdConfig>,
    // Persistent (survives crashes).
    term: u64,
    voted_for: Option<u32>,
    log: Vec<Entry>,
    /// Index of the entry before `log[0]` (raised by compaction or snapshot).
    log_offset: u64,
    offset_term: u64,
    durable: u64,
    // Volatile.
    role: Role,
    leader: Option<u32>,
    commit: u64,
    applied: u64,
    fsync_busy: bool,
    election_elapsed: u32,
    randomized_timeout: u32,
    heartbeat_elapsed: u32,
    votes: Vec<Option<bool>>,
    next: Vec<u64>,
    matched: Vec<u64>,
    recent_active: Vec<bool>,
    /// Proposals this member answers: req → (client, when it arrived).
    pending: BTreeMap<u64, (ComponentId, SimTime)>,
    /// (deadline, request) of pending proposals, in deadline order (every
    /// proposal gets the same timeout). Checked on each tick: a timed-out
    /// proposal is answered within one heartbeat interval of its deadline,
    /// which spares a timer event per write.
    deadlines: VecDeque<(SimTime, u64)>,
    /// Proposals waiting for a leader to be known.
    waiting: Vec<Arc<Proposal>>,
    /// Followers' acknowledgements waiting on a WAL fsync: (upto, leader).
    acks: Vec<(u64, u32)>,
    watchers: Vec<ComponentId>,
}

impl EtcdMember {
    pub fn new(idx: u32, peers: Vec<ComponentId>, cfg: Arc<EtcdConfig>) -> Self {
        let n = peers.len();
        EtcdMember {
            name: format!("etcd-{idx}"),
            idx,
            peers,
            cfg,
            term: 0,
            voted_for: None,
            log: Vec::new(),
            log_offset: 0,
            offset_term: 0,
            durable: 0,
            role: Role::Follower,
            leader: None,
            commit: 0,
            applied: 0,
            fsync_busy: false,
            election_elapsed: 0,
            randomized_timeout: 0,
            heartbeat_elapsed: 0,
            votes: vec![None; n],
            next: vec![1; n],
            matched: vec![0; n],
            recent_active: vec![false; n],
            pending: BTreeMap::new(),
            deadlines: VecDeque::new(),
            waiting: Vec::new(),
            acks: Vec::new(),
            watchers: Vec::new(),
        }
    }

    fn quorum(&self) -> usize {
        self.peers.len() / 2 + 1
    }

    fn last_index(&self) -> u64 {
        self.log_offset + self.log.len() as u64
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.log_offset {
            return Some(self.offset_term);
        }
        if index < self.log_offset || index > self.last_index() {
            return None;
        }
        Some(self.log[(index - self.log_offset - 1) as usize].term)
    }

    fn last_term(&self) -> u64 {
        self.term_at(self.last_index()).unwrap_or(0)
    }

    fn reset_election_timer(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.election_elapsed = 0;
        let e = self.cfg.election_ticks as u64;
        self.randomized_timeout = ctx.rng.range_inclusive(e, 2 * e - 1) as u32;
    }

    fn send_raft(&self, ctx: &mut Ctx<'_, Payload, World>, to: u32, m: RaftMsg) {
        send(ctx, self.peers[to as usize], Message::Raft(Box::new(m)), 0);
    }

    /// Answers an append (or snapshot) from `leader` with our term.
    fn ack_append(
        &self,
        ctx: &mut Ctx<'_, Payload, World>,
        leader: u32,
        success: bool,
        match_index: u64,
    ) {
        let m = RaftMsg::AppendResp {
            term: self.term,
            from: self.idx,
            success,
            match_index,
        };
        self.send_raft(ctx, leader, m);
    }

    fn become_follower(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        term: u64,
        leader: Option<u32>,
    ) {
        let was_leader = self.role == Role::Leader;
        if was_leader && ctx.shared.etcd_leader == Some(ctx.me) {
            ctx.shared.etcd_leader = None;
        }
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        self.role = Role::Follower;
        let changed = self.leader != leader;
        self.leader = leader;
        self.reset_election_timer(ctx);
        if was_leader || (changed && leader.is_some()) {
            let name = self.name.clone();
            let (t, l) = (self.term, leader);
            ctx.trace
                .record(TraceLevel::Faults, ctx.now, &name, "RaftFollower", |r| {
                    r.u64("term", t);
                    if let Some(l) = l {
                        r.str("leader", &format!("etcd-{l}"));
                    }
                });
        }
        if leader.is_some() {
            self.flush_waiting(ctx);
        }
    }

    fn campaign(&mut self, ctx: &mut Ctx<'_, Payload, World>, pre: bool) {
        self.votes.iter_mut().for_each(|v| *v = None);
        self.votes[self.idx as usize] = Some(true);
        self.leader = None;
        self.reset_election_timer(ctx);
        let term = if pre {
            self.role = Role::PreCandidate;
            self.term + 1
        } else {
            self.role = Role::Candidate;
            self.term += 1;
            self.voted_for = Some(self.idx);
            let name = self.name.clone();
            let t = self.term;
            ctx.trace
                .record(TraceLevel::Faults, ctx.now, &name, "RaftCampaign", |r| {
                    r.u64("term", t);
                });
            self.term
        };
        if self.peers.len() == 1 {
            return self.on_votes_won(ctx, pre);
        }
        let (li, lt) = (self.last_index(), self.last_term());
        for p in 0..self.peers.len() as u32 {
            if p != self.idx {
                self.send_raft(
                    ctx,
                    p,
                    RaftMsg::Vote {
                        term,
                        candidate: self.idx,
                        last_index: li,
                        last_term: lt,
                        pre,
                    },
                );
            }
        }
    }

    fn on_votes_won(&mut self, ctx: &mut Ctx<'_, Payload, World>, pre: bool) {
        if pre {
            self.campaign(ctx, false);
            return;
        }
        self.role = Role::Leader;
        self.leader = Some(self.idx);
        self.heartbeat_elapsed = 0;
        let last = self.last_index();
        self.next.iter_mut().for_each(|n| *n = last + 1);
        self.matched.iter_mut().for_each(|m| *m = 0);
        self.recent_active.iter_mut().for_each(|a| *a = false);
        ctx.shared.stats.leader_changes += 1;
        ctx.shared.etcd_leader = Some(ctx.me);
        let t = self.term;
        let won = Observation::LeaderElected {
            member: ctx.me,
            term: t,
        };
        ctx.shared.observe(ctx.now, won);
        let name = self.name.clone();
        ctx.trace.record(
            TraceLevel::Faults,
            ctx.now,
            &name,
            "RaftLeaderElected",
            |r| {
                r.u64("term", t);
            },
        );
        ctx.shared
            .stats
            .bootstrap
            .leader_elected(ctx.trace, ctx.now);
        // A no-op entry in the new term lets earlier entries commit.
        self.append_local(
            ctx,
            Entry {
                term: self.term,
                data: None,
            },
        );
        self.broadcast_append(ctx);
        self.flush_waiting(ctx);
    }

    fn append_local(&mut self, ctx: &mut Ctx<'_, Payload, World>, e: Entry) {
        self.log.push(e);
        self.start_fsync(ctx);
    }

    fn start_fsync(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if self.fsync_busy || self.durable >= self.last_index() {
            return;
        }
        self.fsync_busy = true;
        let d = self.cfg.wal_fsync.sample(ctx.rng);
        ctx.shared.stats.wal_fsync.record(d);
        ctx.timer(
            d,
            Payload::Timer(Timer::FsyncDone {
                upto: self.last_index(),
            }),
        );
    }

    fn broadcast_append(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        for p in 0..self.peers.len() as u32 {
            if p != self.idx {
                self.send_append(ctx, p);
            }
        }
    }

    fn send_append(&mut self, ctx: &mut Ctx<'_, Payload, World>, p: u32) {
        let pi = p as usize;
        let next = self.next[pi];
        if next <= self.log_offset {
            self.send_raft(
                ctx,
                p,
                RaftMsg::Snapshot {
                    term: self.term,
                    leader: self.idx,
                    index: self.log_offset,
                    snap_term: self.offset_term,
                },
            );
            self.next[pi] = self.log_offset + 1;
            return;
        }
        let prev_index = next - 1;
        let prev_term = self.term_at(prev_index).unwrap_or(0);
        let start = (next - self.log_offset - 1) as usize;
        let end = (start + self.cfg.max_batch).min(self.log.len());
        let entries = self.log[start..end].to_vec();
        self.next[pi] = next + entries.len() as u64;
        let commit = self.commit;
        self.send_raft(
            ctx,
            p,
            RaftMsg::Append {
                term: self.term,
                leader: self.idx,
                prev_index,
                prev_term,
                entries,
                commit,
            },
        );
    }

    fn maybe_commit(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let mut m: Vec<u64> = self.matched.clone();
        m[self.idx as usize] = self.durable;
        m.sort_unstable_by(|a, b| b.cmp(a));
        let n = m[self.quorum() - 1];
        if n > self.commit && self.term_at(n) == Some(self.term) {
            self.commit = n;
            self.apply_committed(ctx);
            // As etcd's raft does: tell followers the new commit index at once
            // rather than at the next heartbeat, so a follower that took the
            // client's request can answer it without waiting a tick.
            if self.peers.len() > 1 {
                self.broadcast_append(ctx);
            }
        }
    }

    fn apply_committed(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let upto = self.commit.min(self.last_index());
        let mut changes: Vec<WatchedChange> = Vec::new();
        while self.applied < upto {
            let i = self.applied + 1;
            let data = if i > self.log_offset {
                self.log[(i - self.log_offset - 1) as usize].data.clone()
            } else {
                None
            };
            let first = i > ctx.shared.etcd.applied_index();
            let outcome = ctx.shared.etcd.apply(i, data.as_ref().map(|p| &p.txn));
            if let Some(change) = outcome
                .as_ref()
                .and_then(|a| a.1.as_ref())
                .filter(|_| first)
            {
                ctx.shared.observe(ctx.now, Observation::Committed(change));
            }
            self.applied = i;
            if let (Some(p), Some(applied)) = (data, outcome) {
                let answered = if p.contact == ctx.me {
                    self.pending.remove(&p.req)
                } else {
                    None
                };
                if let Some((_, arrived)) = answered {
                    // The summary's commit latency is this span, sample for sample.
                    let took = ctx.now.since(arrived);
                    ctx.shared.stats.latencies(arrived).etcd_commit.record(took);
                    if ctx.trace.enabled(TraceLevel::Spans) {
                        let key = p.txn.key.to_string();
                        ctx.trace
                            .record(TraceLevel::Spans, ctx.now, &self.name, "Commit", |r| {
                                r.u64("index", i).str("key", &key).u64("start", arrived.0);
                            });
                    }
                    send(
                        ctx,
                        p.client,
                        Message::EtcdResult {
                            req: p.req,
                            result: Ok(applied.0.clone()),
                        },
                        p.req,
                    );
                }
                if let Some(c) = &applied.1 {
                    if !self.watchers.is_empty() {
                        changes.push(c.clone());
                    }
                }
            }
        }
        if !changes.is_empty() {
            let watchers = self.watchers.clone();
            for w in watchers {
                send(ctx, w, Message::EtcdWatch(Box::new(changes.clone())), 0);
            }
        }
        self.compact();
    }

    /// Keeps the in-memory log bounded, as etcd's snapshot + compaction does,
    /// retaining a catch-up margin for slow followers (etcd keeps 5,000).
    fn compact(&mut self) {
        const KEEP: u64 = 5_000;
        const EVERY: u64 = 10_000;
        if self.applied > self.log_offset + KEEP + EVERY {
            let new_offset = self.applied - KEEP;
            let cut = (new_offset - self.log_offset) as usize;
            self.offset_term = self.log[cut - 1].term;
            self.log.drain(..cut);
            self.log_offset = new_offset;
        }
    }

    fn flush_waiting(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if self.leader.is_none() {
            return;
        }
        for p in std::mem::take(&mut self.waiting) {
            if !self.pending.contains_key(&p.req) {
                continue; // timed out meanwhile
            }
            self.route_proposal(ctx, p);
        }
    }

    fn route_proposal(&mut self, ctx: &mut Ctx<'_, Payload, World>, p: Arc<Proposal>) {
        match (self.role, self.leader) {
            (Role::Leader, _) => {
                self.append_local(
                    ctx,
                    Entry {
                        term: self.term,
                        data: Some(p),
                    },
                );
                self.broadcast_append(ctx);
            }
            (_, Some(l)) => self.send_raft(ctx, l, RaftMsg::Forward(p)),
            (_, None) => self.waiting.push(p),
        }
    }

    fn on_raft(&mut self, ctx: &mut Ctx<'_, Payload, World>, m: RaftMsg) {
        match m {
            RaftMsg::Append {
                term,
                leader,
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                if term < self.term {
                    self.ack_append(ctx, leader, false, 0);
                    return;
                }
                if self.role != Role::Follower || self.leader != Some(leader) || term > self.term {
                    self.become_follower(ctx, term, Some(leader));
                }
                self.election_elapsed = 0;
                if self.term_at(prev_index) != Some(prev_term) {
                    let hint = self.last_index().min(prev_index.saturating_sub(1));
                    self.ack_append(ctx, leader, false, hint);
                    return;
                }
                let mut idx = prev_index;
                let mut appended = false;
                for e in entries {
                    idx += 1;
                    match self.term_at(idx) {
                        Some(t) if t == e.term => continue,
                        Some(_) => {
                            // Conflict: drop our suffix from here on.
                            self.log.truncate((idx - self.log_offset - 1) as usize);
                            self.durable = self.durable.min(idx - 1);
                            self.log.push(e);
                            appended = true;
                        }
                        None => {
                            self.log.push(e);
                            appended = true;
                        }
                    }
                }
                let last_new = idx;
                if commit > self.commit {
                    self.commit = commit.min(last_new);
                    self.apply_committed(ctx);
                }
                if appended || self.durable < last_new {
                    self.acks.push((last_new, leader));
                    self.start_fsync(ctx);
                } else {
                    self.ack_append(ctx, leader, true, last_new);
                }
            }
            RaftMsg::AppendResp {
                term,
                from,
                success,
                match_index,
            } => {
                if term > self.term {
                    self.become_follower(ctx, term, None);
                    return;
                }
                if self.role != Role::Leader || term < self.term {
                    return;
                }
                let f = from as usize;
                self.recent_active[f] = true;
                if success {
                    if match_index > self.matched[f] {
                        self.matched[f] = match_index;
                        self.maybe_commit(ctx);
                    }
                    if self.next[f] <= self.last_index() && self.next[f] <= match_index + 1 {
                        self.send_append(ctx, from);
                    }
                } else {
                    self.next[f] = (match_index + 1)
                        .max(1)
                        .min(self.next[f].saturating_sub(1).max(1));
                    self.send_append(ctx, from);
                }
            }
            RaftMsg::Vote {
                term,
                candidate,
                last_index,
                last_term,
                pre,
            } => {
                let in_lease = self.cfg.check_quorum
                    && self.leader.is_some()
                    && self.election_elapsed < self.cfg.election_ticks;
                if term > self.term && in_lease {
                    return; // a live leader is known: ignore disruptive candidates
                }
                if term < self.term {
                    let t = self.term;
                    return self.reply_vote(ctx, candidate, t, false, pre);
                }
                if !pre && term > self.term {
                    self.become_follower(ctx, term, None);
                }
                let up_to_date = last_term > self.last_term()
                    || (last_term == self.last_term() && last_index >= self.last_index());
                let can_vote = pre && term > self.term
                    || self.voted_for.is_none()
                    || self.voted_for == Some(candidate);
                let granted = up_to_date && can_vote;
                if granted && !pre {
                    self.voted_for = Some(candidate);
                    self.reset_election_timer(ctx);
                }
                let t = if pre { term } else { self.term };
                self.reply_vote(ctx, candidate, t, granted, pre);
            }
            RaftMsg::VoteResp {
                term,
                from,
                granted,
                pre,
            } => {
                if term > self.term && !(pre && granted) {
                    self.become_follower(ctx, term, None);
                    return;
                }
                let expected = if pre {
                    Role::PreCandidate
                } else {
                    Role::Candidate
                };
                if self.role != expected {
                    return;
                }
                self.votes[from as usize] = Some(granted);
                let yes = self.votes.iter().filter(|v| **v == Some(true)).count();
                let no = self.votes.iter().filter(|v| **v == Some(false)).count();
                if yes >= self.quorum() {
                    self.on_votes_won(ctx, pre);
                } else if no >= self.quorum() {
                    self.become_follower(ctx, self.term, None);
                }
            }
            RaftMsg::Forward(p) => self.route_proposal(ctx, p),
            RaftMsg::Snapshot {
                term,
                leader,
                index,
                snap_term,
            } => {
                if term < self.term {
                    return;
                }
                self.become_follower(ctx, term, Some(leader));
                if index > self.commit {
                    self.log.clear();
                    self.log_offset = index;
                    self.offset_term = snap_term;
                    self.durable = index;
                    self.commit = index;
                    self.applied = index;
                }
                self.ack_append(ctx, leader, true, index);
            }
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        ctx.timer(self.cfg.heartbeat_interval, Payload::Timer(Timer::RaftTick));
        self.expire_proposals(ctx);
        if self.role == Role::Leader {
            self.heartbeat_elapsed += 1;
            self.election_elapsed += 1;
            if self.cfg.check_quorum && self.election_elapsed >= self.cfg.election_ticks {
                self.election_elapsed = 0;
                let mut active = self.recent_active.iter().filter(|a| **a).count();
                if !self.recent_active[self.idx as usize] {
                    active += 1;
                }
                self.recent_active.iter_mut().for_each(|a| *a = false);
                if active < self.quorum() {
                    let name = self.name.clone();
                    let t = self.term;
                    ctx.trace
                        .record(TraceLevel::Faults, ctx.now, &name, "RaftStepDown", |r| {
                            r.u64("term", t).str("reason", "lost quorum (check-quorum)");
                        });
                    self.become_follower(ctx, self.term, None);
                    return;
                }
            }
            if self.heartbeat_elapsed >= 1 {
                self.heartbeat_elapsed = 0;
                self.broadcast_append(ctx);
            }
        } else {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.randomized_timeout {
                if self.leader.is_some() {
                    let name = self.name.clone();
                    ctx.trace
                        .record(TraceLevel::Faults, ctx.now, &name, "RaftLeaderLost", |_| {});
                    self.leader = None;
                }
                self.campaign(ctx, self.cfg.pre_vote);
            }
        }
    }

    fn on_fsync(&mut self, ctx: &mut Ctx<'_, Payload, World>, upto: u64) {
        self.fsync_busy = false;
        self.durable = self.durable.max(upto.min(self.last_index()));
        let acks = std::mem::take(&mut self.acks);
        let mut rest = Vec::new();
        for (upto, leader) in acks {
            if upto <= self.durable {
                self.ack_append(ctx, leader, true, upto);
            } else {
                rest.push((upto, leader));
            }
        }
        self.acks = rest;
        if self.role == Role::Leader {
            self.maybe_commit(ctx);
        }
        self.start_fsync(ctx);
    }

    /// Answers a (pre-)vote request from `candidate`.
    fn reply_vote(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        candidate: u32,
        term: u64,
        granted: bool,
        pre: bool,
    ) {
        let from = self.idx;
        self.send_raft(
            ctx,
            candidate,
            RaftMsg::VoteResp {
                term,
                from,
                granted,
                pre,
            },
        );
    }

    /// Answers proposals past etcd's request timeout with its error.
    fn expire_proposals(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        while let Some(&(deadline, req)) = self.deadlines.front() {
            if deadline > ctx.now {
                break;
            }
            self.deadlines.pop_front();
            if let Some((client, arrived)) = self.pending.remove(&req) {
                ctx.shared.stats.etcd_timeouts += 1;
                let name = &self.name;
                ctx.trace
                    .record(TraceLevel::Spans, ctx.now, name, "ProposalTimeout", |r| {
                        r.u64("start", arrived.0);
                    });
                send(
                    ctx,
                    client,
                    Message::EtcdResult {
                        req,
                        result: Err("etcdserver: request timed out".into()),
                    },
                    req,
                );
            }
        }
    }

    /// Whether this member currently believes it leads (for tests).
    pub fn role(&self) -> Role {
        self.role
    }
}

impl Actor<Payload, World> for EtcdMember {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.role = Role::Follower;
        self.leader = None;
        self.reset_election_timer(ctx);
        // Stagger the first tick so members' clocks are not in lock-step.
        let phase = SimDuration(
            ctx.rng
                .range_inclusive(0, self.cfg.heartbeat_interval.nanos()),
        );
        ctx.timer(phase, Payload::Timer(Timer::RaftTick));
        if self.peers.len() == 1 {
            self.campaign(ctx, false);
        }
    }

    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        match payload {
            Payload::Timer(Timer::RaftTick) => self.on_tick(ctx),
            Payload::Timer(Timer::FsyncDone { upto }) => self.on_fsync(ctx, upto),
            Payload::Msg {
                msg: Message::Raft(m),
                ..
            } => self.on_raft(ctx, *m),
            Payload::Msg {
                from,
                msg: Message::EtcdPropose(p),
            } => {
                self.pending.insert(p.req, (from, ctx.now));
                let deadline = ctx.now.after(self.cfg.request_timeout());
                self.deadlines.push_back((deadline, p.req));
                self.route_proposal(ctx, p);
            }
            Payload::Msg {
                from,
                msg: Message::EtcdWatchStart { from_rev },
            } => {
                // Resume the watch where the client left off: replay what this
                // member has applied since `from_rev`, then stream; or, when
                // that history is compacted, hand over the current state.
                if !self.watchers.contains(&from) {
                    self.watchers.push(from);
                }
                match ctx.shared.etcd.changes_since(from_rev, self.applied) {
                    Some(missed) if missed.is_empty() => {}
                    Some(missed) => send(ctx, from, Message::EtcdWatch(Box::new(missed)), 0),
                    None => {
                        let (revision, objects) = ctx.shared.etcd.snapshot();
                        send(ctx, from, Message::EtcdSnapshot { revision, objects }, 0);
                    }
                }
            }
            Payload::Msg {
                msg: Message::EtcdCompact { revision },
                ..
            } => ctx.shared.etcd.compact(revision),
            Payload::Msg {
                from,
                msg: Message::ConnectionLost { stall },
            } if connection_lost(ctx, from, stall) => self.watchers.retain(|w| *w != from),
            _ => {}
        }
    }

    fn crash(&mut self, _now: SimTime) {
        // The WAL keeps what was fsynced; memory is gone.
        self.log
            .truncate(self.durable.saturating_sub(self.log_offset) as usize);
        self.role = Role::Follower;
        self.leader = None;
        self.commit = self.commit.min(self.durable);
        self.fsync_busy = false;
        self.pending.clear();
        self.deadlines.clear();
        self.waiting.clear();
        self.acks.clear();
        self.watchers.clear();
    }
}
