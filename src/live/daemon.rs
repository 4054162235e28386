//! One private containerd per node, inside the run directory.
//!
//! `DIR/nodes/NODE/` (mode 0700) holds the daemon's `config.toml`, its
//! `root/` (content, snapshots, metadata) and `state/` (task bundles,
//! shim sockets), its unix socket `containerd.sock`, `containerd.pid` and
//! `log`. The config disables the CRI plugin and leaves the debug and
//! metrics addresses empty, so no TCP listener is opened.
//!
//! `kill` is a crashed machine: the daemon, every shim it started and every
//! task process die by SIGKILL, the node's mounts and cgroups go and
//! `state/` is cleared (a machine's /run does not survive a crash), while
//! `root/` stays, so `restart` finds the images and the container records
//! and the kubelet reconciles. A node may instead attach to an existing
//! containerd socket; then only the namespace is ours and crashing it is
//! refused.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::client::NodeClient;
use super::error::{LiveError, Result};
use super::procfs;

/// How long a daemon may take to answer Version after it is spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop waits for the daemon before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// A unix socket path is at most 107 bytes (sun_path holds 108 with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A node's containerd: one we started, or one we attached to.
pub struct NodeDaemon {
    name: String,
    dir: Option<PathBuf>,
    socket: PathBuf,
    child: Option<Child>,
}

/// The files of a node directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub root: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    pub pid_file: PathBuf,
    pub log: PathBuf,
}

impl NodePaths {
    /// runc's state directory for this node's containers (see
    /// `NodeClient::with_runc_root`), inside state/.
    pub fn runc_root(&self) -> PathBuf {
        self.state.join("runc")
    }

    /// `DIR/nodes/NODE/...`.
    pub fn new(run_dir: &Path, node: &str) -> NodePaths {
        let dir = run_dir.join("nodes").join(node);
        NodePaths {
            config: dir.join("config.toml"),
            root: dir.join("root"),
            state: dir.join("state"),
            socket: dir.join("containerd.sock"),
            pid_file: dir.join("containerd.pid"),
            log: dir.join("log"),
            dir,
        }
    }
}

/// A TOML basic string.
fn toml_str(p: &Path) -> String {
    let s = p
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!("\"{s}\"")
}

/// The daemon's config: everything inside the node directory, CRI off, no
/// TCP (empty debug and metrics addresses).
pub fn config_toml(p: &NodePaths) -> String {
    let ttrpc = PathBuf::from(format!("{}.ttrpc", p.socket.display()));
    format!(
        "version = 2\nroot = {}\nstate = {}\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         [grpc]\n  address = {}\n[ttrpc]\n  address = {}\n[debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
        toml_str(&p.root),
        toml_str(&p.state),
        toml_str(&p.socket),
        toml_str(&ttrpc),
    )
}

impl NodeDaemon {
    /// Starts `containerd --config DIR/nodes/NODE/config.toml` and waits
    /// until its socket answers Version.
    pub async fn start(run_dir: &Path, node: &str) -> Result<NodeDaemon> {
        let p = NodePaths::new(run_dir, node);
        if p.socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(LiveError::Other(format!(
                "node {node}: socket path {} is longer than {MAX_SOCKET_PATH} bytes; use a shorter run directory",
                p.socket.display()
            )));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&p.dir)
            .map_err(LiveError::io(format!("creating {}", p.dir.display())))?;
        fs::set_permissions(&p.dir, fs::Permissions::from_mode(0o700))
            .map_err(LiveError::io("chmod 0700"))?;
        fs::write(&p.config, config_toml(&p))
            .map_err(LiveError::io(format!("writing {}", p.config.display())))?;
        let mut d = NodeDaemon {
            name: node.to_string(),
            dir: Some(p.dir.clone()),
            socket: p.socket.clone(),
            child: None,
        };
        d.spawn().await?;
        Ok(d)
    }

    /// Uses an existing containerd at `socket`; this node owns only the
    /// namespace named after it.
    pub async fn attach(node: &str, socket: &Path) -> Result<NodeDaemon> {
        let d = NodeDaemon {
            name: node.to_string(),
            dir: None,
            socket: socket.to_path_buf(),
            child: None,
        };
        d.client()
            .await?
            .version_within(Duration::from_secs(5))
            .await?;
        Ok(d)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The node directory, for a daemon we started.
    pub fn paths(&self) -> Option<NodePaths> {
        let dir = self.dir.as_ref()?;
        let run_dir = dir.parent()?.parent()?;
        Some(NodePaths::new(run_dir, &self.name))
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A client in this node's namespace.
    pub async fn client(&self) -> Result<NodeClient> {
        let c = NodeClient::connect(&self.socket, &self.name).await?;
        Ok(match self.paths() {
            Some(p) => c.with_runc_root(&p.runc_root()),
            None => c,
        })
    }

    async fn spawn(&mut self) -> Result<()> {
        let p = self.paths().expect("spawn is for daemons we own");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)
            .map_err(LiveError::io(format!("opening {}", p.log.display())))?;
        let err = log.try_clone().map_err(LiveError::io("log"))?;
        let _ = fs::remove_file(&p.socket);
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new("containerd")
                .arg("--config")
                .arg(&p.config)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                // Its own process group: a Ctrl-C at the terminal reaches the
                // live run, which then stops the nodes in order.
                .process_group(0)
                .spawn()
                .map_err(LiveError::io(
                    "spawning containerd (apt-get install -y containerd runc)",
                ))?
        };
        fs::write(&p.pid_file, format!("{}\n", child.id()))
            .map_err(LiveError::io("writing containerd.pid"))?;
        self.child = Some(child);
        self.wait_ready(&p).await
    }

    /// Polls Version every 5 ms: containerd boots in about 10 ms.
    async fn wait_ready(&mut self, p: &NodePaths) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                let log = fs::read_to_string(&p.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(LiveError::Other(format!(
                    "node {}: containerd exited ({status}): {}",
                    self.name,
                    tail.join(" | ")
                )));
            }
            if p.socket.exists() {
                if let Ok(c) = NodeClient::connect(&p.socket, &self.name).await {
                    if c.version_within(Duration::from_millis(500)).await.is_ok() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(LiveError::Other(format!(
                    "node {}: containerd did not answer within {START_TIMEOUT:?}",
                    self.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A crashed machine: nothing of this node keeps running (see the
    /// module doc). What was killed and removed is returned.
    pub fn kill(&mut self) -> Result<CrashReport> {
        let p = self.paths().ok_or_else(|| {
            LiveError::Other(format!(
                "node {}: an attached containerd is not ours to crash",
                self.name
            ))
        })?;
        let report = crash_node(&p, &self.name);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait(); // reap it, so no zombie stays
        }
        Ok(report)
    }

    /// Starts the daemon of a node that was killed or stopped.
    pub async fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Err(LiveError::Other(format!(
                "node {}: containerd is running",
                self.name
            )));
        }
        if self.dir.is_none() {
            return Err(LiveError::Other(format!(
                "node {}: an attached containerd is not ours to restart",
                self.name
            )));
        }
        self.spawn().await
    }

    /// The end of a node in a live run: every task of the namespace killed
    /// and deleted, every container and its snapshot deleted, then the
    /// daemon stopped with SIGTERM (SIGKILL after STOP_TIMEOUT) and its
    /// cgroups removed. An attached daemon keeps running; only our
    /// namespace is emptied.
    pub async fn stop(&mut self) -> Result<()> {
        let client = self.client().await?;
        empty_namespace(&client).await?;
        self.shutdown();
        Ok(())
    }

    /// Stops the daemon alone, gracefully (SIGTERM, SIGKILL after
    /// STOP_TIMEOUT): its shims and tasks run on, as across a containerd
    /// restart on a real node, and a restart reconnects to them.
    pub fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        procfs::signal_all(&[child.id() as i32], libc::SIGTERM);
        if !procfs::wait_gone(&[child.id() as i32], STOP_TIMEOUT).is_empty() {
            procfs::signal_all(&[child.id() as i32], libc::SIGKILL);
        }
        let _ = child.wait();
        if let Some(p) = self.paths() {
            // Empty cgroups only: rmdir refuses one that still has processes.
            procfs::remove_cgroups_once(&procfs::node_cgroups(&self.name));
            let _ = fs::remove_file(&p.pid_file);
        }
    }
}

/// Deletes everything a namespace holds but its images: tasks (SIGKILL
/// first), containers and their rootfs snapshots, and any active snapshot
/// an interrupted unpack left. Returns (tasks, containers, snapshots).
pub async fn empty_namespace(c: &NodeClient) -> Result<(usize, usize, usize)> {
    let tasks = c.list_tasks().await?;
    for t in &tasks {
        let _ = c.kill_task(&t.id, libc::SIGKILL).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), c.wait_task(&t.id)).await;
        c.delete_task(&t.id).await?;
    }
    let containers = c.list_containers().await?;
    for id in &containers {
        c.delete_container(id).await?;
    }
    let mut snapshots = 0;
    for s in c.list_snapshots().await? {
        if !s.committed {
            c.remove_snapshot(&s.key).await?;
            snapshots += 1;
        }
    }
    Ok((tasks.len(), containers.len(), snapshots))
}

impl Drop for NodeDaemon {
    /// A daemon still running when its owner goes (a panic in a test, an
    /// error path) is crashed rather than leaked.
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.kill();
        }
    }
}

/// What a node's crash killed and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashReport {
    pub daemons: usize,
    pub shims: usize,
    pub tasks: usize,
    pub mounts: usize,
    pub cgroups: usize,
}

/// Kills a node's daemon, shims and task processes, unmounts what is
/// mounted under its directory, removes its cgroups and clears `state/`.
/// Works from /proc alone, so it also serves `cleanup` after a `kill -9`.
pub fn crash_node(p: &NodePaths, node: &str) -> CrashReport {
    let daemons = procfs::daemons_with_config(&p.config);
    procfs::signal_all(&daemons, libc::SIGKILL);
    let shims = procfs::shims_for(&p.socket);
    let shim_pids: Vec<i32> = shims.iter().map(|s| s.pid).collect();
    procfs::signal_all(&shim_pids, libc::SIGKILL);
    let cgroups = procfs::node_cgroups(node);
    let tasks = procfs::cgroup_pids(&cgroups);
    procfs::signal_all(&tasks, libc::SIGKILL);
    let all: Vec<i32> = daemons
        .iter()
        .chain(&shim_pids)
        .chain(&tasks)
        .copied()
        .collect();
    procfs::wait_gone(&all, Duration::from_secs(10));
    for s in &shims {
        remove_shim_socket(&p.socket, s);
    }
    let mounts = procfs::mounts_under(&p.dir);
    let unmounted = mounts.iter().filter(|m| procfs::unmount(m).is_ok()).count();
    let removed = procfs::remove_cgroups(&cgroups);
    let _ = fs::remove_dir_all(&p.state);
    let _ = fs::remove_file(&p.pid_file);
    let _ = fs::remove_file(&p.socket);
    let _ = fs::remove_file(format!("{}.ttrpc", p.socket.display()));
    CrashReport {
        daemons: daemons.len(),
        shims: shims.len(),
        tasks: tasks.len(),
        mounts: unmounted,
        cgroups: removed,
    }
}

/// A shim listens on /run/containerd/s/<sha256(address/namespace/id)>
/// (containerd 1.6's shim.SocketAddress); a SIGKILLed shim leaves it.
fn remove_shim_socket(address: &Path, s: &procfs::Shim) {
    use sha2::{Digest, Sha256};
    let key = address.join(&s.namespace).join(&s.id);
    let hex: String = Sha256::digest(key.to_string_lossy().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let _ = fs::remove_file(Path::new("/run/containerd/s").join(hex));
}
