//! Importing an OCI image archive into a node without a registry, through
//! containerd's own services as `ctr images import` does: every blob into
//! the content store (Write stream), each layer unpacked into a committed
//! snapshot named by its chain ID (snapshots Prepare, diff Apply, Commit),
//! then the image record (images Create).
//!
//! Garbage collection must not take what an image needs: the work runs under
//! a lease, and the blobs carry containerd's `gc.ref` labels (manifest →
//! config and layers, config → the top layer's snapshot), so once the lease
//! goes the image keeps them alive.

use std::collections::BTreeMap;
use std::io::Read;

use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, GetImageRequest, Image, InfoRequest, ReadContentRequest,
    UpdateImageRequest, WriteAction, WriteContentRequest,
};
use containerd_client::tonic::{self, codegen::tokio_stream};
use containerd_client::types::Descriptor;
use sha2::{Digest, Sha256};

use super::client::{NodeClient, SNAPSHOTTER};
use super::error::{LiveError, Result};

/// The annotation `ctr images import` reads the image's name from.
pub const NAME_ANNOTATION: &str = "io.containerd.image.name";
const WRITE_CHUNK: usize = 1 << 20;

/// An image as a node holds it: enough to create containers from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub name: String,
    pub manifest_digest: String,
    /// The chain ID of the top layer: the committed snapshot a container's
    /// rootfs is prepared on.
    pub chain_id: String,
    pub config: ImageConfig,
}

/// The parts of the image config a container's process comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
}

impl ImageConfig {
    /// The process args as Kubernetes defines them: `command` replaces the
    /// image's Entrypoint and `args` its Cmd; args alone run after the
    /// Entrypoint; neither runs Entrypoint + Cmd.
    pub fn process_args(&self, command: &[String], args: &[String]) -> Vec<String> {
        match (command.is_empty(), args.is_empty()) {
            (false, _) => command.iter().chain(args).cloned().collect(),
            (true, false) => self.entrypoint.iter().chain(args).cloned().collect(),
            (true, true) => self.entrypoint.iter().chain(&self.cmd).cloned().collect(),
        }
    }
}

/// sha256 of bytes in OCI digest form.
pub fn digest_of(bytes: &[u8]) -> String {
    let mut out = String::from("sha256:");
    for b in Sha256::digest(bytes) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The chain IDs of a layer stack (OCI image spec): the first is the first
/// diff ID; each next is sha256 of "parent-chain-id diff-id".
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => digest_of(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// An archive's blobs by path, and the images its index names.
struct Archive {
    files: BTreeMap<String, Vec<u8>>,
}

impl Archive {
    fn read(bytes: &[u8]) -> Result<Archive> {
        let bad = |e: std::io::Error| LiveError::Other(format!("image archive: {e}"));
        let mut files = BTreeMap::new();
        let mut tar = tar::Archive::new(bytes);
        for entry in tar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(bad)?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(bad)?;
            files.insert(path, data);
        }
        Ok(Archive { files })
    }

    fn blob(&self, digest: &str) -> Result<&[u8]> {
        let path = format!("blobs/{}", digest.replacen(':', "/", 1));
        self.files
            .get(&path)
            .map(Vec::as_slice)
            .ok_or_else(|| LiveError::Other(format!("image archive: no blob {digest}")))
    }

    fn json(&self, path_or_digest: &str) -> Result<serde_json::Value> {
        let bytes = match self.files.get(path_or_digest) {
            Some(b) => b.as_slice(),
            None => self.blob(path_or_digest)?,
        };
        serde_json::from_slice(bytes)
            .map_err(|e| LiveError::Other(format!("image archive: {path_or_digest}: {e}")))
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn descriptor(v: &serde_json::Value) -> Descriptor {
    Descriptor {
        media_type: v["mediaType"].as_str().unwrap_or_default().to_string(),
        digest: v["digest"].as_str().unwrap_or_default().to_string(),
        size: v["size"].as_i64().unwrap_or_default(),
        annotations: Default::default(),
    }
}

/// What an image config says, and its layers' chain IDs.
fn read_config(config: &serde_json::Value) -> (ImageConfig, Vec<String>) {
    let c = &config["config"];
    let cfg = ImageConfig {
        entrypoint: strings(&c["Entrypoint"]),
        cmd: strings(&c["Cmd"]),
        env: strings(&c["Env"]),
        working_dir: c["WorkingDir"].as_str().unwrap_or_default().to_string(),
    };
    (cfg, chain_ids(&strings(&config["rootfs"]["diff_ids"])))
}

impl NodeClient {
    /// Imports every image an OCI archive's index names (by its
    /// `io.containerd.image.name` annotation) and unpacks it.
    pub async fn import_archive(&self, bytes: &[u8]) -> Result<Vec<ImageRef>> {
        let archive = Archive::read(bytes)?;
        let index = archive.json("index.json")?;
        let lease = format!("kubesim-import-{}", &digest_of(bytes)[7..23]);
        self.create_lease(&lease).await?;
        let mut out = Vec::new();
        let mut result = Ok(());
        for m in index["manifests"].as_array().cloned().unwrap_or_default() {
            match self.import_manifest(&archive, &m, &lease).await {
                Ok(r) => out.push(r),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.delete_lease(&lease).await?;
        result.map(|()| out)
    }

    async fn import_manifest(
        &self,
        a: &Archive,
        m: &serde_json::Value,
        lease: &str,
    ) -> Result<ImageRef> {
        let name = m["annotations"][NAME_ANNOTATION]
            .as_str()
            .ok_or_else(|| {
                LiveError::Other(format!(
                    "image archive: a manifest has no {NAME_ANNOTATION}"
                ))
            })?
            .to_string();
        let target = descriptor(m);
        let manifest = a.json(&target.digest)?;
        let config_desc = descriptor(&manifest["config"]);
        let config_json = a.json(&config_desc.digest)?;
        let (config, chains) = read_config(&config_json);
        let layers: Vec<Descriptor> = manifest["layers"]
            .as_array()
            .map(|l| l.iter().map(descriptor).collect())
            .unwrap_or_default();
        if layers.len() != chains.len() || layers.is_empty() {
            return Err(LiveError::Other(format!(
                "image {name}: {} layers but {} diff_ids",
                layers.len(),
                chains.len()
            )));
        }
        for l in &layers {
            self.write_blob(lease, &l.digest, a.blob(&l.digest)?, BTreeMap::new())
                .await?;
        }
        let top = chains.last().cloned().unwrap_or_default();
        let snap_label = BTreeMap::from([(
            format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"),
            top.clone(),
        )]);
        self.write_blob(
            lease,
            &config_desc.digest,
            a.blob(&config_desc.digest)?,
            snap_label,
        )
        .await?;
        let mut refs = BTreeMap::from([(
            "containerd.io/gc.ref.content.config".to_string(),
            config_desc.digest.clone(),
        )]);
        for (i, l) in layers.iter().enumerate() {
            refs.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                l.digest.clone(),
            );
        }
        self.write_blob(lease, &target.digest, a.blob(&target.digest)?, refs)
            .await?;
        self.unpack(lease, &layers, &chains).await?;
        self.put_image(lease, &name, target.clone()).await?;
        Ok(ImageRef {
            name,
            manifest_digest: target.digest,
            chain_id: top,
            config,
        })
    }

    /// Writes one blob into the content store unless it is already there.
    async fn write_blob(
        &self,
        lease: &str,
        digest: &str,
        data: &[u8],
        labels: BTreeMap<String, String>,
    ) -> Result<()> {
        let have = self
            .raw()
            .content()
            .info(self.req(InfoRequest {
                digest: digest.to_string(),
            }))
            .await;
        if have.is_ok() {
            return Ok(());
        }
        let total = data.len() as i64;
        let reference = format!("kubesim-{digest}");
        let mut msgs: Vec<WriteContentRequest> = data
            .chunks(WRITE_CHUNK)
            .enumerate()
            .map(|(i, chunk)| WriteContentRequest {
                action: WriteAction::Write as i32,
                r#ref: reference.clone(),
                total,
                expected: digest.to_string(),
                offset: (i * WRITE_CHUNK) as i64,
                data: chunk.to_vec(),
                labels: Default::default(),
            })
            .collect();
        msgs.push(WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: reference,
            total,
            expected: digest.to_string(),
            offset: total,
            data: vec![],
            labels: labels.into_iter().collect(),
        });
        let stream = tokio_stream::iter(msgs);
        let mut responses = self
            .raw()
            .content()
            .write(self.leased(lease, stream))
            .await
            .map_err(LiveError::rpc("Content.Write"))?
            .into_inner();
        loop {
            match responses.message().await {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(s) if s.code() == tonic::Code::AlreadyExists => return Ok(()),
                Err(s) => return Err(LiveError::rpc("Content.Write")(s)),
            }
        }
    }

    /// Unpacks the layers bottom-up into committed snapshots named by chain
    /// ID; a chain already committed (another image shares it) is skipped.
    async fn unpack(&self, lease: &str, layers: &[Descriptor], chains: &[String]) -> Result<()> {
        for (i, (layer, chain)) in layers.iter().zip(chains).enumerate() {
            let stat = self
                .raw()
                .snapshots()
                .stat(self.req(StatSnapshotRequest {
                    snapshotter: SNAPSHOTTER.into(),
                    key: chain.clone(),
                }))
                .await;
            if stat.is_ok() {
                continue;
            }
            let parent = if i == 0 {
                String::new()
            } else {
                chains[i - 1].clone()
            };
            let key = format!("kubesim-extract {chain}");
            let mounts = self
                .raw()
                .snapshots()
                .prepare(self.leased(
                    lease,
                    PrepareSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        key: key.clone(),
                        parent,
                        labels: Default::default(),
                    },
                ))
                .await
                .map_err(LiveError::rpc("Snapshots.Prepare"))?
                .into_inner()
                .mounts;
            self.raw()
                .diff()
                .apply(self.leased(
                    lease,
                    ApplyRequest {
                        diff: Some(layer.clone()),
                        mounts,
                        payloads: Default::default(),
                        sync_fs: false,
                    },
                ))
                .await
                .map_err(LiveError::rpc("Diff.Apply"))?;
            self.raw()
                .snapshots()
                .commit(self.leased(
                    lease,
                    CommitSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        name: chain.clone(),
                        key,
                        labels: Default::default(),
                    },
                ))
                .await
                .map_err(LiveError::rpc("Snapshots.Commit"))?;
        }
        Ok(())
    }

    /// Creates the image record, or points an existing name at this target.
    async fn put_image(&self, lease: &str, name: &str, target: Descriptor) -> Result<()> {
        let image = Image {
            name: name.to_string(),
            target: Some(target),
            ..Default::default()
        };
        let created = self
            .raw()
            .images()
            .create(self.leased(
                lease,
                CreateImageRequest {
                    image: Some(image.clone()),
                    source_date_epoch: None,
                },
            ))
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                self.raw()
                    .images()
                    .update(self.leased(
                        lease,
                        UpdateImageRequest {
                            image: Some(image),
                            update_mask: None,
                            source_date_epoch: None,
                        },
                    ))
                    .await
                    .map_err(LiveError::rpc("Images.Update"))?;
                Ok(())
            }
            Err(s) => Err(LiveError::rpc("Images.Create")(s)),
        }
    }

    /// An image this node already holds (after a restart, say), read back
    /// from its manifest and config blobs; None when the name is unknown.
    pub async fn image(&self, name: &str) -> Result<Option<ImageRef>> {
        let got = self
            .raw()
            .images()
            .get(self.req(GetImageRequest {
                name: name.to_string(),
            }))
            .await;
        let image = match got {
            Ok(r) => r.into_inner().image,
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
            Err(s) => return Err(LiveError::rpc("Images.Get")(s)),
        };
        let Some(target) = image.and_then(|i| i.target) else {
            return Ok(None);
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&self.read_blob(&target.digest).await?)
                .map_err(|e| LiveError::Other(format!("image {name}: manifest: {e}")))?;
        let cfg_digest = manifest["config"]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let config_json: serde_json::Value =
            serde_json::from_slice(&self.read_blob(&cfg_digest).await?)
                .map_err(|e| LiveError::Other(format!("image {name}: config: {e}")))?;
        let (config, chains) = read_config(&config_json);
        Ok(Some(ImageRef {
            name: name.to_string(),
            manifest_digest: target.digest,
            chain_id: chains.last().cloned().unwrap_or_default(),
            config,
        }))
    }

    async fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let mut stream = self
            .raw()
            .content()
            .read(self.req(ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(LiveError::rpc("Content.Read"))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(LiveError::rpc("Content.Read"))?
        {
            out.extend_from_slice(&chunk.data);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = "sha256:aa".to_string();
        let b = "sha256:bb".to_string();
        let chains = chain_ids(&[a.clone(), b.clone()]);
        // ChainID(L0) = DiffID(L0); ChainID(L1) = sha256("sha256:aa sha256:bb").
        assert_eq!(chains[0], a);
        assert_eq!(chains[1], digest_of(b"sha256:aa sha256:bb"));
    }

    #[test]
    fn command_and_args_combine_with_the_image_as_kubernetes_says() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let c = ImageConfig {
            entrypoint: s(&["/ep"]),
            cmd: s(&["c1"]),
            ..Default::default()
        };
        assert_eq!(c.process_args(&[], &[]), s(&["/ep", "c1"]));
        assert_eq!(c.process_args(&[], &s(&["a"])), s(&["/ep", "a"]));
        assert_eq!(c.process_args(&s(&["/bin/sh"]), &[]), s(&["/bin/sh"]));
        assert_eq!(
            c.process_args(&s(&["/bin/sh"]), &s(&["-c", "x"])),
            s(&["/bin/sh", "-c", "x"])
        );
    }
}
