//! The one task that owns the `Attach` stream (the "link"): it (re)connects with
//! backoff, multiplexes outgoing calls and emits by id, runs handlers as tasks
//! and answers for them, and stops in order on shutdown. Everyone else holds a
//! `Client` over its bounded command channel.

mod open;
mod work;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use lymph_proto::backoff::Backoff;
use lymph_proto::v1::{self, app_message};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::client::{COMMAND_QUEUE, Client, Command};
use crate::error::CallError;
use crate::interface::Interface;
use crate::service::ServiceError;
pub(crate) use open::{BACKOFF, Conn, OpenError};
use work::{Done, InFlight};

/// Time in-flight handlers get to finish after SIGTERM before they are aborted.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a stopping app waits for the daemon to close the stream.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Ready messages, commands or finished handlers taken per turn of the loop.
const BATCH: usize = 64;

/// The link's tables are looked up per message: foldhash, not SipHash.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

type Opening = Pin<Box<dyn Future<Output = Result<Conn, OpenError>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// `on_start` has not run yet (no daemon seen so far).
    Pending,
    Running,
    Done,
}

pub(crate) struct Link {
    socket: PathBuf,
    hello: v1::Hello,
    interfaces: Arc<HashMap<String, Arc<dyn Interface>>>,
    /// The same, in the order the program added them (for `on_start`).
    ordered: Vec<Arc<dyn Interface>>,
    commands: mpsc::Receiver<Command>,
    /// For the `Context` of handlers; weak so that a standalone client's link
    /// ends when its last `Client` is dropped.
    weak: mpsc::WeakSender<Command>,
    shutdown: CancellationToken,

    conn: Option<Conn>,
    /// Bumped per connection; a handler's answer goes out only on the
    /// connection its request came from.
    generation: u64,
    opening: Option<Opening>,
    retry_at: Option<Instant>,
    backoff: Backoff,
    /// Consecutive failed attempts, to log the first loudly and later ones quietly.
    failures: u32,
    draining: bool,
    stopping: Option<Instant>,
    start: Start,

    next_id: u64,
    calls: Map<u64, oneshot::Sender<Result<bytes::Bytes, CallError>>>,
    emits: Map<u64, oneshot::Sender<Result<String, CallError>>>,
    sweep_at: usize,
    handlers: JoinSet<Done>,
    in_flight: Map<tokio::task::Id, InFlight>,
    /// Requests of the current connection, for `Cancel`.
    requests: Map<u64, AbortHandle>,
    /// The process's log records, sent to the daemon (service links only).
    records: Option<mpsc::Receiver<v1::LogRecord>>,
    /// Whether a request's handler is first polled in place (current-thread
    /// runtimes, where a task of its own buys no parallelism).
    inline_first_poll: bool,
}

impl Link {
    /// A link serving the commands of `channel`.
    pub fn new(
        socket: PathBuf,
        hello: v1::Hello,
        interfaces: Vec<Arc<dyn Interface>>,
        shutdown: CancellationToken,
        (tx, commands): (mpsc::Sender<Command>, mpsc::Receiver<Command>),
    ) -> Link {
        let ordered = interfaces.clone();
        let interfaces = interfaces
            .into_iter()
            .map(|i| (i.spec().name, i))
            .collect::<HashMap<_, _>>();
        let (start, records) = if interfaces.is_empty() {
            (Start::Done, None)
        } else {
            (Start::Pending, crate::logging::take_records())
        };
        Link {
            socket,
            hello,
            interfaces: Arc::new(interfaces),
            ordered,
            commands,
            weak: tx.downgrade(),
            shutdown,
            conn: None,
            generation: 0,
            opening: None,
            retry_at: Some(Instant::now()),
            backoff: BACKOFF,
            failures: 0,
            draining: false,
            stopping: None,
            start,
            next_id: 0,
            calls: Map::default(),
            emits: Map::default(),
            sweep_at: 1024,
            handlers: JoinSet::new(),
            in_flight: Map::default(),
            requests: Map::default(),
            records,
            inline_first_poll: false,
        }
    }

    /// The task body. Returns when stopped (shutdown, or a standalone client's
    /// last handle dropped), with whether `on_start` ran, or with an error the
    /// app cannot recover from.
    pub async fn run(mut self) -> Result<bool, ServiceError> {
        self.inline_first_poll = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread;
        loop {
            if self.stopping.is_some() && self.handlers.is_empty() {
                break;
            }
            let stop_deadline = self.stopping;
            let retry_at = self
                .retry_at
                .filter(|_| self.conn.is_none() && stop_deadline.is_none());
            tokio::select! {
                _ = self.shutdown.cancelled(), if stop_deadline.is_none() => self.begin_stop().await,
                _ = sleep_until(stop_deadline) => {
                    warn!(in_flight = self.handlers.len(), "handlers did not finish in time; aborting them");
                    self.handlers.abort_all();
                    break;
                }
                _ = sleep_until(retry_at) => {
                    self.retry_at = None;
                    self.opening = Some(Box::pin(open::open(self.socket.clone(), self.hello.clone())));
                }
                opened = poll_opening(&mut self.opening) => {
                    self.opening = None;
                    self.on_opened(opened).await?;
                }
                message = next_message(&mut self.conn) => match message {
                    Ok(Some(message)) => {
                        self.on_message(message).await?;
                        self.more_messages().await?;
                    }
                    Ok(None) => self.lost("the stream ended".into()),
                    Err(status) => self.lost(status.message().to_owned()),
                },
                command = self.commands.recv() => match command {
                    Some(command) => {
                        self.on_command(command).await;
                        self.more_commands().await;
                    }
                    None => break,
                },
                Some(done) = self.handlers.join_next_with_id(), if !self.handlers.is_empty() => {
                    self.on_done(done).await?;
                    self.more_done().await?;
                }
                Some(record) = next_record(&mut self.records), if self.conn.is_some() => {
                    self.send(app_message::Kind::Log(record)).await;
                }
            }
        }
        // Closing the outbox ends the stream; the daemon unregisters the app.
        // Then wait (bounded) for the daemon to end its half: by then every
        // answer queued before has reached it, even if the process exits next.
        if let Some(Conn {
            outbox,
            mut inbound,
            ..
        }) = self.conn.take()
        {
            drop(outbox);
            let closed = async { while let Ok(Some(_)) = inbound.message().await {} };
            let _ = tokio::time::timeout(CLOSE_WAIT, closed).await;
        }
        self.fail_pending("the app is stopping");
        Ok(self.start == Start::Done)
    }

    /// Handles the daemon's messages that already arrived, up to `BATCH`:
    /// under load one turn of the loop serves many, not one select each.
    async fn more_messages(&mut self) -> Result<(), ServiceError> {
        for _ in 1..BATCH {
            let Some(conn) = self.conn.as_mut() else {
                break;
            };
            match conn.inbound.message().now_or_never() {
                Some(Ok(Some(message))) => self.on_message(message).await?,
                Some(Ok(None)) => self.lost("the stream ended".into()),
                Some(Err(status)) => self.lost(status.message().to_owned()),
                None => break,
            }
        }
        Ok(())
    }

    /// Takes the commands already queued, up to `BATCH`.
    async fn more_commands(&mut self) {
        for _ in 1..BATCH {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command).await,
                Err(_) => break,
            }
        }
    }

    /// Finishes the handlers already done, up to `BATCH`.
    async fn more_done(&mut self) -> Result<(), ServiceError> {
        for _ in 1..BATCH {
            match self.handlers.try_join_next_with_id() {
                Some(done) => self.on_done(done).await?,
                None => break,
            }
        }
        Ok(())
    }

    /// Starts with a stream already open (standalone clients open the first
    /// one themselves, to fail at once when no daemon is there).
    pub async fn with_conn(mut self, conn: Conn) -> Link {
        self.retry_at = None;
        // A result of Ok cannot fail for a standalone link (no `on_start`).
        if let Err(e) = self.on_opened(Ok(conn)).await {
            warn!(error = %e, "cannot start the link");
        }
        self
    }

    async fn on_opened(&mut self, opened: Result<Conn, OpenError>) -> Result<(), ServiceError> {
        let conn = match opened {
            Ok(conn) => conn,
            Err(OpenError::Rejected(error)) => {
                return Err(ServiceError::Rejected {
                    socket: self.socket.clone(),
                    error,
                });
            }
            Err(e) => {
                let delay = self.backoff.next_delay();
                self.retry_at = Some(Instant::now() + delay);
                self.failures += 1;
                let delay = open::show(delay);
                // Loud once per outage, then quiet: the state has not changed.
                // A refused socket stays loud: the app is not running, and
                // someone may be impersonating lymphd.
                if matches!(e, OpenError::Untrusted(_)) {
                    error!("{e}; retrying in {delay}");
                } else if self.failures == 1 {
                    warn!("{e}; retrying in {delay}");
                } else {
                    info!("{e}; retrying in {delay}");
                }
                return Ok(());
            }
        };
        self.backoff.reset();
        self.failures = 0;
        self.draining = false;
        self.generation += 1;
        info!(
            socket = %self.socket.display(),
            identity = %conn.welcome.identity,
            endpoint = %conn.welcome.endpoint,
            "attached to lymphd"
        );
        self.conn = Some(conn);
        match self.start {
            Start::Done => self.send(app_message::Kind::Ready(v1::Ready {})).await,
            Start::Running => {}
            Start::Pending => {
                self.start = Start::Running;
                self.spawn_start();
            }
        }
        Ok(())
    }

    /// The daemon went away: fail what waits on it and reconnect with backoff.
    fn lost(&mut self, reason: String) {
        self.conn = None;
        self.opening = None;
        self.requests.clear();
        self.fail_pending("lost the connection to lymphd");
        if self.stopping.is_some() {
            debug!(%reason, "lymphd closed the stream while stopping");
            return;
        }
        let delay = self.backoff.next_delay();
        self.retry_at = Some(Instant::now() + delay);
        let (socket, delay) = (self.socket.display(), open::show(delay));
        if self.draining {
            // The daemon said it was stopping: an expected disconnect.
            info!(%reason, "lymphd at {socket} stopped, reconnecting in {delay}");
        } else {
            warn!(%reason, "lost lymphd at {socket}, reconnecting in {delay}");
        }
    }

    async fn begin_stop(&mut self) {
        info!(
            in_flight = self.handlers.len(),
            "stopping: saying goodbye to lymphd"
        );
        self.stopping = Some(Instant::now() + STOP_GRACE);
        self.opening = None;
        self.send(app_message::Kind::Goodbye(v1::Goodbye {})).await;
    }

    fn fail_pending(&mut self, reason: &str) {
        let error = CallError::new(crate::ErrorKind::Unavailable, reason);
        for (_, reply) in self.calls.drain() {
            let _ = reply.send(Err(error.clone()));
        }
        for (_, reply) in self.emits.drain() {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// Sends on the current stream, if any. A send that fails means the
    /// stream is closing; its end arrives on `inbound` and is handled there.
    async fn send(&mut self, kind: app_message::Kind) {
        if let Some(conn) = &self.conn {
            let message = v1::AppMessage { kind: Some(kind) };
            if conn.outbox.send(message).await.is_err() {
                debug!("the stream to lymphd is closed");
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn next_record(records: &mut Option<mpsc::Receiver<v1::LogRecord>>) -> Option<v1::LogRecord> {
    match records {
        Some(records) => records.recv().await,
        None => std::future::pending().await,
    }
}

async fn poll_opening(opening: &mut Option<Opening>) -> Result<Conn, OpenError> {
    match opening {
        Some(opening) => opening.await,
        None => std::future::pending().await,
    }
}

async fn next_message(conn: &mut Option<Conn>) -> Result<Option<v1::DaemonMessage>, tonic::Status> {
    match conn {
        Some(conn) => conn.inbound.message().await,
        None => std::future::pending().await,
    }
}

/// Opens a standalone client's first stream, then spawns its link.
pub(crate) async fn connect_standalone(socket: PathBuf) -> Result<Client, ServiceError> {
    let hello = v1::Hello {
        app_name: crate::service::program_name(),
        sdk: crate::SDK.to_owned(),
        pid: std::process::id(),
        ..v1::Hello::default()
    };
    let conn = open::open(socket.clone(), hello.clone())
        .await
        .map_err(|e| match e {
            OpenError::Rejected(error) => ServiceError::Rejected {
                socket: socket.clone(),
                error,
            },
            other => ServiceError::Attach(other.to_string()),
        })?;
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let client = Client::new(tx.clone());
    let link = Link::new(
        socket,
        hello,
        Vec::new(),
        CancellationToken::new(),
        (tx, rx),
    );
    let link = link.with_conn(conn).await;
    tokio::spawn(async move {
        if let Err(e) = link.run().await {
            warn!(error = %e, "lymph client stopped");
        }
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> (Link, Client) {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let client = Client::new(tx.clone());
        let hello = v1::Hello::default();
        let socket = PathBuf::from("/nonexistent/lymphd.sock");
        let link = Link::new(
            socket,
            hello,
            Vec::new(),
            CancellationToken::new(),
            (tx, rx),
        );
        (link, client)
    }

    #[tokio::test]
    async fn calls_while_disconnected_fail_at_once() {
        let (link, client) = link();
        let task = tokio::spawn(link.run());
        let call = tokio::time::timeout(
            Duration::from_secs(5),
            client.proxy("Greeting").call::<String>("greet", ()),
        )
        .await
        .expect("answers at once");
        assert_eq!(call, Err(CallError::not_connected()));
        let emit = tokio::time::timeout(Duration::from_secs(5), client.emit("greeted", &()))
            .await
            .expect("answers at once");
        assert_eq!(emit, Err(CallError::not_connected()));
        drop(client);
        let started = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ends when the last client is dropped")
            .expect("no panic")
            .expect("no error");
        assert!(started, "a link without interfaces has nothing to start");
    }

    #[tokio::test]
    async fn a_closed_client_says_so() {
        let (link, client) = link();
        drop(link);
        let error = client.emit("greeted", &()).await.expect_err("closed");
        assert_eq!(error.kind, crate::ErrorKind::Unavailable);
    }
}
