//! The end-of-run summary: `summary.json` and the one-screen text view.
//!
//! Everything in it is a function of the scenario and seed, so it is as
//! reproducible as the trace. Wall-clock figures are printed by the CLI and
//! kept out of this file on purpose.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::bootstrap::Bootstrap;
use super::over_time::OverTimeSummary;
use super::stats::{ActionOutcome, LatencySummary, Samples, Stats};
use crate::api::manifest::FieldReport;
use crate::api::object::Body;
use crate::model::etcd::EtcdStore;
use crate::sim::{SimDuration, SimTime};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Summary {
    pub scenario: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub seed: u64,
    pub simulated_s: f64,
    /// The run digest: every delivered event, whatever the trace level
    /// ([`crate::sim::digest`]).
    pub digest: String,
    /// BLAKE3 of the trace's bytes at the level it was written.
    #[serde(default)]
    pub trace_digest: String,
    pub trace_records: u64,
    pub events: u64,
    pub nodes: NodeCounts,
    pub pods: PodCounts,
    /// Requested against allocatable at the end, over all nodes.
    #[serde(default)]
    pub utilisation: Utilisation,
    /// Objects in etcd at the end, per kind.
    pub objects: BTreeMap<String, u64>,
    pub pod_startup: PodStartup,
    /// The whole run, not its last instant: pending pods, utilisation,
    /// node-hours and cost ([`super::over_time`]).
    #[serde(default)]
    pub over_time: OverTimeSummary,
    /// Pod creation to binding (count 0 when nothing was bound by a
    /// scheduler), for pods created after the bootstrap.
    pub scheduling: LatencySummary,
    pub etcd: EtcdSummary,
    pub apiserver: ApiSummary,
    pub watch: WatchSummary,
    pub network: NetworkSummary,
    pub actions: Vec<ActionOutcome>,
    /// The workload submitter's requests, when the scenario has a workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::report::stats::WorkloadCounts>,
    /// The cluster autoscaler's machines, when a pool autoscales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<crate::report::stats::AutoscalerCounts>,
    pub loading: LoadingSummary,
    /// The cluster coming up, reported apart from the run.
    #[serde(default)]
    pub bootstrap: BootstrapSummary,
    /// Timeline actions after the run's end (`--until` shorter than the
    /// timeline): never issued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_reached: Vec<NotReached>,
    /// Faults drawn from the seed (`faults:`), when the scenario has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultsDrawn>,
    /// What the invariant checkers found (`kubesim run --check`, `fuzz`),
    /// one line each; absent when the run was not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<String>>,
}

/// What a scenario's `faults:` section drew for the run's seed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct FaultsDrawn {
    pub seed: u64,
    /// Faults played (each a step and its heal).
    pub drawn: usize,
    /// Draws not played: over the cap, a busy target, or quorum.
    pub skipped: usize,
}

impl FaultsDrawn {
    /// The summary's `faults` line.
    pub fn line(&self) -> String {
        format!(
            "faults   {} drawn from seed {} ({} skipped: cap, busy target or quorum)",
            self.drawn, self.seed, self.skipped
        )
    }
}

/// A timeline action the run ended before.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NotReached {
    pub at_s: f64,
    /// Line of the timeline entry in the scenario file.
    pub line: u32,
    pub action: String,
}

/// Until etcd has a leader and every node present from the start is
/// Ready (see [`super::bootstrap`]); the latencies of what began before.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct BootstrapSummary {
    /// Seconds; `None` when it never happened within the run.
    pub etcd_leader_s: Option<f64>,
    /// The nodes present from the start, and when the last became Ready.
    pub nodes: u64,
    pub nodes_ready_s: Option<f64>,
    pub end_s: Option<f64>,
    pub etcd_commit: LatencySummary,
    /// The apiserver's latency over every verb.
    pub api: LatencySummary,
    /// Pods created during the bootstrap.
    pub pod_startup: PodStartup,
    pub scheduling: LatencySummary,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct NodeCounts {
    pub total: u64,
    /// Ready=True in the Node's last reported status.
    pub ready: u64,
    pub not_ready: u64,
    /// Kubelets down at the end of the run.
    pub down: u64,
    /// Node Leases not renewed within their duration at the end: what the
    /// node lifecycle controller reads as a dead kubelet.
    pub leases_expired: u64,
}

/// What the pods bound to nodes (and not finished) request, against what
/// the nodes offer: the planner's headroom figure.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Utilisation {
    pub cpu_requested_millicores: i64,
    pub cpu_allocatable_millicores: i64,
    pub memory_requested_bytes: i64,
    pub memory_allocatable_bytes: i64,
    /// Requested over allocatable, 0 when there is nothing allocatable.
    pub cpu_fraction: f64,
    pub memory_fraction: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct PodCounts {
    pub total: u64,
    pub by_phase: BTreeMap<String, u64>,
    /// Pending with no node: waiting for a scheduler.
    pub unscheduled: u64,
    pub ready: u64,
    /// Deleted but not yet gone (`kubectl get pods` shows Terminating):
    /// e.g. evicted from a node whose kubelet is down, as upstream leaves
    /// them until the node returns or is removed.
    #[serde(default)]
    pub terminating: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct PodStartup {
    pub created_to_running: LatencySummary,
    pub created_to_ready: LatencySummary,
    /// The upstream pod-startup SLI: created to every container started and
    /// seen on watch, less image pulls (`kubelet_pod_start_sli_duration_seconds`).
    #[serde(default)]
    pub sli: LatencySummary,
    /// Pods alive at the end that never reached Running: left out of the
    /// percentiles above, so reported here.
    #[serde(default)]
    pub never_started: u64,
    /// The SLI's p99 with the never-started pods counted as slower than
    /// any that started: None when the 99th percentile is one of them.
    #[serde(default)]
    pub sli_p99_all_ms: Option<f64>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct EtcdSummary {
    pub members: u32,
    pub revision: u64,
    pub leader_changes: u64,
    /// Proposals that hit etcd's request timeout.
    pub request_timeouts: u64,
    /// Proposal arrival to commit and apply on the member that took it,
    /// per committed proposal that arrived after the bootstrap: the trace's
    /// `Commit` spans (`t - start`).
    pub commit: LatencySummary,
    pub wal_fsync: LatencySummary,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ApiSummary {
    pub requests_by_code: BTreeMap<u16, u64>,
    /// Admission to answer per verb, for requests admitted after the
    /// bootstrap and not answered 429: the trace's `Request` spans.
    pub latency_by_verb: BTreeMap<String, LatencySummary>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct WatchSummary {
    pub events_sent: u64,
    pub relists: u64,
    /// Streams resumed from their last revision after a connection ended.
    #[serde(default)]
    pub restarts: u64,
    /// Out-of-sequence batches (must be 0: streams are TCP).
    #[serde(default)]
    pub gaps: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct NetworkSummary {
    pub messages: u64,
    /// Messages gone with connections that broke, or cancelled while held
    /// (their client's timeout passed).
    pub lost: u64,
    /// Segments lost on the wire and retransmitted.
    #[serde(default)]
    pub retransmitted: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct LoadingSummary {
    pub converted: Vec<String>,
    pub not_simulated: Vec<String>,
    pub warnings: Vec<String>,
}

/// Inputs to a summary that are not in [`Stats`].
pub struct RunFacts<'a> {
    pub scenario: &'a str,
    pub description: &'a str,
    pub seed: u64,
    pub simulated_s: f64,
    pub end: SimTime,
    pub digest: String,
    pub trace_digest: String,
    pub trace_records: u64,
    pub events: u64,
    pub etcd_members: u32,
    pub kubelets_down: u64,
    pub network_messages: u64,
    pub network_lost: u64,
    pub network_retransmitted: u64,
    pub report: &'a FieldReport,
    pub warnings: &'a [String],
    pub not_reached: Vec<NotReached>,
}

impl Summary {
    /// Builds the summary from the run's measurements and etcd's final state.
    pub fn new(facts: RunFacts<'_>, stats: &Stats, store: &EtcdStore) -> Summary {
        let mut nodes = NodeCounts {
            down: facts.kubelets_down,
            ..Default::default()
        };
        let mut pods = PodCounts::default();
        let mut used = Utilisation::default();
        let mut objects: BTreeMap<String, u64> = BTreeMap::new();
        for key in store.keys() {
            let Some(o) = store.get(key) else { continue };
            *objects.entry(o.kind.name().to_string()).or_default() += 1;
            match &o.body {
                Body::Node(n) => {
                    nodes.total += 1;
                    let amount = |r: &str| {
                        n.allocatable
                            .get(r)
                            .map_or(0, |q| crate::scheduler::resources::amount(r, q))
                    };
                    used.cpu_allocatable_millicores += amount("cpu");
                    used.memory_allocatable_bytes += amount("memory");
                    if n.is_ready() {
                        nodes.ready += 1;
                    } else {
                        nodes.not_ready += 1;
                    }
                }
                Body::Lease(l) if o.meta.namespace == "kube-node-lease" => {
                    let deadline = l.renew_time.map(|t| {
                        let secs = l.lease_duration_seconds.unwrap_or(40).max(0) as u64;
                        t.after(SimDuration::from_secs(secs))
                    });
                    if deadline.is_none_or(|d| d < facts.end) {
                        nodes.leases_expired += 1;
                    }
                }
                Body::Pod(p) => {
                    pods.total += 1;
                    *pods
                        .by_phase
                        .entry(p.status.phase.as_str().to_string())
                        .or_default() += 1;
                    if p.node_name.is_none() {
                        pods.unscheduled += 1;
                    } else if !p.is_terminal() {
                        let req = crate::scheduler::pod_info::PodInfo::new(o).requests;
                        used.cpu_requested_millicores += req.get("cpu");
                        used.memory_requested_bytes += req.get("memory");
                    }
                    if p.status.is_ready() {
                        pods.ready += 1;
                    }
                    if o.meta.deletion.is_some() {
                        pods.terminating += 1;
                    }
                }
                _ => {}
            }
        }
        let (converted, not_simulated) = {
            let lines = facts.report.lines();
            let conv: Vec<String> = facts.report.converted.iter().cloned().collect();
            let rest = lines.into_iter().filter(|l| !conv.contains(l)).collect();
            (conv, rest)
        };
        let fraction = |a: i64, b: i64| {
            if b > 0 {
                (a as f64 / b as f64 * 1e4).round() / 1e4
            } else {
                0.0
            }
        };
        used.cpu_fraction = fraction(
            used.cpu_requested_millicores,
            used.cpu_allocatable_millicores,
        );
        used.memory_fraction = fraction(used.memory_requested_bytes, used.memory_allocatable_bytes);
        let never_started = stats.pods.not_started();
        Summary {
            scenario: facts.scenario.to_string(),
            description: facts.description.to_string(),
            seed: facts.seed,
            simulated_s: facts.simulated_s,
            digest: facts.digest,
            trace_digest: facts.trace_digest,
            trace_records: facts.trace_records,
            events: facts.events,
            nodes,
            pods,
            utilisation: used,
            objects,
            pod_startup: PodStartup {
                created_to_running: stats.run.pod_created_to_running.summary(),
                created_to_ready: stats.run.pod_created_to_ready.summary(),
                sli: stats.run.pod_startup_sli.summary(),
                never_started,
                sli_p99_all_ms: stats
                    .run
                    .pod_startup_sli
                    .quantile_with_unfinished(0.99, never_started),
            },
            over_time: stats
                .over_time
                .summary(facts.end, &stats.pods.pending_since()),
            scheduling: stats.run.pod_scheduling.summary(),
            etcd: EtcdSummary {
                members: facts.etcd_members,
                revision: store.revision(),
                leader_changes: stats.leader_changes,
                request_timeouts: stats.etcd_timeouts,
                commit: stats.run.etcd_commit.summary(),
                wal_fsync: stats.wal_fsync.summary(),
            },
            apiserver: ApiSummary {
                requests_by_code: stats.api_codes.clone(),
                latency_by_verb: stats
                    .run
                    .api_latency
                    .iter()
                    .map(|(k, v)| (k.clone(), v.summary()))
                    .collect(),
            },
            watch: WatchSummary {
                events_sent: stats.watch_events_sent,
                relists: stats.watch_relists,
                restarts: stats.watch_restarts,
                gaps: stats.watch_gaps,
            },
            network: NetworkSummary {
                messages: facts.network_messages,
                lost: facts.network_lost,
                retransmitted: facts.network_retransmitted,
            },
            actions: stats.actions.clone(),
            workload: (stats.workload.submitted > 0).then(|| stats.workload.clone()),
            autoscaler: stats.autoscaler.enabled.then(|| stats.autoscaler.clone()),
            loading: LoadingSummary {
                converted,
                not_simulated,
                warnings: facts.warnings.to_vec(),
            },
            bootstrap: bootstrap_summary(&stats.bootstrap),
            not_reached: facts.not_reached,
            faults: None,
            violations: None,
        }
    }

    /// The one-screen text view printed after a run.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scenario {}  seed {}  simulated {}",
            self.scenario,
            self.seed,
            human_secs(self.simulated_s)
        );
        if !self.description.is_empty() {
            let _ = writeln!(s, "  {}", self.description.trim());
        }
        let _ = writeln!(
            s,
            "nodes    {} total, {} Ready, {} NotReady, {} kubelets down, {} leases expired",
            self.nodes.total,
            self.nodes.ready,
            self.nodes.not_ready,
            self.nodes.down,
            self.nodes.leases_expired
        );
        let u = &self.utilisation;
        if u.cpu_allocatable_millicores > 0 {
            let _ = writeln!(
                s,
                "requests cpu {:.1}% of allocatable ({}m of {}m), memory {:.1}% ({} of {} MiB)",
                u.cpu_fraction * 100.0,
                u.cpu_requested_millicores,
                u.cpu_allocatable_millicores,
                u.memory_fraction * 100.0,
                u.memory_requested_bytes >> 20,
                u.memory_allocatable_bytes >> 20
            );
        }
        let phases: Vec<String> = self
            .pods
            .by_phase
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let _ = writeln!(
            s,
            "pods     {} total{}{}, {} Ready, {} unscheduled, {} terminating",
            self.pods.total,
            if phases.is_empty() { "" } else { ": " },
            phases.join(", "),
            self.pods.ready,
            self.pods.unscheduled,
            self.pods.terminating
        );
        let lat = |l: &LatencySummary| {
            if l.count == 0 {
                "none".to_string()
            } else {
                format!(
                    "p50 {} p99 {} max {} (n={})",
                    ms(l.p50_ms),
                    ms(l.p99_ms),
                    ms(l.max_ms),
                    l.count
                )
            }
        };
        let _ = writeln!(
            s,
            "startup  created→Running {}",
            lat(&self.pod_startup.created_to_running)
        );
        let _ = writeln!(
            s,
            "         created→Ready   {}",
            lat(&self.pod_startup.created_to_ready)
        );
        let _ = writeln!(
            s,
            "         startup SLI     {} (less image pulls){}",
            lat(&self.pod_startup.sli),
            match self.pod_startup.never_started {
                0 => String::new(),
                n => format!("; {n} never started"),
            }
        );
        let _ = writeln!(s, "schedule created→bound   {}", lat(&self.scheduling));
        let _ = writeln!(s, "{}", self.over_time_lines());
        let _ = writeln!(
            s,
            "etcd     {} members, {} leader elections, {} timeouts, revision {}",
            self.etcd.members,
            self.etcd.leader_changes,
            self.etcd.request_timeouts,
            self.etcd.revision
        );
        let _ = writeln!(s, "         commit {}", lat(&self.etcd.commit));
        let _ = writeln!(s, "{}", self.bootstrap.line(&lat));
        let total: u64 = self.apiserver.requests_by_code.values().sum();
        let codes: Vec<String> = self
            .apiserver
            .requests_by_code
            .iter()
            .map(|(c, n)| format!("{c}×{n}"))
            .collect();
        let _ = writeln!(s, "api      {total} requests: {}", codes.join(" "));
        let _ = writeln!(
            s,
            "watch    {} events sent, {} resumed, {} relists; network {} messages, {} retransmitted, {} lost with broken connections or cancelled",
            self.watch.events_sent,
            self.watch.restarts,
            self.watch.relists,
            self.network.messages,
            self.network.retransmitted,
            self.network.lost
        );
        let failed: Vec<&ActionOutcome> = self
            .actions
            .iter()
            .filter(|a| a.result.starts_with("failed"))
            .collect();
        let _ = writeln!(
            s,
            "actions  {} done, {} failed",
            self.actions.len() - failed.len(),
            failed.len()
        );
        for a in failed.iter().take(5) {
            let _ = writeln!(s, "  at {}: {}: {}", human_secs(a.at_s), a.action, a.result);
        }
        if failed.len() > 5 {
            let _ = writeln!(s, "  … {} more in summary.json", failed.len() - 5);
        }
        if let Some(w) = &self.workload {
            let _ = writeln!(
                s,
                "workload {} submitted, {} created, {} refused, {} resent, {} deleted by their owners",
                w.submitted, w.created, w.refused, w.retries, w.deleted
            );
        }
        if let Some(a) = &self.autoscaler {
            let _ = writeln!(
                s,
                "scaling  {} scale-ups adding {} nodes, {} nodes removed",
                a.scale_ups, a.nodes_added, a.nodes_removed
            );
        }
        if !self.not_reached.is_empty() {
            let _ = writeln!(
                s,
                "until    the run ended at {}: {} timeline action{} not reached",
                human_secs(self.simulated_s),
                self.not_reached.len(),
                if self.not_reached.len() == 1 { "" } else { "s" }
            );
            for a in &self.not_reached {
                let _ = writeln!(
                    s,
                    "  at {} (line {}): {}",
                    human_secs(a.at_s),
                    a.line,
                    a.action
                );
            }
        }
        for w in &self.loading.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        let _ = writeln!(
            s,
            "trace    {} records, {} events",
            self.trace_records, self.events
        );
        s
    }
}

impl BootstrapSummary {
    /// `bootstrap etcd leader at 1.10s, 3/3 nodes Ready at 2.40s; commit …`
    fn line(&self, lat: &dyn Fn(&LatencySummary) -> String) -> String {
        let at = |t: Option<f64>| t.map_or("never".to_string(), |t| format!("at {t:.2}s"));
        let mut s = format!("boot     etcd leader {}", at(self.etcd_leader_s));
        if self.nodes > 0 {
            let ready = if self.nodes_ready_s.is_some() {
                self.nodes
            } else {
                0
            };
            let _ = write!(
                s,
                ", {ready}/{} nodes Ready {}",
                self.nodes,
                at(self.nodes_ready_s)
            );
        }
        let _ = write!(s, "; commit {}", lat(&self.etcd_commit));
        let pods = &self.pod_startup.created_to_running;
        if pods.count > 0 || self.scheduling.count > 0 {
            let _ = write!(
                s,
                "; pods created then: created→bound {}, created→Running {}",
                lat(&self.scheduling),
                lat(pods)
            );
        }
        if self.end_s.is_none() {
            s.push_str(" (the bootstrap did not finish: every figure above is of it)");
        }
        s
    }
}

impl Summary {
    /// The whole-run figures: waiting pods, utilisation over time, cost.
    fn over_time_lines(&self) -> String {
        let o = &self.over_time;
        let mut s = format!(
            "run      pending peak {} at {}, {} pod-seconds waiting, longest wait {}",
            o.peak_pending_pods,
            human_secs(o.peak_pending_at_s),
            o.pending_pod_seconds,
            human_secs(o.longest_wait_s)
        );
        let _ = write!(
            s,
            "\n         requested over time: cpu {:.1}% (peak {:.1}%), memory {:.1}%",
            o.cpu_requested * 100.0,
            o.peak_cpu_requested * 100.0,
            o.memory_requested * 100.0
        );
        if o.gpu_requested > 0.0 {
            let _ = write!(s, ", gpu {:.1}%", o.gpu_requested * 100.0);
        }
        let _ = write!(
            s,
            "; {} node-hours (peak {} nodes)",
            o.node_hours, o.peak_nodes
        );
        if o.cost > 0.0 {
            let _ = write!(s, ", cost {:.2}", o.cost);
        }
        s
    }
}

fn bootstrap_summary(b: &Bootstrap) -> BootstrapSummary {
    let secs = |t: Option<SimTime>| t.map(|t| t.0 as f64 / 1e9);
    let l = &b.latencies;
    let mut api = Samples::default();
    for s in l.api_latency.values() {
        api.extend(s);
    }
    BootstrapSummary {
        etcd_leader_s: secs(b.leader_at),
        nodes: b.nodes() as u64,
        nodes_ready_s: secs(b.nodes_ready_at),
        end_s: secs(b.end),
        etcd_commit: l.etcd_commit.summary(),
        api: api.summary(),
        pod_startup: PodStartup {
            created_to_running: l.pod_created_to_running.summary(),
            created_to_ready: l.pod_created_to_ready.summary(),
            sli: l.pod_startup_sli.summary(),
            never_started: 0,
            sli_p99_all_ms: l.pod_startup_sli.quantile_with_unfinished(0.99, 0),
        },
        scheduling: l.pod_scheduling.summary(),
    }
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else {
        format!("{v:.1}ms")
    }
}

fn human_secs(s: f64) -> String {
    let total = s.round() as u64;
    let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s:.3}s"),
        (0, _) => format!("{m}m{sec:02}s"),
        _ => format!("{h}h{m:02}m{sec:02}s"),
    }
}
