"""`lymph.current_request()` and the timeout of calls made inside a handler,
without a daemon: what a handler sees, and calls bounded by its deadline."""

import asyncio
import concurrent.futures
import time

import pytest

import lymph
from lymph import codec, handlers, request
from lymph._wire import pb
from lymph.container import Container
from lymph.exceptions import Timeout


class Service(lymph.Interface):
    @lymph.rpc()
    def plain(self):
        current = lymph.current_request()
        return [current.trace_id, current.time_left(), current.cancelled]

    @lymph.rpc()
    async def coroutine(self):
        current = lymph.current_request()
        return [current.trace_id, current.time_left(), current.cancelled]

    @lymph.rpc()
    def span(self):
        return lymph.current_request().traceparent

    @lymph.event("spanned")
    def on_spanned(self, event):
        self.span_seen = lymph.current_request().traceparent

    @lymph.event("seen")
    def on_seen(self, event):
        current = lymph.current_request()
        self.seen = (current.trace_id, current.deadline, current.cancelled)


class FakeContainer:
    def __init__(self, loop):
        self.loop = loop
        self.pool = concurrent.futures.ThreadPoolExecutor(2)


@pytest.fixture
def run():
    loop = asyncio.new_event_loop()
    container = FakeContainer(loop)

    def run(coro_fn, *args):
        return loop.run_until_complete(asyncio.wait_for(coro_fn(container, *args), 10))
    yield run
    container.pool.shutdown()
    loop.close()


def test_outside_a_handler_current_request_says_where_it_is_valid():
    with pytest.raises(lymph.NoCurrentRequest, match="only valid inside a handler"):
        lymph.current_request()
    assert isinstance(lymph.NoCurrentRequest(), RuntimeError)


@pytest.mark.parametrize("method", ["plain", "coroutine"])
def test_handlers_see_their_trace_id_and_time_left(run, method):
    message = pb.Request(id=1, interface="Service", method=method, body=codec.pack({}),
                         trace_id="t-r", deadline_ms=2000)
    reply = run(handlers.rpc, Service(), message)
    trace_id, left, cancelled = codec.unpack(reply.body)
    assert (trace_id, cancelled) == ("t-r", False)
    # Counted from when the request arrived: a little under 2 s, never more.
    assert 0.5 < left <= 2.0
    with pytest.raises(lymph.NoCurrentRequest):
        lymph.current_request()  # the handler's context did not leak here


def test_event_handlers_have_no_deadline(run):
    service = Service()
    delivery = pb.Delivery(delivery_id=2, event_type="seen", body=codec.pack({}), trace_id="t-e",
                           interface="Service")
    assert run(handlers.deliver, service, delivery).WhichOneof("kind") == "ack"
    assert service.seen == ("t-e", None, False)


def test_a_request_without_deadline_ms_has_no_deadline():
    assert request.CurrentRequest.arrived("t", 0).deadline is None
    current = request.CurrentRequest.arrived("t", 1500, now=100.0)
    assert current.deadline == 101.5
    assert current.time_left(now=101.0) == 0.5
    current.cancel()
    assert current.cancelled is True


def in_request(deadline, func, *args):
    """Runs `func(*args)` as if inside a handler whose deadline is `deadline`."""
    import contextvars

    context = contextvars.Context()
    context.run(request.enter, request.CurrentRequest("t", deadline))
    return context.run(func, *args)


def test_calls_get_the_smaller_of_their_timeout_and_the_time_left():
    now = time.monotonic()
    # Outside a handler: unchanged, the daemon's default included.
    assert request.call_timeout(5.0, "A.b") == 5.0
    assert request.call_timeout(None, "A.b") is None
    # A handler without a deadline (an event): unchanged too.
    assert in_request(None, request.call_timeout, 5.0, "A.b") == 5.0
    # With 0.3 s left: 0.3 s, whether the call asked for more or for nothing.
    assert in_request(now + 0.3, request.call_timeout, 5.0, "A.b", now) == pytest.approx(0.3)
    assert in_request(now + 0.3, request.call_timeout, None, "A.b", now) == pytest.approx(0.3)
    # A shorter timeout of its own stays.
    assert in_request(now + 10, request.call_timeout, 0.5, "A.b", now) == 0.5
    with pytest.raises(Timeout, match="no time left to call A.b"):
        in_request(now - 0.001, request.call_timeout, 5.0, "A.b", now)


class RecordingLink:
    def __init__(self):
        self.calls = []
        self.traces = []

    async def call(self, service, method, body, trace_id, timeout_ms, version, traceparent=None):
        self.calls.append((service, method, timeout_ms))
        self.traces.append((trace_id, traceparent))
        return codec.pack("reply")

    async def emit(self, event_type, body, trace_id, delay_ms, traceparent=None):
        self.traces.append((trace_id, traceparent))
        return "event-id"


TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def in_traced_request(func, *args):
    """Runs `func(*args)` as if inside a handler of trace "t" under lymphd's span `TP`."""
    import contextvars

    from lymph import trace

    context = contextvars.Context()
    context.run(request.enter, request.CurrentRequest("t", None, traceparent=TP))
    context.run(trace.set_id, "t")
    return context.run(func, *args)


def test_calls_and_emits_in_a_handler_pass_its_span_on():
    container = Container(socket="/nonexistent/lymphd.sock", send_logs=False)
    container.link = RecordingLink()
    in_traced_request(asyncio.run, container.call_async("Echo", "echo", {}))
    in_traced_request(asyncio.run, container.emit_async("seen", {}))
    assert container.link.traces == [("t", TP), ("t", TP)]
    # In another trace (given explicitly), or outside a handler: none.
    container.link.traces.clear()
    in_traced_request(asyncio.run, container.call_async("Echo", "echo", {}, trace_id="other"))
    asyncio.run(container.call_async("Echo", "echo", {}))
    asyncio.run(container.emit_async("seen", {}))
    assert container.link.traces == [("other", None), (None, None), (None, None)]


def test_a_blocking_call_from_a_handlers_thread_passes_its_span_on():
    container = Container(socket="/nonexistent/lymphd.sock", send_logs=False)
    container.link = RecordingLink()
    loop = asyncio.new_event_loop()
    container.loop = loop
    import threading
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        container._running_loop = lambda: loop
        assert in_traced_request(container.call, "Echo", "echo", {}) == "reply"
        assert in_traced_request(container.emit, "seen", {}) == "event-id"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()
    assert container.link.traces == [("t", TP), ("t", TP)]


def test_handlers_run_under_the_span_the_daemon_sent(run):
    message = pb.Request(id=1, interface="Service", method="span", body=codec.pack({}),
                         trace_id="t-r", traceparent=TP)
    assert codec.unpack(run(handlers.rpc, Service(), message).body) == TP
    service = Service()
    delivery = pb.Delivery(delivery_id=2, event_type="spanned", body=codec.pack({}), trace_id="t-e",
                           interface="Service", traceparent=TP)
    assert run(handlers.deliver, service, delivery).WhichOneof("kind") == "ack"
    assert service.span_seen == TP
    # A message without one (spans off) gives None, not "".
    message = pb.Request(id=3, interface="Service", method="span", body=codec.pack({}), trace_id="t")
    assert codec.unpack(run(handlers.rpc, Service(), message).body) is None
