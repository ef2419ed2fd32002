"""Running handlers without a daemon: replies, typed errors, acks and fails,
HTTP dispatch, and the trace id inside plain and coroutine handlers."""

import asyncio
import concurrent.futures
import logging

import pytest
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response

import lymph
from lymph import codec, handlers, logs, trace
from lymph._wire import pb
from lymph.web.interfaces import WebServiceInterface


class Boom(Exception):
    pass


class Service(lymph.Interface):
    @lymph.rpc(raises=Boom)
    def greet(self, name):
        if name == "boom":
            raise Boom("typed %s" % name)
        if name == "crash":
            return 1 / 0
        logging.getLogger("svc").info("greeting %s", name)
        return {"greeting": "Hi, %s!" % name, "trace": trace.get_id()}

    @lymph.rpc()
    async def agreet(self, name):
        await asyncio.sleep(0)
        return [name, trace.get_id()]

    @lymph.rpc()
    def unencodable(self):
        return object()

    @lymph.event("greeted")
    def on_greeted(self, event):
        if event["name"] == "bad":
            raise ValueError("bad name")
        self.seen = (event.type, event.body, event.trace_id, event.attempt, trace.get_id())

    @lymph.event("async.*")
    async def on_async(self, event):
        self.seen = (event.evt_type, trace.get_id())


class Web(WebServiceInterface):
    url_map = Map([
        Rule("/greet", endpoint="greet"),
        Rule("/n/<int:n>", endpoint="number", methods=["GET"]),
        Rule("/broken", endpoint="broken"),
        Rule("/coro", endpoint="coro"),
    ])

    def greet(self, request):
        return Response("Hi, %s! %s" % (request.args["name"], trace.get_id()))

    def number(self, request, n):
        return Response(repr(n + 1), headers={"X-N": str(n)})

    def broken(self, request):
        return "not a response"

    async def coro(self, request):
        return Response("coroutine " + trace.get_id())


class FakeContainer:
    def __init__(self, loop):
        self.loop = loop
        self.pool = concurrent.futures.ThreadPoolExecutor(4)


@pytest.fixture
def run():
    loop = asyncio.new_event_loop()
    container = FakeContainer(loop)

    def run(coro_fn, *args):
        return loop.run_until_complete(asyncio.wait_for(coro_fn(container, *args), 10))
    yield run
    container.pool.shutdown()
    loop.close()


def request(method, trace_id="t-1", **kwargs):
    return pb.Request(id=7, interface="Service", method=method, body=codec.pack(kwargs), trace_id=trace_id)


def test_a_reply_carries_the_value_and_the_handler_sees_the_trace_id(run):
    reply = run(handlers.rpc, Service(), request("greet", name="Joe"))
    assert reply.id == 7
    assert codec.unpack(reply.body) == {"greeting": "Hi, Joe!", "trace": "t-1"}


def test_coroutine_handlers_see_the_trace_id_too(run):
    reply = run(handlers.rpc, Service(), request("agreet", trace_id="t-2", name="Ann"))
    assert codec.unpack(reply.body) == ["Ann", "t-2"]


@pytest.mark.parametrize("method, kwargs, kind, type_, message", [
    ("greet", {"name": "boom"}, pb.ERROR_KIND_REMOTE_ERROR, "Boom", "typed boom"),
    ("greet", {"name": "crash"}, pb.ERROR_KIND_HANDLER_FAILED, "", "ZeroDivisionError: division by zero"),
    ("greet", {"nom": "x"}, pb.ERROR_KIND_BAD_REQUEST, "", "Service.greet: "),
    ("greet", {}, pb.ERROR_KIND_BAD_REQUEST, "", "missing a required argument: 'name'"),
    ("nope", {}, pb.ERROR_KIND_UNKNOWN_METHOD, "", "Service has no method nope"),
    ("helper", {}, pb.ERROR_KIND_UNKNOWN_METHOD, "", "Service has no method helper"),
    ("unencodable", {}, pb.ERROR_KIND_HANDLER_FAILED, "", "cannot encode the reply of Service.unencodable"),
])
def test_failures_reach_the_caller_with_their_kind(run, method, kwargs, kind, type_, message):
    reply = run(handlers.rpc, Service(), request(method, **kwargs))
    assert reply.WhichOneof("outcome") == "error"
    assert (reply.error.kind, reply.error.type) == (kind, type_)
    assert message in reply.error.message


def test_log_records_carry_the_trace_id(run):
    sink = logs.DaemonHandler(level=logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(sink)
    root.setLevel(logging.INFO)
    try:
        run(handlers.rpc, Service(), request("greet", trace_id="t-log", name="Joe"))
    finally:
        root.removeHandler(sink)
        root.setLevel(old_level)
    records = {(name, message, trace_id) for _, name, message, trace_id, _ in sink.take()}
    assert ("lymph.rpc", "Service.greet", "t-log") in records
    assert ("svc", "greeting Joe", "t-log") in records


def test_the_record_queue_is_bounded():
    sink = logs.DaemonHandler(capacity=2)
    for i in range(5):
        sink.handle(logging.LogRecord("x", logging.INFO, __file__, 1, "m%d", (i,), None))
    assert [r[2] for r in sink.take()] == ["m0", "m1"]
    assert sink.dropped == 3
    assert logs.proto_level(logging.CRITICAL) == pb.LOG_LEVEL_CRITICAL
    assert logs.proto_level(logging.WARNING) == pb.LOG_LEVEL_WARN


def delivery(event_type, body, trace_id="t-e", attempt=1):
    return pb.Delivery(delivery_id=3, event_type=event_type, body=codec.pack(body), trace_id=trace_id,
                       attempt=attempt, interface="Service", event_id="e1")


def test_events_are_acked_after_the_handler_returns(run):
    service = Service()
    answer = run(handlers.deliver, service, delivery("greeted", {"name": "Joe"}, attempt=2))
    assert answer.WhichOneof("kind") == "ack" and answer.ack.delivery_id == 3
    assert service.seen == ("greeted", {"name": "Joe"}, "t-e", 2, "t-e")


def test_failing_handlers_fail_the_delivery_with_the_reason(run):
    answer = run(handlers.deliver, Service(), delivery("greeted", {"name": "bad"}))
    assert answer.WhichOneof("kind") == "fail"
    assert answer.fail.reason == "ValueError: bad name"


def test_wildcard_subscriptions_and_unknown_types(run):
    service = Service()
    assert run(handlers.deliver, service, delivery("async.thing", {})).WhichOneof("kind") == "ack"
    assert service.seen == ("async.thing", "t-e")
    answer = run(handlers.deliver, service, delivery("other", {}))
    assert "no handler for event other" in answer.fail.reason


def test_the_daemon_named_handler_runs(run):
    service = Service()
    # By type "greeted" is on_greeted's; the daemon says the queue is on_async's.
    named = delivery("greeted", {"name": "Joe"})
    named.handler = "on_async"
    assert run(handlers.deliver, service, named).WhichOneof("kind") == "ack"
    assert service.seen == ("greeted", "t-e")
    # A name that is not a handler of ours: dispatched by event type instead.
    unknown = delivery("greeted", {"name": "Ann"})
    unknown.handler = "gone"
    assert run(handlers.deliver, service, unknown).WhichOneof("kind") == "ack"
    assert service.seen[1] == {"name": "Ann"}


def http(path, query="", method="GET", trace_id="t-h"):
    return pb.HttpRequest(id=9, method=method, path=path, query=query, trace_id=trace_id,
                          headers=[pb.Header(name="host", value="127.0.0.1:4080")])


def test_http_handlers_get_a_werkzeug_request(run):
    response = run(handlers.http, Web(), http("/greet", "name=Joe+Doe"))
    assert (response.id, response.status) == (9, 200)
    assert response.body == b"Hi, Joe Doe! t-h"
    assert ("Content-Type", "text/plain; charset=utf-8") in [(h.name, h.value) for h in response.headers]


@pytest.mark.parametrize("path, query, method, status, body", [
    ("/greet", "", "GET", 400, None),          # request.args['name'] missing, as werkzeug answers
    ("/missing", "", "GET", 404, None),
    ("/n/41", "", "GET", 200, b"42"),           # werkzeug's converter: an int
    ("/n/41", "", "POST", 405, None),
    ("/broken", "", "GET", 500, b""),           # not a Response: lymph's 500
    ("/coro", "", "GET", 200, b"coroutine t-h"),
])
def test_http_outcomes(run, path, query, method, status, body):
    response = run(handlers.http, Web(), http(path, query, method))
    assert response.status == status
    if body is not None:
        assert response.body == body
