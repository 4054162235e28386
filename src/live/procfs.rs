//! What the kernel says about a node: its processes by command line, the
//! mounts under its directory, its cgroups in every hierarchy. A crashed
//! node (and a `kill -9`ed live run) leaves a containerd that can no longer
//! be asked, so `daemon::kill` and `cleanup` read /proc and /sys instead.
//! Every list is sorted, so what is printed and removed comes in one order.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The shim binary containerd starts for every task of the runc v2 runtime.
pub const SHIM_BINARY: &str = "containerd-shim-runc-v2";

/// The cgroup tree every live container's cgroupsPath is under:
/// `/kubesim/<node>/<pod-uid>/<container>`.
pub const CGROUP_ROOT: &str = "kubesim";

/// A process's argv, or None when it is gone (or a zombie, whose cmdline is empty).
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    let args = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args)
}

/// Every pid in /proc, ascending.
pub fn pids() -> Vec<i32> {
    let mut out: Vec<i32> = fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

fn basename(arg: &str) -> &str {
    arg.rsplit('/').next().unwrap_or(arg)
}

/// The value after `flag` in argv (`-address /x/containerd.sock`).
pub fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

/// containerd daemons started with this config file (`containerd --config FILE`).
pub fn daemons_with_config(config: &Path) -> Vec<i32> {
    let config = config.to_string_lossy();
    pids()
        .into_iter()
        .filter(|&pid| {
            cmdline(pid).is_some_and(|a| {
                basename(&a[0]) == "containerd"
                    && flag_value(&a, "--config") == Some(config.as_ref())
            })
        })
        .collect()
}

/// Shims serving the daemon at `address`: a shim re-parents itself to init
/// when it starts, so it outlives its daemon and must be found by argv.
pub fn shims_for(address: &Path) -> Vec<Shim> {
    let address = address.to_string_lossy();
    pids()
        .into_iter()
        .filter_map(|pid| {
            let a = cmdline(pid)?;
            if basename(&a[0]) != SHIM_BINARY || flag_value(&a, "-address") != Some(&address) {
                return None;
            }
            let id = flag_value(&a, "-id").unwrap_or_default().to_string();
            let namespace = flag_value(&a, "-namespace").unwrap_or_default().to_string();
            Some(Shim { pid, id, namespace })
        })
        .collect()
}

/// One running shim and the task it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shim {
    pub pid: i32,
    pub id: String,
    pub namespace: String,
}

/// Mount points at or under `dir`, deepest first, so a parent is unmounted
/// after what is mounted inside it.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo()
        .into_iter()
        .filter(|m| m.point.starts_with(dir))
        .map(|m| m.point)
        .collect();
    sort_deepest_first(&mut out);
    out.dedup();
    out
}

/// One line of /proc/self/mountinfo: where it is mounted and the fs type.
struct MountLine {
    point: PathBuf,
    fs_type: String,
}

fn mountinfo() -> Vec<MountLine> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            Some(MountLine {
                point: PathBuf::from(unescape_octal(fields.get(4)?)),
                fs_type: fields.get(sep + 1)?.to_string(),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c));
        if octal {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sort_deepest_first(paths: &mut [PathBuf]) {
    paths.sort_by(|a, b| {
        let depth = |p: &PathBuf| p.components().count();
        depth(b).cmp(&depth(a)).then_with(|| b.cmp(a))
    });
}

/// Every cgroup hierarchy's mount point (v1 controllers and the v2 unified
/// tree; on a hybrid host runc creates the container's cgroup in each).
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo()
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| m.point)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The node's cgroup directories (`/kubesim/<node>` and everything under
/// it) in every hierarchy, deepest first: the order `rmdir` needs.
pub fn node_cgroups(node: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for h in cgroup_hierarchies() {
        let top = h.join(CGROUP_ROOT).join(node);
        if top.is_dir() {
            collect_dirs(&top, &mut out);
        }
    }
    sort_deepest_first(&mut out);
    out
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&e.path(), out);
        }
    }
}

/// The processes in these cgroups: a node's task processes, whatever
/// namespace or shim they belong to.
pub fn cgroup_pids(dirs: &[PathBuf]) -> Vec<i32> {
    let mut out: Vec<i32> = dirs
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Sends `signal` to each pid; a pid already gone is not an error.
pub fn signal_all(pids: &[i32], signal: i32) {
    for &pid in pids {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Waits until none of `pids` is alive (gone or a zombie), up to `timeout`.
/// Returns the pids still alive at the end.
pub fn wait_gone(pids: &[i32], timeout: Duration) -> Vec<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Running (not exited, not a zombie) according to /proc/PID/stat.
pub fn alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// Lazily unmounts `path` (MNT_DETACH): a busy rootfs of a killed task still
/// goes, and its last user's exit frees it.
pub fn unmount(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Removes cgroup directories, deepest first (a cgroup is removed with
/// rmdir once it has no processes and no children). Returns how many went.
pub fn remove_cgroups(dirs: &[PathBuf]) -> usize {
    let mut removed = 0;
    for d in dirs {
        for _ in 0..100 {
            match fs::remove_dir(d) {
                Ok(()) => {
                    removed += 1;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                // EBUSY while the last killed process is still exiting.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
    removed
}

/// One rmdir per directory, no retries: for cgroups that may still be in use.
pub fn remove_cgroups_once(dirs: &[PathBuf]) -> usize {
    dirs.iter().filter(|d| fs::remove_dir(d).is_ok()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        // "\040" is a space: /tmp/a b is one mount point.
        assert_eq!(unescape_octal("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
    }

    #[test]
    fn deepest_mounts_come_first() {
        let mut v = vec![
            PathBuf::from("/r/a"),
            PathBuf::from("/r/a/b/c"),
            PathBuf::from("/r/a/b"),
        ];
        sort_deepest_first(&mut v);
        // Depths 4, 3, 2 components after "/": c, then b, then a.
        assert_eq!(
            v,
            vec![
                PathBuf::from("/r/a/b/c"),
                PathBuf::from("/r/a/b"),
                PathBuf::from("/r/a")
            ]
        );
    }

    #[test]
    fn flag_values_are_read_from_argv() {
        let a: Vec<String> = ["shim", "-namespace", "n1", "-address", "/s.sock"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(flag_value(&a, "-address"), Some("/s.sock"));
        assert_eq!(flag_value(&a, "-id"), None);
    }
}
