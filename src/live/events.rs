//! A node's task events: process exits and OOM kills, as containerd
//! publishes them. The kubelet learns of a container's death from the exit
//! (its code) and reports `OOMKilled` when an OOM event for that container
//! came first, as containerd's CRI does (exit 137 then means the kernel's
//! OOM killer, not an ordinary SIGKILL).

use std::time::{Duration, SystemTime};

use containerd_client::services::v1::{PublishRequest, SubscribeRequest};
use containerd_client::tonic::Request;
use containerd_client::types::Envelope;
use prost::Message;
use prost_types::Any;
use tokio::sync::mpsc;

use super::client::NodeClient;
use super::error::{LiveError, Result};
use super::task::system_time;

pub const TOPIC_EXIT: &str = "/tasks/exit";
pub const TOPIC_OOM: &str = "/tasks/oom";

/// One event of interest to a kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    /// A process ended: the task's init (`process_id == container_id`) or an exec.
    Exit {
        container_id: String,
        process_id: String,
        pid: u32,
        code: u32,
        exited_at: SystemTime,
    },
    /// The kernel's OOM killer fired in the container's memory cgroup.
    Oom { container_id: String },
}

/// The topic of the marker event `subscribe_task_events` publishes to
/// itself: once it comes back, the subscription is known to be live.
pub const TOPIC_SUBSCRIBED: &str = "/kubesim/subscribed";

/// The subscription: events come in the order containerd published them.
/// A task reads the gRPC stream into a channel, because containerd sends
/// the stream's headers only with its first event.
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<Result<Envelope>>,
}

impl NodeClient {
    /// Subscribes to this namespace's task exits and OOM kills and returns
    /// once the subscription is live (containerd does not replay events, so
    /// subscribe before starting tasks).
    pub async fn subscribe_task_events(&self) -> Result<EventStream> {
        let ns = self.namespace().to_string();
        let filters = [TOPIC_EXIT, TOPIC_OOM, TOPIC_SUBSCRIBED]
            .iter()
            .map(|t| format!("namespace=={ns},topic==\"{t}\""))
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.raw();
        tokio::spawn(async move { pump(client, filters, tx).await });
        let mut stream = EventStream { rx };
        self.await_marker(&mut stream).await?;
        Ok(stream)
    }

    /// Publishes the marker every 50 ms until it comes back (one published
    /// before the server registered the subscriber is not delivered).
    async fn await_marker(&self, stream: &mut EventStream) -> Result<()> {
        for _ in 0..100 {
            self.raw()
                .events()
                .publish(self.req(PublishRequest {
                    topic: TOPIC_SUBSCRIBED.to_string(),
                    event: Some(Any {
                        type_url: "kubesim.io/subscribed".to_string(),
                        value: vec![],
                    }),
                }))
                .await
                .map_err(LiveError::rpc("Events.Publish"))?;
            let got = tokio::time::timeout(Duration::from_millis(50), stream.rx.recv()).await;
            match got {
                Ok(Some(Ok(env))) if env.topic == TOPIC_SUBSCRIBED => return Ok(()),
                Ok(Some(Err(e))) => return Err(e),
                Ok(None) => return Err(LiveError::Other("events: the subscription ended".into())),
                // Before the marker nothing of ours ran, so nothing is lost.
                Ok(Some(Ok(_))) | Err(_) => {}
            }
        }
        Err(LiveError::Other(
            "events: the subscription never went live".into(),
        ))
    }
}

async fn pump(
    client: containerd_client::Client,
    filters: Vec<String>,
    tx: mpsc::UnboundedSender<Result<Envelope>>,
) {
    let subscribed = client
        .events()
        .subscribe(Request::new(SubscribeRequest { filters }))
        .await;
    let mut stream = match subscribed {
        Ok(r) => r.into_inner(),
        Err(s) => {
            let _ = tx.send(Err(LiveError::rpc("Events.Subscribe")(s)));
            return;
        }
    };
    loop {
        let msg = match stream.message().await {
            Ok(Some(env)) => Ok(env),
            Ok(None) => return,
            Err(s) => Err(LiveError::rpc("Events.Subscribe")(s)),
        };
        let failed = msg.is_err();
        if tx.send(msg).is_err() || failed {
            return;
        }
    }
}

impl EventStream {
    /// The next exit or OOM event; None when the daemon closed the stream
    /// (it stopped or crashed).
    pub async fn next(&mut self) -> Result<Option<TaskEvent>> {
        loop {
            let Some(env) = self.rx.recv().await else {
                return Ok(None);
            };
            if let Some(ev) = decode(&env?)? {
                return Ok(Some(ev));
            }
        }
    }
}

fn decode(env: &Envelope) -> Result<Option<TaskEvent>> {
    let Some(any) = &env.event else {
        return Ok(None);
    };
    let bad = |e: prost::DecodeError| LiveError::Other(format!("event {}: {e}", env.topic));
    match env.topic.as_str() {
        TOPIC_EXIT => {
            let e =
                containerd_client::events::TaskExit::decode(any.value.as_slice()).map_err(bad)?;
            Ok(Some(TaskEvent::Exit {
                container_id: e.container_id,
                process_id: e.id,
                pid: e.pid,
                code: e.exit_status,
                exited_at: system_time(e.exited_at),
            }))
        }
        TOPIC_OOM => {
            let e =
                containerd_client::events::TaskOom::decode(any.value.as_slice()).map_err(bad)?;
            Ok(Some(TaskEvent::Oom {
                container_id: e.container_id,
            }))
        }
        _ => Ok(None),
    }
}
