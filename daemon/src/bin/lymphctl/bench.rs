//! `lymphctl request -N n -C c`: a load generator over ONE `Attach` stream,
//! attached as a tool (no interfaces, no `Ready`). It keeps `c` calls in
//! flight until `n` were sent, matches `CallResult`s by id, and prints the
//! rate and the latency spread (see `summary`).

mod summary;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use lymph_proto::v1::app_message::Kind as Out;
use lymph_proto::v1::daemon_message::Kind as In;
use lymph_proto::v1::{AppMessage, CallResult, DaemonMessage, Hello, OutgoingCall, call_result};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::request::{Subject, millis};
use crate::wait::Patience;
use crate::{print_out, render, rpc_error};

use summary::Summary;

/// Slack on top of a call's own deadline before we give up on the daemon.
const ANSWER_SLACK: Duration = Duration::from_secs(5);

/// What to send, how often, how many at once.
#[derive(Debug)]
pub struct Plan {
    pub subject: Subject,
    pub body: Bytes,
    pub trace_id: String,
    pub timeout: Duration,
    pub count: u64,
    pub concurrency: u32,
}

pub async fn run(wait: &Patience, plan: Plan) -> anyhow::Result<()> {
    // Bounded at the concurrency: we never have more than `c` calls to push,
    // so `send` only waits when the transport itself is slow.
    let (tx, rx) = mpsc::channel::<AppMessage>(plan.concurrency as usize + 1);
    tx.send(hello()).await.context("cannot queue Hello")?;
    // Connecting is bounded by --connect-timeout; the calls by their deadline.
    let attach = async {
        let mut inbound = wait
            .connect()
            .await?
            .attach(ReceiverStream::new(rx))
            .await
            .map_err(rpc_error)?
            .into_inner();
        await_welcome(&mut inbound).await?;
        Ok(inbound)
    };
    let mut inbound = wait.whole("Hello", attach).await?;

    let mut in_flight: HashMap<u64, Instant> = HashMap::new();
    let mut summary = Summary::default();
    let mut sent: u64 = 0;
    let started = Instant::now();
    let patience = plan.timeout + ANSWER_SLACK;
    loop {
        while in_flight.len() < plan.concurrency as usize && sent < plan.count {
            sent += 1;
            in_flight.insert(sent, Instant::now());
            tx.send(call(&plan, sent))
                .await
                .context("lymphd stopped reading the stream")?;
        }
        if in_flight.is_empty() {
            break;
        }
        let message = match tokio::time::timeout(patience, inbound.message()).await {
            Err(_) => bail!(
                "no answer from lymphd within {}",
                humantime::format_duration(patience)
            ),
            Ok(Err(status)) => return Err(rpc_error(status)),
            Ok(Ok(None)) => bail!(
                "lymphd closed the stream with {} unanswered",
                render::count(in_flight.len() as u64, "call", "calls")
            ),
            Ok(Ok(Some(message))) => message,
        };
        match message.kind {
            Some(In::CallResult(result)) => {
                if let Some(start) = in_flight.remove(&result.id) {
                    summary.record(start.elapsed(), error_kind(&result));
                }
            }
            Some(In::Rejected(rejected)) => bail!("lymphd refused us: {}", rejection(rejected)),
            Some(In::Drain(_)) => bail!("lymphd is shutting down"),
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    // Ending our half of the stream detaches us; the daemon has nothing left for us.
    drop(tx);
    print_out(&summary.render(plan.concurrency, elapsed))?;
    if summary.errors() > 0 {
        bail!(
            "{} of {} failed",
            summary.errors(),
            render::count(plan.count, "request", "requests")
        );
    }
    Ok(())
}

fn hello() -> AppMessage {
    AppMessage {
        kind: Some(Out::Hello(Hello {
            app_name: "lymphctl".to_owned(),
            interfaces: Vec::new(),
            max_concurrency: 0,
            http_port: 0,
            sdk: format!("lymphctl/{}", env!("CARGO_PKG_VERSION")),
            pid: std::process::id(),
        })),
    }
}

fn call(plan: &Plan, id: u64) -> AppMessage {
    AppMessage {
        kind: Some(Out::Call(OutgoingCall {
            id,
            service: plan.subject.service.clone(),
            method: plan.subject.method.clone(),
            body: plan.body.clone(),
            trace_id: plan.trace_id.clone(),
            timeout_ms: millis(plan.timeout),
            version: plan.subject.version.clone(),
            traceparent: String::new(),
        })),
    }
}

async fn await_welcome(inbound: &mut Streaming<DaemonMessage>) -> anyhow::Result<()> {
    let first = inbound.message().await.map_err(rpc_error)?;
    match first.and_then(|m| m.kind) {
        Some(In::Welcome(_)) => Ok(()),
        Some(In::Rejected(rejected)) => bail!("lymphd refused us: {}", rejection(rejected)),
        Some(_) => bail!("lymphd answered Hello with something other than Welcome"),
        None => bail!("lymphd closed the stream before Welcome"),
    }
}

fn rejection(rejected: lymph_proto::v1::Rejected) -> String {
    rejected
        .error
        .map_or_else(|| "no reason given".to_owned(), |e| render::call_error(&e))
}

/// `None` for a success, else the error kind in words.
fn error_kind(result: &CallResult) -> Option<String> {
    match &result.outcome {
        Some(call_result::Outcome::Body(_)) => None,
        Some(call_result::Outcome::Error(e)) => Some(
            lymph_proto::v1::ErrorKind::try_from(e.kind)
                .map_or_else(|_| "unknown error".to_owned(), render::kind_words),
        ),
        None => Some("empty result".to_owned()),
    }
}
