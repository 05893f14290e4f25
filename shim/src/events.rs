//! Events to containerd, sent in order from one thread so a slow containerd never blocks a
//! request handler (and TaskStart is queued before the TaskExit that may follow at once).
//!
//! containerd can restart while the shim runs (its tasks survive it): a failed forward drops
//! the connection, and the thread redials `$TTRPC_ADDRESS` with a growing backoff while the
//! events wait in a bounded queue, as containerd's own shim publisher does. So an exit or
//! OOM during or after a restart still reaches the new containerd.

use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::topics::*;
use containerd_shim::protos::ttrpc::{context, Client};
use containerd_shim::protos::EventsClient;

/// Events kept while containerd is away; past this the oldest is dropped (containerd's
/// publisher queues 2048 and drops an event after five retries).
const QUEUE_MAX: usize = 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A forward that takes longer is failed (and retried), as containerd's 5 s.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

enum Event {
    /// topic, type URL, encoded event
    Publish(&'static str, &'static str, Vec<u8>),
    /// acknowledged once everything queued before it was sent
    Flush(Sender<()>),
}

/// What the sending thread holds: a request (built when first queued, so its timestamp is
/// the event's) or a flush to acknowledge in turn.
enum Queued {
    Forward(&'static str, ForwardRequest),
    Flush(Sender<()>),
}

#[derive(Clone)]
pub struct Events {
    tx: Sender<Event>,
}

impl Events {
    /// Starts the sending thread for containerd's ttrpc address (`$TTRPC_ADDRESS`). Events
    /// are encoded with explicit type URLs: containerd-shim's publisher asks protobuf
    /// reflection for the name, which builds every descriptor and costs the idle shim ~0.4 MB
    /// of heap.
    pub fn start(namespace: String) -> Events {
        let (tx, rx) = channel::<Event>();
        let mut conn = Connection {
            address: std::env::var("TTRPC_ADDRESS").ok(),
            client: None,
        };
        conn.dial();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || send_loop(rx, conn, namespace))
            .expect("spawn events thread");
        Events { tx }
    }

    /// Waits (at most 2 s) until the queued events reached containerd: the shim may exit next,
    /// and a TaskDelete still queued would be lost.
    pub fn flush(&self) {
        let (ack, done) = channel();
        if self.tx.send(Event::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// The connection to containerd, dialled again after a failure.
struct Connection {
    address: Option<String>,
    client: Option<EventsClient>,
}

impl Connection {
    fn dial(&mut self) -> bool {
        let Some(addr) = &self.address else {
            return false;
        };
        self.client = containerd_shim::util::connect(addr)
            .ok()
            .and_then(|fd| Client::new(fd).ok())
            .map(EventsClient::new);
        self.client.is_some()
    }

    fn forward(&mut self, req: &ForwardRequest) -> Result<(), String> {
        if self.client.is_none() && !self.dial() {
            return Err(match &self.address {
                Some(a) => format!("cannot connect to {a}"),
                None => "no TTRPC_ADDRESS".into(),
            });
        }
        let client = self.client.as_ref().expect("dialled");
        let ctx = context::with_timeout(FORWARD_TIMEOUT.as_nanos() as i64);
        client.forward(ctx, req).map(drop).map_err(|e| {
            // containerd went away (a restart): dial afresh next time.
            self.client = None;
            e.to_string()
        })
    }
}

fn envelope(namespace: &str, topic: &'static str, type_url: &str, value: Vec<u8>) -> Queued {
    let req = ForwardRequest {
        envelope: Some(Envelope {
            timestamp: Some(crate::process::now()).into(),
            namespace: namespace.to_string(),
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
    Queued::Forward(topic, req)
}

/// Appends an event, dropping the oldest one past QUEUE_MAX.
fn enqueue(queue: &mut VecDeque<Queued>, ev: Event, namespace: &str) {
    queue.push_back(match ev {
        Event::Publish(t, u, v) => envelope(namespace, t, u, v),
        Event::Flush(ack) => Queued::Flush(ack),
    });
    if queue.len() > QUEUE_MAX {
        if let Some(i) = queue.iter().position(|q| matches!(q, Queued::Forward(..))) {
            if let Some(Queued::Forward(topic, _)) = queue.remove(i) {
                log::warn!("event queue full while containerd is away: dropped {topic}");
            }
        }
    }
}

/// Sends from the front of the queue until it is empty or containerd fails; true if empty.
fn drain(queue: &mut VecDeque<Queued>, conn: &mut Connection, failing: &mut bool) -> bool {
    while let Some(q) = queue.front() {
        match q {
            Queued::Flush(ack) => {
                let _ = ack.send(());
            }
            Queued::Forward(topic, req) => {
                if let Err(e) = conn.forward(req) {
                    if !*failing {
                        log::warn!("publishing {topic}: {e}; redialling containerd, events queued");
                    }
                    *failing = true;
                    return false;
                }
                if std::mem::take(failing) {
                    log::info!("containerd reachable again: sending queued events");
                }
            }
        }
        queue.pop_front();
    }
    true
}

fn send_loop(rx: Receiver<Event>, mut conn: Connection, namespace: String) {
    if conn.address.is_none() {
        log::warn!("no TTRPC_ADDRESS: events are dropped");
        for ev in rx {
            if let Event::Flush(ack) = ev {
                let _ = ack.send(());
            }
        }
        return;
    }
    let mut queue = VecDeque::new();
    let (mut backoff, mut failing) = (BACKOFF_MIN, false);
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(ev) => enqueue(&mut queue, ev, &namespace),
                Err(_) => return,
            }
        }
        while let Ok(ev) = rx.try_recv() {
            enqueue(&mut queue, ev, &namespace);
        }
        if drain(&mut queue, &mut conn, &mut failing) {
            backoff = BACKOFF_MIN;
            continue;
        }
        // containerd is away: wait, taking new events in meanwhile, then try again.
        match rx.recv_timeout(backoff) {
            Ok(ev) => enqueue(&mut queue, ev, &namespace),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(backoff),
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
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
