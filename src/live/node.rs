//! One live node: its containerd (started by kubesim or attached), a
//! client in the node's namespace, the images imported into it, and the
//! OOM kills its event stream reported. A node crash kills the daemon and
//! everything it ran; its boot starts the daemon again on the same root
//! (images kept) and removes the dead containers it still lists.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{Mutex, RwLock};

use super::daemon::{empty_namespace, NodeDaemon};
use super::error::{LiveError, Result};
use super::events::TaskEvent;
use super::import::ImageRef;
use super::runtime::OomLog;
use super::NodeClient;

/// The local image every sandbox ("pause") runs.
pub const SANDBOX_IMAGE: &str = "busybox";

pub struct LiveNode {
    name: String,
    daemon: Mutex<NodeDaemon>,
    client: RwLock<NodeClient>,
    /// Local image name → what containerd made of it here.
    images: BTreeMap<String, ImageRef>,
    /// Manifest image → (local image, the program standing for its
    /// entrypoint).
    mapping: Arc<BTreeMap<String, (String, Vec<String>)>>,
    logs: PathBuf,
    /// Where an exec's combined output goes while it runs.
    execs: PathBuf,
    ooms: Arc<OomLog>,
    up: AtomicBool,
}

impl LiveNode {
    /// A node whose daemon runs and whose images are imported.
    pub async fn new(
        daemon: NodeDaemon,
        images: BTreeMap<String, ImageRef>,
        mapping: Arc<BTreeMap<String, (String, Vec<String>)>>,
        logs: PathBuf,
        execs: PathBuf,
    ) -> Result<Arc<LiveNode>> {
        for dir in [&logs, &execs] {
            std::fs::create_dir_all(dir)
                .map_err(LiveError::io(format!("creating {}", dir.display())))?;
        }
        let client = daemon.client().await?;
        let node = Arc::new(LiveNode {
            name: daemon.name().to_string(),
            daemon: Mutex::new(daemon),
            client: RwLock::new(client),
            images,
            mapping,
            logs,
            execs,
            ooms: Arc::new(OomLog::default()),
            up: AtomicBool::new(true),
        });
        node.watch_ooms().await?;
        Ok(node)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client of the node's current daemon.
    pub async fn client(&self) -> NodeClient {
        self.client.read().await.clone()
    }

    /// The image a sandbox runs.
    pub fn sandbox_image(&self) -> Result<ImageRef> {
        self.images.get(SANDBOX_IMAGE).cloned().ok_or_else(|| {
            LiveError::Other(format!("node {}: no {SANDBOX_IMAGE} image", self.name))
        })
    }

    /// What runs for a manifest's `image`: the local image, and the
    /// program standing for its entrypoint (empty: the image's own).
    pub fn image_for(&self, image: &str) -> Option<(ImageRef, Vec<String>)> {
        let (local, command) = match self.mapping.get(image) {
            Some((l, c)) => (l.as_str(), c.clone()),
            None => (image, Vec::new()),
        };
        Some((self.images.get(local)?.clone(), command))
    }

    /// Where container `id`'s stdout and stderr go.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.logs.join(format!("{id}.log"))
    }

    /// Where exec `exec_id`'s combined stdout and stderr go.
    pub fn exec_output_path(&self, exec_id: &str) -> PathBuf {
        self.execs.join(format!("{exec_id}.out"))
    }

    /// Whether the kernel's OOM killer ended container `id` of pod
    /// `pod_uid`: its memory cgroup counts the kill (`oom_kill` in
    /// cgroup v1's `memory.oom_control`, v2's `memory.events`, what
    /// containerd's OOM watcher reads), or containerd's `/tasks/oom` event
    /// says so.
    pub async fn was_oom_killed(&self, pod_uid: &str, id: &str) -> bool {
        let rel = super::spec::cgroups_path(&self.name, pod_uid, id);
        let rel = rel.trim_start_matches('/');
        let files = [
            PathBuf::from("/sys/fs/cgroup/memory")
                .join(rel)
                .join("memory.oom_control"),
            PathBuf::from("/sys/fs/cgroup/unified")
                .join(rel)
                .join("memory.events"),
            PathBuf::from("/sys/fs/cgroup")
                .join(rel)
                .join("memory.events"),
        ];
        let counted = files.iter().any(|f| {
            std::fs::read_to_string(f).is_ok_and(|t| {
                t.lines()
                    .filter_map(|l| l.strip_prefix("oom_kill "))
                    .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
            })
        });
        counted || self.ooms.was_killed(id).await
    }

    /// The machine crashed: its containerd, shims and containers die.
    pub async fn crash(&self) {
        if !self.up.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut d = self.daemon.lock().await;
        if let Err(e) = d.kill() {
            eprintln!("live: crashing node {}: {e}", self.name);
        }
    }

    /// The machine (re)started: containerd runs again on the same root,
    /// with no container running (a reboot kills them all).
    pub async fn boot(&self) {
        if self.up.load(Ordering::SeqCst) {
            return;
        }
        let mut d = self.daemon.lock().await;
        if let Err(e) = d.restart().await {
            return eprintln!("live: restarting node {}: {e}", self.name);
        }
        match d.client().await {
            Ok(c) => {
                let _ = empty_namespace(&c).await;
                *self.client.write().await = c;
            }
            Err(e) => return eprintln!("live: node {}: {e}", self.name),
        }
        drop(d);
        self.up.store(true, Ordering::SeqCst);
        if let Err(e) = self.watch_ooms().await {
            eprintln!("live: node {}: {e}", self.name);
        }
    }

    /// Follows the node's `/tasks/oom` events until its daemon goes.
    async fn watch_ooms(&self) -> Result<()> {
        let mut events = self.client().await.subscribe_task_events().await?;
        let ooms = self.ooms.clone();
        tokio::spawn(async move {
            while let Ok(Some(ev)) = events.next().await {
                if let TaskEvent::Oom { container_id } = ev {
                    ooms.record(container_id).await;
                }
            }
        });
        Ok(())
    }

    /// The end of the run: every container removed, the daemon stopped.
    /// A node still crashed is booted first: its daemon's records of the
    /// containers that died with it are removed too.
    pub async fn stop(&self) -> Result<()> {
        self.boot().await;
        if !self.up.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        self.daemon.lock().await.stop().await
    }
}
