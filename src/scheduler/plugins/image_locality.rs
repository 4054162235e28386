//! ImageLocality: prefer nodes that already hold the pod's images, weighted
//! by how widely each image is spread (so a pod does not pile onto the one
//! node that happens to have a large image).

use std::collections::BTreeMap;

use crate::scheduler::framework::MAX_NODE_SCORE;

const MB: i64 = 1024 * 1024;
/// Below this total the node gets 0: small images are cheap to pull anyway.
pub const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container, the total above which the node gets the full score.
pub const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// An image on a node: its size, and on how many nodes it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageState {
    pub size: i64,
    pub num_nodes: i64,
}

/// Image references as the kubelet reports them: `:latest` appended when
/// no tag follows the last `/`.
pub fn normalized_image_name(name: &str) -> String {
    let colon = name.rfind(':').map(|i| i as isize).unwrap_or(-1);
    let slash = name.rfind('/').map(|i| i as isize).unwrap_or(-1);
    if colon <= slash {
        format!("{name}:latest")
    } else {
        name.to_string()
    }
}

/// The score of a node holding `node_images` (by normalised name) for a pod
/// with `images` (init and app containers, `containers` of them), in a
/// cluster of `total_nodes`.
pub fn score(
    images: &[String],
    containers: usize,
    node_images: &BTreeMap<String, ImageState>,
    total_nodes: i64,
) -> i64 {
    let sum = unique_normalized(images)
        .iter()
        .filter_map(|name| node_images.get(name))
        .map(|st| scaled_size(st.size, st.num_nodes, total_nodes))
        .sum();
    node_score(sum, containers)
}

/// The pod's images as the plugin counts them: normalised, each once, in
/// the order they first appear. The scheduler works this out once per
/// cycle rather than once per node.
pub fn unique_normalized(images: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(images.len());
    for image in images {
        let name = normalized_image_name(image);
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// One held image's share of the sum: its size scaled by the fraction of
/// nodes holding it.
pub fn scaled_size(size: i64, num_nodes: i64, total_nodes: i64) -> i64 {
    let spread = num_nodes as f64 / total_nodes.max(1) as f64;
    (size as f64 * spread) as i64
}

/// The node's score from the sum of its held images' scaled sizes, clamped
/// to the thresholds for a pod of `containers` containers.
pub fn node_score(sum: i64, containers: usize) -> i64 {
    let max = MAX_CONTAINER_THRESHOLD * containers.max(1) as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}
