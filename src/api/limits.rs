//! The upper bounds kubesim puts on what a scenario may ask for, so that a
//! typo (`count: 10000000`) is an error naming the field instead of a run
//! that exhausts memory. Each bound is generous against Kubernetes' own
//! tested limits (the SIG Scalability thresholds: 5,000 nodes, 150,000 pods,
//! 110 pods per node) and documented in ARCHITECTURE.md ("Input limits").

/// Nodes in a cluster, all pools together: four times the 5,000 nodes
/// Kubernetes is tested at.
pub const MAX_NODES: u64 = 20_000;

/// Replicas of one workload (`spec.replicas` of a Deployment, ReplicaSet,
/// StatefulSet or ReplicationController, a `scale` step, an HPA's
/// `maxReplicas`): the 150,000 pods Kubernetes is tested at per cluster.
pub const MAX_REPLICAS: i64 = 150_000;

/// A Job's `parallelism` in Indexed mode: upstream's
/// `maxParallelismForIndexedJob`. (Completions need no bound of kubesim's
/// own: they are an int32, and the Job controller counts them rather than
/// allocating anything per completion.)
pub const MAX_INDEXED_PARALLELISM: i64 = 100_000;

/// Why a count is refused, for the error message.
pub fn too_many(what: &str, value: i64, max: i64, why: &str) -> String {
    format!("Invalid value: {value}: must be less than or equal to {max} ({what}: {why})")
}
