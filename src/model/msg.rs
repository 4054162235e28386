//! The closed vocabulary of everything that travels between components or
//! fires as a timer. No `Box<dyn Any>`: every event is one of these variants,
//! matched exhaustively by its receiver.

use std::sync::Arc;

use super::apiserver::request::{ApiRequest, ApiResponse, WatchBatch};
use super::etcd::raft::RaftMsg;
use super::etcd::store::{Proposal, TxnResult, WatchedChange};
use super::kubelet::runtime::RuntimeAnswer;
use crate::sim::{ComponentId, EventTag, RunDigest};

/// The engine's payload type for kubesim.
pub enum Payload {
    /// A message that crossed the network from `from`.
    Msg { from: ComponentId, msg: Message },
    /// A timer the receiver set for itself.
    Timer(Timer),
}

/// Messages between components.
pub enum Message {
    Api(Box<ApiRequest>),
    ApiResp(Box<ApiResponse>),
    Watch(Box<WatchBatch>),
    Raft(Box<RaftMsg>),
    /// apiserver → etcd member: a transaction to commit.
    EtcdPropose(Arc<Proposal>),
    /// etcd member → apiserver: the outcome of a proposal.
    EtcdResult {
        req: u64,
        result: Result<TxnResult, String>,
    },
    /// etcd member → apiserver: committed changes, in revision order.
    EtcdWatch(Box<Vec<WatchedChange>>),
    /// apiserver → etcd member: (re)start the watch after `from_rev`.
    EtcdWatchStart {
        from_rev: u64,
    },
    /// etcd member → apiserver: the watch could not resume at the asked
    /// revision (compacted, or never seen): the current key space at
    /// `revision`, what the apiserver's relist of etcd returns; the watch
    /// streams from `revision + 1`.
    EtcdSnapshot {
        revision: u64,
        objects: Vec<Arc<crate::api::Object>>,
    },
    /// apiserver → etcd member: compact history up to `revision`.
    EtcdCompact {
        revision: u64,
    },
    /// The connection to the sender may have ended: `stall` is 0 when the
    /// sender's process closed it, else the id of the partition stall whose
    /// keepalive ran out (ask [`crate::model::network::connection_lost`]).
    ConnectionLost {
        stall: u64,
    },
    /// The connection to the receiver was refused (it is down); carries the
    /// request id the sender had used, so it can fail over at once.
    Refused {
        req: u64,
    },
    /// Fault injection → kubelet: the container runtime reports that this
    /// container of the pod exited with `exit_code` (its process crashed).
    /// Delivered by the driver directly, not over the network: it stands
    /// for the process dying on the node, which the kubelet's PLEG sees.
    ContainerCrash(Box<ContainerCrashed>),
    /// Live mode: the node's real container runtime answers the kubelet
    /// ([`crate::model::kubelet::runtime`]); never in a simulated run.
    Runtime(Box<RuntimeAnswer>),
    /// cluster-autoscaler → cloud provider: a node-group call.
    Cloud(Box<crate::autoscaler::cloud_api::CloudRequest>),
    /// cloud provider → cluster-autoscaler: its answer.
    CloudReply(Box<crate::autoscaler::cloud_api::CloudReply>),
}

/// What [`Message::ContainerCrash`] names.
#[derive(Clone, Debug)]
pub struct ContainerCrashed {
    pub namespace: String,
    pub pod: String,
    /// `None`: the pod's first app container.
    pub container: Option<String>,
    pub exit_code: i32,
}

/// Timers, per component family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Raft's logical clock.
    RaftTick,
    /// A WAL fsync covering log entries up to `upto` finished.
    FsyncDone { upto: u64 },
    /// apiserver: a request finished its handling latency.
    ApiHandled { slot: u32 },
    /// apiserver: send bookmarks to watchers.
    Bookmarks,
    /// apiserver: the etcd client's per-request deadline.
    EtcdDeadline { req: u64 },
    /// apiserver: the storage compactor's period passed.
    EtcdCompact,
    /// apiserver: redial etcd after every endpoint refused.
    EtcdReconnect,
    /// client: a rate-limited request may now be sent.
    ClientRelease,
    /// client: resend a request the apiserver throttled.
    ClientRetry { req: u64 },
    /// client: a request's deadline passed.
    ClientDeadline { req: u64 },
    /// client: try listing/watching again after a failure.
    InformerRetry { informer: u8 },
    /// kubelet: retry a failed registration, lease write or pod list.
    KubeletRetry { what: u8 },
    /// kubelet: renew the node Lease.
    LeaseRenew,
    /// kubelet: compute (and maybe post) node status.
    NodeStatus,
    /// kubelet: the status manager's sync ticker (compare every pod's status).
    PodStatusSync,
    /// kubelet: a pod's lifecycle step is due.
    PodStep { slot: u32, gen: u32 },
    /// kubelet: a container's scripted run time may have ended.
    ContainerExit { slot: u32 },
    /// kubelet: a probe period elapsed (`gen`: the container's instance).
    Probe { slot: u32, container: u16, gen: u32 },
    /// kubelet: a liveness probe period elapsed.
    LivenessProbe { slot: u32, container: u16, gen: u32 },
    /// kubelet: a container being killed reached its next step (preStop
    /// hook done, exited), or a sidecar's restart back-off ended.
    ContainerKill { slot: u32, container: u16, gen: u32 },
    /// kubelet: the image puller finished the current pull.
    PullDone { image: u32 },
    /// scheduler: the current scheduling cycle's work is done.
    SchedulerCycle,
    /// scheduler: move pods whose backoff ended to activeQ (every second,
    /// on the second).
    SchedulerFlush,
    /// scheduler: move pods unschedulable for over 5 minutes (every 30 s).
    SchedulerFlushLeftover,
    /// controller-manager: delayed work-queue items of this controller are due.
    ControllerQueue { controller: u8 },
    /// controller-manager: a controller's periodic pass (`what` is its own).
    ControllerTick { controller: u8, what: u32 },
    /// scenario driver: the timeline action at this index is due.
    Action { index: u32 },
    /// scenario driver: a drain's pod is due another eviction or check.
    DrainWake { drain: u32, pod: u32 },
    /// scenario driver: a drain's `--timeout` ran out.
    DrainTimeout { drain: u32 },
    /// scenario driver: a `crashEtcd: leader` waiting out an election
    /// looks for a leader again.
    LeaderWait { wait: u32 },
    /// workload submitter: source `source`'s next arrival is due.
    WorkloadArrival { source: u32 },
    /// workload submitter: task `task` of source `source` is to be deleted.
    WorkloadDelete { source: u32, task: u32 },
    /// workload submitter: send again the create that `tag` failed with.
    WorkloadRetry { tag: u64 },
    /// cloud provider: the instance in slot `slot` finished booting.
    CloudBoot { slot: u32, gen: u32 },
    /// cloud provider: the cloud-controller-manager's node lifecycle pass
    /// over the Nodes of terminated instances.
    CloudNodeMonitor,
    /// kubelet: the DRA prepare step of the pod in `slot` (`retry`: try the
    /// claims again, else go on to the sandbox).
    DraPrepare { slot: u32, gen: u32, retry: bool },
}

/// Feeds `Hash` words into the run digest. `usize`/`isize` (the derived
/// enum discriminants) go in as 64-bit words, so the tag is the same on
/// every platform.
struct TagHasher(RunDigest);

impl std::hash::Hasher for TagHasher {
    fn finish(&self) -> u64 {
        unreachable!("read through the digest")
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0.word(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.0.word(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.0.word(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.0.word(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0.word(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.0.word(n as u64);
    }
    fn write_isize(&mut self, n: isize) {
        self.0.word(n as u64);
    }
}

/// Folds `words` into one tag.
fn fold(words: &[u64]) -> u64 {
    let mut d = RunDigest::default();
    for &w in words {
        d.word(w);
    }
    d.lane()
}

impl Message {
    /// The variant's number and the fields that identify this message:
    /// request ids, codes, revisions, Raft terms and indexes. Bodies stay
    /// out (they are the trace's business); a differing body shows up in
    /// the events it causes.
    fn tag(&self) -> u64 {
        match self {
            Message::Api(r) => fold(&[1, r.id, r.verb as u64, r.resource_version]),
            Message::ApiResp(r) => {
                let rv = r.object.as_ref().map_or(0, |o| o.meta.resource_version);
                fold(&[2, r.id, u64::from(r.code), rv, r.items.len() as u64])
            }
            Message::Watch(w) => {
                let last = w.events.last().map_or(0, |e| e.resource_version);
                let ends = u64::from(w.gone) << 1 | u64::from(w.closed);
                fold(&[3, w.watch_id, w.seq, w.events.len() as u64, last, ends])
            }
            Message::Raft(m) => raft_tag(m),
            Message::EtcdPropose(p) => fold(&[5, p.req]),
            Message::EtcdResult { req, result } => {
                let rev = result.as_ref().map_or(u64::MAX, |r| r.revision);
                fold(&[6, *req, rev])
            }
            Message::EtcdWatch(changes) => {
                let last = changes.last().map_or(0, |c| c.revision);
                fold(&[7, changes.len() as u64, last])
            }
            Message::EtcdWatchStart { from_rev } => fold(&[8, *from_rev]),
            Message::EtcdSnapshot { revision, objects } => {
                fold(&[9, *revision, objects.len() as u64])
            }
            Message::EtcdCompact { revision } => fold(&[10, *revision]),
            Message::ConnectionLost { stall } => fold(&[11, *stall]),
            Message::Refused { req } => fold(&[12, *req]),
            Message::ContainerCrash(c) => fold(&[13, c.exit_code as u64, c.pod.len() as u64]),
            Message::Runtime(a) => match &**a {
                RuntimeAnswer::Exited { exit_code, .. } => fold(&[14, *exit_code as u64]),
                RuntimeAnswer::Ran { ok, .. } => fold(&[15, u64::from(*ok)]),
                RuntimeAnswer::Failed { .. } => fold(&[16]),
            },
            Message::Cloud(r) => fold(&[17, u64::from(r.controller), r.call.tag()]),
            Message::CloudReply(r) => fold(&[18, u64::from(r.controller), r.tag()]),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Message::Api(_) => "Api",
            Message::ApiResp(_) => "ApiResp",
            Message::Watch(_) => "Watch",
            Message::Raft(_) => "Raft",
            Message::EtcdPropose(_) => "EtcdPropose",
            Message::EtcdResult { .. } => "EtcdResult",
            Message::EtcdWatch(_) => "EtcdWatch",
            Message::EtcdWatchStart { .. } => "EtcdWatchStart",
            Message::EtcdSnapshot { .. } => "EtcdSnapshot",
            Message::EtcdCompact { .. } => "EtcdCompact",
            Message::ConnectionLost { .. } => "ConnectionLost",
            Message::Refused { .. } => "Refused",
            Message::ContainerCrash(_) => "ContainerCrash",
            Message::Runtime(_) => "Runtime",
            Message::Cloud(_) => "Cloud",
            Message::CloudReply(_) => "CloudReply",
        }
    }
}

fn raft_tag(m: &RaftMsg) -> u64 {
    match m {
        RaftMsg::Append {
            term,
            leader,
            prev_index,
            entries,
            commit,
            ..
        } => fold(&[
            40,
            *term,
            u64::from(*leader),
            *prev_index,
            entries.len() as u64,
            *commit,
        ]),
        RaftMsg::AppendResp {
            term,
            from,
            success,
            match_index,
        } => fold(&[
            41,
            *term,
            u64::from(*from),
            u64::from(*success),
            *match_index,
        ]),
        RaftMsg::Vote {
            term,
            candidate,
            last_index,
            pre,
            ..
        } => fold(&[
            42,
            *term,
            u64::from(*candidate),
            *last_index,
            u64::from(*pre),
        ]),
        RaftMsg::VoteResp {
            term,
            from,
            granted,
            pre,
        } => fold(&[
            43,
            *term,
            u64::from(*from),
            u64::from(*granted),
            u64::from(*pre),
        ]),
        RaftMsg::Forward(p) => fold(&[44, p.req]),
        RaftMsg::Snapshot { term, index, .. } => fold(&[45, *term, *index]),
    }
}

impl EventTag for Payload {
    fn tag(&self) -> u64 {
        match self {
            Payload::Msg { from, msg } => fold(&[u64::from(*from), msg.tag()]),
            Payload::Timer(t) => {
                let mut h = TagHasher(RunDigest::default());
                std::hash::Hash::hash(t, &mut h);
                h.0.lane()
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Payload::Msg { msg, .. } => msg.kind(),
            Payload::Timer(_) => "Timer",
        }
    }
}
