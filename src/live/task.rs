//! A container's task (its running process) and exec'd processes: what the
//! kubelet's StartContainer, StopContainer and exec probes do through CRI,
//! here straight on containerd's task service.
//!
//! Stop follows killContainer: SIGTERM, then SIGKILL when the grace period
//! ends. Exec follows an exec probe: the container's process spec with the
//! probe's command, its exit code, and a timeout after which the process is
//! killed and the probe fails.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::services::v1::{
    CreateTaskRequest, DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest, KillRequest,
    StartRequest, WaitRequest,
};
use containerd_client::tonic;
use prost_types::{Any, Timestamp};

use super::client::{NodeClient, SNAPSHOTTER};
use super::error::{LiveError, Result};

/// The type URL containerd expects for an exec's OCI process spec.
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// How a process ended: its exit status (128 + signal when a signal killed
/// it, so an OOM kill is 137) and when, as containerd saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: u32,
    pub exited_at: SystemTime,
}

/// An exec that ended, or one that ran past its timeout (and was killed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOutcome {
    Exited(u32),
    TimedOut,
}

/// What a graceful stop took: whether SIGKILL was needed after the grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOutcome {
    pub exit: Exit,
    pub killed: bool,
}

pub(crate) fn system_time(ts: Option<Timestamp>) -> SystemTime {
    match ts {
        Some(t) if t.seconds >= 0 => {
            UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos.clamp(0, 999_999_999) as u32)
        }
        _ => UNIX_EPOCH,
    }
}

impl NodeClient {
    /// Creates the task of a container: its rootfs mounts from the
    /// container's snapshot, stdout and stderr appended to `log` (the shim's
    /// `file://` IO) or discarded. Returns the init process's pid.
    pub async fn create_task(&self, id: &str, log: Option<&Path>) -> Result<u32> {
        let mounts = self
            .raw()
            .snapshots()
            .mounts(self.req(MountsRequest {
                snapshotter: SNAPSHOTTER.to_string(),
                key: id.to_string(),
            }))
            .await
            .map_err(LiveError::rpc("Snapshots.Mounts"))?
            .into_inner()
            .mounts;
        let out = log
            .map(|p| format!("file://{}", p.display()))
            .unwrap_or_default();
        let r = self
            .raw()
            .tasks()
            .create(self.req(CreateTaskRequest {
                container_id: id.to_string(),
                rootfs: mounts,
                stdout: out.clone(),
                stderr: out,
                options: self.runtime_options(),
                ..Default::default()
            }))
            .await
            .map_err(LiveError::rpc("Tasks.Create"))?;
        Ok(r.into_inner().pid)
    }

    /// Starts a created task (or, with `exec_id`, an added exec process).
    pub async fn start_task(&self, id: &str) -> Result<u32> {
        self.start_process(id, "").await
    }

    async fn start_process(&self, id: &str, exec_id: &str) -> Result<u32> {
        let r = self
            .raw()
            .tasks()
            .start(self.req(StartRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            }))
            .await
            .map_err(LiveError::rpc("Tasks.Start"))?;
        Ok(r.into_inner().pid)
    }

    /// Waits for the task's init process to exit. containerd keeps the exit
    /// status until the task is deleted, so a wait after the exit returns it.
    pub async fn wait_task(&self, id: &str) -> Result<Exit> {
        self.wait_process(id, "").await
    }

    async fn wait_process(&self, id: &str, exec_id: &str) -> Result<Exit> {
        let r = self
            .raw()
            .tasks()
            .wait(self.req(WaitRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            }))
            .await
            .map_err(LiveError::rpc("Tasks.Wait"))?
            .into_inner();
        Ok(Exit {
            code: r.exit_status,
            exited_at: system_time(r.exited_at),
        })
    }

    /// Sends `signal` to the task's init process (in its own pid namespace
    /// the whole container goes when init does).
    pub async fn kill_task(&self, id: &str, signal: i32) -> Result<()> {
        self.raw()
            .tasks()
            .kill(self.req(KillRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
                signal: signal as u32,
                all: false,
            }))
            .await
            .map_err(LiveError::rpc("Tasks.Kill"))?;
        Ok(())
    }

    /// Deletes a stopped task (its shim exits, its rootfs is unmounted) and
    /// returns its exit. A task already gone is not an error: None.
    pub async fn delete_task(&self, id: &str) -> Result<Option<Exit>> {
        let r = self
            .raw()
            .tasks()
            .delete(self.req(DeleteTaskRequest {
                container_id: id.to_string(),
            }))
            .await;
        match r {
            Ok(r) => {
                let r = r.into_inner();
                Ok(Some(Exit {
                    code: r.exit_status,
                    exited_at: system_time(r.exited_at),
                }))
            }
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(LiveError::rpc("Tasks.Delete")(s)),
        }
    }

    /// killContainer: SIGTERM, and SIGKILL if the process is still running
    /// when `grace` ends. The task is left stopped (not deleted).
    pub async fn stop_task(&self, id: &str, grace: Duration) -> Result<StopOutcome> {
        let waiter = self.clone();
        let owned = id.to_string();
        let wait = tokio::spawn(async move { waiter.wait_task(&owned).await });
        self.kill_task(id, libc::SIGTERM).await?;
        let mut wait = wait;
        match tokio::time::timeout(grace, &mut wait).await {
            Ok(joined) => Ok(StopOutcome {
                exit: joined.map_err(|e| LiveError::Other(format!("wait: {e}")))??,
                killed: false,
            }),
            Err(_) => {
                self.kill_task(id, libc::SIGKILL).await?;
                let exit = wait
                    .await
                    .map_err(|e| LiveError::Other(format!("wait: {e}")))??;
                Ok(StopOutcome { exit, killed: true })
            }
        }
    }

    /// Runs `args` inside a running container (an exec probe): the
    /// container's own process spec with these args, no terminal. Returns
    /// its exit code, or TimedOut after `timeout` (the process is killed).
    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<ExecOutcome> {
        self.exec_to(id, exec_id, args, timeout, None).await
    }

    /// [`Self::exec`] with the process's stdout and stderr both appended
    /// to `output` (the shim's `file://` IO): the combined output an exec
    /// probe reports.
    pub async fn exec_capturing(
        &self,
        id: &str,
        exec_id: &str,
        args: &[String],
        timeout: Duration,
        output: &Path,
    ) -> Result<ExecOutcome> {
        self.exec_to(id, exec_id, args, timeout, Some(output)).await
    }

    async fn exec_to(
        &self,
        id: &str,
        exec_id: &str,
        args: &[String],
        timeout: Duration,
        output: Option<&Path>,
    ) -> Result<ExecOutcome> {
        let out = output
            .map(|p| format!("file://{}", p.display()))
            .unwrap_or_default();
        let spec = self.container_spec(id).await?;
        let mut process = spec
            .get("process")
            .cloned()
            .ok_or_else(|| LiveError::Other(format!("container {id}: its spec has no process")))?;
        process["args"] = serde_json::json!(args);
        process["terminal"] = serde_json::json!(false);
        self.raw()
            .tasks()
            .exec(self.req(ExecProcessRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                stdout: out.clone(),
                stderr: out,
                spec: Some(Any {
                    type_url: PROCESS_TYPE_URL.to_string(),
                    value: serde_json::to_vec(&process).expect("a JSON value serialises"),
                }),
                ..Default::default()
            }))
            .await
            .map_err(LiveError::rpc("Tasks.Exec"))?;
        let outcome = self.run_exec(id, exec_id, timeout).await;
        if let (Some(path), Ok(ExecOutcome::Exited(code))) = (output, &outcome) {
            if *code != 0 {
                output_copied(path).await;
            }
        }
        let _ = self
            .raw()
            .tasks()
            .delete_process(self.req(DeleteProcessRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            }))
            .await;
        outcome
    }

    async fn run_exec(&self, id: &str, exec_id: &str, timeout: Duration) -> Result<ExecOutcome> {
        let waiter = self.clone();
        let (cid, eid) = (id.to_string(), exec_id.to_string());
        // Wait before start, so an exec that exits at once is not missed.
        let mut wait = tokio::spawn(async move { waiter.wait_process(&cid, &eid).await });
        self.start_process(id, exec_id).await?;
        match tokio::time::timeout(timeout, &mut wait).await {
            Ok(joined) => {
                let exit = joined.map_err(|e| LiveError::Other(format!("wait: {e}")))??;
                Ok(ExecOutcome::Exited(exit.code))
            }
            Err(_) => {
                let _ = self
                    .raw()
                    .tasks()
                    .kill(self.req(KillRequest {
                        container_id: id.to_string(),
                        exec_id: exec_id.to_string(),
                        signal: libc::SIGKILL as u32,
                        all: false,
                    }))
                    .await;
                let _ = wait.await;
                Ok(ExecOutcome::TimedOut)
            }
        }
    }
}

/// The shim copies an exec's output to its file from a pipe, and the exit
/// can be reported before the copy is done (deleting the process then
/// drops what was not copied): a failed command's output is waited for,
/// briefly (one that printed nothing costs the whole wait).
async fn output_copied(path: &Path) {
    for _ in 0..20 {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
