//! Events to containerd, sent in order from one thread so a slow containerd never blocks a
//! request handler (and TaskStart is queued before the TaskExit that may follow at once).

use std::sync::mpsc::{channel, Sender};

use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::topics::*;
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::publisher::RemotePublisher;

type Event = (&'static str, Box<dyn MessageDyn + Send>);

#[derive(Clone)]
pub struct Events {
    tx: Sender<Event>,
}

impl Events {
    pub fn start(publisher: RemotePublisher, namespace: String) -> Events {
        let (tx, rx) = channel::<Event>();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                for (topic, ev) in rx {
                    if let Err(e) = publisher.publish(Context::default(), topic, &namespace, ev) {
                        log::warn!("publishing {topic}: {e}");
                    }
                }
            })
            .expect("spawn events thread");
        Events { tx }
    }

    pub fn send(&self, topic: &'static str, ev: Box<dyn MessageDyn + Send>) {
        let _ = self.tx.send((topic, ev));
    }
}

/// Topic of each event type the shim publishes.
pub trait Topic: MessageDyn + Send + Sized + 'static {
    const TOPIC: &'static str;
    fn publish(self, events: &Events) {
        events.send(Self::TOPIC, Box::new(self));
    }
}

macro_rules! topics {
    ($($t:ty => $c:ident),* $(,)?) => { $(impl Topic for $t { const TOPIC: &'static str = $c; })* };
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
