//! A typed async façade over containerd's gRPC services for one node.
//!
//! Every request carries the `containerd-namespace` header set to the
//! node's name: a node attached to a shared containerd owns only that
//! namespace, and cleanup finds a node's containers there. Containers run
//! with the runc v2 shim on the overlayfs snapshotter, as a default
//! containerd node does. Tasks are in `task`, events in `events`, image
//! import in `import`.

use std::path::Path;
use std::time::Duration;

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::snapshots::{
    ListSnapshotsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
};
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateRequest as CreateLeaseRequest, DeleteContainerRequest,
    DeleteRequest as DeleteLeaseRequest, GetContainerRequest, ListContainersRequest,
    ListTasksRequest,
};
use containerd_client::tonic::{self, Request};
use containerd_client::types::Mount;
use prost_types::Any;

use super::error::{LiveError, Result};
use super::import::ImageRef;

/// The snapshotter every container's rootfs comes from.
pub const SNAPSHOTTER: &str = "overlayfs";
/// The runtime containerd starts a shim for (`containerd-shim-runc-v2`).
pub const RUNTIME: &str = "io.containerd.runc.v2";
/// The type URL containerd expects for an OCI runtime spec.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// One node's view of its containerd: a channel and the namespace it owns.
#[derive(Clone)]
pub struct NodeClient {
    channel: tonic::transport::Channel,
    namespace: String,
    runc_root: Option<std::path::PathBuf>,
}

/// The runc v2 shim's options (containerd.runc.v1.Options); only `root`
/// is set: where runc keeps its container state.
#[derive(Clone, PartialEq, prost::Message)]
struct RuncOptions {
    #[prost(string, tag = "7")]
    root: String,
}

/// A task as containerd lists it: the container it runs, its init pid and
/// status (`Status` of containerd's task API: 1 created, 2 running, 3 stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub id: String,
    pub pid: u32,
    pub status: i32,
    pub exit_status: u32,
}

/// A snapshot: its key and whether it is committed (an image layer) or
/// active (a container's rootfs, or an unpack that was cut off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub key: String,
    pub committed: bool,
}

impl NodeClient {
    /// Dials the unix socket (no TCP anywhere) and checks it answers.
    pub async fn connect(socket: &Path, namespace: &str) -> Result<NodeClient> {
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|e| LiveError::Connect(format!("{}: {e}", socket.display())))?;
        Ok(NodeClient {
            channel,
            namespace: namespace.to_string(),
            runc_root: None,
        })
    }

    /// Keeps runc's container state under `root` instead of the host-wide
    /// /run/containerd/runc: a node we started keeps it in its state/, so a
    /// crash (which clears state/) leaves no runc record behind to clash
    /// with the next container of the same id.
    pub fn with_runc_root(mut self, root: &Path) -> NodeClient {
        self.runc_root = Some(root.to_path_buf());
        self
    }

    /// The runtime options the shim gets, when this node sets any.
    pub(crate) fn runtime_options(&self) -> Option<Any> {
        use prost::Message;
        let root = self.runc_root.as_ref()?;
        let opts = RuncOptions {
            root: root.to_string_lossy().into_owned(),
        };
        Some(Any {
            type_url: "containerd.runc.v1.Options".to_string(),
            value: opts.encode_to_vec(),
        })
    }

    /// The containerd namespace this node owns (the node's name).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// containerd's service clients over this node's channel (a clone of a
    /// channel shares its HTTP/2 connection).
    pub(crate) fn raw(&self) -> containerd_client::Client {
        containerd_client::Client::from(self.channel.clone())
    }

    /// A request in this node's namespace.
    pub(crate) fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        let ns = tonic::metadata::MetadataValue::try_from(self.namespace.as_str())
            .expect("a node name is a valid header value");
        r.metadata_mut().insert("containerd-namespace", ns);
        r
    }

    /// A request under a lease: what it creates is kept from garbage
    /// collection until the lease is deleted.
    pub(crate) fn leased<T>(&self, lease: &str, msg: T) -> Request<T> {
        let mut r = self.req(msg);
        let v = tonic::metadata::MetadataValue::try_from(lease)
            .expect("a lease id is a valid header value");
        r.metadata_mut().insert("containerd-lease", v);
        r
    }

    /// Creates a lease (one that exists already is reused).
    pub(crate) async fn create_lease(&self, id: &str) -> Result<()> {
        let r = self
            .raw()
            .leases()
            .create(self.req(CreateLeaseRequest {
                id: id.to_string(),
                labels: Default::default(),
            }))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(s) => Err(LiveError::rpc("Leases.Create")(s)),
        }
    }

    pub(crate) async fn delete_lease(&self, id: &str) -> Result<()> {
        self.raw()
            .leases()
            .delete(self.req(DeleteLeaseRequest {
                id: id.to_string(),
                sync: false,
            }))
            .await
            .map_err(LiveError::rpc("Leases.Delete"))?;
        Ok(())
    }

    /// The daemon's version string; also how `daemon` knows it is up.
    pub async fn version(&self) -> Result<String> {
        let v = self
            .raw()
            .version()
            .version(Request::new(()))
            .await
            .map_err(LiveError::rpc("Version"))?;
        Ok(v.into_inner().version)
    }

    /// `version` with a deadline, for probing a daemon that may not be up.
    pub async fn version_within(&self, limit: Duration) -> Result<String> {
        tokio::time::timeout(limit, self.version())
            .await
            .map_err(|_| LiveError::Other("containerd Version: no answer".into()))?
    }

    /// Creates a container from an image: an active snapshot keyed by the
    /// container id on top of the image's top layer (its rootfs), then the
    /// container record with the OCI spec. The kubelet's CreateContainer.
    pub async fn create_container(
        &self,
        id: &str,
        image: &ImageRef,
        spec: &serde_json::Value,
    ) -> Result<()> {
        // Until the container record names it, only a lease keeps the new
        // snapshot from the garbage collector (as containerd's own client
        // does in WithNewSnapshot).
        let lease = format!("kubesim-create-{id}");
        self.create_lease(&lease).await?;
        let made = self.create_container_leased(&lease, id, image, spec).await;
        self.delete_lease(&lease).await?;
        made
    }

    async fn create_container_leased(
        &self,
        lease: &str,
        id: &str,
        image: &ImageRef,
        spec: &serde_json::Value,
    ) -> Result<()> {
        self.prepare_rootfs(lease, id, &image.chain_id).await?;
        let container = Container {
            id: id.to_string(),
            image: image.name.clone(),
            runtime: Some(Runtime {
                name: RUNTIME.to_string(),
                options: self.runtime_options(),
            }),
            spec: Some(spec_any(spec)),
            snapshotter: SNAPSHOTTER.to_string(),
            snapshot_key: id.to_string(),
            ..Default::default()
        };
        let created = self
            .raw()
            .containers()
            .create(self.leased(
                lease,
                CreateContainerRequest {
                    container: Some(container),
                },
            ))
            .await;
        if let Err(status) = created {
            // Do not leave the rootfs of a container that was never made.
            let _ = self.remove_snapshot(id).await;
            return Err(LiveError::rpc("Containers.Create")(status));
        }
        Ok(())
    }

    async fn prepare_rootfs(&self, lease: &str, key: &str, parent: &str) -> Result<Vec<Mount>> {
        let r = self
            .raw()
            .snapshots()
            .prepare(self.leased(
                lease,
                PrepareSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_string(),
                    key: key.to_string(),
                    parent: parent.to_string(),
                    labels: Default::default(),
                },
            ))
            .await
            .map_err(LiveError::rpc("Snapshots.Prepare"))?;
        Ok(r.into_inner().mounts)
    }

    /// The container's OCI spec as stored (exec takes its process from it).
    pub async fn container_spec(&self, id: &str) -> Result<serde_json::Value> {
        let r = self
            .raw()
            .containers()
            .get(self.req(GetContainerRequest { id: id.to_string() }))
            .await
            .map_err(LiveError::rpc("Containers.Get"))?;
        let spec = r
            .into_inner()
            .container
            .and_then(|c| c.spec)
            .unwrap_or_default();
        serde_json::from_slice(&spec.value)
            .map_err(|e| LiveError::Other(format!("container {id}: its spec is not JSON: {e}")))
    }

    /// Deletes a container record and its rootfs snapshot (its task must be
    /// deleted first). A container already gone is not an error.
    pub async fn delete_container(&self, id: &str) -> Result<()> {
        let r = self
            .raw()
            .containers()
            .delete(self.req(DeleteContainerRequest { id: id.to_string() }))
            .await;
        match r {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(LiveError::rpc("Containers.Delete")(s)),
        }
        self.remove_snapshot(id).await
    }

    /// Removes a snapshot; one already gone is not an error.
    pub async fn remove_snapshot(&self, key: &str) -> Result<()> {
        let r = self
            .raw()
            .snapshots()
            .remove(self.req(RemoveSnapshotRequest {
                snapshotter: SNAPSHOTTER.to_string(),
                key: key.to_string(),
            }))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(LiveError::rpc("Snapshots.Remove")(s)),
        }
    }

    /// The ids of this namespace's containers, sorted.
    pub async fn list_containers(&self) -> Result<Vec<String>> {
        let r = self
            .raw()
            .containers()
            .list(self.req(ListContainersRequest { filters: vec![] }))
            .await
            .map_err(LiveError::rpc("Containers.List"))?;
        let mut ids: Vec<String> = r
            .into_inner()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// This namespace's tasks, sorted by container id.
    pub async fn list_tasks(&self) -> Result<Vec<TaskInfo>> {
        let r = self
            .raw()
            .tasks()
            .list(self.req(ListTasksRequest {
                filter: String::new(),
            }))
            .await
            .map_err(LiveError::rpc("Tasks.List"))?;
        let mut tasks: Vec<TaskInfo> = r
            .into_inner()
            .tasks
            .into_iter()
            .map(|p| TaskInfo {
                id: p.id,
                pid: p.pid,
                status: p.status,
                exit_status: p.exit_status,
            })
            .collect();
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(tasks)
    }

    /// This namespace's snapshots on the overlayfs snapshotter, by key.
    pub async fn list_snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        use containerd_client::services::v1::snapshots::Kind;
        let mut stream = self
            .raw()
            .snapshots()
            .list(self.req(ListSnapshotsRequest {
                snapshotter: SNAPSHOTTER.to_string(),
                filters: vec![],
            }))
            .await
            .map_err(LiveError::rpc("Snapshots.List"))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(batch) = stream
            .message()
            .await
            .map_err(LiveError::rpc("Snapshots.List"))?
        {
            out.extend(batch.info.into_iter().map(|i| SnapshotInfo {
                committed: i.kind == Kind::Committed as i32,
                key: i.name,
            }));
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// The spec as the `Any` containerd stores with a container.
pub fn spec_any(spec: &serde_json::Value) -> Any {
    Any {
        type_url: SPEC_TYPE_URL.to_string(),
        value: serde_json::to_vec(spec).expect("a JSON value serialises"),
    }
}
