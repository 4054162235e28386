//! `workload:`: generators and trace imports, checked and resolved. The
//! imports' node lists become nodes of the cluster (each with a kubelet);
//! every error names the scenario's field, or the trace file's line and
//! column.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::Loader;
use crate::api::manifest::LoadError;
use crate::api::node::NodeBody;
use crate::api::quantity::Quantity;
use crate::api::yaml::Pos;
use crate::api::{Kind, Object};
use crate::model::client::RateLimit;
use crate::scenario::spec::Dur;
use crate::scenario::NodePlan;
use crate::sim::dist::{LatencyDist, LatencySpec};
use crate::sim::{SimDuration, SimTime};
use crate::workload::alibaba::{self, Window};
use crate::workload::arrival::{ArrivalProcess, Burst};
use crate::workload::borg;
use crate::workload::generator::Generator;
use crate::workload::spec::{AlibabaSpec, ArrivalSpec, BorgSpec, GeneratorSpec, WorkloadSpec};
use crate::workload::template::Template;
use crate::workload::{Machine, TaskImport, TraceError, Workload, GPU, GPU_PRODUCT_LABEL};

/// The most generator arrivals at one instant (`bursts[].count`).
const MAX_BURST: u64 = 10_000_000;
/// The most arrivals one generator makes: as many as a trace may hold.
const MAX_ARRIVALS: u64 = crate::workload::trace_file::MAX_RECORDS;

impl Loader<'_> {
    /// The section, and the nodes its imports bring; `first_node` numbers
    /// their pod CIDRs and IPs after the pools' nodes.
    pub(super) fn workload(
        &mut self,
        spec: &WorkloadSpec,
        duration: SimDuration,
        first_node: usize,
    ) -> (Workload, Vec<NodePlan>, Vec<Object>) {
        let client = RateLimit {
            qps: spec
                .client
                .qps
                .unwrap_or(crate::scenario::driver::KUBECTL.qps),
            burst: spec
                .client
                .burst
                .unwrap_or(crate::scenario::driver::KUBECTL.burst),
        };
        if !(client.qps > 0.0 && client.qps.is_finite() && client.burst > 0) {
            self.error(
                "workload.client",
                "qps and burst must be positive (kubectl's defaults are 50 and 300)",
            );
        }
        let mut generators = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, g) in spec.generators.iter().enumerate() {
            if !names.insert(g.name.as_str()) {
                self.error(
                    &format!("workload.generators[{i}].name"),
                    format!(
                        "two generators are named `{}`: their objects' names would collide",
                        g.name
                    ),
                );
            }
            if let Some(g) = self.generator(&format!("workload.generators[{i}]"), g, duration) {
                generators.push(Arc::new(g));
            }
        }
        let mut imports = Vec::new();
        let mut nodes = Vec::new();
        let mut objects = Vec::new();
        for (i, imp) in spec.imports.iter().enumerate() {
            let at = format!("workload.imports[{i}]");
            let given = [
                imp.alibaba_gpu_v2023.is_some(),
                imp.google_borg2011.is_some(),
                imp.cluster_dump.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                self.error(
                    &at,
                    "name one source to import: alibabaGpuV2023, googleBorg2011 or clusterDump",
                );
                continue;
            }
            if let Some(b) = &imp.google_borg2011 {
                let (tasks, machines) = self.borg(&format!("{at}.googleBorg2011"), b);
                imports.extend(tasks.map(Arc::new));
                for m in machines {
                    let n = first_node + nodes.len();
                    nodes.push(machine_node(&m, n, b.price_per_hour.unwrap_or(0.0)));
                }
                continue;
            }
            if let Some(f) = &imp.cluster_dump {
                objects.extend(self.cluster_dump(&format!("{at}.clusterDump"), f));
                continue;
            }
            let Some(a) = &imp.alibaba_gpu_v2023 else {
                continue;
            };
            let (tasks, machines) = self.alibaba(&format!("{at}.alibabaGpuV2023"), a);
            imports.extend(tasks.map(Arc::new));
            let price = a.price_per_hour.unwrap_or(0.0);
            let gpu_price = a.gpu_price_per_hour.unwrap_or(0.0);
            for m in machines {
                let n = first_node + nodes.len();
                nodes.push(machine_node(&m, n, price + gpu_price * m.gpus as f64));
            }
        }
        let workload = Workload {
            client,
            generators,
            imports,
        };
        (workload, nodes, objects)
    }

    fn generator(
        &mut self,
        at: &str,
        g: &GeneratorSpec,
        duration: SimDuration,
    ) -> Option<Generator> {
        if let Err(why) = crate::api::manifest::validate_dns_name(&g.name, true) {
            self.error(&format!("{at}.name"), format!("`{}`: {why}", g.name));
        }
        let template = self.template(&format!("{at}.template"));
        let process = self.arrival(&format!("{at}.arrival"), &g.arrival);
        let start = g.start.map_or(SimTime::ZERO, |Dur(d)| SimTime(d.0));
        let stop = g.stop.map_or(SimTime(duration.0), |Dur(d)| SimTime(d.0));
        if stop <= start {
            self.error(&format!("{at}.stop"), "must come after start");
        }
        if let Some(process) = &process {
            self.check_arrivals(at, process, g.count, stop.since(start));
        }
        if let Some(t) = &template {
            for (field, res, given) in [
                ("cpu", "cpu", g.cpu.is_some()),
                ("memory", "memory", g.memory.is_some()),
            ] {
                if given && t.first_container_limits(res) {
                    self.error(&format!("{at}.{field}"), format!("the template's first container has a {res} limit, which a drawn request could pass (requests may not exceed limits): remove the limit or the distribution"));
                }
            }
        }
        let cpu = self.distribution(&format!("{at}.cpu"), g.cpu.as_ref(), &parse_cpu);
        let memory = self.distribution(&format!("{at}.memory"), g.memory.as_ref(), &parse_bytes);
        let run_for = self.distribution(
            &format!("{at}.runFor"),
            g.run_for.as_ref(),
            &crate::sim::dist::parse_latency,
        );
        if let (Some(t), Some(_)) = (&template, &process) {
            // One object made now: what every arrival's will be, less the
            // drawn values (which are always valid quantities).
            if let Err(why) = t.make(&format!("{}-1", g.name), &Default::default()) {
                self.error(&format!("{at}.template"), why);
            }
        }
        Some(Generator {
            name: g.name.clone(),
            template: template?,
            process: process?,
            start,
            stop,
            count: g.count.unwrap_or(u64::MAX),
            cpu,
            memory,
            run_for,
        })
    }

    /// A generator makes at most [`MAX_ARRIVALS`]: its `count`, or what its
    /// process is expected to make over its window.
    fn check_arrivals(
        &mut self,
        at: &str,
        p: &ArrivalProcess,
        count: Option<u64>,
        window: SimDuration,
    ) {
        if count.is_some_and(|c| c <= MAX_ARRIVALS) {
            return;
        }
        let expected = match p {
            ArrivalProcess::Constant { per_second } | ArrivalProcess::Poisson { per_second } => {
                per_second * window.as_secs_f64()
            }
            ArrivalProcess::Diurnal {
                mean_per_second,
                amplitude,
                ..
            } => mean_per_second * (1.0 + amplitude) * window.as_secs_f64(),
            ArrivalProcess::Bursts(b) => b.iter().map(|b| b.count as f64).sum(),
        };
        if expected > MAX_ARRIVALS as f64 {
            self.error(
                &format!("{at}.arrival"),
                format!("would make about {expected:.0} arrivals over its window, more than the {MAX_ARRIVALS} a generator may: give a `count`, a lower rate or a shorter window"),
            );
        }
    }

    /// The inline Pod or Job manifest at `path`.
    fn template(&mut self, path: &str) -> Option<Template> {
        let node = crate::api::manifest::node_at(self.doc, path)?.clone();
        if super::include_of(&node).is_some() {
            self.error(path, "a template is written inline, not included");
            return None;
        }
        let objs = self.manifests_at(path, &node);
        let [o] = objs.as_slice() else {
            if !objs.is_empty() {
                self.error(path, "a template is one manifest");
            }
            return None;
        };
        if !matches!(o.kind, Kind::Pod | Kind::Job) {
            self.error(
                &format!("{path}.kind"),
                format!("a template is a Pod or a Job, not a {}", o.kind.name()),
            );
            return None;
        }
        Some(Template::new(
            o.kind,
            o.meta.namespace.clone(),
            node.to_json(),
        ))
    }

    fn arrival(&mut self, at: &str, a: &ArrivalSpec) -> Option<ArrivalProcess> {
        let given = [
            a.constant.is_some(),
            a.poisson.is_some(),
            a.diurnal.is_some(),
            a.bursts.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.error(at, "give exactly one of constant, poisson, diurnal, bursts");
            return None;
        }
        if let Some(r) = a.constant {
            return Some(ArrivalProcess::Constant { per_second: r.0 });
        }
        if let Some(r) = a.poisson {
            return Some(ArrivalProcess::Poisson { per_second: r.0 });
        }
        if let Some(d) = &a.diurnal {
            let ratio = d.peak_to_trough.unwrap_or(3.0);
            if !(ratio.is_finite() && ratio >= 1.0) {
                self.error(
                    &format!("{at}.diurnal.peakToTrough"),
                    format!("the peak over the trough is 1 or more, not {ratio}"),
                );
                return None;
            }
            let period = d.period.map_or(SimDuration::from_secs(86_400), |Dur(p)| p);
            if period.is_zero() {
                self.error(&format!("{at}.diurnal.period"), "must be longer than zero");
                return None;
            }
            return Some(ArrivalProcess::Diurnal {
                mean_per_second: d.mean.0,
                amplitude: ArrivalProcess::amplitude_for(ratio),
                peak_at: d
                    .peak_at
                    .map_or(SimDuration::from_secs(14 * 3600), |Dur(p)| p),
                period,
            });
        }
        let mut bursts = Vec::new();
        for (i, b) in a.bursts.iter().flatten().enumerate() {
            if b.count == 0 || b.count > MAX_BURST {
                self.error(
                    &format!("{at}.bursts[{i}].count"),
                    format!("between 1 and {MAX_BURST}"),
                );
                return None;
            }
            let over = b.over.map_or(SimDuration::ZERO, |Dur(d)| d);
            bursts.push(Burst {
                at: SimTime(b.at.0 .0),
                count: b.count,
                over,
            });
        }
        bursts.sort_by_key(|b| b.at);
        Some(ArrivalProcess::Bursts(bursts))
    }

    fn distribution(
        &mut self,
        at: &str,
        spec: Option<&LatencySpec>,
        parse: &dyn Fn(&str) -> Result<u64, String>,
    ) -> Option<LatencyDist> {
        match spec?.resolve_with(self.base, parse, parse) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(at, e);
                None
            }
        }
    }

    fn alibaba(&mut self, at: &str, a: &AlibabaSpec) -> (Option<TaskImport>, Vec<Machine>) {
        let namespace = a.namespace.clone().unwrap_or_else(|| "default".into());
        let window = Window {
            from: a.from.map_or(0, |Dur(d)| d.0 / 1_000_000_000),
            until: a.until.map_or(u64::MAX, |Dur(d)| d.0 / 1_000_000_000),
            limit: a.limit.unwrap_or(u64::MAX),
        };
        if window.from >= window.until {
            self.error(&format!("{at}.until"), "must come after `from`");
        }
        for (field, p) in [
            ("pricePerHour", a.price_per_hour),
            ("gpuPricePerHour", a.gpu_price_per_hour),
        ] {
            if p.is_some_and(|p| !(p.is_finite() && p >= 0.0)) {
                self.error(
                    &format!("{at}.{field}"),
                    "a price per hour is a number of zero or more",
                );
            }
        }
        if a.pods.is_none() && a.nodes.is_none() {
            self.error(
                at,
                "name the trace's `pods` file, its `nodes` file, or both",
            );
        }
        let machines = match &a.nodes {
            None => Vec::new(),
            Some(f) => {
                let path = self.base.join(f);
                alibaba::read_nodes(&path).unwrap_or_else(|e| {
                    self.trace_errors(&format!("{at}.nodes"), &path, e);
                    Vec::new()
                })
            }
        };
        let tasks = a.pods.as_ref().and_then(|f| {
            let path = self.base.join(f);
            match alibaba::read_tasks(&path, window) {
                Ok(tasks) => Some(TaskImport {
                    source: format!("alibabaGpuV2023 {f}"),
                    template: task_template(
                        &namespace,
                        a.image.as_deref().unwrap_or("busybox:1.36"),
                    ),
                    tasks,
                }),
                Err(e) => {
                    self.trace_errors(&format!("{at}.pods"), &path, e);
                    None
                }
            }
        });
        (tasks, machines)
    }

    fn borg(&mut self, at: &str, b: &BorgSpec) -> (Option<TaskImport>, Vec<Machine>) {
        let memory = b.memory_scale.0.value();
        if !(b.cpu_scale.is_finite() && b.cpu_scale > 0.0) || memory <= 0 {
            self.error(
                at,
                "cpuScale and memoryScale must be positive: what a normalised 1.0 stands for",
            );
            return (None, Vec::new());
        }
        let scales = borg::Scales {
            cpu_cores: b.cpu_scale,
            memory_bytes: memory as f64,
        };
        let us = |d: &Option<Dur>, default: u64| d.map_or(default, |Dur(d)| d.0 / 1000);
        let window = borg::Window {
            from_us: us(&b.from, 600_000_000),
            until_us: us(&b.until, u64::MAX),
            limit: b.limit.unwrap_or(u64::MAX),
        };
        if window.from_us >= window.until_us {
            self.error(
                &format!("{at}.until"),
                "must come after `from` (default 600s, the trace's start)",
            );
        }
        let files = |list: &[String]| list.iter().map(|f| self.base.join(f)).collect::<Vec<_>>();
        let (machine_files, task_files) = (files(&b.machine_events), files(&b.task_events));
        let machines =
            borg::read_machines(&machine_files, scales, window.from_us).unwrap_or_else(|(f, e)| {
                self.trace_errors(
                    &format!("{at}.machineEvents[{f}]"),
                    &machine_files[f],
                    vec![e],
                );
                Vec::new()
            });
        if task_files.is_empty() {
            return (None, machines);
        }
        let namespace = b.namespace.clone().unwrap_or_else(|| "default".into());
        match borg::read_tasks(&task_files, scales, window) {
            Ok(tasks) => {
                let template =
                    task_template(&namespace, b.image.as_deref().unwrap_or("busybox:1.36"));
                let source = format!("googleBorg2011 {} files", task_files.len());
                (
                    Some(TaskImport {
                        source,
                        template,
                        tasks,
                    }),
                    machines,
                )
            }
            Err((f, e)) => {
                self.trace_errors(&format!("{at}.taskEvents[{f}]"), &task_files[f], vec![e]);
                (None, machines)
            }
        }
    }

    /// The objects of a cluster dump, sanitised, decoded at their own
    /// lines in the dump.
    fn cluster_dump(&mut self, field: &str, file: &str) -> Vec<Object> {
        let full = self.base.join(file);
        let shown = full.display().to_string();
        let Some(text) = self.read_included(field, &full) else {
            return Vec::new();
        };
        let docs = match crate::api::manifest::parse_yaml(&shown, &text) {
            Ok(d) => d,
            Err(e) => {
                self.errors.extend(e);
                return Vec::new();
            }
        };
        let (docs, _counts) = crate::workload::cluster_dump::sanitise(docs);
        let mut out = Vec::new();
        for d in &docs {
            match crate::api::manifest::decode_object(&shown, d, &mut self.report) {
                Ok(objs) => out.extend(objs),
                Err(e) => self.errors.extend(e),
            }
        }
        out
    }

    /// A trace file's errors, at its own lines; one without a line is
    /// reported at the scenario's field that names the file.
    fn trace_errors(&mut self, field: &str, path: &Path, errors: Vec<TraceError>) {
        let shown = path.display().to_string();
        for e in errors {
            match e.line {
                Some(line) => self.errors.push(LoadError::new(
                    &shown,
                    Some(Pos { line, col: 1 }),
                    e.column,
                    e.message,
                )),
                None => self.error(field, format!("`{shown}`: {}", e.message)),
            }
        }
    }
}

/// The Pod every imported task is made from.
fn task_template(namespace: &str, image: &str) -> Template {
    let manifest = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": namespace},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "task", "image": image}]},
    });
    Template::new(Kind::Pod, namespace.to_string(), manifest)
}

/// A trace's machine as a node of the cluster.
fn machine_node(m: &Machine, index: usize, price_per_hour: f64) -> NodePlan {
    let mut capacity = BTreeMap::new();
    capacity.insert(
        "cpu".to_string(),
        Quantity::from_milli(m.cpu_milli.min(i64::MAX as u64) as i64),
    );
    capacity.insert(
        "memory".to_string(),
        Quantity::from_units(m.memory_mib.saturating_mul(1 << 20).min(i64::MAX as u64) as i64),
    );
    capacity.insert("pods".to_string(), Quantity::from_units(110));
    let mut labels = super::kubelet_labels(&m.name);
    if m.gpus > 0 {
        capacity.insert(
            GPU.to_string(),
            Quantity::from_units(m.gpus.min(i64::MAX as u64) as i64),
        );
        if !m.gpu_model.is_empty() {
            labels.insert(GPU_PRODUCT_LABEL.to_string(), m.gpu_model.clone());
        }
        labels.insert("nvidia.com/gpu.count".to_string(), m.gpus.to_string());
    }
    NodePlan {
        name: m.name.clone(),
        pool: "imported".into(),
        labels,
        body: NodeBody {
            unschedulable: false,
            taints: Vec::new(),
            pod_cidr: Some(super::pod_cidr(index)),
            capacity: capacity.clone(),
            allocatable: capacity,
            conditions: Vec::new(),
            addresses: super::node_addresses(index, &m.name),
            images: Vec::new(),
            kubelet_version: "v1.34.0".into(),
        },
        join_at: None,
        price_per_hour,
        standby: false,
        drivers: Default::default(),
    }
}

fn parse_cpu(s: &str) -> Result<u64, String> {
    let q = Quantity::parse(s).map_err(|e| format!("`{s}` is not a CPU quantity: {}", e.0))?;
    u64::try_from(q.milli_value()).map_err(|_| format!("`{s}`: a CPU request is not negative"))
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let q = Quantity::parse(s).map_err(|e| format!("`{s}` is not a memory quantity: {}", e.0))?;
    u64::try_from(q.value()).map_err(|_| format!("`{s}`: a memory request is not negative"))
}
