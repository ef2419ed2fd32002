//! The OTLP/gRPC exporter: a bounded queue of finished spans, drained by one
//! task (on a thread and runtime of its own) in batches (up to `BATCH` spans,
//! or what came within `LINGER` of the first) sent to the collector's
//! `TraceService/Export` with a deadline, `IN_FLIGHT` at once. A hop pays a lock and a push; the
//! task is woken by a batch's first span and by a full batch, not per span,
//! and takes a queue that filled while it sent at once. A batch the
//! collector does not take is dropped and counted: spans are never retried
//! past their batch, so a collector that is down costs a warning a minute
//! and the queue's memory, nothing more.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use tokio::sync::Notify;
use tracing::{debug, warn};

use super::{Kind, Record};
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// Spans sent in one request, at most.
const BATCH: usize = 512;
/// Batches sent at once, at most.
const IN_FLIGHT: usize = 4;
/// How long a batch waits for more spans after its first.
const LINGER: Duration = Duration::from_millis(500);
/// One export's deadline, connecting included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

static FAILED: WarnLimit = WarnLimit::new(Duration::from_secs(60));

/// The hops' side of the queue.
pub struct Exporter {
    queue: Arc<Queue>,
    failed: Arc<AtomicU64>,
}

/// Finished spans waiting for the task, at most `capacity`.
struct Queue {
    spans: Mutex<Vec<Record>>,
    capacity: usize,
    /// Told of a batch's first span and of a full batch.
    wake: Notify,
}

impl Queue {
    fn new(capacity: usize) -> Arc<Queue> {
        Arc::new(Queue {
            spans: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Record>> {
        self.spans.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Exporter {
    /// Starts exporting to `endpoint` (`http://host:port`) in a thread of
    /// its own with its own runtime: the batches' timers, encoding and
    /// connection stay off the runtime that carries the calls (a timer
    /// there measurably slowed every call, sampled or not).
    pub fn spawn(endpoint: &str, queue: usize, service_name: &str) -> Exporter {
        Exporter::spawn_lingering(endpoint, queue, service_name, LINGER)
    }

    /// `spawn`, with how long a batch waits for more spans after its first.
    fn spawn_lingering(
        endpoint: &str,
        queue: usize,
        service_name: &str,
        linger: Duration,
    ) -> Exporter {
        let queue = Queue::new(queue);
        let failed = Arc::new(AtomicU64::new(0));
        let resource = Resource {
            attributes: vec![text("service.name", service_name.to_owned())],
            ..Resource::default()
        };
        let exporting = (queue.clone(), failed.clone(), endpoint.to_owned());
        let started = std::thread::Builder::new()
            .name("lymphd-spans".to_owned())
            .spawn(move || {
                let (queue, failed, endpoint) = exporting;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        return warn!(%error, "cannot start the span exporter; no spans are exported");
                    }
                };
                runtime.block_on(async move {
                    let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
                        .map(|e| {
                            e.connect_timeout(EXPORT_TIMEOUT)
                                .timeout(EXPORT_TIMEOUT)
                                .connect_lazy()
                        });
                    match channel {
                        Ok(channel) => {
                            let client = TraceServiceClient::new(channel);
                            let exporting = Exporting {
                                resource,
                                failed,
                                endpoint,
                                linger,
                            };
                            run(queue, client, exporting).await;
                        }
                        // Validated with the config; a queue nobody drains
                        // drops every span.
                        Err(error) => warn!(%endpoint, %error,
                            "tracing.otlp_endpoint unusable; no spans are exported"),
                    }
                });
            });
        if let Err(error) = started {
            warn!(%error, "cannot start the span exporter's thread; no spans are exported");
        }
        Exporter { queue, failed }
    }

    /// An exporter whose queue nobody drains (tests).
    #[cfg(test)]
    pub fn closed() -> Exporter {
        Exporter {
            queue: Queue::new(1),
            failed: Arc::default(),
        }
    }

    /// Queues a span; `false` when the queue is full.
    pub fn offer(&self, record: Record) -> bool {
        let mut spans = self.queue.lock();
        if spans.len() >= self.queue.capacity {
            return false;
        }
        spans.push(record);
        let queued = spans.len();
        drop(spans);
        if queued == 1 || queued == BATCH {
            self.queue.wake.notify_one();
        }
        true
    }

    /// Spans of batches the collector did not take.
    pub fn failed_spans(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// What the export task keeps besides the queue and the client.
struct Exporting {
    resource: Resource,
    failed: Arc<AtomicU64>,
    endpoint: String,
    linger: Duration,
}

async fn run(
    queue: Arc<Queue>,
    client: TraceServiceClient<tonic::transport::Channel>,
    exporting: Exporting,
) {
    let Exporting {
        resource,
        failed,
        endpoint,
        linger,
    } = exporting;
    loop {
        // A batch's first span, then what comes within the linger (or
        // until a batch is full), taken off the queue at once. Wakes told
        // while a batch was being sent are one: a queue that filled
        // meanwhile is taken now, not after another linger.
        queue.wake.notified().await;
        if queue.lock().len() < BATCH {
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = queue.wake.notified() => {}
            }
        }
        let taken = std::mem::take(&mut *queue.lock());
        let mut taken = taken.into_iter().peekable();
        let mut batches = Vec::new();
        while taken.peek().is_some() {
            batches.push(
                taken
                    .by_ref()
                    .take(BATCH)
                    .map(span_of)
                    .collect::<Vec<Span>>(),
            );
        }
        // Sent side by side over the one connection: the queue drains at
        // the collector's pace, not at one round trip per batch.
        futures::stream::iter(batches)
            .for_each_concurrent(IN_FLIGHT, |batch| {
                export(client.clone(), &resource, batch, &failed, &endpoint)
            })
            .await;
    }
}

/// Sends one batch; one the collector does not take is counted in `failed`.
async fn export(
    mut client: TraceServiceClient<tonic::transport::Channel>,
    resource: &Resource,
    batch: Vec<Span>,
    failed: &AtomicU64,
    endpoint: &str,
) {
    let n = batch.len() as u64;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lymphd".to_owned(),
                    version: crate::VERSION.to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans: batch,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    match tokio::time::timeout(EXPORT_TIMEOUT, client.export(request)).await {
        Ok(Ok(_)) => debug!(spans = n, "spans exported"),
        Ok(Err(status)) => {
            failed.fetch_add(n, Ordering::Relaxed);
            warn_limited!(FAILED, %endpoint, error = %status.message(), dropped = n,
                    "the trace collector refused spans; dropped");
        }
        Err(_) => {
            failed.fetch_add(n, Ordering::Relaxed);
            warn_limited!(FAILED, %endpoint, dropped = n,
                    "the trace collector did not answer in time; spans dropped");
        }
    }
}

fn text(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..KeyValue::default()
    }
}

fn nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A record as OTLP's span.
fn span_of(record: Record) -> Span {
    let kind = match record.kind {
        Kind::Server => span::SpanKind::Server,
        Kind::Client => span::SpanKind::Client,
        Kind::Producer => span::SpanKind::Producer,
        Kind::Consumer => span::SpanKind::Consumer,
    };
    let mut attributes: Vec<KeyValue> = record
        .attributes
        .into_iter()
        .map(|(k, v)| text(k, v.into_owned()))
        .collect();
    let status = match record.error {
        Some(kind) => {
            attributes.push(text("error.type", kind.to_owned()));
            Status {
                code: status::StatusCode::Error as i32,
                message: kind.to_owned(),
            }
        }
        None => Status::default(),
    };
    Span {
        trace_id: record.trace_id.to_vec(),
        span_id: record.span_id.to_vec(),
        parent_span_id: record.parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: record.name,
        kind: kind as i32,
        start_time_unix_nano: nanos(record.start),
        end_time_unix_nano: nanos(record.end),
        attributes,
        status: Some(status),
        ..Span::default()
    }
}

#[cfg(test)]
mod tests;
