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
    let mut seen = std::collections::BTreeSet::new();
    let mut sum = 0i64;
    for image in images {
        let name = normalized_image_name(image);
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(st) = node_images.get(&name) {
            let spread = st.num_nodes as f64 / total_nodes.max(1) as f64;
            sum += (st.size as f64 * spread) as i64;
        }
    }
    let max = MAX_CONTAINER_THRESHOLD * containers.max(1) as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}
