"""Flow control through a real lymphd, as the app sees it: per-handler limits
in the Hello, calls inside a handler bounded by its deadline, and the
daemon's Cancel stopping coroutine handlers and flagging plain ones."""

import os
import time

import grpc
import pytest

from lymph import trust
from lymph._wire import pb, pb_grpc
from lymph.exceptions import Timeout
from lymph.link import CHANNEL_OPTIONS
from lymph.testing import wait_for

from services import Echo, Patient


def inspect(socket, service):
    trust.check(socket)
    with grpc.insecure_channel("unix:" + os.path.abspath(socket), options=CHANNEL_OPTIONS) as channel:
        reply = pb_grpc.LymphStub(channel).Inspect(pb.InspectRequest(service=service), timeout=5)
    return {m.name: m for m in reply.methods}


def test_the_daemon_shows_the_declared_limits(lymph_network):
    lymph_network.add(Patient)
    methods = inspect(lymph_network.socket, "Patient")
    assert methods["Patient.limited"].concurrency == 2
    assert methods["Patient.call_slow"].concurrency == 0
    assert lymph_network.client.proxy("Patient").limited() == "ok"


def test_a_call_inside_a_handler_gets_no_more_than_its_time_left(lymph_network):
    lymph_network.add(Echo)
    patient = lymph_network.add(Patient)
    # The handler has 300 ms; its call asks for 5 s, to a method that takes 4 s.
    # The handler answers as soon as its call times out, which may beat the
    # daemon's sweep of its own request (10 ms ticks): either end is right.
    try:
        lymph_network.client.proxy("Patient", timeout=0.3).call_slow(timeout=5, seconds=4)
    except Timeout:
        pass
    [(outcome, elapsed, left)] = wait_for(lambda: patient.noted("call_slow"), timeout=10,
                                          message="call_slow never noted how its call ended")
    assert 0 < left <= 0.3
    assert outcome.startswith("timeout")
    # Failed with the handler's deadline, well before its own 5 s or the 4 s reply.
    assert elapsed < 2.5, elapsed


def test_a_coroutine_handler_is_cancelled_when_its_caller_gives_up(lymph_network):
    patient = lymph_network.add(Patient)
    started = time.monotonic()
    with pytest.raises(Timeout):
        lymph_network.client.proxy("Patient", timeout=0.3).async_wait(seconds=2)
    cancelled = wait_for(lambda: patient.noted("async_wait"), timeout=5,
                         message="the coroutine handler was never cancelled")
    assert cancelled == [("cancelled", True)]
    # Past the 2 s it would have slept (with a wide margin): it never finished.
    time.sleep(max(0.0, started + 3.5 - time.monotonic()))
    assert patient.noted("async_wait") == [("cancelled", True)]


def test_a_plain_handler_sees_current_request_cancelled(lymph_network):
    patient = lymph_network.add(Patient)
    started = time.monotonic()
    with pytest.raises(Timeout):
        lymph_network.client.proxy("Patient", timeout=0.3).poll_cancelled(seconds=10)
    # It polls for 10 s at most; the daemon's Cancel comes at the 300 ms deadline.
    seen = wait_for(lambda: patient.noted("poll_cancelled"), timeout=8,
                    message="the plain handler never saw its request cancelled")
    assert seen == [(True,)]
    assert time.monotonic() - started < 8


def test_a_caller_that_gives_up_cancels_the_chain_of_handlers(lymph_network):
    lymph_network.add(Patient)
    waiter = lymph_network.add(Patient, name="Waiter")
    client = lymph_network.client
    # Client -> Patient.relay -> Waiter.async_wait, with 30 s timeouts all along.
    future = client.call_future("Patient", "relay", {"service": "Waiter", "seconds": 5}, timeout=30)
    wait_for(lambda: waiter.noted("async_wait_started"), timeout=5, message="Waiter.async_wait never started")
    started = time.monotonic()
    future.cancel()  # the client gives up: CancelCall, Cancel to relay, whose call is cancelled in turn
    cancelled = wait_for(lambda: waiter.noted("async_wait"), timeout=4,
                         message="Waiter.async_wait was not cancelled through the chain")
    assert cancelled == [("cancelled", True)]
    assert time.monotonic() - started < 4
