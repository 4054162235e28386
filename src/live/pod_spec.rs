//! What a pod's sandbox and containers run with on a live node, read from
//! the pod as the apiserver stored it: the process (command and args over
//! the image's entrypoint, as Kubernetes defines them; a scripted run
//! length and exit code become a real process that sleeps and exits),
//! its environment, and its requests and limits.

use super::import::ImageRef;
use super::node::LiveNode;
use super::spec::{sandbox_args, PodNamespaces, Resources, SpecInput};
use crate::api::Object;

/// The sandbox ("pause") process of `pod`.
pub fn sandbox_input(node: &str, pod: &Object, id: &str) -> SpecInput {
    SpecInput {
        node: node.to_string(),
        pod_uid: pod.meta.uid.clone(),
        container_id: id.to_string(),
        args: sandbox_args(),
        env: vec!["PATH=/bin:/".into()],
        cwd: "/".into(),
        resources: Resources::default(),
        namespaces: PodNamespaces::Sandbox {
            hostname: pod.meta.name.clone(),
        },
    }
}

/// Container `index` of `pod` (app containers, then init containers),
/// joining the sandbox process `sandbox_pid`.
pub fn container_input(
    node: &LiveNode,
    pod: &Object,
    index: usize,
    id: &str,
    sandbox_pid: u32,
) -> Result<(SpecInput, ImageRef), String> {
    let p = pod.as_pod().ok_or("not a pod")?;
    let api = &p.spec.api;
    let n = api.containers.len();
    let (c, model) = if index < n {
        (&api.containers[index], &p.spec.containers[index])
    } else {
        let j = index - n;
        let inits = api.init_containers.as_deref().unwrap_or_default();
        (
            inits.get(j).ok_or("no such init container")?,
            p.spec
                .init_containers
                .get(j)
                .ok_or("no such init container")?,
        )
    };
    let image_name = c.image.clone().unwrap_or_default();
    let (image, stand_in) = node.image_for(&image_name).ok_or_else(|| {
        format!(
            "image {image_name:?} has no local image on this node: map it under `live.images` (there is no registry)"
        )
    })?;
    let command = c.command.clone().unwrap_or_default();
    let args = c.args.clone().unwrap_or_default();
    let mut process = if command.is_empty() && args.is_empty() && !stand_in.is_empty() {
        stand_in
    } else {
        image.config.process_args(&command, &args)
    };
    if let Some(run) = model.run_for {
        // `kubesim.io/run-for` and `exit-code`: the process runs that long.
        let ms = run.nanos() / 1_000_000;
        let secs = if ms % 1000 == 0 {
            (ms / 1000).to_string()
        } else {
            format!("{}.{:03}", ms / 1000, ms % 1000)
        };
        let script = format!("sleep {secs}; exit {}", model.exit_code);
        process = vec!["/bin/sh".into(), "-c".into(), script];
    }
    if process.is_empty() {
        return Err(format!(
            "container {}: no command, and the image has none",
            model.name
        ));
    }
    let mut env = image.config.env.clone();
    for e in c.env.iter().flatten() {
        if let Some(v) = &e.value {
            env.push(format!("{}={v}", e.name));
        }
    }
    let milli = |q: Option<&crate::api::quantity::Quantity>| q.map(|q| q.milli_value());
    let resources = Resources {
        cpu_request_milli: milli(model.requests.get("cpu")),
        cpu_limit_milli: milli(model.limits.get("cpu")),
        memory_limit_bytes: model.limits.get("memory").map(|q| q.value()),
    };
    let cwd = c
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| match image.config.working_dir.as_str() {
            "" => "/".into(),
            w => w.into(),
        });
    let input = SpecInput {
        node: node.name().to_string(),
        pod_uid: pod.meta.uid.clone(),
        container_id: id.to_string(),
        args: process,
        env,
        cwd,
        resources,
        namespaces: PodNamespaces::Join { sandbox_pid },
    };
    Ok((input, image))
}
