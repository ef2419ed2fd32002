"""Calls through a real lymphd: replies, typed errors, nested and deferred
calls, coroutine handlers, the trace id, config and on_start."""

import time

import pytest

from lymph.exceptions import (BadRequest, HandlerFailed, LookupFailure, Nack, RemoteError, Timeout,
                              UnknownMethod)
from lymph.testing import RPCServiceTestCase

from services import Echo, NotFoundError


def test_a_call_returns_the_reply(lymph_network):
    echo = lymph_network.add(Echo, config={"prefix": "> "})
    assert echo.started
    assert lymph_network.client.proxy("Echo").echo(text="hi") == "> hi"


def test_typed_errors_reach_the_caller_with_type_and_message(lymph_network):
    lymph_network.add(Echo)
    proxy = lymph_network.client.proxy("Echo")
    with pytest.raises(RemoteError.NotFoundError) as e:
        proxy.find(key="joe")
    assert (e.value.error_type, str(e.value)) == ("NotFoundError", "no joe here")
    with pytest.raises(HandlerFailed, match="RuntimeError: it broke"):
        proxy.find(key="crash")


def test_each_failure_kind_has_its_exception(lymph_network):
    lymph_network.add(Echo)
    client = lymph_network.client
    with pytest.raises(LookupFailure):
        client.proxy("Nobody").echo(text="x")
    with pytest.raises(UnknownMethod):
        client.proxy("Echo").nope()
    with pytest.raises(Nack):  # BadRequest from the daemon or the SDK: both are lymph's NACK
        client.proxy("Echo").echo(wrong="x")
    with pytest.raises(Timeout):
        client.proxy("Echo", timeout=0.2).sleep(seconds=1.5)


def test_nested_deferred_calls_carry_the_trace_id(lymph_network):
    lymph_network.add(Echo)
    first, second, nested_trace = lymph_network.client.call("Echo", "call_through", {"service": "Echo", "text": "a"})
    assert (first, second) == ("a", "a!")
    assert nested_trace and len(nested_trace) >= 16
    # The outer call's trace id (made by the daemon) is the nested one's.
    assert lymph_network.client.proxy("Echo").trace_id() != nested_trace


def test_coroutine_handlers_call_with_awaitables(lymph_network):
    lymph_network.add(Echo)
    result = lymph_network.client.proxy("Echo").async_call_through(service="Echo", text="b")
    assert result[:2] == ["b", "b?"] and result[2]


def test_blocking_in_a_coroutine_handler_says_what_to_use(lymph_network):
    lymph_network.add(Echo)
    with pytest.raises(HandlerFailed, match="call_async"):
        lymph_network.client.proxy("Echo").blocking_in_coroutine()


def test_plain_handlers_run_concurrently_on_the_pool(lymph_network):
    lymph_network.add(Echo, max_concurrency=8)
    proxy = lymph_network.client.proxy("Echo")
    started = time.monotonic()
    deferred = [proxy.sleep.defer(seconds=0.5) for _ in range(6)]
    assert [d.result(10) for d in deferred] == [0.5] * 6
    assert time.monotonic() - started < 2.5


class EchoTest(RPCServiceTestCase):
    service_class = Echo
    service_config = {"prefix": "tc:"}

    def test_lymphs_test_case_shape(self):
        self.assertEqual(self.client.echo(text="x"), "tc:x")
        self.assertEqual(self.request("echo", text="y"), "tc:y")
        self.assertIsInstance(self.service, Echo)
        with self.assertRaises(RemoteError.NotFoundError):
            self.client.find(key="k")


def test_a_standalone_client(lymph_network):
    import lymph

    lymph_network.add(Echo)
    with lymph.Client(socket=lymph_network.socket) as client:
        assert client.request("Echo", "echo", {"text": "c"}) == "c"
        assert client.proxy("Echo").echo(text="d") == "d"
        assert client.emit("nobody.listens", {"x": 1})
