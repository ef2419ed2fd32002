//! Spans of every hop, exported over OTLP/gRPC to a real receiver (the
//! collector's protocol, served here with `opentelemetry-proto`'s tonic
//! server): a call, the event its handler emits, and that event's delivery
//! share lymph's trace id as their trace id; one request through the seed's
//! walkthrough (Web → Greeting → Listen) is one tree of spans, on one daemon
//! and across two (ZeroMQ and RabbitMQ between them).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lymph_proto::v1 as pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

use crate::harness::{TestDaemon, wait_until};
use crate::web::free_port;

const WAIT: Duration = Duration::from_secs(30);
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Every span received, with its resource's `service.name`.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut all = self.0.lock().expect("lock");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.clone())
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                all.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Received {
    /// The spans of trace `trace` (32 hex).
    fn of_trace(&self, trace: &str) -> Vec<Span> {
        let all = self.0.lock().expect("lock");
        all.iter()
            .filter(|(_, s)| hex(&s.trace_id) == trace)
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn find(&self, name: &str, kind: SpanKind) -> Option<(String, Span)> {
        let all = self.0.lock().expect("lock");
        all.iter()
            .find(|(_, s)| s.name == name && s.kind == kind as i32)
            .cloned()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// The receiver runs on the runtime's workers while the test thread waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_its_event_and_the_delivery_share_one_trace() {
    let received = Received::default();
    let daemon = traced_daemon(&received);
    let _greeting = daemon.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    let _listen = daemon.app("listen", "listen", &["--config", "conf/listen.yml"]);
    daemon.wait_for_instances("Greeting", 1).await;
    daemon.wait_for_instances("Listen", 1).await;

    let reply = daemon
        .client()
        .await
        .call(pb::CallRequest {
            service: "Greeting".to_owned(),
            method: "greet".to_owned(),
            body: rmp_serde::to_vec_named(&json!({"name": "Spans"}))
                .expect("msgpack")
                .into(),
            trace_id: TRACE.to_owned(),
            timeout_ms: 5_000,
            version: String::new(),
        })
        .await
        .expect("call")
        .into_inner();
    assert_eq!(reply.trace_id, TRACE);

    wait_until(
        "the call's, the emit's and the delivery's spans",
        WAIT,
        || {
            received.find("Greeting.greet", SpanKind::Client).is_some()
                && received.find("send greeted", SpanKind::Producer).is_some()
                && received
                    .find("process greeted", SpanKind::Consumer)
                    .is_some()
        },
    );
    for (name, kind) in [
        ("Greeting.greet", SpanKind::Client),
        ("send greeted", SpanKind::Producer),
        ("process greeted", SpanKind::Consumer),
    ] {
        let (service, span) = received.find(name, kind).expect("received");
        assert_eq!(hex(&span.trace_id), TRACE, "{name}: lymph's trace id");
        assert_eq!(span.span_id.len(), 8, "{name}");
        assert!(
            span.end_time_unix_nano >= span.start_time_unix_nano,
            "{name}"
        );
        assert!(service.contains("lymphd"), "{name}: resource {service}");
    }
    let (_, call) = received
        .find("Greeting.greet", SpanKind::Client)
        .expect("call");
    let attribute = |key: &str| {
        call.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.clone())
            .map(|v| format!("{v:?}"))
    };
    assert!(attribute("rpc.method").is_some_and(|v| v.contains("Greeting.greet")));
    assert!(attribute("rpc.system.name").is_some_and(|v| v.contains("lymph")));
}

/// The receiver on a free port; its endpoint.
fn receiver(received: &Received) -> String {
    let port = free_port();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(received.clone()))
        .serve(([127, 0, 0, 1], port).into());
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// The receiver, and a daemon exporting to it.
fn traced_daemon(received: &Received) -> TestDaemon {
    let endpoint = receiver(received);
    TestDaemon::start_with_env(&[], &[("LYMPHD_TRACING_OTLP_ENDPOINT", endpoint.as_str())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_takes_and_answers_traceparent() {
    let received = Received::default();
    let daemon = traced_daemon(&received);
    let web_port = free_port();
    let config = crate::web::app_config(&daemon, web_port);
    let _greeting = daemon.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    let _web = daemon.app("web", "web", &["--config", config.to_str().expect("utf-8")]);
    daemon.wait_for_instances("Greeting", 1).await;
    daemon.wait_for_instances("Web", 1).await;

    let trace = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let header = format!("traceparent: 00-{trace}-{caller_span}-01\r\n");
    let reply = crate::web::http(web_port, "GET", "/greet?name=Tp", &header).expect("http");
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Without X-Trace-Id, lymph's trace id is the W3C trace's.
    assert_eq!(reply.header("x-trace-id"), Some(trace));
    let answered = reply.header("traceparent").expect("a traceparent answer");
    let gateway_span = answered
        .strip_prefix(&format!("00-{trace}-"))
        .and_then(|rest| rest.strip_suffix("-01"))
        .unwrap_or_else(|| panic!("{answered}"));
    assert_ne!(gateway_span, caller_span, "the gateway's own span");

    wait_until("the gateway's and the call's spans", WAIT, || {
        received.find("GET /greet", SpanKind::Server).is_some()
            && received.find("Greeting.greet", SpanKind::Client).is_some()
    });
    let (_, server) = received
        .find("GET /greet", SpanKind::Server)
        .expect("server");
    assert_eq!(hex(&server.trace_id), trace);
    assert_eq!(
        hex(&server.parent_span_id),
        caller_span,
        "under the caller's span"
    );
    assert_eq!(hex(&server.span_id), gateway_span);
    let (_, client) = received
        .find("Greeting.greet", SpanKind::Client)
        .expect("client");
    assert_eq!(
        hex(&client.trace_id),
        trace,
        "the call is in the same trace"
    );
}

/// The walkthrough's hops, parent first: the gateway's request, Web's call
/// of Greeting (both sides), Greeting's emit, Listen's delivery.
const WALKTHROUGH: [(&str, SpanKind); 5] = [
    ("GET /greet", SpanKind::Server),
    ("Greeting.greet", SpanKind::Client),
    ("Greeting.greet", SpanKind::Server),
    ("send greeted", SpanKind::Producer),
    ("process greeted", SpanKind::Consumer),
];

/// Waits for the walkthrough's five spans in `trace`, then checks they are
/// one chain: each the child of the one before, the first a root.
fn assert_walkthrough_chain(received: &Received, trace: &str) {
    let one_of_each = || {
        let spans = received.of_trace(trace);
        WALKTHROUGH.iter().all(|(name, kind)| {
            spans
                .iter()
                .filter(|s| s.name == *name && s.kind == *kind as i32)
                .count()
                == 1
        })
    };
    wait_until("the walkthrough's five spans", WAIT, one_of_each);
    let spans = received.of_trace(trace);
    assert_eq!(
        spans.len(),
        WALKTHROUGH.len(),
        "no other span in the trace: {spans:#?}"
    );
    let chain: Vec<&Span> = WALKTHROUGH
        .iter()
        .map(|(name, kind)| {
            spans
                .iter()
                .find(|s| s.name == *name && s.kind == *kind as i32)
                .expect("found")
        })
        .collect();
    assert!(
        chain[0].parent_span_id.is_empty(),
        "the gateway's span is the root"
    );
    for pair in chain.windows(2) {
        let (parent, child) = (pair[0], pair[1]);
        assert_eq!(
            hex(&child.parent_span_id),
            hex(&parent.span_id),
            "{} ({:?}) is a child of {} ({:?})",
            child.name,
            child.kind(),
            parent.name,
            parent.kind()
        );
        assert!(
            child.start_time_unix_nano >= parent.start_time_unix_nano,
            "{} starts after its parent",
            child.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_through_the_walkthrough_is_one_chain_of_spans() {
    let received = Received::default();
    let daemon = traced_daemon(&received);
    let web_port = free_port();
    let config = crate::web::app_config(&daemon, web_port);
    let _greeting = daemon.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    let _listen = daemon.app("listen", "listen", &["--config", "conf/listen.yml"]);
    let _web = daemon.app("web", "web", &["--config", config.to_str().expect("utf-8")]);
    for service in ["Greeting", "Listen", "Web"] {
        daemon.wait_for_instances(service, 1).await;
    }

    let reply = crate::web::http(web_port, "GET", "/greet?name=Chain", "").expect("http");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let trace = reply.header("x-trace-id").expect("a trace id").to_owned();
    let answered = reply.header("traceparent").expect("a traceparent answer");
    assert!(answered.starts_with(&format!("00-{trace}-")), "{answered}");
    assert_walkthrough_chain(&received, &trace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_crosses_daemons_over_zeromq_and_rabbitmq() {
    let received = Received::default();
    let endpoint = receiver(&received);
    let vhost = crate::amqp::Vhost::new().await;
    let hosts = crate::harness::zookeeper_chroot();
    let yaml = format!(
        "events:\n  backend: amqp\n  url: {}\n  mode: lymph\ntracing:\n  otlp_endpoint: {endpoint}\n",
        vhost.url()
    );
    // Web and Listen on one host, Greeting on the other: the call goes out
    // over ZeroMQ and its event comes back over RabbitMQ.
    let a = TestDaemon::start_fleet_with(&hosts, "127.0.0.2", 0, &yaml);
    let b = TestDaemon::start_fleet_with(&hosts, "127.0.0.3", 0, &yaml);
    let web_port = free_port();
    let config = crate::web::app_config(&a, web_port);
    let _web = a.app("web", "web", &["--config", config.to_str().expect("utf-8")]);
    let _listen = a.app("listen", "listen", &["--config", "conf/listen.yml"]);
    let _greeting = b.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    for service in ["Greeting", "Listen", "Web"] {
        a.wait_for_instances(service, 1).await;
    }

    // Listen's queue is bound once its consumer has joined: ask until one
    // request's chain is whole, each with a trace of its own.
    let mut last = String::new();
    let whole = |trace: &str| {
        let spans = received.of_trace(trace);
        WALKTHROUGH.iter().all(|(name, kind)| {
            spans
                .iter()
                .any(|s| s.name == *name && s.kind == *kind as i32)
        })
    };
    let started = std::time::Instant::now();
    while started.elapsed() < WAIT {
        let reply = crate::web::http(web_port, "GET", "/greet?name=Hosts", "").expect("http");
        assert_eq!(reply.status, 200, "{}", reply.body);
        last = reply.header("x-trace-id").expect("a trace id").to_owned();
        std::thread::sleep(Duration::from_millis(500));
        if whole(&last) {
            break;
        }
    }
    assert_walkthrough_chain(&received, &last);
    let server = received
        .of_trace(&last)
        .into_iter()
        .find(|s| s.name == "Greeting.greet" && s.kind == SpanKind::Server as i32)
        .expect("the server span");
    let peer = server
        .attributes
        .iter()
        .find(|kv| kv.key == "network.peer.address")
        .and_then(|kv| kv.value.as_ref()?.value.clone())
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    assert!(
        peer.contains("127.0.0.2"),
        "served for the other host: {peer}"
    );
}
