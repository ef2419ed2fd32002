//! Spans of every hop, exported over OTLP/gRPC to a real receiver (the
//! collector's protocol, served here with `opentelemetry-proto`'s tonic
//! server): a call, the event its handler emits, and that event's delivery
//! share lymph's trace id as their trace id.

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

/// The receiver on a free port, and a daemon exporting to it.
fn traced_daemon(received: &Received) -> TestDaemon {
    let port = free_port();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(received.clone()))
        .serve(([127, 0, 0, 1], port).into());
    tokio::spawn(server);
    let endpoint = format!("http://127.0.0.1:{port}");
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
