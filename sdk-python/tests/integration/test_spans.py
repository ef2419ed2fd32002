"""Spans through Python apps: the seed's Python Web, Greeting and Listen on
one lymphd that exports its spans over OTLP/gRPC to a receiver here (the
collector's protocol, from `opentelemetry-proto`). One request through the
gateway is one chain of spans, which holds only if the SDK passes the
daemon's span on for the calls and emits made inside handlers."""

import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from conftest import REPO, free_port, http_get, wait_until

WEB_PORT = 4080  # conf/web-py.yml's http_port
Kind = trace_pb2.Span.SpanKind

# The walkthrough's hops, parent first.
CHAIN = [
    ("GET /greet", Kind.SPAN_KIND_SERVER),
    ("Greeting.greet", Kind.SPAN_KIND_CLIENT),
    ("Greeting.greet", Kind.SPAN_KIND_SERVER),
    ("send greeted", Kind.SPAN_KIND_PRODUCER),
    ("process greeted", Kind.SPAN_KIND_CONSUMER),
]


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self):
        self.lock = threading.Lock()
        self.spans = []

    def Export(self, request, context):
        with self.lock:
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace):
        with self.lock:
            return [s for s in self.spans if s.trace_id.hex() == trace]


def test_one_request_through_python_apps_is_one_chain_of_spans(world):
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = free_port()
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    try:
        world.start_daemon(LYMPHD_TRACING_OTLP_ENDPOINT="http://127.0.0.1:%d" % port)
        for name in ("greeting", "listen", "web"):
            world.python_app(name, REPO / "conf" / ("%s-py.yml" % name))
        world.wait_for("Web [", "Greeting [", "Listen [")
        # Listen's subscription joins asynchronously: ask until one chain is whole.
        found = {}

        def whole_chain():
            reply = http_get(WEB_PORT, "/greet?name=Spans")
            assert reply.status == 200, reply.body
            trace = reply.headers["X-Trace-Id"]
            assert reply.headers["traceparent"].startswith("00-%s-" % trace), reply.headers
            time.sleep(1)
            found["trace"] = trace
            spans = receiver.of_trace(trace)
            return all(any(s.name == n and s.kind == k for s in spans) for n, k in CHAIN)

        wait_until("one request's five spans", whole_chain)
        spans = receiver.of_trace(found["trace"])
        assert len(spans) == len(CHAIN), spans
        chain = [next(s for s in spans if s.name == n and s.kind == k) for n, k in CHAIN]
        assert chain[0].parent_span_id == b"", "the gateway's span is the root"
        for parent, child in zip(chain, chain[1:]):
            assert child.parent_span_id == parent.span_id, (
                "%s is a child of %s" % (child.name, parent.name))
    finally:
        server.stop(0)
