//! The image registry, as far as kubelets see it: which pulls fail.
//!
//! The registry is outside the cluster: no component runs it. A fault
//! (`failImagePulls`) makes pulls of an image (or of every image) from some
//! nodes (or all) fail while it lasts; a kubelet asks here when a pull
//! starts, as its container runtime would find out from the registry's
//! answer. Nothing else about a registry is modelled: a pull that does not
//! fail takes the kubelet's pull time.

/// One outage: pulls of `image` (every image when `None`) from `nodes`
/// (every node when empty) fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullOutage {
    pub image: Option<String>,
    pub nodes: Vec<String>,
}

impl PullOutage {
    fn covers(&self, image: &str, node: &str) -> bool {
        self.image.as_deref().is_none_or(|i| i == image)
            && (self.nodes.is_empty() || self.nodes.iter().any(|n| n == node))
    }
}

/// The outages in force, in the order they began.
#[derive(Debug, Default)]
pub struct Registry {
    outages: Vec<PullOutage>,
}

impl Registry {
    /// Starts `o`; `false` if the same outage already stands.
    pub fn fail(&mut self, o: PullOutage) -> bool {
        if self.outages.contains(&o) {
            return false;
        }
        self.outages.push(o);
        true
    }

    /// Ends the outage equal to `o`; `false` if there was none.
    pub fn restore(&mut self, o: &PullOutage) -> bool {
        let before = self.outages.len();
        self.outages.retain(|x| x != o);
        self.outages.len() != before
    }

    /// Whether a pull of `image` by `node` starting now fails.
    pub fn pull_fails(&self, image: &str, node: &str) -> bool {
        self.outages.iter().any(|o| o.covers(image, node))
    }
}
