//! Events to containerd, sent in order from one thread so a slow containerd never blocks a
//! request handler (and TaskStart is queued before the TaskExit that may follow at once).

use std::sync::mpsc::{channel, Sender};

use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::topics::*;
use containerd_shim::protos::ttrpc::{context::Context, Client};
use containerd_shim::protos::EventsClient;

enum Event {
    /// topic, type URL, encoded event
    Publish(&'static str, &'static str, Vec<u8>),
    /// acknowledged once everything queued before it was sent
    Flush(Sender<()>),
}

#[derive(Clone)]
pub struct Events {
    tx: Sender<Event>,
}

impl Events {
    /// Connects to containerd's ttrpc address (`$TTRPC_ADDRESS`). Events are encoded with
    /// explicit type URLs: containerd-shim's publisher asks protobuf reflection for the
    /// name, which builds every descriptor and costs the idle shim ~0.4 MB of heap.
    pub fn start(namespace: String) -> Events {
        let (tx, rx) = channel::<Event>();
        let client = std::env::var("TTRPC_ADDRESS")
            .ok()
            .and_then(|a| containerd_shim::util::connect(a).ok())
            .and_then(|fd| Client::new(fd).ok())
            .map(EventsClient::new);
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                let Some(client) = client else {
                    log::warn!("no connection to containerd: events are dropped");
                    return rx.iter().for_each(drop);
                };
                for ev in rx {
                    let (topic, type_url, value) = match ev {
                        Event::Publish(t, u, v) => (t, u, v),
                        Event::Flush(ack) => {
                            let _ = ack.send(());
                            continue;
                        }
                    };
                    let req = ForwardRequest {
                        envelope: Some(Envelope {
                            timestamp: Some(crate::process::now()).into(),
                            namespace: namespace.clone(),
                            topic: topic.into(),
                            event: Some(Any {
                                type_url: type_url.into(),
                                value,
                                ..Default::default()
                            })
                            .into(),
                            ..Default::default()
                        })
                        .into(),
                        ..Default::default()
                    };
                    if let Err(e) = client.forward(Context::default(), &req) {
                        log::warn!("publishing {topic}: {e}");
                    }
                }
            })
            .expect("spawn events thread");
        Events { tx }
    }

    /// Waits (at most 2 s) until the queued events reached containerd: the shim may exit next,
    /// and a TaskDelete still queued would be lost.
    pub fn flush(&self) {
        let (ack, done) = channel();
        if self.tx.send(Event::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(std::time::Duration::from_secs(2));
        }
    }
}

/// Topic of each event type the shim publishes.
pub trait Topic: Message {
    const TOPIC: &'static str;
    const TYPE_URL: &'static str;
    fn publish(self, events: &Events) {
        let value = self.write_to_bytes().unwrap_or_default();
        let _ = events
            .tx
            .send(Event::Publish(Self::TOPIC, Self::TYPE_URL, value));
    }
}

macro_rules! topics {
    ($($t:ident => $c:ident),* $(,)?) => {
        $(impl Topic for $t {
            const TOPIC: &'static str = $c;
            const TYPE_URL: &'static str = concat!("containerd.events.", stringify!($t));
        })*
    };
}

topics! {
    TaskCreate => TASK_CREATE_EVENT_TOPIC,
    TaskStart => TASK_START_EVENT_TOPIC,
    TaskExit => TASK_EXIT_EVENT_TOPIC,
    TaskDelete => TASK_DELETE_EVENT_TOPIC,
    TaskExecAdded => TASK_EXEC_ADDED_EVENT_TOPIC,
    TaskExecStarted => TASK_EXEC_STARTED_EVENT_TOPIC,
    TaskOOM => TASK_OOM_EVENT_TOPIC,
    TaskPaused => TASK_PAUSED_EVENT_TOPIC,
    TaskResumed => TASK_RESUMED_EVENT_TOPIC,
}
