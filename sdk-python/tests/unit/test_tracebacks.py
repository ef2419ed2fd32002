"""A failing handler's logged traceback starts at the user's own frame (the
SDK's dispatch and the thread pool's frames are cut) and keeps every frame
from there on, for RPC methods (plain and coroutine), event handlers and
HTTP endpoints."""

import asyncio
import concurrent.futures
import logging

import pytest
from werkzeug.routing import Map, Rule

import lymph
from lymph import codec, handlers, logs
from lymph._wire import pb
from lymph.tracebacks import user_traceback
from lymph.web.interfaces import WebServiceInterface

HERE = __file__


def helper():
    raise ValueError("deep down")


class Failing(lymph.Interface):
    @lymph.rpc()
    def plain(self):
        helper()

    @lymph.rpc()
    async def coro(self):
        await asyncio.sleep(0)
        helper()

    @lymph.event("failed")
    def on_failed(self, event):
        helper()


class FailingWeb(WebServiceInterface):
    url_map = Map([Rule("/", endpoint="index")])

    def index(self, request):
        helper()


class FakeContainer:
    def __init__(self, loop):
        self.loop = loop
        self.pool = concurrent.futures.ThreadPoolExecutor(2)


@pytest.fixture
def logged():
    """Runs a handlers.* coroutine; returns the text of what it logged."""
    loop = asyncio.new_event_loop()
    container = FakeContainer(loop)
    sink = logs.DaemonHandler(level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(sink)

    def logged(coro_fn, *args):
        loop.run_until_complete(asyncio.wait_for(coro_fn(container, *args), 10))
        return "\n".join(message for _, _, message, _, _ in sink.take())
    yield logged
    root.removeHandler(sink)
    container.pool.shutdown()
    loop.close()


def frames(text):
    """The `File "...", line N, in name` lines of a logged traceback."""
    assert "Traceback (most recent call last):" in text, text
    return [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]


def assert_starts_at_the_user(text, handler):
    lines = frames(text)
    assert lines[0].startswith('File "%s"' % HERE) and lines[0].endswith("in %s" % handler), text
    assert lines[-1].endswith("in helper"), text
    assert all(HERE in line for line in lines), "only the user's frames: %s" % text
    assert "ValueError: deep down" in text


def rpc(method):
    return pb.Request(id=1, interface="Failing", method=method, body=codec.pack({}), trace_id="t")


def test_a_plain_rpc_method(logged):
    assert_starts_at_the_user(logged(handlers.rpc, Failing(), rpc("plain")), "plain")


def test_a_coroutine_rpc_method(logged):
    assert_starts_at_the_user(logged(handlers.rpc, Failing(), rpc("coro")), "coro")


def test_an_event_handler(logged):
    delivery = pb.Delivery(delivery_id=2, event_type="failed", body=codec.pack({}), trace_id="t",
                           attempt=1, interface="Failing")
    assert_starts_at_the_user(logged(handlers.deliver, Failing(), delivery), "on_failed")


def test_an_http_endpoint(logged):
    request = pb.HttpRequest(id=3, method="GET", path="/", trace_id="t",
                             headers=[pb.Header(name="host", value="127.0.0.1:1")])
    assert_starts_at_the_user(logged(handlers.http, FailingWeb(), request), "index")


def test_sdk_frames_below_the_users_are_kept():
    def user():
        from lymph import codec as sdk
        sdk.pack(object(), "a thing")  # raises TypeError inside the SDK
    try:
        user()
    except TypeError as e:
        tb = user_traceback(e.__traceback__)
    names = []
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert names[0] == "test_sdk_frames_below_the_users_are_kept"
    assert "pack" in names
