//! Images without a registry: an OCI image archive built from Debian's
//! busybox-static (`/bin/busybox` and its applet links) or from a user's
//! static binary (`/NAME`, its entrypoint).
//!
//! The archive is deterministic: one uncompressed layer whose entries are
//! in a fixed order with mtime 0, owner 0:0 and fixed modes, JSON written in
//! a fixed key order, and no timestamps in the config; so the same inputs
//! give the same manifest digest every time and on every node.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::client::NodeClient;
use super::error::{LiveError, Result};
use super::import::{digest_of, ImageRef, NAME_ANNOTATION};

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";
/// The applets linked to busybox in the image's /bin.
pub const APPLETS: [&str; 32] = [
    "sh", "sleep", "httpd", "nc", "wget", "cat", "dd", "true", "false", "echo", "ls", "head",
    "tail", "env", "ps", "kill", "mkdir", "rm", "cp", "mv", "grep", "sed", "touch", "date",
    "hostname", "id", "ip", "ifconfig", "printf", "yes", "seq", "test",
];
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// What the image's filesystem is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Busybox,
    /// A static binary, installed as `/NAME` and run as the entrypoint.
    Binary(PathBuf),
}

/// A built archive and the identity containerd will give it.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub name: String,
    pub manifest_digest: String,
    pub archive: Vec<u8>,
}

/// The reference a short name stands for, as Docker normalises it:
/// `busybox-web` → `docker.io/library/busybox-web:latest`.
pub fn reference(name: &str) -> String {
    let tagged = if name
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':') || last.contains('@'))
    {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    match tagged.split_once('/') {
        None => format!("docker.io/library/{tagged}"),
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            tagged
        }
        Some(_) => format!("docker.io/{tagged}"),
    }
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Builds the archive for `name` from `source`.
pub fn build(name: &str, source: &ImageSource) -> Result<BuiltImage> {
    let (layer, entrypoint, cmd) = match source {
        ImageSource::Busybox => (busybox_layer()?, vec![], vec!["/bin/sh".to_string()]),
        ImageSource::Binary(path) => {
            let base = name.rsplit('/').next().unwrap_or(name);
            let base = base.split([':', '@']).next().unwrap_or(base).to_string();
            (binary_layer(path, &base)?, vec![format!("/{base}")], vec![])
        }
    };
    let diff_id = digest_of(&layer);
    let config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "Cmd": cmd, "Env": ["PATH=/bin:/"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = serde_json::to_vec(&config).expect("JSON");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(&config), "size": config.len()},
        "layers": [{"mediaType": LAYER_TYPE, "digest": diff_id, "size": layer.len()}],
    }))
    .expect("JSON");
    let reference = reference(name);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest_of(&manifest),
            "size": manifest.len(),
            "annotations": {NAME_ANNOTATION: reference, "org.opencontainers.image.ref.name": "latest"},
        }],
    }))
    .expect("JSON");
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
    ];
    let manifest_digest = digest_of(&manifest);
    for blob in [layer, config, manifest] {
        files.push((format!("blobs/sha256/{}", &digest_of(&blob)[7..]), blob));
    }
    let mut out = TarWriter::new();
    for (path, data) in &files {
        out.file(path, data, 0o644)?;
    }
    Ok(BuiltImage {
        name: reference,
        manifest_digest,
        archive: out.finish()?,
    })
}

/// A tar built entry by entry with every varying field fixed.
struct TarWriter {
    b: tar::Builder<Vec<u8>>,
}

impl TarWriter {
    fn new() -> TarWriter {
        TarWriter {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.b
            .append_data(&mut h, path, std::io::empty())
            .map_err(LiveError::io("tar"))
    }

    fn file(&mut self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.b
            .append_data(&mut h, path, data)
            .map_err(LiveError::io("tar"))
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.b
            .append_link(&mut h, path, target)
            .map_err(LiveError::io("tar"))
    }

    fn finish(self) -> Result<Vec<u8>> {
        self.b.into_inner().map_err(LiveError::io("tar"))
    }
}

/// The directories every container expects to mount over.
const BASE_DIRS: [&str; 7] = ["dev", "etc", "proc", "run", "sys", "tmp", "var"];

fn base_layer(t: &mut TarWriter) -> Result<()> {
    for d in BASE_DIRS {
        t.dir(d)?;
    }
    // The hostname and loopback a program looks up without DNS.
    t.file(
        "etc/hosts",
        b"127.0.0.1\tlocalhost\n::1\tlocalhost\n",
        0o644,
    )?;
    t.file("etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", 0o644)?;
    t.file("etc/group", b"root:x:0:\n", 0o644)
}

fn busybox_layer() -> Result<Vec<u8>> {
    let binary = fs::read(BUSYBOX).map_err(LiveError::io(format!(
        "reading {BUSYBOX} (apt-get install -y busybox-static)"
    )))?;
    check_static(Path::new(BUSYBOX), &binary)?;
    let mut t = TarWriter::new();
    t.dir("bin")?;
    t.file("bin/busybox", &binary, 0o755)?;
    let mut applets = APPLETS.to_vec();
    applets.sort_unstable();
    for a in applets {
        t.symlink(&format!("bin/{a}"), "busybox")?;
    }
    base_layer(&mut t)?;
    t.finish()
}

fn binary_layer(path: &Path, name: &str) -> Result<Vec<u8>> {
    let binary = fs::read(path).map_err(LiveError::io(format!("reading {}", path.display())))?;
    check_static(path, &binary)?;
    let mut t = TarWriter::new();
    t.file(name, &binary, 0o755)?;
    base_layer(&mut t)?;
    t.finish()
}

/// The image has no libc or loader, so a dynamically linked program (one
/// with an ELF PT_INTERP header) could not start in it.
fn check_static(path: &Path, b: &[u8]) -> Result<()> {
    let not = |why: &str| {
        Err(LiveError::Other(format!(
            "{}: {why}; kubesim's images hold only static binaries",
            path.display()
        )))
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" {
        return not("not an ELF executable");
    }
    if b[4] != 2 || b[5] != 1 {
        return not("not a 64-bit little-endian ELF");
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (entsize, count) = (u16_at(0x36), u16_at(0x38));
    for i in 0..count {
        let at = phoff + i * entsize;
        let Some(p_type) = b.get(at..at + 4) else {
            return not("a truncated ELF");
        };
        if u32::from_le_bytes(p_type.try_into().expect("4 bytes")) == 3 {
            return not("dynamically linked (it has an ELF interpreter)");
        }
    }
    Ok(())
}

/// Imports a built image into every node of a run; the refs come back in
/// the nodes' order.
pub async fn import_into(nodes: &[NodeClient], image: &BuiltImage) -> Result<Vec<ImageRef>> {
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        let refs = n.import_archive(&image.archive).await?;
        let r = refs
            .into_iter()
            .find(|r| r.name == image.name)
            .ok_or_else(|| {
                LiveError::Other(format!(
                    "{}: the archive did not hold {}",
                    n.namespace(),
                    image.name
                ))
            })?;
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_normalise_as_docker_does() {
        assert_eq!(
            reference("busybox-web"),
            "docker.io/library/busybox-web:latest"
        );
        assert_eq!(reference("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(reference("me/app"), "docker.io/me/app:latest");
        assert_eq!(
            reference("registry.local:5000/app:v1"),
            "registry.local:5000/app:v1"
        );
    }

    #[test]
    fn a_dynamic_binary_is_refused() {
        // /bin/ls on Debian is dynamically linked against libc.
        let ls = fs::read("/bin/ls").expect("/bin/ls");
        let e = check_static(Path::new("/bin/ls"), &ls).expect_err("dynamic");
        assert!(e.to_string().contains("dynamically linked"), "{e}");
    }
}
