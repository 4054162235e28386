//! A live run's real side, from start to end: one containerd per node
//! (inside the run directory, or attached to a socket the scenario names),
//! the local images built and imported into every node, the runtime the
//! kubelets drive; and at the end every container removed, every daemon
//! stopped and what is left counted (it should be nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cleanup::{count_leftovers, Leftovers};
use super::daemon::NodeDaemon;
use super::image::{build, import_into, ImageSource};
use super::node::{LiveNode, SANDBOX_IMAGE};
use super::pacer::Answers;
use super::runtime::ContainerdRuntime;
use crate::api::node::NodeImage;
use crate::model::kubelet::runtime::Runtime;
use crate::scenario::{Action, Scenario};

/// More real nodes than this on one machine is not a live run but a
/// machine-sized mistake: each is a containerd with its shims.
pub const MAX_LIVE_NODES: usize = 8;

pub struct LiveSession {
    rt: tokio::runtime::Runtime,
    nodes: BTreeMap<String, Arc<LiveNode>>,
    run_dir: PathBuf,
    runtime: Arc<ContainerdRuntime>,
}

impl LiveSession {
    /// Starts every node of `scenario` under `run_dir`; the runtime's
    /// answers go to `answers`.
    pub fn start(
        run_dir: &Path,
        scenario: &Scenario,
        answers: Answers,
    ) -> Result<LiveSession, StartError> {
        preflight(scenario)?;
        Self::boot(run_dir, scenario, answers).map_err(|message| StartError { code: 1, message })
    }

    fn boot(run_dir: &Path, scenario: &Scenario, answers: Answers) -> Result<LiveSession, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("starting the live runtime: {e}"))?;
        let mapping = Arc::new(mapping(scenario));
        let locals: BTreeSet<String> = std::iter::once(SANDBOX_IMAGE.to_string())
            .chain(mapping.values().map(|(l, _)| l.clone()))
            .collect();
        let built = locals
            .iter()
            .map(|name| {
                build(name, &ImageSource::Busybox)
                    .map_err(|e| format!("building image {name}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut imports = Vec::new();
        let nodes = rt.block_on(async {
            let mut nodes = BTreeMap::new();
            for n in &scenario.nodes {
                let daemon = match scenario.live.sockets.get(&n.name) {
                    Some(sock) => NodeDaemon::attach(&n.name, Path::new(sock)).await,
                    None => NodeDaemon::start(run_dir, &n.name).await,
                }
                .map_err(|e| format!("node {}: {e}", n.name))?;
                let client = daemon.client().await.map_err(|e| e.to_string())?;
                let mut images = BTreeMap::new();
                for (local, b) in locals.iter().zip(&built) {
                    let began = std::time::Instant::now();
                    let r = import_into(std::slice::from_ref(&client), b)
                        .await
                        .map_err(|e| format!("node {}: importing {local}: {e}", n.name))?;
                    imports.push(ImageImport {
                        node: n.name.clone(),
                        image: local.clone(),
                        bytes: b.archive.len() as u64,
                        seconds: began.elapsed().as_secs_f64(),
                    });
                    images.insert(local.clone(), r.into_iter().next().expect("one node"));
                }
                let logs = run_dir.join("logs").join(&n.name);
                let execs = run_dir.join("exec").join(&n.name);
                let node = LiveNode::new(daemon, images, mapping.clone(), logs, execs)
                    .await
                    .map_err(|e| format!("node {}: {e}", n.name))?;
                nodes.insert(n.name.clone(), node);
            }
            Ok::<_, String>(nodes)
        })?;
        write_imports(run_dir, &imports)?;
        let runtime = Arc::new(ContainerdRuntime::start(
            rt.handle(),
            nodes.clone(),
            answers,
        ));
        Ok(LiveSession {
            rt,
            nodes,
            run_dir: run_dir.to_path_buf(),
            runtime,
        })
    }

    /// `scenario` as run live: its kubelets drive the real runtime, and
    /// every mapped image is on every node already (imported, not pulled).
    pub fn adapt(&self, scenario: &mut Scenario) {
        let mut cfg = (*scenario.kubelet).clone();
        cfg.runtime = Runtime::Live(self.runtime.clone());
        scenario.kubelet = Arc::new(cfg);
        preload_images(scenario);
    }

    /// Removes every container, stops every daemon and counts what is left.
    pub fn shutdown(self) -> Result<Leftovers, String> {
        let LiveSession {
            rt, nodes, run_dir, ..
        } = self;
        rt.block_on(async {
            for n in nodes.values() {
                if let Err(e) = n.stop().await {
                    eprintln!("live: stopping node {}: {e}", n.name());
                }
            }
            count_leftovers(&run_dir).await.map_err(|e| e.to_string())
        })
    }
}

/// One image imported into one node before the run: the content written
/// and its layers unpacked into snapshots, the live counterpart of a pull
/// (`kubesim calibrate` fits `imagePullOverhead` from these).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ImageImport {
    pub node: String,
    pub image: String,
    /// The archive's size.
    pub bytes: u64,
    pub seconds: f64,
}

/// The file beside a live run's trace that holds its image imports.
pub const IMPORTS_FILE: &str = "live-imports.json";

fn write_imports(run_dir: &Path, imports: &[ImageImport]) -> Result<(), String> {
    let path = run_dir.join(IMPORTS_FILE);
    let json = serde_json::to_string_pretty(imports).expect("imports serialise");
    std::fs::write(&path, json + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Marks every image `live.images` maps as present on every node, as a
/// live node has it (imported before the run, not pulled). The simulation
/// a live run is compared with does the same, so neither pulls.
pub fn preload_images(scenario: &mut Scenario) {
    let names: Vec<String> = scenario.live.images.keys().cloned().collect();
    for n in &mut scenario.nodes {
        n.body.images.push(NodeImage {
            names: names.clone(),
            size_bytes: 2 << 20,
        });
    }
}

/// Manifest image → (local image, stand-in program).
fn mapping(scenario: &Scenario) -> BTreeMap<String, (String, Vec<String>)> {
    scenario
        .live
        .images
        .iter()
        .map(|(k, v)| (k.clone(), (v.image().to_string(), v.command().to_vec())))
        .collect()
}

/// Why a live run could not start, and its exit code: 2 for the
/// scenario's fault, 1 for the machine's.
#[derive(Debug)]
pub struct StartError {
    pub code: u8,
    pub message: String,
}

fn machine(message: String) -> StartError {
    StartError { code: 1, message }
}

/// What a live run needs of the machine and the scenario, checked before
/// anything starts.
fn preflight(scenario: &Scenario) -> Result<(), StartError> {
    let scenario_error = |message| StartError { code: 2, message };
    if scenario.nodes.len() > MAX_LIVE_NODES {
        return Err(scenario_error(format!(
            "{} nodes: a live run starts a containerd per node, at most {MAX_LIVE_NODES}",
            scenario.nodes.len()
        )));
    }
    let missing: Vec<String> = used_images(scenario)
        .into_iter()
        .filter(|i| !scenario.live.images.contains_key(i) && i != SANDBOX_IMAGE)
        .collect();
    if !missing.is_empty() {
        return Err(scenario_error(format!(
            "{}: live.images: no local image for {} (there is no registry; map each, e.g. `{}: busybox`)",
            scenario.file,
            missing.join(", "),
            missing[0]
        )));
    }
    // The machine last: a scenario's own mistakes are said anywhere.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(machine(
            "live mode runs containers with runc and needs root".into(),
        ));
    }
    for bin in ["containerd", "containerd-shim-runc-v2", "runc"] {
        if !on_path(bin) {
            return Err(machine(format!(
                "{bin} is not installed: apt-get install -y containerd runc busybox-static"
            )));
        }
    }
    if !Path::new("/bin/busybox").exists() {
        return Err(machine(
            "/bin/busybox is missing: apt-get install -y busybox-static".into(),
        ));
    }
    Ok(())
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// Every container image the scenario names: its objects' and the
/// timeline's `apply:` objects' (pods and pod templates, app and init
/// containers), and the images `setImage` rolls to.
fn used_images(scenario: &Scenario) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let applied = scenario
        .timeline
        .iter()
        .flat_map(|s| match &s.action {
            Some(Action::Apply(objs)) => objs.as_slice(),
            _ => &[],
        })
        .map(|o| o.as_ref());
    for s in &scenario.timeline {
        if let Some(Action::SetImage { image, .. }) = &s.action {
            out.insert(image.clone());
        }
    }
    for o in scenario.objects.iter().chain(applied) {
        let j = o.to_json();
        let specs = [
            j.pointer("/spec"),
            j.pointer("/spec/template/spec"),
            j.pointer("/spec/jobTemplate/spec/template/spec"),
        ];
        for spec in specs.into_iter().flatten() {
            for list in ["containers", "initContainers"] {
                let items = spec.get(list).and_then(|l| l.as_array());
                for c in items.into_iter().flatten() {
                    if let Some(i) = c.get("image").and_then(|i| i.as_str()) {
                        out.insert(i.to_string());
                    }
                }
            }
        }
    }
    out
}
