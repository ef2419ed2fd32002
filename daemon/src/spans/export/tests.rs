//! The exporter against a real OTLP/gRPC receiver: batches, batches side
//! by side, and a queue that filled while a batch was being sent.

use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::{Semaphore, mpsc};

use super::{BATCH, Exporter};
use crate::spans::{Kind, Record};

/// A receiver that reports each batch's size, then answers it once the
/// test allows (a permit per batch).
struct Receiver {
    batches: mpsc::UnboundedSender<usize>,
    answers: std::sync::Arc<Semaphore>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        let _ = self.batches.send(spans);
        let permit = self.answers.acquire().await;
        permit
            .map_err(|_| tonic::Status::unavailable("closed"))?
            .forget();
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Starts a receiver; its address, its batches, and the permits it answers
/// with.
async fn receiver() -> (
    String,
    mpsc::UnboundedReceiver<usize>,
    std::sync::Arc<Semaphore>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let answers = std::sync::Arc::new(Semaphore::new(0));
    let service = TraceServiceServer::new(Receiver {
        batches: tx,
        answers: answers.clone(),
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), rx, answers)
}

fn record() -> Record {
    Record {
        trace_id: [1; 16],
        span_id: [2; 8],
        parent: None,
        name: "Echo.echo".to_owned(),
        kind: Kind::Server,
        start: SystemTime::now(),
        end: SystemTime::now(),
        attributes: Vec::new(),
        error: None,
    }
}

async fn next_batch(batches: &mut mpsc::UnboundedReceiver<usize>) -> usize {
    tokio::time::timeout(Duration::from_secs(20), batches.recv())
        .await
        .expect("a batch within 20 s, far less than the exporter's minute of linger")
        .expect("the receiver runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_filled_while_a_batch_was_sent_is_sent_next_without_lingering() {
    let (endpoint, mut batches, answers) = receiver().await;
    // A linger of a minute: only a full batch is sent before it.
    let exporter =
        Exporter::spawn_lingering(&endpoint, 10 * BATCH, "test", Duration::from_secs(60));
    for _ in 0..BATCH {
        assert!(exporter.offer(record()));
    }
    assert_eq!(
        next_batch(&mut batches).await,
        BATCH,
        "a full batch goes at once"
    );
    // While that batch waits for its answer, two more batches' worth queue
    // up (the exporter's wakes for them arrive while it is busy).
    for _ in 0..2 * BATCH {
        assert!(exporter.offer(record()));
    }
    // Only the first batch is answered: the next two are sent side by
    // side, both before either is answered.
    answers.add_permits(1);
    let sent = next_batch(&mut batches).await + next_batch(&mut batches).await;
    assert_eq!(
        sent,
        2 * BATCH,
        "the queue that filled meanwhile is sent next"
    );
    answers.add_permits(2);
    // A wake told while those were in flight leaves nothing to send.
    let idle = tokio::time::timeout(Duration::from_millis(300), batches.recv()).await;
    assert!(idle.is_err(), "nothing more was queued");
    assert_eq!(exporter.failed_spans(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_spans_go_after_the_linger() {
    let (endpoint, mut batches, answers) = receiver().await;
    answers.add_permits(1);
    let exporter = Exporter::spawn_lingering(&endpoint, BATCH, "test", Duration::from_millis(50));
    for _ in 0..3 {
        assert!(exporter.offer(record()));
    }
    assert_eq!(next_batch(&mut batches).await, 3);
}
