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

    async def call(self, service, method, body, trace_id, timeout_ms, version):
        self.calls.append((service, method, timeout_ms))
        return codec.pack("reply")


def test_a_call_with_no_time_left_fails_at_once_without_reaching_the_daemon():
    container = Container(socket="/nonexistent/lymphd.sock", send_logs=False)
    container.link = RecordingLink()
    past = time.monotonic() - 1

    started = time.monotonic()
    with pytest.raises(Timeout, match="deadline of the request being handled has passed"):
        in_request(past, asyncio.run, container.call_async("Echo", "echo", {"text": "x"}, timeout=5))
    assert time.monotonic() - started < 1.0
    assert container.link.calls == []

    # A deferred call fails the same way: its Deferred holds the Timeout.
    future = in_request(past, container.call_future, "Echo", "echo", {"text": "x"}, 5)
    assert isinstance(future.exception(0), Timeout)
    assert container.link.calls == []

    # With time left the call goes out with it as its timeout.
    soon = time.monotonic() + 0.4
    assert in_request(soon, asyncio.run, container.call_async("Echo", "echo", {}, timeout=5)) == "reply"
    [(service, method, timeout_ms)] = container.link.calls
    assert (service, method) == ("Echo", "echo")
    assert 1 <= timeout_ms <= 400


def test_the_daemons_cancel_flags_the_request_and_cancels_its_task():
    from lymph.link import Link

    async def scenario():
        link = Link(container=None, socket="/nonexistent/lymphd.sock")
        current = request.CurrentRequest("t", None)
        started = asyncio.Event()

        async def handler():
            started.set()
            await asyncio.sleep(30)
            return pb.AppMessage()

        link._spawn(handler(), lambda reason: pb.AppMessage(), 5, current)
        await asyncio.wait_for(started.wait(), 5)
        [task] = link.in_flight
        await link._on_message(pb.DaemonMessage(cancel=pb.Cancel(id=5, reason="deadline exceeded")))
        assert current.cancelled
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert link.requests == {} and link.in_flight == set()
        # Another Cancel of that id, or of one never seen, is ignored.
        await link._on_message(pb.DaemonMessage(cancel=pb.Cancel(id=5)))
        await link._on_message(pb.DaemonMessage(cancel=pb.Cancel(id=99)))

    asyncio.run(scenario())
