//! Reads a run's trace back into the time series its charts draw: every
//! Deployment's replica counts and its ReplicaSets' sizes, pods by phase,
//! each node's requested CPU and memory against allocatable, scheduling and
//! startup latencies, Service endpoints, the etcd leader, and the moments of
//! the timeline's actions. Only the trace is read, so `kubesim report DIR`
//! rebuilds the same series from a saved run.
//!
//! The object-level series need a trace written at `full` (the default);
//! at lower levels the charts that need objects come out empty.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::spans::{event_name, is_unread_write, parse_span, Bucketed, Span};
use crate::api::quantity::Quantity;

/// A point of a step series: from `t` (seconds) on, the value holds.
pub type Step = (f64, f64);

/// One timeline action: when it was issued and what it was.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub t: f64,
    pub label: String,
}

/// A Deployment's status over time and its ReplicaSets' desired sizes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentSeries {
    pub desired: Vec<Step>,
    pub updated: Vec<Step>,
    pub ready: Vec<Step>,
    pub available: Vec<Step>,
    /// ReplicaSet name → `spec.replicas` over time, in creation order.
    pub replica_sets: Vec<(String, Vec<Step>)>,
}

/// Requested resources on one node over time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSeries {
    /// Allocatable CPU in millicores and memory in bytes.
    pub cpu_allocatable: f64,
    pub memory_allocatable: f64,
    pub cpu_requested: Vec<Step>,
    pub memory_requested: Vec<Step>,
}

/// Pods by phase: Pending split into unscheduled and scheduled.
pub const PHASES: [&str; 5] = ["Unscheduled", "Pending", "Running", "Succeeded", "Failed"];

/// Everything the charts draw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSeries {
    /// The run's end, seconds.
    pub end: f64,
    pub actions: Vec<Mark>,
    pub deployments: BTreeMap<String, DeploymentSeries>,
    /// One series per entry of [`PHASES`].
    pub phases: [Vec<Step>; 5],
    pub nodes: BTreeMap<String, NodeSeries>,
    /// Nodes registered, and those with Ready=True, over time.
    pub node_count: Vec<Step>,
    pub nodes_ready: Vec<Step>,
    /// created → bound, seconds, one per pod.
    pub scheduling: Vec<f64>,
    /// created → Running and created → Ready, seconds, one per pod.
    pub to_running: Vec<f64>,
    pub to_ready: Vec<f64>,
    /// Service → ready and not-ready endpoint addresses over time.
    pub services: BTreeMap<String, (Vec<Step>, Vec<Step>)>,
    /// etcd: (when, member that became leader, or None when there is none).
    pub leaders: Vec<(f64, Option<String>)>,
    /// Elections started (campaigns), seconds.
    pub elections: Vec<f64>,
    /// apiserver requests per second and their latency (admission to
    /// answer), reads and writes apart; 429s are counted on their own and
    /// left out of the latencies. Needs trace level `spans`.
    pub api_reads: Bucketed,
    pub api_writes: Bucketed,
    pub api_throttled: Bucketed,
    /// etcd: proposal arrival to commit and apply, on the member that took it.
    pub etcd_commit: Bucketed,
}

/// What the reader keeps of one pod.
#[derive(Clone, Debug, Default)]
struct PodState {
    phase: usize,
    node: Option<String>,
    cpu_m: f64,
    memory: f64,
    created: f64,
    bound: bool,
    running: bool,
    ready: bool,
}

/// Appends a step, collapsing repeats and same-instant updates.
fn push(series: &mut Vec<Step>, t: f64, v: f64) {
    if let Some(last) = series.last_mut() {
        if last.1 == v {
            return;
        }
        if last.0 == t {
            last.1 = v;
            return;
        }
    }
    series.push((t, v));
}

fn quantity(v: Option<&Json>) -> Option<Quantity> {
    Quantity::parse(v?.as_str()?).ok()
}

/// A pod's requested CPU (millicores) and memory (bytes): the larger of the
/// containers' sum and any init container, as the scheduler counts them.
fn pod_requests(pod: &Json) -> (f64, f64) {
    let sum = |list: &str| -> Vec<(f64, f64)> {
        pod["spec"][list]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        let r = &c["resources"]["requests"];
                        (
                            quantity(r.get("cpu")).map_or(0.0, |q| q.milli_value() as f64),
                            quantity(r.get("memory")).map_or(0.0, |q| q.value() as f64),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let main = sum("containers");
    let (mut cpu, mut mem) = main.iter().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    for (c, m) in sum("initContainers") {
        cpu = cpu.max(c);
        mem = mem.max(m);
    }
    (cpu, mem)
}

fn condition_true(obj: &Json, type_: &str) -> bool {
    obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

fn int(v: &Json) -> f64 {
    v.as_i64().unwrap_or(0) as f64
}

impl RunSeries {
    /// Reads the series from trace lines.
    pub fn from_trace(text: &str) -> Result<RunSeries, String> {
        Self::from_reader(text.as_bytes())
    }

    /// Reads the series from a trace stream, a line at a time (a trace
    /// can be larger than the memory it is worth holding).
    pub fn from_reader(input: impl std::io::BufRead) -> Result<RunSeries, String> {
        let mut r = SeriesReader::default();
        for (i, line) in input.lines().enumerate() {
            let line = line.map_err(|e| format!("trace line {}: {e}", i + 1))?;
            r.line(&line)
                .map_err(|e| format!("trace line {}: {e}", i + 1))?;
        }
        Ok(r.finish())
    }

    /// Every series as (name, steps), for the CSV.
    pub fn named(&self) -> Vec<(String, &Vec<Step>)> {
        let mut out = Vec::new();
        for (phase, s) in PHASES.iter().zip(&self.phases) {
            out.push((format!("pods/{phase}"), s));
        }
        for (name, d) in &self.deployments {
            for (what, s) in [
                ("desired", &d.desired),
                ("updated", &d.updated),
                ("ready", &d.ready),
                ("available", &d.available),
            ] {
                out.push((format!("deployment/{name}/{what}"), s));
            }
            for (rs, s) in &d.replica_sets {
                out.push((format!("replicaset/{rs}/replicas"), s));
            }
        }
        out.push(("nodes/registered".into(), &self.node_count));
        out.push(("nodes/ready".into(), &self.nodes_ready));
        for (name, n) in &self.nodes {
            out.push((
                format!("node/{name}/cpu_requested_millicores"),
                &n.cpu_requested,
            ));
            out.push((
                format!("node/{name}/memory_requested_bytes"),
                &n.memory_requested,
            ));
        }
        for (name, (ready, not_ready)) in &self.services {
            out.push((format!("service/{name}/ready"), ready));
            out.push((format!("service/{name}/not_ready"), not_ready));
        }
        for (name, b) in [
            ("apiserver/reads", &self.api_reads),
            ("apiserver/writes", &self.api_writes),
            ("apiserver/throttled", &self.api_throttled),
            ("etcd/commits", &self.etcd_commit),
        ] {
            if b.per_second.is_empty() {
                continue;
            }
            out.push((format!("{name}_per_second"), &b.per_second));
            out.push((format!("{name}_latency_p50_seconds"), &b.p50));
            out.push((format!("{name}_latency_p99_seconds"), &b.p99));
        }
        out
    }
}

/// Reads trace lines one at a time into a [`RunSeries`] (so one pass over
/// a trace can feed several readers).
#[derive(Default)]
pub struct SeriesReader {
    out: RunSeries,
    pods: BTreeMap<String, PodState>,
    phase_counts: [f64; 5],
    node_req: BTreeMap<String, (f64, f64)>,
    /// Each registered node: whether its last write showed Ready=True.
    node_ready: BTreeMap<String, bool>,
    /// ReplicaSet key → owning Deployment key.
    rs_owner: BTreeMap<String, String>,
    /// (answered at, latency) in seconds, for the bucketed series.
    api_reads: Vec<(f64, f32)>,
    api_writes: Vec<(f64, f32)>,
    api_throttled: Vec<(f64, f32)>,
    commits: Vec<(f64, f32)>,
}

impl SeriesReader {
    /// Reads one trace line.
    pub fn line(&mut self, line: &str) -> Result<(), String> {
        let event = event_name(line).unwrap_or("");
        // Lease renewals and Events are most of a large trace and feed no
        // chart: skip them before parsing.
        if line.trim().is_empty() || is_unread_write(line, event) {
            return Ok(());
        }
        if let Some(span) = parse_span(line, event) {
            self.span(&span?);
            return Ok(());
        }
        self.other_line(line)
    }

    /// Reads a line the caller has already sorted: neither a span nor an
    /// unread write.
    pub fn other_line(&mut self, line: &str) -> Result<(), String> {
        let rec: Json = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        self.record(&rec);
        Ok(())
    }

    fn record(&mut self, rec: &Json) {
        let t = rec["t"].as_u64().unwrap_or(0) as f64 / 1e9;
        self.out.end = self.out.end.max(t);
        let event = rec["event"].as_str().unwrap_or("");
        match event {
            "Seed" | "Write" => self.write(t, rec),
            "Action" => {
                let label = rec["action"].as_str().unwrap_or("").to_string();
                self.out.actions.push(Mark { t, label });
            }
            // The cluster autoscaler's actions, marked like the timeline's.
            "ScaleUp" | "ScaleDown"
                if rec["component"] == crate::autoscaler::cluster_autoscaler::PROCESS =>
            {
                let s = |k: &str| rec[k].as_str().unwrap_or("").to_string();
                let num = |k: &str| {
                    rec[k]
                        .as_str()
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0)
                };
                let label = match event {
                    "ScaleUp" => format!("+{} {}", num("to") - num("from"), s("group")),
                    _ => format!("−{}", s("node")),
                };
                self.out.actions.push(Mark { t, label });
            }
            "ServiceEndpoints" => {
                let name = rec["service"].as_str().unwrap_or("").to_string();
                let num = |k: &str| rec[k].as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0);
                let e = self.out.services.entry(name).or_default();
                push(&mut e.0, t, num("ready"));
                push(&mut e.1, t, num("notReady"));
            }
            "RaftLeaderElected" => {
                let who = rec["component"].as_str().map(str::to_string);
                self.out.leaders.push((t, who));
            }
            "RaftCampaign" => self.out.elections.push(t),
            "EtcdCrash" => {
                // A crashed leader leaves no leader until the next election.
                let target = rec["target"].as_str();
                if self.out.leaders.last().and_then(|l| l.1.as_deref()) == target {
                    self.out.leaders.push((t, None));
                }
            }
            _ => {}
        }
    }

    fn write(&mut self, t: f64, rec: &Json) {
        let key = rec["key"].as_str().unwrap_or("");
        let deleted = rec["verb"] == "delete";
        let obj = &rec["object"];
        if obj.is_null() {
            return;
        }
        let (kind, rest) = key.split_once('/').unwrap_or((key, ""));
        match kind {
            // A pod's clock starts at its creationTimestamp, which its
            // create's record carries to the nanosecond.
            "Pod" => {
                let created = rec["created"].as_u64().map_or(t, |ns| ns as f64 / 1e9);
                self.pod(t, created, rest, obj, deleted)
            }
            "Node" if deleted => {
                self.node_ready.remove(rest);
                self.count_nodes(t);
            }
            "Node" => {
                self.node_ready
                    .insert(rest.to_string(), condition_true(obj, "Ready"));
                self.count_nodes(t);
                let alloc = &obj["status"]["allocatable"];
                let n = self.out.nodes.entry(rest.to_string()).or_default();
                n.cpu_allocatable =
                    quantity(alloc.get("cpu")).map_or(0.0, |q| q.milli_value() as f64);
                n.memory_allocatable =
                    quantity(alloc.get("memory")).map_or(0.0, |q| q.value() as f64);
                if n.cpu_requested.is_empty() {
                    push(&mut n.cpu_requested, t, 0.0);
                    push(&mut n.memory_requested, t, 0.0);
                }
            }
            "Deployment" => {
                let d = self.out.deployments.entry(rest.to_string()).or_default();
                let st = &obj["status"];
                let desired = if deleted {
                    0.0
                } else {
                    obj["spec"]["replicas"].as_i64().unwrap_or(1) as f64
                };
                push(&mut d.desired, t, desired);
                push(
                    &mut d.updated,
                    t,
                    if deleted {
                        0.0
                    } else {
                        int(&st["updatedReplicas"])
                    },
                );
                push(
                    &mut d.ready,
                    t,
                    if deleted {
                        0.0
                    } else {
                        int(&st["readyReplicas"])
                    },
                );
                push(
                    &mut d.available,
                    t,
                    if deleted {
                        0.0
                    } else {
                        int(&st["availableReplicas"])
                    },
                );
            }
            "ReplicaSet" => {
                let owner = obj["metadata"]["ownerReferences"]
                    .as_array()
                    .and_then(|rs| {
                        rs.iter()
                            .find(|r| r["kind"] == "Deployment" && r["controller"] == true)
                    })
                    .and_then(|r| r["name"].as_str());
                let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
                if let Some(o) = owner {
                    self.rs_owner.insert(rest.to_string(), format!("{ns}/{o}"));
                }
                let Some(dep) = self.rs_owner.get(rest).cloned() else {
                    return;
                };
                let d = self.out.deployments.entry(dep).or_default();
                let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
                let size = if deleted {
                    0.0
                } else {
                    obj["spec"]["replicas"].as_i64().unwrap_or(1) as f64
                };
                match d.replica_sets.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, s)) => push(s, t, size),
                    None => d.replica_sets.push((name, vec![(t, size)])),
                }
            }
            _ => {}
        }
    }

    fn count_nodes(&mut self, t: f64) {
        let ready = self.node_ready.values().filter(|r| **r).count();
        push(&mut self.out.node_count, t, self.node_ready.len() as f64);
        push(&mut self.out.nodes_ready, t, ready as f64);
    }

    fn pod(&mut self, t: f64, created: f64, key: &str, obj: &Json, deleted: bool) {
        let old = self.pods.get(key).cloned();
        let phase = match obj["status"]["phase"].as_str().unwrap_or("Pending") {
            "Running" => 2,
            "Succeeded" => 3,
            "Failed" => 4,
            _ if obj["spec"]["nodeName"].is_string() => 1,
            _ => 0,
        };
        let (cpu_m, memory) = pod_requests(obj);
        let mut new = PodState {
            phase,
            node: obj["spec"]["nodeName"].as_str().map(str::to_string),
            cpu_m,
            memory,
            created: old.as_ref().map_or(created, |o| o.created),
            bound: old.as_ref().is_some_and(|o| o.bound),
            running: old.as_ref().is_some_and(|o| o.running),
            ready: old.as_ref().is_some_and(|o| o.ready),
        };
        // First sightings of each step of a pod's start.
        if !new.bound && new.node.is_some() {
            new.bound = true;
            if old.is_some() {
                self.out.scheduling.push(t - new.created);
            }
        }
        if !new.running && phase == 2 {
            new.running = true;
            self.out.to_running.push(t - new.created);
        }
        if !new.ready && condition_true(obj, "Ready") {
            new.ready = true;
            self.out.to_ready.push(t - new.created);
        }
        // Only the nodes this pod left or joined can have changed.
        let touched: Vec<String> = [old.as_ref().and_then(|o| o.node.clone()), new.node.clone()]
            .into_iter()
            .flatten()
            .collect();
        if let Some(o) = &old {
            self.phase_counts[o.phase] -= 1.0;
            self.node_delta(o, -1.0);
        }
        if deleted {
            self.pods.remove(key);
        } else {
            self.phase_counts[new.phase] += 1.0;
            self.node_delta(&new, 1.0);
            self.pods.insert(key.to_string(), new);
        }
        for (i, s) in self.out.phases.iter_mut().enumerate() {
            push(s, t, self.phase_counts[i]);
        }
        for name in touched {
            let (Some(&(cpu, mem)), Some(n)) =
                (self.node_req.get(&name), self.out.nodes.get_mut(&name))
            else {
                continue;
            };
            push(&mut n.cpu_requested, t, cpu);
            push(&mut n.memory_requested, t, mem);
        }
    }

    /// Adds (or with `sign` -1 removes) a pod's requests on its node; pods
    /// that finished hold nothing.
    fn node_delta(&mut self, p: &PodState, sign: f64) {
        let Some(node) = &p.node else { return };
        if p.phase >= 3 {
            return;
        }
        let e = self.node_req.entry(node.clone()).or_default();
        e.0 += sign * p.cpu_m;
        e.1 += sign * p.memory;
    }

    /// Reads one span record (parsed once by the caller for every reader).
    pub fn span(&mut self, span: &Span<'_>) {
        let (t, latency, into) = match span {
            Span::Request(r) => {
                let into = if r.code == 429 {
                    &mut self.api_throttled
                } else if r.is_read() {
                    &mut self.api_reads
                } else {
                    &mut self.api_writes
                };
                (r.t, r.t.saturating_sub(r.start), into)
            }
            Span::Commit(c) => (c.t, c.t.saturating_sub(c.start), &mut self.commits),
        };
        let t = t as f64 / 1e9;
        self.out.end = self.out.end.max(t);
        into.push((t, (latency as f64 / 1e9) as f32));
    }

    pub fn finish(mut self) -> RunSeries {
        let end = self.out.end;
        self.out.api_reads = Bucketed::from_samples(&self.api_reads, end);
        self.out.api_writes = Bucketed::from_samples(&self.api_writes, end);
        self.out.api_throttled = Bucketed::from_samples(&self.api_throttled, end);
        self.out.etcd_commit = Bucketed::from_samples(&self.commits, end);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pods_nodes_and_deployments_back() {
        let lines = [
            r#"{"t":0,"event":"Write","verb":"create","key":"Node/n1","object":{"status":{"allocatable":{"cpu":"4","memory":"8Gi"}}}}"#,
            r#"{"t":1000000000,"event":"Write","verb":"create","key":"Deployment/default/web","object":{"spec":{"replicas":2},"status":{}}}"#,
            r#"{"t":1000000000,"event":"Write","verb":"create","key":"ReplicaSet/default/web-1","object":{"metadata":{"name":"web-1","namespace":"default","ownerReferences":[{"kind":"Deployment","name":"web","controller":true}]},"spec":{"replicas":2}}}"#,
            r#"{"t":2000000000,"event":"Write","verb":"create","key":"Pod/default/web-1-a","object":{"spec":{"containers":[{"resources":{"requests":{"cpu":"250m","memory":"128Mi"}}}]},"status":{"phase":"Pending"}}}"#,
            r#"{"t":2500000000,"event":"Write","verb":"update","key":"Pod/default/web-1-a","object":{"spec":{"nodeName":"n1","containers":[{"resources":{"requests":{"cpu":"250m","memory":"128Mi"}}}]},"status":{"phase":"Pending"}}}"#,
            r#"{"t":4000000000,"event":"Write","verb":"update","key":"Pod/default/web-1-a","object":{"spec":{"nodeName":"n1","containers":[{"resources":{"requests":{"cpu":"250m","memory":"128Mi"}}}]},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}}"#,
            r#"{"t":9000000000,"event":"Write","verb":"delete","key":"Pod/default/web-1-a","object":{"spec":{"nodeName":"n1","containers":[{"resources":{"requests":{"cpu":"250m"}}}]},"status":{"phase":"Running"}}}"#,
            r#"{"t":9500000000,"event":"Action","line":12,"action":"scale Deployment default/web to 0"}"#,
        ];
        let s = RunSeries::from_trace(&lines.join("\n")).unwrap();
        assert_eq!(s.end, 9.5);
        assert_eq!(s.scheduling, vec![0.5]);
        assert_eq!(s.to_running, vec![2.0]);
        assert_eq!(s.to_ready, vec![2.0]);
        assert_eq!(s.phases[0], vec![(2.0, 1.0), (2.5, 0.0)]);
        assert_eq!(s.phases[2], vec![(2.0, 0.0), (4.0, 1.0), (9.0, 0.0)]);
        let n = &s.nodes["n1"];
        assert_eq!(n.cpu_allocatable, 4000.0);
        assert_eq!(n.cpu_requested, vec![(0.0, 0.0), (2.5, 250.0), (9.0, 0.0)]);
        let d = &s.deployments["default/web"];
        assert_eq!(d.desired, vec![(1.0, 2.0)]);
        assert_eq!(
            d.replica_sets,
            vec![("web-1".to_string(), vec![(1.0, 2.0)])]
        );
        assert_eq!(s.actions[0].label, "scale Deployment default/web to 0");
        assert!(RunSeries::from_trace("{not json").is_err());
    }

    #[test]
    fn nodes_registered_and_ready_are_counted_over_time() {
        let node = |t: u64, verb: &str, name: &str, ready: &str| {
            let ns = t * 1_000_000_000;
            format!(
                r#"{{"t":{ns},"event":"Write","verb":"{verb}","key":"Node/{name}","object":{{"status":{{"conditions":[{{"type":"Ready","status":"{ready}"}}]}}}}}}"#
            )
        };
        let lines = [
            node(0, "create", "n1", "False"),
            node(1, "update", "n1", "True"),
            node(1, "create", "n2", "True"),
            // n2 goes NotReady (a crash), then is deleted (scaled down).
            node(50, "update", "n2", "False"),
            node(60, "delete", "n2", "False"),
        ];
        let s = RunSeries::from_trace(&lines.join("\n")).unwrap();
        assert_eq!(s.node_count, vec![(0.0, 1.0), (1.0, 2.0), (60.0, 1.0)]);
        assert_eq!(s.nodes_ready, vec![(0.0, 0.0), (1.0, 2.0), (50.0, 1.0)]);
    }
}
