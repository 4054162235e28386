//! `kubesim live ...`: the commands of live mode that need no scenario:
//! `live image build` (an OCI archive from busybox-static or a static
//! binary) and `live cleanup DIR` (what a `kill -9`ed live run left).
//!
//! `LiveArgs` lets arguments and subcommands conflict, so `kubesim live
//! SCENARIO` can sit beside the subcommands: add `scenario: Option<PathBuf>`
//! (and its flags) to `LiveArgs` and drop `subcommand_required`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use kubesim::live::{cleanup, image};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_required = true)]
pub struct LiveArgs {
    #[command(subcommand)]
    pub command: Option<LiveCommand>,
}

#[derive(Subcommand)]
pub enum LiveCommand {
    /// Images for live nodes, without a registry.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Kill and remove what a killed live run left in DIR: containerd
    /// daemons, shims, task processes, containers, snapshots, mounts, cgroups.
    Cleanup {
        /// The live run's directory (it holds nodes/).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build an OCI image archive from Debian's busybox-static, or from a
    /// static binary run as /NAME.
    Build {
        /// The image's name (busybox-web → docker.io/library/busybox-web:latest).
        name: String,
        /// A static binary to install as /NAME and run as the entrypoint.
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Where to write the archive [default: NAME.tar, '/' and ':' as '_'].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn live_cmd(args: LiveArgs) -> ExitCode {
    match args.command {
        Some(LiveCommand::Image {
            command: ImageCommand::Build { name, binary, out },
        }) => image_build(&name, binary, out),
        Some(LiveCommand::Cleanup { dir }) => cleanup_cmd(&dir),
        None => unreachable!("clap requires a subcommand"),
    }
}

fn image_build(name: &str, binary: Option<PathBuf>, out: Option<PathBuf>) -> ExitCode {
    let source = binary.map_or(image::ImageSource::Busybox, image::ImageSource::Binary);
    let built = match image::build(name, &source) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let out =
        out.unwrap_or_else(|| PathBuf::from(format!("{}.tar", name.replace(['/', ':'], "_"))));
    if let Err(e) = std::fs::write(&out, &built.archive) {
        eprintln!("error: writing {}: {e}", out.display());
        return ExitCode::from(1);
    }
    println!(
        "{}: manifest {}, {} bytes -> {}",
        built.name,
        built.manifest_digest,
        built.archive.len(),
        out.display()
    );
    ExitCode::SUCCESS
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
}

fn cleanup_cmd(dir: &Path) -> ExitCode {
    let rt = runtime();
    let nodes = match rt.block_on(cleanup::cleanup(dir)) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for n in &nodes {
        println!("{}: found   {}", n.node, n.found);
        println!("{}: removed {}", n.node, n.removed);
    }
    match rt.block_on(cleanup::count_leftovers(dir)) {
        Ok(left) if left.total() == 0 => {
            println!("{} node(s) clean", nodes.len());
            ExitCode::SUCCESS
        }
        Ok(left) => {
            eprintln!("error: still left: {left}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: recounting: {e}");
            ExitCode::from(1)
        }
    }
}
