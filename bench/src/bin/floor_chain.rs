//! `floor-chain`: the least an app → sidecar → ZeroMQ → sidecar → app call
//! costs, in four processes: this one (app A, the load), sidecar A, sidecar B
//! and app B (an echo). Apps speak gRPC bidi streams over Unix sockets to
//! their sidecar; sidecars speak ZeroMQ DEALER → ROUTER over TCP on loopback,
//! a call as the frames [id, "Echo.echo", body], a reply as [id, body].

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use clap::Parser;
use lymphd_bench::floors::child::{self, Child};
use lymphd_bench::floors::load::{Link, run_levels};
use lymphd_bench::floors::opts::Opts;
use lymphd_bench::floors::proto::Frame;
use lymphd_bench::floors::proto::sidecar_client::SidecarClient;
use lymphd_bench::floors::proto::sidecar_server::{Sidecar, SidecarServer};
use lymphd_bench::floors::{BODY_BYTES, METHOD, SERVICE, uds};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

/// Frames queued towards an app's stream.
const QUEUE: usize = 1024;

type Replies = ReceiverStream<Result<Frame, Status>>;
type ToApp = mpsc::Sender<Result<Frame, Status>>;

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let runtime = opts.runtime()?;
    match opts.role.as_deref() {
        Some("sidecar-a") => runtime.block_on(sidecar_a(opts.listen()?, opts.connect()?)),
        Some("sidecar-b") => runtime.block_on(sidecar_b(opts.listen()?)),
        Some("app-b") => runtime.block_on(app_b(Path::new(opts.connect()?))),
        None => runtime.block_on(bench(&opts)),
        Some(other) => anyhow::bail!("no role {other:?}"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented(
        "not this sidecar's side of the chain",
    ))
}

fn id_frame(id: u64) -> Bytes {
    Bytes::copy_from_slice(&id.to_le_bytes())
}

fn id_of(frame: Option<&Bytes>) -> Option<u64> {
    let bytes = <[u8; 8]>::try_from(frame?.as_ref()).ok()?;
    Some(u64::from_le_bytes(bytes))
}

// Sidecar A: the caller's side. Each call from the app goes out on the
// DEALER under a wire id of its own; each reply goes back to the stream the
// call came from, under the app's id.

struct CallerSide {
    dealer: tokio::sync::Mutex<zeromq::DealerSendHalf>,
    next: AtomicU64,
    /// Wire id → the app's stream and the app's id for the call.
    pending: Mutex<HashMap<u64, (ToApp, u64)>>,
}

/// The gRPC face of sidecar A.
struct Caller(Arc<CallerSide>);

#[tonic::async_trait]
impl Sidecar for Caller {
    type CallStream = Replies;
    type ServeStream = Replies;

    async fn call(&self, request: Request<Streaming<Frame>>) -> Result<Response<Replies>, Status> {
        let mut calls = request.into_inner();
        let (to_app, replies) = mpsc::channel(QUEUE);
        let side = Arc::clone(&self.0);
        tokio::spawn(async move {
            while let Ok(Some(call)) = calls.message().await {
                let wire = side.next.fetch_add(1, Ordering::Relaxed);
                lock(&side.pending).insert(wire, (to_app.clone(), call.id));
                let name = format!("{}.{}", call.service, call.method);
                let frames = vec![id_frame(wire), Bytes::from(name), call.body];
                let Ok(message) = ZmqMessage::try_from(frames) else {
                    break;
                };
                if side.dealer.lock().await.send(message).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(replies)))
    }

    async fn serve(&self, _: Request<Streaming<Frame>>) -> Result<Response<Replies>, Status> {
        unimplemented()
    }
}

async fn sidecar_a(path: &Path, peer: &str) -> anyhow::Result<()> {
    let mut dealer = DealerSocket::new();
    dealer.connect(peer).await?;
    let (send, mut recv) = dealer.split();
    let side = Arc::new(CallerSide {
        dealer: tokio::sync::Mutex::new(send),
        next: AtomicU64::new(0),
        pending: Mutex::default(),
    });
    let replies = Arc::clone(&side);
    tokio::spawn(async move {
        while let Ok(reply) = recv.recv().await {
            let Some(wire) = id_of(reply.get(0)) else {
                continue;
            };
            let Some((to_app, id)) = lock(&replies.pending).remove(&wire) else {
                continue;
            };
            let body = reply.get(1).cloned().unwrap_or_default();
            let frame = Frame {
                id,
                body,
                ..Frame::default()
            };
            let _ = to_app.send(Ok(frame)).await;
        }
    });
    let incoming = uds::listen(path)?;
    child::ready(&path.display().to_string())?;
    tonic::transport::Server::builder()
        .add_service(SidecarServer::new(Caller(side)))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

// Sidecar B: the callee's side. Each call from the ROUTER goes to the
// attached app under a local id; each reply goes back to the peer it came
// from, under its wire id.

struct CalleeSide {
    router: tokio::sync::Mutex<zeromq::RouterSendHalf>,
    app: Mutex<Option<ToApp>>,
    next: AtomicU64,
    /// Local id → the peer's routing identity and its wire id.
    pending: Mutex<HashMap<u64, (Bytes, Bytes)>>,
}

/// The gRPC face of sidecar B.
struct Callee(Arc<CalleeSide>);

#[tonic::async_trait]
impl Sidecar for Callee {
    type CallStream = Replies;
    type ServeStream = Replies;

    async fn call(&self, _: Request<Streaming<Frame>>) -> Result<Response<Replies>, Status> {
        unimplemented()
    }

    async fn serve(&self, request: Request<Streaming<Frame>>) -> Result<Response<Replies>, Status> {
        let mut replies = request.into_inner();
        let (to_app, calls) = mpsc::channel(QUEUE);
        *lock(&self.0.app) = Some(to_app);
        let side = Arc::clone(&self.0);
        tokio::spawn(async move {
            while let Ok(Some(reply)) = replies.message().await {
                let Some((peer, wire)) = lock(&side.pending).remove(&reply.id) else {
                    continue;
                };
                let Ok(message) = ZmqMessage::try_from(vec![peer, wire, reply.body]) else {
                    break;
                };
                if side.router.lock().await.send(message).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(calls)))
    }
}

async fn sidecar_b(path: &Path) -> anyhow::Result<()> {
    let mut router = RouterSocket::new();
    let endpoint = router.bind("tcp://127.0.0.1:0").await?;
    let (send, mut recv) = router.split();
    let side = Arc::new(CalleeSide {
        router: tokio::sync::Mutex::new(send),
        app: Mutex::default(),
        next: AtomicU64::new(0),
        pending: Mutex::default(),
    });
    let calls = Arc::clone(&side);
    tokio::spawn(async move {
        while let Ok(call) = recv.recv().await {
            // [peer identity, wire id, "Service.method", body]
            let frames = call.into_vec();
            let [peer, wire, name, body] = <[Bytes; 4]>::try_from(frames).unwrap_or_default();
            let (service, method) = std::str::from_utf8(&name)
                .ok()
                .and_then(|n| n.split_once('.'))
                .unwrap_or_default();
            let frame = Frame {
                id: calls.next.fetch_add(1, Ordering::Relaxed),
                service: service.to_owned(),
                method: method.to_owned(),
                body,
            };
            let Some(app) = lock(&calls.app).clone() else {
                continue;
            };
            lock(&calls.pending).insert(frame.id, (peer, wire));
            let _ = app.send(Ok(frame)).await;
        }
    });
    let incoming = uds::listen(path)?;
    child::ready(&endpoint.to_string())?;
    tonic::transport::Server::builder()
        .add_service(SidecarServer::new(Callee(side)))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// App B: attaches to sidecar B and answers every call with its body.
async fn app_b(sidecar: &Path) -> anyhow::Result<()> {
    let mut client = SidecarClient::new(uds::channel(sidecar).await?);
    let (replies, rx) = mpsc::channel(QUEUE);
    let mut calls = client.serve(ReceiverStream::new(rx)).await?.into_inner();
    child::ready("attached")?;
    while let Some(call) = calls.message().await? {
        let reply = Frame {
            id: call.id,
            body: call.body,
            ..Frame::default()
        };
        if replies.send(reply).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// App A's end of its call stream to sidecar A.
struct Calls {
    requests: mpsc::Sender<Frame>,
    replies: Streaming<Frame>,
    body: Bytes,
}

impl Link for Calls {
    async fn send(&mut self, id: u64) -> anyhow::Result<()> {
        let call = Frame {
            id,
            service: SERVICE.to_owned(),
            method: METHOD.to_owned(),
            body: self.body.clone(),
        };
        self.requests
            .send(call)
            .await
            .map_err(|_| anyhow::anyhow!("the call stream is closed"))
    }

    async fn recv(&mut self) -> anyhow::Result<u64> {
        match self.replies.message().await? {
            Some(reply) => Ok(reply.id),
            None => anyhow::bail!("the call stream ended"),
        }
    }
}

async fn bench(opts: &Opts) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("floor-chain").tempdir()?;
    let (sa, sb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let with = |role: &str, flag: &str, value: String| {
        let mut args = opts.child_args(role);
        args.extend([flag.to_owned(), value]);
        args
    };
    // Stopped in reverse order when dropped: the apps first.
    let (_b, endpoint) = Child::start(
        "floor-chain sidecar B",
        &with("sidecar-b", "--listen", sb.display().to_string()),
    )?;
    let mut args = with("sidecar-a", "--listen", sa.display().to_string());
    args.extend(["--connect".to_owned(), endpoint]);
    let _a = Child::start("floor-chain sidecar A", &args)?;
    let _app_b = Child::start(
        "floor-chain app B",
        &with("app-b", "--connect", sb.display().to_string()),
    )?;
    let mut client = SidecarClient::new(uds::channel(&sa).await?);
    let (requests, rx) = mpsc::channel(QUEUE);
    let replies = client.call(ReceiverStream::new(rx)).await?.into_inner();
    let mut calls = Calls {
        requests,
        replies,
        body: Bytes::from(vec![0x5a; BODY_BYTES]),
    };
    run_levels(&mut calls, "app-sidecar-zmq-sidecar-app", opts).await
}
