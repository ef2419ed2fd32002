//! A raw app for the flow tests: it speaks the `Attach` proto itself (no
//! SDK), declares methods and subscriptions with limits of their own, holds
//! requests to some methods and every delivery while its gate is shut, acks
//! a delivery `ack_after` its gate opens, and records what it got: the
//! deliveries it holds at once (per handler and in all), when it acked, when
//! it was told to drain and when its stream ended.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lymph_proto::v1 as pb;
use lymph_proto::v1::app_message::Kind as In;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio::sync::{mpsc, watch};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

/// What the raw app declares and how it answers.
pub struct Spec {
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

/// One delivery the app got.
#[derive(Debug, Clone)]
pub struct Got {
    pub handler: String,
    pub body: serde_json::Value,
}

#[derive(Default)]
pub struct Seen {
    /// Methods of the requests that reached the app, in order.
    pub requests: Vec<String>,
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

pub struct RawApp {
    seen: Arc<Mutex<Seen>>,
    gate: watch::Sender<bool>,
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
        let serving = Serving {
            tx,
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
        RawApp { seen, gate, reader }
    }

    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().expect("lock")
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
    pb::Hello {
        app_name: "flow".to_owned(),
        interfaces: vec![pb::InterfaceSpec {
            name: spec.interface.to_owned(),
            methods,
            subscriptions,
            ..pb::InterfaceSpec::default()
        }],
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
            _ => {}
        }
    }

    fn request(&self, request: pb::Request) {
        self.seen().requests.push(request.method.clone());
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
