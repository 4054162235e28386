//! One error type for the live data plane: a containerd call that failed
//! (its gRPC status), a daemon that did not come up, or an I/O error on the
//! node's files. The kubelet seam turns these into the container statuses
//! and events a real kubelet shows, so the message says what was being done.

use std::fmt;

use containerd_client::tonic;

/// What went wrong talking to, or running, a node's containerd.
#[derive(Debug)]
pub enum LiveError {
    /// A containerd RPC answered with a non-OK status.
    Rpc {
        call: &'static str,
        status: tonic::Status,
    },
    /// The unix socket could not be dialled.
    Connect(String),
    /// Reading or writing the node's files, or spawning a process.
    Io { what: String, err: std::io::Error },
    /// Anything else, said in words (a malformed image, a daemon that died).
    Other(String),
}

pub type Result<T> = std::result::Result<T, LiveError>;

impl LiveError {
    pub fn rpc(call: &'static str) -> impl FnOnce(tonic::Status) -> LiveError {
        move |status| LiveError::Rpc { call, status }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LiveError {
        let what = what.into();
        move |err| LiveError::Io { what, err }
    }

    /// The gRPC code, when containerd answered: NotFound and AlreadyExists
    /// are outcomes callers act on (an image imported twice, a task gone).
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            LiveError::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::Rpc { call, status } => {
                write!(
                    f,
                    "containerd {call}: {:?}: {}",
                    status.code(),
                    status.message()
                )
            }
            LiveError::Connect(m) => write!(f, "connecting to containerd: {m}"),
            LiveError::Io { what, err } => write!(f, "{what}: {err}"),
            LiveError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LiveError {}
