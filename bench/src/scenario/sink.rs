//! The event side of the benchmark: `BenchSink`, an SDK app run in this
//! process whose handler times each `bench_tick` from its emit, and the
//! emitting operation that waits for its own tick to be handled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lymph::{Error, Event};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::body::{Tick, now_ns, since};
use crate::load::OpResult;

/// The event type the benchmark emits.
pub const TICK: &str = "bench_tick";
/// How long an emitted tick may take to reach the handler before it counts as lost.
const HANDLED_WITHIN: Duration = Duration::from_secs(10);
/// Requests the sink handles at once: above the deepest load (64).
const SINK_CONCURRENCY: u32 = 256;
/// Most workers a run uses (the worker id travels in one byte).
pub const MAX_WORKERS: usize = 255;

/// Handled ticks go back to the worker that emitted them: (sequence, latency).
type Handled = mpsc::Sender<(u64, Duration)>;

struct Sink {
    workers: Arc<Vec<Handled>>,
}

#[lymph::interface(name = "BenchSink")]
impl Sink {
    /// Times the tick from its emit and tells its worker.
    #[event("bench_tick")]
    async fn on_tick(&self, event: Event) -> Result<(), Error> {
        let tick: Tick = event.decode()?;
        let latency = since(tick.sent_ns());
        if let Some(worker) = self.workers.get(usize::from(tick.w)) {
            // try_send: a worker holds one tick at a time, so a full channel
            // only means a stale duplicate; never block the handler on it.
            let _ = worker.try_send((tick.seq(), latency));
        }
        Ok(())
    }
}

/// The running sink and the receiving ends of its workers' channels.
pub struct Ticks {
    client: lymph::Client,
    receivers: Vec<Mutex<mpsc::Receiver<(u64, Duration)>>>,
    next_seq: AtomicU64,
    stop: CancellationToken,
}

impl Ticks {
    /// Starts the sink attached at `sink_socket`, and an emitting client at `emit_socket`.
    pub async fn start(
        sink_socket: &std::path::Path,
        emit_socket: &std::path::Path,
    ) -> anyhow::Result<Ticks> {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..MAX_WORKERS).map(|_| mpsc::channel(4)).unzip();
        let stop = CancellationToken::new();
        let service = lymph::Service::new()
            .socket(sink_socket)
            .app_name("bench-sink")
            .max_concurrency(SINK_CONCURRENCY)
            .interface(Sink {
                workers: Arc::new(senders),
            });
        tokio::spawn(service.run_until(stop.clone().cancelled_owned()));
        let client = lymph::Client::connect(emit_socket).await?;
        Ok(Ticks {
            client,
            receivers: receivers.into_iter().map(Mutex::new).collect(),
            next_seq: AtomicU64::new(1),
            stop,
        })
    }

    /// One emit, then the wait until the sink handled it; the latency is the
    /// handler's (emit → handler).
    pub async fn emit_and_wait(&self, worker: usize) -> OpResult {
        let Some(receiver) = self.receivers.get(worker) else {
            return Err(format!("worker {worker} is past {MAX_WORKERS}"));
        };
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let tick = Tick::new(worker, seq, now_ns());
        self.client
            .emit(TICK, &tick)
            .await
            .map_err(|e| e.to_string())?;
        let mut receiver = receiver.lock().await;
        let deadline = tokio::time::Instant::now() + HANDLED_WITHIN;
        loop {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some((handled, latency))) if handled == seq => return Ok(Some(latency)),
                Ok(Some(_stale)) => {}
                Ok(None) => return Err("the sink stopped".to_owned()),
                Err(_) => return Err(format!("tick not handled within {HANDLED_WITHIN:?}")),
            }
        }
    }
}

impl Drop for Ticks {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
