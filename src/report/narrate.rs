//! The narrated timeline: the lines a person watching the cluster would read
//! (`kubectl get events -w`, `kubectl rollout status`, kubectl's own output,
//! the faults injected), each stamped with virtual time.
//!
//! One function turns one trace line into at most one narration line, so the
//! same text is printed live by `kubesim run --narrate` (through a trace
//! observer) and written into `report.html` from a saved trace.

use serde_json::Value;

/// What kind of line: lets the HTML report colour and filter them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Voice {
    /// A timeline step as issued, kubectl's answer, a drain's output, a note.
    Kubectl,
    /// A Kubernetes Event, as `kubectl get events` lists it.
    Event,
    /// A Warning Event or a failed scheduling attempt.
    Warning,
    /// `kubectl rollout status` and a Service's ready endpoints.
    Status,
    /// A fault injected, or etcd's leadership changing.
    Fault,
}

impl Voice {
    pub fn as_str(self) -> &'static str {
        match self {
            Voice::Kubectl => "kubectl",
            Voice::Event => "event",
            Voice::Warning => "warning",
            Voice::Status => "status",
            Voice::Fault => "fault",
        }
    }
}

/// One narrated line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Virtual nanoseconds since the run began.
    pub t: u64,
    pub voice: Voice,
    pub text: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {:<7}  {}",
            clock(self.t),
            self.voice.as_str(),
            self.text
        )
    }
}

/// `H:MM:SS.mmm` of virtual time: wide enough for a day-long run, exact to
/// the millisecond a reader can tell apart.
pub fn clock(t_ns: u64) -> String {
    let ms = t_ns / 1_000_000;
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h}:{m:02}:{s:02}.{milli:03}")
}

/// The record types that narrate; everything else (writes, spans, seeds) is
/// skipped before the line is parsed.
const NARRATED: &[&str] = &[
    "Event",
    "RolloutStatus",
    "ServiceEndpoints",
    "Action",
    "ActionResult",
    "Note",
    "Drain",
    "Scheduled",
    "FailedScheduling",
    "Preempted",
    "Pulling",
    "Pulled",
    "ContainersStarted",
    "Killing",
    "PodRejected",
    "NodeCrash",
    "NodeRestart",
    "NodeJoin",
    "EtcdCrash",
    "EtcdRestart",
    "Partition",
    "Heal",
    "ComponentCrash",
    "ComponentRestart",
    "KubeletCrash",
    "KubeletRestart",
    "KubeletHang",
    "KubeletResume",
    "SlowDisk",
    "HealDisk",
    "RaftLeaderElected",
    "RaftStepDown",
    "RunEnd",
];

/// Narrates one trace line, or says nothing about it.
pub fn narrate(line: &str) -> Option<Line> {
    let event = super::spans::event_name(line)?;
    if !NARRATED.contains(&event) {
        return None;
    }
    let r: Value = serde_json::from_str(line).ok()?;
    let t = r["t"].as_u64()?;
    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
    let component = s("component");
    let (voice, text) = match event {
        "Event" => {
            let warning = r["type"] == "Warning";
            let text = format!(
                "{:<7}  {}  {}  {}",
                s("type"),
                s("reason"),
                object_ref(&s("object")),
                s("message")
            );
            (
                if warning {
                    Voice::Warning
                } else {
                    Voice::Event
                },
                text,
            )
        }
        "RolloutStatus" => (Voice::Status, s("message")),
        "ServiceEndpoints" => (
            Voice::Status,
            format!(
                "service/{}: {} ready, {} not ready endpoints",
                short_name(&s("service")),
                s("ready"),
                s("notReady")
            ),
        ),
        "Action" => (Voice::Kubectl, s("action")),
        "ActionResult" => {
            let result = s("result");
            // A fault's plain "ok" adds nothing to the fault's own line.
            if result == "ok" {
                return None;
            }
            (Voice::Kubectl, format!("{}: {result}", s("action")))
        }
        "Note" => (Voice::Kubectl, format!("# {}", s("text"))),
        "Drain" => (Voice::Kubectl, s("output")),
        "Scheduled" => (
            Voice::Event,
            format!(
                "Normal   Scheduled  pod/{}  Successfully assigned {} to {}",
                short_name(&s("pod")),
                s("pod"),
                s("node")
            ),
        ),
        "FailedScheduling" => (
            Voice::Warning,
            format!(
                "Warning  FailedScheduling  pod/{}  {}",
                short_name(&s("pod")),
                s("message")
            ),
        ),
        "Preempted" => (
            Voice::Event,
            format!(
                "Normal   Preempted  pod/{}  {}",
                short_name(&s("pod")),
                s("message")
            ),
        ),
        "Pulling" => (
            Voice::Event,
            format!(
                "Normal   Pulling  node/{}  Pulling image \"{}\"",
                node_of(&component),
                s("image")
            ),
        ),
        "Pulled" => (
            Voice::Event,
            format!(
                "Normal   Pulled  node/{}  Successfully pulled image \"{}\"",
                node_of(&component),
                s("image")
            ),
        ),
        "ContainersStarted" => (
            Voice::Event,
            format!(
                "Normal   Started  pod/{}  Started containers on {}",
                short_name(&s("pod")),
                node_of(&component)
            ),
        ),
        "Killing" => (
            Voice::Event,
            format!(
                "Normal   Killing  pod/{}  Stopping containers ({})",
                short_name(&s("pod")),
                s("detail")
            ),
        ),
        "PodRejected" => (
            Voice::Warning,
            format!(
                "Warning  Rejected  pod/{}  {}",
                short_name(&s("pod")),
                s("detail")
            ),
        ),
        "NodeCrash" => (Voice::Fault, format!("node {} crashes", s("target"))),
        "NodeRestart" => (Voice::Fault, format!("node {} boots again", s("target"))),
        "NodeJoin" => (Voice::Fault, format!("node {} joins", s("target"))),
        "EtcdCrash" => (Voice::Fault, format!("etcd member {} crashes", s("target"))),
        "EtcdRestart" => (
            Voice::Fault,
            format!("etcd member {} restarts", s("target")),
        ),
        "Partition" => (
            Voice::Fault,
            format!("network partition isolates {}", s("target")),
        ),
        "Heal" => (Voice::Fault, "network partition heals".into()),
        "ComponentCrash" => (Voice::Fault, format!("{} crashes", s("target"))),
        "ComponentRestart" => (Voice::Fault, format!("{} restarts", s("target"))),
        "KubeletCrash" => (
            Voice::Fault,
            format!(
                "the kubelet on {} crashes; its containers keep running",
                s("target")
            ),
        ),
        "KubeletRestart" => (
            Voice::Fault,
            format!(
                "the kubelet on {} restarts and adopts its containers",
                s("target")
            ),
        ),
        "KubeletHang" => (
            Voice::Fault,
            format!("the kubelet on {} hangs", s("target")),
        ),
        "KubeletResume" => (
            Voice::Fault,
            format!("the kubelet on {} resumes", s("target")),
        ),
        "SlowDisk" => (
            Voice::Fault,
            format!("the disk of etcd member {} stalls", s("target")),
        ),
        "HealDisk" => (
            Voice::Fault,
            format!("the disk of etcd member {} is back to speed", s("target")),
        ),
        "RaftLeaderElected" => (
            Voice::Fault,
            format!(
                "etcd: {component} is elected leader for term {}",
                r["term"].as_u64().unwrap_or(0)
            ),
        ),
        "RaftStepDown" => (
            Voice::Fault,
            format!("etcd: {component} steps down: {}", s("reason")),
        ),
        "RunEnd" => (Voice::Kubectl, "# the run ends".into()),
        _ => return None,
    };
    Some(Line { t, voice, text })
}

/// `Deployment/default/web` → `deployment/web`, as `kubectl get events`
/// names an object in its OBJECT column.
fn object_ref(object: &str) -> String {
    let mut parts = object.splitn(3, '/');
    let kind = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    let name = rest.last().copied().unwrap_or("");
    format!("{}/{}", kind.to_lowercase(), name)
}

/// `default/web-1` → `web-1`.
fn short_name(ns_name: &str) -> &str {
    ns_name.rsplit('/').next().unwrap_or(ns_name)
}

/// `kubelet/worker-1` → `worker-1`.
fn node_of(component: &str) -> &str {
    component.strip_prefix("kubelet/").unwrap_or(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_like_kubectl_get_events() {
        let l = narrate(r#"{"t":61500000000,"seq":9,"component":"kube-controller-manager","event":"Event","type":"Normal","reason":"ScalingReplicaSet","object":"Deployment/default/web","message":"Scaled up replica set web-6d4f from 0 to 3","source":"deployment-controller"}"#).unwrap();
        assert_eq!(l.voice, Voice::Event);
        assert_eq!(
            l.to_string(),
            "0:01:01.500  event    Normal   ScalingReplicaSet  deployment/web  Scaled up replica set web-6d4f from 0 to 3"
        );
        let w = narrate(r#"{"t":1,"seq":1,"component":"kube-controller-manager","event":"Event","type":"Warning","reason":"FailedCreate","object":"ReplicaSet/default/web-1","message":"quota","source":"replicaset-controller"}"#).unwrap();
        assert_eq!(w.voice, Voice::Warning);
    }

    #[test]
    fn rollout_status_is_printed_as_kubectl_prints_it() {
        let l = narrate(r#"{"t":3723004000000,"seq":27,"component":"kubectl-watch","event":"RolloutStatus","object":"Deployment/default/web","message":"Waiting for deployment \"web\" rollout to finish: 4 of 10 updated replicas are available...","done":"false"}"#).unwrap();
        assert_eq!(l.voice, Voice::Status);
        assert_eq!(
            l.to_string(),
            "1:02:03.004  status   Waiting for deployment \"web\" rollout to finish: 4 of 10 updated replicas are available..."
        );
    }

    #[test]
    fn writes_and_spans_are_silent_and_faults_speak() {
        assert!(narrate(
            r#"{"t":1,"seq":1,"component":"kube-apiserver","event":"Write","verb":"PUT"}"#
        )
        .is_none());
        assert!(narrate(
            r#"{"t":1,"seq":1,"component":"kube-apiserver","event":"Request","client":"x"}"#
        )
        .is_none());
        assert!(narrate("not json").is_none());
        assert!(narrate(r#"{"t":1,"seq":1,"component":"x","event":"Event""#).is_none());
        let f = narrate(r#"{"t":30000000000,"seq":118,"component":"kubectl","event":"NodeCrash","line":38,"target":"worker-2"}"#).unwrap();
        assert_eq!(
            (f.voice, f.text.as_str()),
            (Voice::Fault, "node worker-2 crashes")
        );
        let k = narrate(r#"{"t":1,"seq":2,"component":"kubectl","event":"KubeletCrash","line":4,"target":"worker-1"}"#).unwrap();
        assert_eq!(
            k.text,
            "the kubelet on worker-1 crashes; its containers keep running"
        );
        let ok = r#"{"t":1,"seq":1,"component":"kubectl","event":"ActionResult","line":3,"action":"crash node worker-2","result":"ok"}"#;
        assert!(narrate(ok).is_none(), "a fault's plain ok is not repeated");
    }

    #[test]
    fn the_clock_has_hours_minutes_seconds_and_milliseconds() {
        assert_eq!(clock(0), "0:00:00.000");
        assert_eq!(clock(59_999_999_999), "0:00:59.999");
        assert_eq!(clock(36_000_000_000_000), "10:00:00.000");
    }
}
