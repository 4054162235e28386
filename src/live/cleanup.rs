//! `kubesim live cleanup DIR`: what a live run leaves when it is `kill -9`ed
//! (its daemons re-parent to init, and so do their shims and tasks),
//! counted per kind and removed, node directory by node directory.
//!
//! Processes, mounts and cgroups are read from the kernel. Containers and
//! snapshots live in a node's containerd metadata, so they are read through
//! containerd: the node's own daemon if it still runs, else a short-lived
//! daemon on the node's config (it boots in about 10 ms). A snapshot counts
//! as a leftover when it is active (a container's rootfs or a cut-off
//! unpack); committed layers belong to the node's images, which stay.

use std::fmt;
use std::fs;
use std::path::Path;

use super::client::NodeClient;
use super::daemon::{crash_node, empty_namespace, NodeDaemon, NodePaths};
use super::error::{LiveError, Result};
use super::procfs;

/// How much of each kind a run directory's nodes still have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub daemons: usize,
    pub shims: usize,
    pub tasks: usize,
    pub containers: usize,
    pub snapshots: usize,
    pub mounts: usize,
    pub cgroups: usize,
}

impl Leftovers {
    pub fn total(&self) -> usize {
        self.daemons
            + self.shims
            + self.tasks
            + self.containers
            + self.snapshots
            + self.mounts
            + self.cgroups
    }

    fn add(&mut self, o: Leftovers) {
        self.daemons += o.daemons;
        self.shims += o.shims;
        self.tasks += o.tasks;
        self.containers += o.containers;
        self.snapshots += o.snapshots;
        self.mounts += o.mounts;
        self.cgroups += o.cgroups;
    }
}

impl fmt::Display for Leftovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "daemons {}, shims {}, tasks {}, containers {}, snapshots {}, mounts {}, cgroups {}",
            self.daemons,
            self.shims,
            self.tasks,
            self.containers,
            self.snapshots,
            self.mounts,
            self.cgroups
        )
    }
}

/// The node names under `DIR/nodes/`, sorted.
pub fn node_names(run_dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(run_dir.join("nodes"))
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                e.file_type()
                    .ok()?
                    .is_dir()
                    .then(|| e.file_name().to_string_lossy().into_owned())
            })
            .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Counts what the run directory's nodes leave, summed over the nodes.
pub async fn count_leftovers(run_dir: &Path) -> Result<Leftovers> {
    let mut total = Leftovers::default();
    for node in node_names(run_dir) {
        total.add(count_node(run_dir, &node).await?);
    }
    Ok(total)
}

async fn count_node(run_dir: &Path, node: &str) -> Result<Leftovers> {
    let p = NodePaths::new(run_dir, node);
    let cgroups = procfs::node_cgroups(node);
    let daemons = procfs::daemons_with_config(&p.config).len();
    let (containers, snapshots) = if daemons > 0 {
        metadata_counts(&NodeClient::connect(&p.socket, node).await?).await?
    } else if p.root.join("io.containerd.metadata.v1.bolt").exists() {
        with_scratch_daemon(run_dir, node, |c| async move { metadata_counts(&c).await }).await?
    } else {
        (0, 0)
    };
    Ok(Leftovers {
        daemons,
        shims: procfs::shims_for(&p.socket).len(),
        tasks: procfs::cgroup_pids(&cgroups).len(),
        containers,
        snapshots,
        mounts: procfs::mounts_under(&p.dir).len(),
        cgroups: cgroups.len(),
    })
}

async fn metadata_counts(c: &NodeClient) -> Result<(usize, usize)> {
    let containers = c.list_containers().await?.len();
    let snapshots = c
        .list_snapshots()
        .await?
        .iter()
        .filter(|s| !s.committed)
        .count();
    Ok((containers, snapshots))
}

/// Runs `f` against a daemon started on the node's config for the purpose,
/// then stops it (after a crash its state/ is empty, so it starts no task).
async fn with_scratch_daemon<T, F, Fut>(run_dir: &Path, node: &str, f: F) -> Result<T>
where
    F: FnOnce(NodeClient) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut d = NodeDaemon::start(run_dir, node).await?;
    let out = f(d.client().await?).await;
    d.shutdown();
    out
}

/// What cleanup found in one node directory and what it removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCleanup {
    pub node: String,
    pub found: Leftovers,
    pub removed: Leftovers,
}

/// Kills and removes everything the run's nodes left (see the module doc);
/// the images stay in each node's root/.
pub async fn cleanup(run_dir: &Path) -> Result<Vec<NodeCleanup>> {
    if !run_dir.join("nodes").is_dir() {
        return Err(LiveError::Other(format!(
            "{}: not a live run directory (no nodes/)",
            run_dir.display()
        )));
    }
    let mut out = Vec::new();
    for node in node_names(run_dir) {
        let found = count_node(run_dir, &node).await?;
        let p = NodePaths::new(run_dir, &node);
        let crash = crash_node(&p, &node);
        let (_, containers, snapshots) = if p.root.join("io.containerd.metadata.v1.bolt").exists() {
            with_scratch_daemon(run_dir, &node, |c| async move { empty_namespace(&c).await })
                .await?
        } else {
            (0, 0, 0)
        };
        let removed = Leftovers {
            daemons: crash.daemons,
            shims: crash.shims,
            tasks: crash.tasks,
            containers,
            snapshots,
            mounts: crash.mounts,
            cgroups: crash.cgroups,
        };
        out.push(NodeCleanup {
            node,
            found,
            removed,
        });
    }
    // `/kubesim` itself stays in each hierarchy: another run's runc may be
    // creating a node's cgroup under it at this instant (its MkdirAll made
    // the parent and is about to make the child), and removing an empty
    // parent there failed that run's task create with ENOENT. An empty
    // cgroup directory holds nothing.
    Ok(out)
}
