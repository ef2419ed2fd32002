//! A raw app for the flow, cancel and deadline tests: it speaks the `Attach`
//! proto itself (no SDK), declares methods and subscriptions with limits of
//! their own, holds requests to some methods and every delivery while its
//! gate is shut, acks a delivery `ack_after` its gate opens, makes and
//! cancels calls of its own, and records what it got: each request with its
//! deadline and when it came, each `Cancel`, the deliveries it holds at once
//! (per handler and in all), when it acked, when it was told to drain and
//! when its stream ended.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lymph_proto::v1 as pb;
use lymph_proto::v1::app_message::Kind as In;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio::sync::{mpsc, oneshot, watch};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

/// What the raw app declares and how it answers.
pub struct Spec {
    /// No interface when empty: an app that only calls.
    pub interface: &'static str,
    pub max_concurrency: u32,
    /// (method, its limit).
    pub methods: Vec<(&'static str, u32)>,
    /// Methods whose requests wait for the gate; the others answer at once.
    pub held_methods: Vec<&'static str>,
    /// (event type, handler, its limit).
    pub subscriptions: Vec<(&'static str, &'static str, u32)>,
    /// How long after its gate opens a delivery is acked.
    pub ack_after: Duration,
    /// Whether the gate starts shut.
    pub shut: bool,
}

impl Spec {
    /// `interface` with nothing declared, a budget of 8, the gate shut.
    pub fn new(interface: &'static str) -> Spec {
        Spec {
            interface,
            max_concurrency: 8,
            methods: vec![],
            held_methods: vec![],
            subscriptions: vec![],
            ack_after: Duration::ZERO,
            shut: true,
        }
    }

    /// `interface` with one method, `method`, whose requests it holds
    /// unanswered (until their caller gives up or the test answers).
    pub fn holding(interface: &'static str, method: &'static str) -> Spec {
        Spec {
            methods: vec![(method, 0)],
            held_methods: vec![method],
            ..Spec::new(interface)
        }
    }
}

/// One request the app got.
#[derive(Debug, Clone)]
pub struct Arrived {
    pub id: u64,
    pub method: String,
    /// The time left the daemon gave it (`Request.deadline_ms`).
    pub deadline_ms: u32,
    pub at: Instant,
}

/// One delivery the app got.
#[derive(Debug, Clone)]
pub struct Got {
    pub handler: String,
    pub body: serde_json::Value,
}

#[derive(Default)]
pub struct Seen {
    /// The requests that reached the app, in order.
    pub requests: Vec<Arrived>,
    /// The `Cancel`s it got: (request id, when).
    pub cancels: Vec<(u64, Instant)>,
    pub deliveries: Vec<Got>,
    /// Deliveries held now and at most, per handler and in all.
    pub held: HashMap<String, usize>,
    pub most: HashMap<String, usize>,
    pub held_all: usize,
    pub most_all: usize,
    pub acked_at: Vec<Instant>,
    pub drain_at: Option<Instant>,
    pub ended_at: Option<Instant>,
}

/// The app's calls waiting for their `CallResult`, by call id.
type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<pb::CallResult>>>>;

pub struct RawApp {
    seen: Arc<Mutex<Seen>>,
    gate: watch::Sender<bool>,
    tx: mpsc::Sender<pb::AppMessage>,
    waiting: Waiting,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for RawApp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl RawApp {
    /// Attaches to the daemon at `socket`, says Ready, and serves.
    pub async fn attach(socket: &Path, spec: Spec) -> RawApp {
        let mut client = lymph_proto::connect(socket).await.expect("connect");
        let (tx, rx) = mpsc::channel(256);
        tx.send(message(In::Hello(hello(&spec))))
            .await
            .expect("queue Hello");
        let mut inbound = client
            .attach(ReceiverStream::new(rx))
            .await
            .expect("attach")
            .into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), inbound.message())
            .await
            .expect("answered in time")
            .expect("an answer");
        match first.and_then(|m| m.kind) {
            Some(Out::Welcome(_)) => {}
            other => panic!("Attach answered {other:?}"),
        }
        tx.send(message(In::Ready(pb::Ready {})))
            .await
            .expect("queue Ready");
        let (gate, _) = watch::channel(spec.shut);
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let waiting = Waiting::default();
        let serving = Serving {
            tx: tx.clone(),
            waiting: waiting.clone(),
            seen: seen.clone(),
            gate: gate.clone(),
            held_methods: spec.held_methods,
            ack_after: spec.ack_after,
        };
        let reader = tokio::spawn(async move {
            // Ends with the stream: the daemon closed it or went away.
            while let Ok(Some(m)) = inbound.message().await {
                if let Some(kind) = m.kind {
                    serving.handle(kind);
                }
            }
            serving.seen().ended_at = Some(Instant::now());
        });
        RawApp {
            seen,
            gate,
            tx,
            waiting,
            reader,
        }
    }

    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().expect("lock")
    }

    /// The methods of the requests that reached the app, in order.
    pub fn methods(&self) -> Vec<String> {
        self.seen()
            .requests
            .iter()
            .map(|r| r.method.clone())
            .collect()
    }

    /// Starts the call `id` (`OutgoingCall`); its `CallResult` comes on the
    /// returned channel.
    pub async fn call(
        &self,
        id: u64,
        service: &str,
        method: &str,
        args: serde_json::Value,
        timeout_ms: u32,
    ) -> oneshot::Receiver<pb::CallResult> {
        let (done, result) = oneshot::channel();
        self.waiting.lock().expect("lock").insert(id, done);
        let call = pb::OutgoingCall {
            id,
            service: service.to_owned(),
            method: method.to_owned(),
            body: rmp_serde::to_vec_named(&args).expect("msgpack").into(),
            timeout_ms,
            ..pb::OutgoingCall::default()
        };
        self.tx
            .send(message(In::Call(call)))
            .await
            .expect("queue the call");
        result
    }

    /// Gives up on the call `id` (`CancelCall`).
    pub async fn cancel_call(&self, id: u64) {
        self.tx
            .send(message(In::CancelCall(pb::CancelCall { id })))
            .await
            .expect("queue the cancel");
    }

    /// Opens the gate: held requests are answered, held deliveries acked.
    pub fn open(&self) {
        self.gate.send_replace(false);
    }
}

fn message(kind: In) -> pb::AppMessage {
    pb::AppMessage { kind: Some(kind) }
}

fn hello(spec: &Spec) -> pb::Hello {
    let methods = spec
        .methods
        .iter()
        .map(|(name, concurrency)| pb::MethodSpec {
            name: (*name).to_owned(),
            concurrency: *concurrency,
            ..pb::MethodSpec::default()
        })
        .collect();
    let subscriptions = spec
        .subscriptions
        .iter()
        .map(|(event_type, handler, concurrency)| pb::SubscriptionSpec {
            event_type: (*event_type).to_owned(),
            handler: (*handler).to_owned(),
            mode: pb::DeliveryMode::OncePerService as i32,
            retry: 0,
            concurrency: *concurrency,
        })
        .collect();
    let interfaces = match spec.interface {
        "" => vec![],
        name => vec![pb::InterfaceSpec {
            name: name.to_owned(),
            methods,
            subscriptions,
            ..pb::InterfaceSpec::default()
        }],
    };
    pb::Hello {
        app_name: "raw".to_owned(),
        interfaces,
        max_concurrency: spec.max_concurrency,
        sdk: "flow-test".to_owned(),
        pid: std::process::id(),
        ..pb::Hello::default()
    }
}

/// The app's side of its stream.
#[derive(Clone)]
struct Serving {
    tx: mpsc::Sender<pb::AppMessage>,
    waiting: Waiting,
    seen: Arc<Mutex<Seen>>,
    gate: watch::Sender<bool>,
    held_methods: Vec<&'static str>,
    ack_after: Duration,
}

impl Serving {
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().expect("lock")
    }

    fn handle(&self, kind: Out) {
        match kind {
            Out::Request(request) => self.request(request),
            Out::Delivery(delivery) => self.delivery(delivery),
            Out::Drain(_) => self.seen().drain_at = Some(Instant::now()),
            Out::Cancel(cancel) => self.seen().cancels.push((cancel.id, Instant::now())),
            Out::CallResult(result) => {
                let done = self.waiting.lock().expect("lock").remove(&result.id);
                if let Some(done) = done {
                    let _ = done.send(result);
                }
            }
            _ => {}
        }
    }

    fn request(&self, request: pb::Request) {
        self.seen().requests.push(Arrived {
            id: request.id,
            method: request.method.clone(),
            deadline_ms: request.deadline_ms,
            at: Instant::now(),
        });
        let held = self.held_methods.iter().any(|m| *m == request.method);
        let (this, mut gate) = (self.clone(), self.gate.subscribe());
        tokio::spawn(async move {
            if held && gate.wait_for(|shut| !*shut).await.is_err() {
                return;
            }
            let body = rmp_serde::to_vec(&"ok").expect("msgpack");
            let reply = pb::Reply {
                id: request.id,
                outcome: Some(pb::reply::Outcome::Body(body.into())),
            };
            let _ = this.tx.send(message(In::Reply(reply))).await;
        });
    }

    fn delivery(&self, delivery: pb::Delivery) {
        let handler = delivery.handler.clone();
        {
            let mut seen = self.seen();
            seen.deliveries.push(Got {
                handler: handler.clone(),
                body: rmp_serde::from_slice(&delivery.body).expect("a msgpack body"),
            });
            let held = seen.held.entry(handler.clone()).or_insert(0);
            *held += 1;
            let held = *held;
            let most = seen.most.entry(handler.clone()).or_insert(0);
            *most = (*most).max(held);
            seen.held_all += 1;
            seen.most_all = seen.most_all.max(seen.held_all);
        }
        let (this, mut gate) = (self.clone(), self.gate.subscribe());
        tokio::spawn(async move {
            if gate.wait_for(|shut| !*shut).await.is_err() {
                return;
            }
            tokio::time::sleep(this.ack_after).await;
            {
                // Counted out before the ack leaves: the daemon frees the
                // delivery's permits only when the ack reaches it.
                let mut seen = this.seen();
                if let Some(held) = seen.held.get_mut(&handler) {
                    *held -= 1;
                }
                seen.held_all -= 1;
                seen.acked_at.push(Instant::now());
            }
            let ack = pb::Ack {
                delivery_id: delivery.delivery_id,
            };
            let _ = this.tx.send(message(In::Ack(ack))).await;
        });
    }
}
