//! Resource amounts as the scheduler accounts them: CPU in millicores,
//! everything else in whole units, per resource name; and the "non-zero"
//! requests that stop a pod without requests from looking free.

use std::collections::BTreeMap;

use crate::api::quantity::Quantity;

/// A container without a CPU request counts as this many millicores when
/// spreading load (`DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// …and without a memory request as this many bytes (`DefaultMemoryRequest`, 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// Amounts per resource name; CPU in millicores.
pub type Amounts = BTreeMap<String, i64>;

/// Amounts with the common resources in fields, as upstream's
/// `framework.Resource` keeps them: lookups on the hot path compare no
/// strings. Extended resources stay in a map.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Res {
    pub cpu: i64,
    pub memory: i64,
    pub ephemeral: i64,
    pub pods: i64,
    /// Whether `pods` was given (a node without it has no pod limit here).
    pub has_pods: bool,
    pub scalar: BTreeMap<String, i64>,
}

impl Res {
    pub fn from_amounts(a: &Amounts) -> Res {
        let mut r = Res::default();
        for (k, v) in a {
            match k.as_str() {
                CPU => r.cpu = *v,
                MEMORY => r.memory = *v,
                EPHEMERAL_STORAGE => r.ephemeral = *v,
                "pods" => {
                    r.pods = *v;
                    r.has_pods = true;
                }
                _ => {
                    r.scalar.insert(k.clone(), *v);
                }
            }
        }
        r
    }

    #[inline]
    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.cpu,
            MEMORY => self.memory,
            EPHEMERAL_STORAGE => self.ephemeral,
            "pods" => self.pods,
            _ => self.scalar.get(name).copied().unwrap_or(0),
        }
    }

    fn combine(&mut self, other: &Res, f: impl Fn(i64, i64) -> i64) {
        self.cpu = f(self.cpu, other.cpu);
        self.memory = f(self.memory, other.memory);
        self.ephemeral = f(self.ephemeral, other.ephemeral);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = f(*e, *v);
        }
    }

    pub fn add(&mut self, other: &Res) {
        self.combine(other, |a, b| a + b);
    }

    pub fn sub(&mut self, other: &Res) {
        self.combine(other, |a, b| a - b);
    }

    pub fn max_with(&mut self, other: &Res) {
        self.combine(other, i64::max);
    }

    /// The requested resources, cpu, memory, ephemeral storage, then the
    /// extended ones in name order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, i64)> {
        [
            (CPU, self.cpu),
            (MEMORY, self.memory),
            (EPHEMERAL_STORAGE, self.ephemeral),
        ]
        .into_iter()
        .chain(self.scalar.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    pub fn is_zero(&self) -> bool {
        self.entries().all(|(_, v)| v == 0)
    }
}

/// The scheduler's integer amount of a quantity: millicores for CPU, the
/// value rounded up otherwise (as `resource.Quantity.Value()` does).
pub fn amount(resource: &str, q: &Quantity) -> i64 {
    if resource == CPU {
        q.milli_value()
    } else {
        q.value()
    }
}

/// One container's requests; a resource absent from the map was not
/// requested at all, which differs from an explicit zero.
pub fn container_amounts(requests: &BTreeMap<String, Quantity>) -> Amounts {
    requests
        .iter()
        .map(|(k, q)| (k.clone(), amount(k, q)))
        .collect()
}

/// What one pod asks for, as the scheduler computes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodRequests {
    /// Plain requests: app containers summed, the largest init container if
    /// larger, plus overhead.
    pub plain: Res,
    /// CPU and memory with the non-zero defaults for missing requests.
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
}

impl PodRequests {
    /// From container requests (app containers, then init containers).
    pub fn from_containers(apps: &[Amounts], inits: &[Amounts], overhead: &Amounts) -> Self {
        let mut plain = Res::default();
        let (mut nz_cpu, mut nz_mem) = (0, 0);
        for c in apps {
            plain.add(&Res::from_amounts(c));
            let (c_cpu, c_mem) = non_zero(c);
            nz_cpu += c_cpu;
            nz_mem += c_mem;
        }
        for c in inits {
            plain.max_with(&Res::from_amounts(c));
            let (c_cpu, c_mem) = non_zero(c);
            nz_cpu = nz_cpu.max(c_cpu);
            nz_mem = nz_mem.max(c_mem);
        }
        plain.add(&Res::from_amounts(overhead));
        nz_cpu += overhead.get(CPU).copied().unwrap_or(0);
        nz_mem += overhead.get(MEMORY).copied().unwrap_or(0);
        PodRequests {
            plain,
            non_zero_cpu: nz_cpu,
            non_zero_memory: nz_mem,
        }
    }

    #[inline]
    pub fn get(&self, resource: &str) -> i64 {
        self.plain.get(resource)
    }

    /// The request used for `resource` when scoring: non-zero for CPU and
    /// memory unless `use_requested`.
    pub fn for_scoring(&self, resource: &str, use_requested: bool) -> i64 {
        match resource {
            CPU if !use_requested => self.non_zero_cpu,
            MEMORY if !use_requested => self.non_zero_memory,
            _ => self.get(resource),
        }
    }

    /// Whether the pod requests nothing at all (a best-effort pod).
    pub fn is_best_effort(&self) -> bool {
        self.plain.is_zero()
    }
}

fn non_zero(c: &Amounts) -> (i64, i64) {
    (
        c.get(CPU).copied().unwrap_or(DEFAULT_MILLI_CPU_REQUEST),
        c.get(MEMORY).copied().unwrap_or(DEFAULT_MEMORY_REQUEST),
    )
}

/// A node's resources as the scheduler's cache holds them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeResources {
    pub allocatable: Res,
    /// Sum of the plain requests of the pods on the node.
    pub requested: Res,
    /// Sum of their non-zero CPU and memory.
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub pods: i64,
}

impl NodeResources {
    pub fn new(allocatable: Amounts) -> Self {
        NodeResources {
            allocatable: Res::from_amounts(&allocatable),
            ..Default::default()
        }
    }

    /// Accounts a pod placed on the node.
    pub fn add_pod(&mut self, pod: &PodRequests) {
        self.requested.add(&pod.plain);
        self.non_zero_cpu += pod.non_zero_cpu;
        self.non_zero_memory += pod.non_zero_memory;
        self.pods += 1;
    }

    /// Forgets a pod that left the node.
    pub fn remove_pod(&mut self, pod: &PodRequests) {
        self.requested.sub(&pod.plain);
        self.non_zero_cpu -= pod.non_zero_cpu;
        self.non_zero_memory -= pod.non_zero_memory;
        self.pods -= 1;
    }

    #[inline]
    pub fn allocatable(&self, resource: &str) -> i64 {
        self.allocatable.get(resource)
    }

    /// Already requested on the node, non-zero for CPU and memory unless
    /// `use_requested`.
    pub fn requested_for_scoring(&self, resource: &str, use_requested: bool) -> i64 {
        match resource {
            CPU if !use_requested => self.non_zero_cpu,
            MEMORY if !use_requested => self.non_zero_memory,
            _ => self.requested.get(resource),
        }
    }
}

/// Whether a resource is a scalar (extended) one: not CPU, memory,
/// ephemeral storage or pods.
pub fn is_scalar(resource: &str) -> bool {
    !matches!(resource, CPU | MEMORY | EPHEMERAL_STORAGE | "pods")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pairs: &[(&str, i64)]) -> Amounts {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn missing_requests_count_as_the_defaults_explicit_zero_stays_zero() {
        let p = PodRequests::from_containers(&[c(&[]), c(&[(CPU, 0), (MEMORY, 5)])], &[], &c(&[]));
        assert_eq!(p.non_zero_cpu, DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(p.non_zero_memory, DEFAULT_MEMORY_REQUEST + 5);
        assert_eq!(p.get(CPU), 0);
        let none = PodRequests::from_containers(&[], &[], &c(&[]));
        assert_eq!((none.non_zero_cpu, none.non_zero_memory), (0, 0));
    }

    #[test]
    fn an_init_container_counts_when_larger_than_the_apps() {
        let p = PodRequests::from_containers(
            &[c(&[(CPU, 100)]), c(&[(CPU, 200)])],
            &[c(&[(CPU, 500)])],
            &c(&[(CPU, 10)]),
        );
        assert_eq!(p.get(CPU), 510);
    }
}
