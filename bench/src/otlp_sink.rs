//! `--otlp-sink ADDR`: an OTLP/gRPC trace receiver that counts the spans it
//! is sent and drops them, so the cost of tracing can be measured with a
//! collector taking the daemons' spans. It runs in a thread of its own, on
//! the CPUs the run is not pinned to when there are any (a collector lives
//! elsewhere; its work is not the daemons').

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

/// What the sink has taken so far.
#[derive(Clone, Default)]
pub struct Sink {
    spans: Arc<AtomicU64>,
    batches: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Sink {
    /// Listens on `addr` (checked here: a taken port is an error at once)
    /// in a thread of its own, moved to `cpus` when given.
    pub fn start(addr: SocketAddr, cpus: Option<nix::sched::CpuSet>) -> anyhow::Result<Sink> {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("--otlp-sink cannot listen on {addr}"))?;
        listener.set_nonblocking(true)?;
        let sink = Sink::default();
        let serving = sink.clone();
        std::thread::Builder::new()
            .name("otlp-sink".to_owned())
            .spawn(move || {
                if let Some(cpus) = cpus {
                    // Best effort: without it the sink shares the run's CPUs.
                    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &cpus);
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let outcome = runtime.map_err(anyhow::Error::from).and_then(|rt| {
                    rt.block_on(async {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                        tonic::transport::Server::builder()
                            .add_service(TraceServiceServer::new(serving))
                            .serve_with_incoming(incoming)
                            .await?;
                        anyhow::Ok(())
                    })
                });
                if let Err(e) = outcome {
                    eprintln!("bench: the OTLP sink stopped: {e:#}");
                }
            })
            .context("spawn the OTLP sink's thread")?;
        Ok(sink)
    }

    /// One line for the end of the run.
    pub fn summary(&self, addr: SocketAddr) -> String {
        format!(
            "OTLP sink at {addr}: {} spans received in {} batches",
            self.spans.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed)
        )
    }
}
