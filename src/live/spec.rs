//! The OCI runtime spec a pod's sandbox and containers run with.
//!
//! Resources are computed from Kubernetes requests and limits exactly as the
//! kubelet's calculateLinuxResources does (kuberuntime, with
//! cm.MilliCPUToShares and MilliCPUToQuota), then written the way
//! containerd's CRI writes them into the spec: shares always, the 100 ms
//! period always, a quota and a memory limit only when non-zero.
//!
//! Namespaces follow CRI: the sandbox ("pause") process gets new network,
//! IPC, UTS, PID and mount namespaces and the pod's hostname; each app
//! container joins the sandbox's network, IPC and UTS namespaces through
//! `/proc/<sandbox pid>/ns/*` (so they share its loopback and hostname) and
//! gets its own PID and mount namespaces. runc brings up `lo` in a new
//! network namespace; there is no CNI, so loopback is all there is.
//!
//! The rest is containerd's `oci.populateDefaultUnixSpec`: its standard
//! mounts, default capabilities, masked and read-only paths, and
//! RLIMIT_NOFILE 1024; plus `noNewPrivileges`, as the kubelet sets when
//! `allowPrivilegeEscalation` is false.

use serde_json::{json, Value};

use super::procfs::CGROUP_ROOT;

/// cm.MinShares: the kernel's floor, used for zero milliCPU.
pub const MIN_SHARES: u64 = 2;
/// cm.MaxShares.
pub const MAX_SHARES: u64 = 262_144;
/// cm.SharesPerCPU.
pub const SHARES_PER_CPU: i64 = 1024;
/// cm.MilliCPUToCPU.
pub const MILLI_CPU_TO_CPU: i64 = 1000;
/// cm.QuotaPeriod: 100 ms in microseconds.
pub const QUOTA_PERIOD: i64 = 100_000;
/// cm.MinQuotaPeriod: a quota is at least 1 ms.
pub const MIN_QUOTA_PERIOD: i64 = 1000;

/// cm.MilliCPUToShares.
pub fn milli_cpu_to_shares(milli_cpu: i64) -> u64 {
    if milli_cpu == 0 {
        return MIN_SHARES;
    }
    let shares = milli_cpu * SHARES_PER_CPU / MILLI_CPU_TO_CPU;
    if shares < MIN_SHARES as i64 {
        MIN_SHARES
    } else if shares > MAX_SHARES as i64 {
        MAX_SHARES
    } else {
        shares as u64
    }
}

/// cm.MilliCPUToQuota: 0 (no quota) for no limit, else at least 1 ms.
pub fn milli_cpu_to_quota(milli_cpu: i64, period: i64) -> i64 {
    if milli_cpu == 0 {
        return 0;
    }
    (milli_cpu * period / MILLI_CPU_TO_CPU).max(MIN_QUOTA_PERIOD)
}

/// A container's requests and limits, as the kubelet reads them
/// (`None` = not set; a CPU request absent from the spec differs from 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_request_milli: Option<i64>,
    pub cpu_limit_milli: Option<i64>,
    pub memory_limit_bytes: Option<i64>,
}

/// The cgroup settings calculateLinuxResources produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxResources {
    pub cpu_shares: u64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub memory_limit_bytes: i64,
}

/// kuberuntime calculateLinuxResources (CFS quota on, the kubelet default):
/// shares from the request, or from the limit when no request is given.
pub fn linux_resources(r: Resources) -> LinuxResources {
    let cpu_shares = match (r.cpu_request_milli, r.cpu_limit_milli) {
        (None, Some(limit)) => milli_cpu_to_shares(limit),
        (request, _) => milli_cpu_to_shares(request.unwrap_or(0)),
    };
    LinuxResources {
        cpu_shares,
        cpu_period: QUOTA_PERIOD,
        cpu_quota: milli_cpu_to_quota(r.cpu_limit_milli.unwrap_or(0), QUOTA_PERIOD),
        memory_limit_bytes: r.memory_limit_bytes.unwrap_or(0),
    }
}

/// Where a process's namespaces come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodNamespaces {
    /// The pod's sandbox: new namespaces, this hostname (the pod's name).
    Sandbox { hostname: String },
    /// An app container: join the sandbox process's net, IPC and UTS.
    Join { sandbox_pid: u32 },
}

/// What one process of a pod needs in its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecInput {
    pub node: String,
    pub pod_uid: String,
    /// The containerd container id; also the leaf of the cgroup path.
    pub container_id: String,
    pub args: Vec<String>,
    /// `KEY=VALUE`, image env first then the container's, as CRI merges them.
    pub env: Vec<String>,
    pub cwd: String,
    pub resources: Resources,
    pub namespaces: PodNamespaces,
}

/// The sandbox's process: sleep as long as the pod lives. As PID 1 in its
/// namespace it ignores SIGTERM, so a sandbox is stopped with SIGKILL, as
/// containerd's CRI stops a pause container.
pub fn sandbox_args() -> Vec<String> {
    vec!["sleep".into(), "2147483647".into()]
}

/// `/kubesim/<node>/<pod-uid>/<container>`: every live cgroup is under the
/// node's subtree, so a crash or cleanup finds them all.
pub fn cgroups_path(node: &str, pod_uid: &str, container_id: &str) -> String {
    format!("/{CGROUP_ROOT}/{node}/{pod_uid}/{container_id}")
}

/// containerd's default capabilities (oci.defaultUnixCaps).
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The OCI runtime spec (JSON) for one process of a pod.
pub fn runtime_spec(input: &SpecInput) -> Value {
    let res = linux_resources(input.resources);
    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": process(input),
        "root": {"path": "rootfs", "readonly": false},
        "mounts": default_mounts(),
        "linux": {
            "resources": resources_json(res),
            "cgroupsPath": cgroups_path(&input.node, &input.pod_uid, &input.container_id),
            "namespaces": namespaces(&input.namespaces),
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    });
    if let PodNamespaces::Sandbox { hostname } = &input.namespaces {
        // Only a private UTS namespace may set a hostname; containers that
        // join it see the sandbox's.
        spec["hostname"] = json!(hostname);
    }
    spec
}

fn process(input: &SpecInput) -> Value {
    let cwd = if input.cwd.is_empty() {
        "/"
    } else {
        input.cwd.as_str()
    };
    json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": input.args,
        "env": input.env,
        "cwd": cwd,
        "capabilities": {
            "bounding": DEFAULT_CAPS,
            "effective": DEFAULT_CAPS,
            "permitted": DEFAULT_CAPS,
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": true,
    })
}

fn resources_json(r: LinuxResources) -> Value {
    let mut cpu = json!({"shares": r.cpu_shares, "period": r.cpu_period});
    if r.cpu_quota != 0 {
        cpu["quota"] = json!(r.cpu_quota);
    }
    let mut out = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "cpu": cpu,
    });
    if r.memory_limit_bytes != 0 {
        out["memory"] = json!({"limit": r.memory_limit_bytes});
    }
    out
}

fn namespaces(ns: &PodNamespaces) -> Value {
    match ns {
        PodNamespaces::Sandbox { .. } => json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"},
        ]),
        PodNamespaces::Join { sandbox_pid } => {
            let p = |n: &str| format!("/proc/{sandbox_pid}/ns/{n}");
            json!([
                {"type": "pid"},
                {"type": "ipc", "path": p("ipc")},
                {"type": "uts", "path": p("uts")},
                {"type": "mount"},
                {"type": "network", "path": p("net")},
            ])
        }
    }
}

fn default_mounts() -> Value {
    json!([
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    ])
}

/// containerd's default masked paths (oci.populateDefaultUnixSpec).
const MASKED_PATHS: [&str; 9] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
];

/// containerd's default read-only paths.
const READONLY_PATHS: [&str; 6] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/scsi",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_milli_cpu_to_shares() {
        // 0 → MinShares 2; 1m → 1*1024/1000 = 1 → floor 2; 250m → 256;
        // 1000m → 1024; 300 CPUs → 307200 → MaxShares 262144.
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(300_000), 262_144);
    }

    #[test]
    fn quota_follows_milli_cpu_to_quota() {
        // 500m over 100000 µs → 50000 µs; 5m → 500 µs → raised to 1000 µs.
        assert_eq!(milli_cpu_to_quota(500, QUOTA_PERIOD), 50_000);
        assert_eq!(milli_cpu_to_quota(5, QUOTA_PERIOD), 1000);
        assert_eq!(milli_cpu_to_quota(0, QUOTA_PERIOD), 0);
    }

    #[test]
    fn a_limit_alone_sets_the_shares() {
        // No request, limit 500m: shares 500*1024/1000 = 512, quota 50000.
        let r = linux_resources(Resources {
            cpu_limit_milli: Some(500),
            ..Default::default()
        });
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period),
            (512, 50_000, 100_000)
        );
        // Request 100m with the same limit: shares 102 (1024*100/1000 = 102.4).
        let r = linux_resources(Resources {
            cpu_request_milli: Some(100),
            cpu_limit_milli: Some(500),
            memory_limit_bytes: None,
        });
        assert_eq!(r.cpu_shares, 102);
    }

    #[test]
    fn the_spec_has_quota_and_memory_only_when_limited() {
        let mut input = SpecInput {
            node: "n1".into(),
            pod_uid: "uid-1".into(),
            container_id: "c1".into(),
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: String::new(),
            resources: Resources::default(),
            namespaces: PodNamespaces::Join { sandbox_pid: 42 },
        };
        let s = runtime_spec(&input);
        assert_eq!(s["linux"]["cgroupsPath"], "/kubesim/n1/uid-1/c1");
        assert_eq!(s["linux"]["resources"]["cpu"]["shares"], 2);
        assert!(s["linux"]["resources"]["cpu"].get("quota").is_none());
        assert!(s["linux"]["resources"].get("memory").is_none());
        assert_eq!(s["linux"]["namespaces"][4]["path"], "/proc/42/ns/net");
        assert!(s.get("hostname").is_none());
        input.resources.memory_limit_bytes = Some(20_000_000);
        input.namespaces = PodNamespaces::Sandbox {
            hostname: "web-0".into(),
        };
        let s = runtime_spec(&input);
        assert_eq!(s["linux"]["resources"]["memory"]["limit"], 20_000_000);
        assert_eq!(s["hostname"], "web-0");
        assert_eq!(s["process"]["cwd"], "/");
    }
}
