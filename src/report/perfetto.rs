//! `trace.perfetto.json`: the run as Chrome's Trace Event Format, which
//! ui.perfetto.dev and chrome://tracing open, so an engineer can see where
//! time went, component by component.
//!
//! Processes and their tracks:
//! - kube-apiserver: one `X` span per request (admission to answer), on as
//!   many lanes as requests overlap;
//! - etcd: each member's commits (proposal arrival to apply), the leader's
//!   terms, and elections as instants;
//! - kube-scheduler: one span per scheduling cycle;
//! - one process per node: a track per pod with its startup (admitted to
//!   containers started) and running spans, and a track of image pulls;
//! - kube-controller-manager: Events as instants, a track per controller;
//! - kubectl: timeline actions, drain output and faults as instants (faults
//!   drawn across the whole trace).
//!
//! Spans need a trace written at level `spans` or `full`; pod phases,
//! Events and actions come from level `events`.
//!
//! Lanes are assigned in the order spans end, each to the lowest lane free
//! at its start: deterministic, and no two spans on one track overlap.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use serde_json::Value;

use super::spans::{event_name, parse_span, Span};
use crate::sim::trace::push_json_str;

const PID_APISERVER: u32 = 1;
const PID_ETCD: u32 = 2;
const PID_SCHEDULER: u32 = 3;
const PID_CONTROLLERS: u32 = 4;
const PID_KUBECTL: u32 = 5;
/// Nodes are numbered from here in order of first appearance.
const PID_FIRST_NODE: u32 = 100;
/// etcd tracks: member `i`'s commit lanes are `i * ETCD_STRIDE + lane`.
const ETCD_STRIDE: u32 = 1000;
const TID_ETCD_LEADER: u32 = 999_999;
const TID_IMAGE_PULLS: u32 = 1;

/// Greedy lane assignment for one track group.
#[derive(Default)]
struct Lanes {
    /// Each lane's latest end.
    ends: Vec<u64>,
}

impl Lanes {
    fn place(&mut self, start: u64, end: u64) -> u32 {
        match self.ends.iter().position(|e| *e <= start) {
            Some(i) => {
                self.ends[i] = end;
                i as u32
            }
            None => {
                self.ends.push(end);
                (self.ends.len() - 1) as u32
            }
        }
    }
}

/// A pod's open phase on its node.
struct PodTrack {
    tid: u32,
    /// (phase name, since).
    open: Option<(&'static str, u64)>,
}

struct NodeTracks {
    pid: u32,
    pods: BTreeMap<String, PodTrack>,
    next_tid: u32,
    pulls: BTreeMap<String, u64>,
}

/// Writes the Trace Event Format document from trace lines into `W`, a
/// megabyte at a time (a long run's export is larger than worth holding).
pub struct PerfettoWriter<W: Write> {
    out: String,
    sink: W,
    io_error: Option<std::io::Error>,
    /// Reused buffers for a span's name and arguments.
    scratch: [String; 3],
    events: u64,
    api_lanes: Lanes,
    etcd_lanes: BTreeMap<u32, Lanes>,
    /// (member, since, term) of the current leader.
    leader: Option<(String, u64, u64)>,
    nodes: BTreeMap<String, NodeTracks>,
    controllers: BTreeMap<String, u32>,
    end: u64,
}

/// Microseconds with nanosecond precision, as the format's `ts` and `dur`.
fn micros(out: &mut String, ns: u64) {
    push_u64(out, ns / 1000);
    push_frac3(out, ns % 1000);
}

/// Milliseconds with microsecond precision (`1.234`).
fn millis(out: &mut String, ns: u64) {
    push_u64(out, ns / 1_000_000);
    push_frac3(out, ns / 1000 % 1000);
}

/// `.ddd` of a value below 1000.
fn push_frac3(out: &mut String, v: u64) {
    out.push('.');
    out.push(char::from(b'0' + (v / 100) as u8));
    out.push(char::from(b'0' + (v / 10 % 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

/// Decimal digits without going through `fmt` (a million spans a run).
fn push_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

/// Bytes buffered before they go to the sink.
const FLUSH_AT: usize = 1 << 20;

impl<W: Write> PerfettoWriter<W> {
    pub fn new(sink: W) -> Self {
        PerfettoWriter {
            out: String::from("{\"traceEvents\":[\n"),
            sink,
            io_error: None,
            scratch: Default::default(),
            events: 0,
            api_lanes: Lanes::default(),
            etcd_lanes: BTreeMap::new(),
            leader: None,
            nodes: BTreeMap::new(),
            controllers: BTreeMap::new(),
            end: 0,
        }
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    fn begin(&mut self) {
        if self.events > 0 {
            self.out.push_str(",\n");
        }
        self.events += 1;
        if self.out.len() >= FLUSH_AT {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.io_error.is_none() {
            if let Err(e) = self.sink.write_all(self.out.as_bytes()) {
                self.io_error = Some(e);
            }
        }
        self.out.clear();
    }

    /// A complete span.
    fn complete(
        &mut self,
        pid: u32,
        tid: u32,
        name: &str,
        start: u64,
        end: u64,
        args: &[(&str, &str)],
    ) {
        self.begin();
        self.out.push_str("{\"ph\":\"X\",\"name\":");
        push_json_str(&mut self.out, name);
        self.out.push_str(",\"pid\":");
        push_u64(&mut self.out, pid as u64);
        self.out.push_str(",\"tid\":");
        push_u64(&mut self.out, tid as u64);
        self.out.push_str(",\"ts\":");
        micros(&mut self.out, start);
        self.out.push_str(",\"dur\":");
        micros(&mut self.out, end.saturating_sub(start));
        self.args(args);
        self.out.push('}');
    }

    /// An instant; `global` draws it across every track.
    fn instant(
        &mut self,
        pid: u32,
        tid: u32,
        name: &str,
        t: u64,
        global: bool,
        args: &[(&str, &str)],
    ) {
        self.begin();
        self.out.push_str("{\"ph\":\"i\",\"name\":");
        push_json_str(&mut self.out, name);
        let scope = if global { "g" } else { "t" };
        let _ = write!(
            self.out,
            ",\"s\":\"{scope}\",\"pid\":{pid},\"tid\":{tid},\"ts\":"
        );
        micros(&mut self.out, t);
        self.args(args);
        self.out.push('}');
    }

    fn args(&mut self, args: &[(&str, &str)]) {
        if args.is_empty() {
            return;
        }
        self.out.push_str(",\"args\":{");
        for (i, (k, v)) in args.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            push_json_str(&mut self.out, k);
            self.out.push(':');
            push_json_str(&mut self.out, v);
        }
        self.out.push('}');
    }

    fn meta(&mut self, what: &str, pid: u32, tid: Option<u32>, name: &str) {
        self.begin();
        let _ = write!(self.out, "{{\"ph\":\"M\",\"name\":\"{what}\",\"pid\":{pid}");
        if let Some(tid) = tid {
            let _ = write!(self.out, ",\"tid\":{tid}");
        }
        self.out.push_str(",\"args\":{\"name\":");
        push_json_str(&mut self.out, name);
        self.out.push_str("}}");
    }

    fn node(&mut self, name: &str) -> &mut NodeTracks {
        let pid = PID_FIRST_NODE + self.nodes.len() as u32;
        self.nodes
            .entry(name.to_string())
            .or_insert_with(|| NodeTracks {
                pid,
                pods: BTreeMap::new(),
                next_tid: TID_IMAGE_PULLS + 1,
                pulls: BTreeMap::new(),
            })
    }

    /// Moves `pod` on `node` into `phase` (or out of any with `None`),
    /// closing the phase it was in.
    fn pod_phase(&mut self, node: &str, pod: &str, t: u64, phase: Option<&'static str>) {
        let n = self.node(node);
        let pid = n.pid;
        let next = n.next_tid;
        let track = n.pods.entry(pod.to_string()).or_insert(PodTrack {
            tid: next,
            open: None,
        });
        if track.tid == next {
            n.next_tid += 1;
        }
        let tid = track.tid;
        let closed = track.open.take();
        track.open = phase.map(|p| (p, t));
        if let Some((name, since)) = closed {
            self.complete(pid, tid, name, since, t, &[("pod", pod)]);
        }
    }

    /// Reads one span record (parsed once by the caller for every reader).
    pub fn span(&mut self, span: &Span<'_>) {
        match span {
            Span::Request(r) => {
                self.end = self.end.max(r.t);
                let lane = self.api_lanes.place(r.start, r.t);
                let kind = r.object.split('/').next().unwrap_or("");
                // `POST binding` on a Pod reads as REST does: `POST Pod/binding`.
                let mut name = std::mem::take(&mut self.scratch[0]);
                name.clear();
                match r.verb.split_once(' ') {
                    Some((method, sub)) => {
                        for part in [method, " ", kind, "/", sub] {
                            name.push_str(part);
                        }
                    }
                    None => {
                        for part in [&*r.verb, " ", kind] {
                            name.push_str(part);
                        }
                    }
                }
                let mut code = std::mem::take(&mut self.scratch[1]);
                code.clear();
                push_u64(&mut code, r.code as u64);
                let mut etcd = std::mem::take(&mut self.scratch[2]);
                etcd.clear();
                millis(&mut etcd, r.etcd);
                etcd.push_str(" ms");
                self.complete(
                    PID_APISERVER,
                    lane,
                    &name,
                    r.start,
                    r.t,
                    &[
                        ("client", &r.client),
                        ("object", &r.object),
                        ("code", &code),
                        ("etcd", &etcd),
                    ],
                );
                self.scratch = [name, code, etcd];
            }
            Span::Commit(c) => {
                self.end = self.end.max(c.t);
                let member = member_index(&c.component);
                let lane = self
                    .etcd_lanes
                    .entry(member)
                    .or_default()
                    .place(c.start, c.t);
                let mut index = std::mem::take(&mut self.scratch[1]);
                index.clear();
                push_u64(&mut index, c.index);
                self.complete(
                    PID_ETCD,
                    member * ETCD_STRIDE + lane,
                    "commit",
                    c.start,
                    c.t,
                    &[("key", &c.key), ("index", &index)],
                );
                self.scratch[1] = index;
            }
        }
    }

    /// Reads one trace line.
    pub fn line(&mut self, line: &str) -> Result<(), String> {
        self.record(line, event_name(line).unwrap_or(""))
    }

    /// Reads one trace line whose event name the caller has read.
    pub fn record(&mut self, line: &str, event: &str) -> Result<(), String> {
        if let Some(span) = parse_span(line, event) {
            self.span(&span?);
            return Ok(());
        }
        // Writes and seeds (object bodies) carry nothing drawn here.
        if matches!(event, "Write" | "Seed") {
            return Ok(());
        }
        let r: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let t = r["t"].as_u64().unwrap_or(0);
        self.end = self.end.max(t);
        let s = |k: &str| r[k].as_str().unwrap_or("");
        let component = s("component");
        let node = component.strip_prefix("kubelet/");
        match (s("event"), node) {
            ("PodAdmitted", Some(n)) => self.pod_phase(n, s("pod"), t, Some("starting")),
            ("ContainersStarted", Some(n)) => self.pod_phase(n, s("pod"), t, Some("running")),
            ("ContainersExited", Some(n)) => self.pod_phase(n, s("pod"), t, Some("exited")),
            ("Killing", Some(n)) => self.pod_phase(n, s("pod"), t, Some("terminating")),
            ("PodRejected", Some(n)) => self.pod_phase(n, s("pod"), t, None),
            ("Pulling", Some(n)) => {
                self.node(n).pulls.insert(s("image").to_string(), t);
            }
            ("Pulled", Some(n)) => {
                let image = s("image");
                let nt = self.node(n);
                let pid = nt.pid;
                if let Some(since) = nt.pulls.remove(image) {
                    self.complete(
                        pid,
                        TID_IMAGE_PULLS,
                        "pull image",
                        since,
                        t,
                        &[("image", image)],
                    );
                }
            }
            ("Scheduled" | "FailedScheduling", _) => {
                let start = r["start"].as_u64().unwrap_or(t);
                let pod = s("pod");
                let (name, result) = match s("node") {
                    "" => ("schedule (unschedulable)", s("message").to_string()),
                    node => ("schedule", format!("bound to {node}")),
                };
                self.complete(
                    PID_SCHEDULER,
                    1,
                    name,
                    start,
                    t,
                    &[("pod", pod), ("result", &result)],
                );
            }
            ("Event", _) => {
                let source = s("source").to_string();
                let next = self.controllers.len() as u32 + 1;
                let tid = *self.controllers.entry(source).or_insert(next);
                let name = s("reason");
                self.instant(
                    PID_CONTROLLERS,
                    tid,
                    name,
                    t,
                    false,
                    &[
                        ("object", s("object")),
                        ("message", s("message")),
                        ("type", s("type")),
                    ],
                );
            }
            ("Action", _) => self.instant(PID_KUBECTL, 1, s("action"), t, false, &[]),
            ("Drain", _) => self.instant(
                PID_KUBECTL,
                2,
                s("output"),
                t,
                false,
                &[("node", s("node"))],
            ),
            (
                ev @ ("NodeCrash" | "NodeRestart" | "NodeJoin" | "EtcdCrash" | "EtcdRestart"
                | "Partition" | "Heal" | "ComponentCrash" | "ComponentRestart"
                | "KubeletCrash" | "KubeletRestart" | "KubeletHang" | "KubeletResume"
                | "SlowDisk" | "HealDisk"),
                _,
            ) => {
                let name = format!("{ev} {}", s("target"));
                self.instant(PID_KUBECTL, 3, &name, t, true, &[]);
                if ev == "EtcdCrash" && self.leader.as_ref().is_some_and(|l| l.0 == s("target")) {
                    self.close_leader(t);
                }
            }
            ("RaftCampaign", _) => {
                let tid = member_index(component) * ETCD_STRIDE;
                let term = r["term"].as_u64().unwrap_or(0).to_string();
                self.instant(PID_ETCD, tid, "campaign", t, false, &[("term", &term)]);
            }
            ("RaftLeaderElected", _) => {
                self.close_leader(t);
                let term = r["term"].as_u64().unwrap_or(0);
                self.leader = Some((component.to_string(), t, term));
            }
            ("RaftStepDown" | "RaftLeaderLost", _)
                if self.leader.as_ref().is_some_and(|l| l.0 == component) =>
            {
                self.close_leader(t);
            }
            _ => {}
        }
        Ok(())
    }

    fn close_leader(&mut self, t: u64) {
        if let Some((who, since, term)) = self.leader.take() {
            let name = format!("{who} leads (term {term})");
            self.complete(PID_ETCD, TID_ETCD_LEADER, &name, since, t, &[]);
        }
    }

    /// Closes what is still open at the run's end, names every process and
    /// track, writes the rest of the document and returns the sink.
    pub fn finish(mut self, title: &str) -> std::io::Result<W> {
        let end = self.end;
        self.close_leader(end);
        let open: Vec<(String, String)> = self
            .nodes
            .iter()
            .flat_map(|(n, tracks)| {
                tracks
                    .pods
                    .iter()
                    .filter(|p| p.1.open.is_some())
                    .map(move |(p, _)| (n.clone(), p.clone()))
            })
            .collect();
        for (n, p) in open {
            self.pod_phase(&n, &p, end, None);
        }
        self.meta(
            "process_name",
            PID_APISERVER,
            None,
            "kube-apiserver (requests)",
        );
        for lane in 0..self.api_lanes.ends.len() as u32 {
            self.meta(
                "thread_name",
                PID_APISERVER,
                Some(lane),
                &format!("lane {}", lane + 1),
            );
        }
        self.meta("process_name", PID_ETCD, None, "etcd");
        let members: Vec<(u32, usize)> = self
            .etcd_lanes
            .iter()
            .map(|(m, l)| (*m, l.ends.len()))
            .collect();
        for (m, lanes) in members {
            for lane in 0..lanes.max(1) as u32 {
                let name = format!(
                    "etcd-{m} commits{}",
                    if lane > 0 {
                        format!(" ({})", lane + 1)
                    } else {
                        String::new()
                    }
                );
                self.meta("thread_name", PID_ETCD, Some(m * ETCD_STRIDE + lane), &name);
            }
        }
        self.meta("thread_name", PID_ETCD, Some(TID_ETCD_LEADER), "leader");
        self.meta("process_name", PID_SCHEDULER, None, "kube-scheduler");
        self.meta("thread_name", PID_SCHEDULER, Some(1), "scheduling cycles");
        self.meta(
            "process_name",
            PID_CONTROLLERS,
            None,
            "kube-controller-manager (Events)",
        );
        let controllers: Vec<(String, u32)> = self
            .controllers
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (name, tid) in controllers {
            self.meta("thread_name", PID_CONTROLLERS, Some(tid), &name);
        }
        self.meta("process_name", PID_KUBECTL, None, "kubectl (timeline)");
        self.meta("thread_name", PID_KUBECTL, Some(1), "actions");
        self.meta("thread_name", PID_KUBECTL, Some(2), "drain output");
        self.meta("thread_name", PID_KUBECTL, Some(3), "faults");
        let nodes = std::mem::take(&mut self.nodes);
        for (n, tracks) in nodes {
            let pid = tracks.pid;
            self.meta("process_name", pid, None, &format!("node {n}"));
            self.meta("thread_name", pid, Some(TID_IMAGE_PULLS), "image pulls");
            for (p, track) in tracks.pods {
                self.meta("thread_name", pid, Some(track.tid), &p);
            }
        }
        self.out
            .push_str("\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"run\":");
        push_json_str(&mut self.out, title);
        self.out.push_str("}}\n");
        self.flush();
        if let Some(e) = self.io_error.take() {
            return Err(e);
        }
        self.sink.flush()?;
        Ok(self.sink)
    }
}

/// `etcd-2` → 2.
fn member_index(component: &str) -> u32 {
    component
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(lines: &[&str]) -> Value {
        let mut w = PerfettoWriter::new(Vec::new());
        for l in lines {
            w.line(l).unwrap();
        }
        serde_json::from_slice(&w.finish("test").unwrap()).expect("the export is JSON")
    }

    #[test]
    fn overlapping_requests_get_lanes_and_pods_get_phases() {
        let doc = export(&[
            r#"{"t":5000,"seq":1,"component":"kube-apiserver","event":"Request","client":"a","verb":"GET","object":"Pod/default/x","code":200,"start":1000,"etcd":0}"#,
            r#"{"t":6000,"seq":2,"component":"kube-apiserver","event":"Request","client":"b","verb":"PUT","object":"Lease/kube-node-lease/n1","code":200,"start":2000,"etcd":3000}"#,
            r#"{"t":9000,"seq":3,"component":"kube-apiserver","event":"Request","client":"c","verb":"GET","object":"Pod/default/y","code":404,"start":5500,"etcd":0}"#,
            r#"{"t":10000,"seq":4,"component":"kubelet/n1","event":"PodAdmitted","pod":"default/x"}"#,
            r#"{"t":30000,"seq":5,"component":"kubelet/n1","event":"ContainersStarted","pod":"default/x"}"#,
            r#"{"t":40000,"seq":6,"component":"etcd-1","event":"RaftLeaderElected","term":2}"#,
            r#"{"t":50000,"seq":7,"component":"kubectl","event":"NodeCrash","line":3,"target":"n1"}"#,
        ]);
        let ev = doc["traceEvents"].as_array().unwrap();
        let spans: Vec<&Value> = ev.iter().filter(|e| e["ph"] == "X").collect();
        let api: Vec<(u64, &str)> = spans
            .iter()
            .filter(|e| e["pid"] == PID_APISERVER)
            .map(|e| (e["tid"].as_u64().unwrap(), e["name"].as_str().unwrap()))
            .collect();
        // The second overlaps the first; the third starts after the first ended.
        assert_eq!(api, vec![(0, "GET Pod"), (1, "PUT Lease"), (0, "GET Pod")]);
        assert_eq!(spans[1]["ts"].as_f64(), Some(2.0));
        assert_eq!(spans[1]["dur"].as_f64(), Some(4.0));
        assert_eq!(spans[1]["args"]["etcd"], "0.003 ms");
        let phases: Vec<&str> = spans
            .iter()
            .filter(|e| e["pid"] == PID_FIRST_NODE)
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            phases,
            vec!["starting", "running"],
            "running is closed at the end"
        );
        assert!(spans.iter().any(|e| e["name"] == "etcd-1 leads (term 2)"));
        let fault = ev.iter().find(|e| e["ph"] == "i").unwrap();
        assert_eq!(
            (fault["name"].as_str(), fault["s"].as_str()),
            (Some("NodeCrash n1"), Some("g"))
        );
        assert!(ev
            .iter()
            .any(|e| e["ph"] == "M" && e["args"]["name"] == "node n1"));
    }

    #[test]
    fn lanes_never_overlap() {
        let mut l = Lanes::default();
        assert_eq!(l.place(0, 10), 0);
        assert_eq!(l.place(5, 12), 1);
        assert_eq!(l.place(10, 20), 0);
        assert_eq!(l.place(11, 21), 2);
        assert_eq!(l.place(12, 30), 1);
    }
}
