"""Events through a real lymphd: ack, fail and retry, delayed emits,
broadcast, and the trace id carried from a call into its emits."""

import time

from lymph.testing import wait_for

from services import Collector, Echo


def test_an_emit_reaches_the_handler_with_the_trace_id(lymph_network):
    collector = lymph_network.add(Collector)
    lymph_network.add(Echo)
    trace_id = lymph_network.client.proxy("Echo").emit_it(event_type="noted", body={"n": 1})
    events = wait_for(lambda: collector.seen("noted"), 10)
    assert events == [("noted", {"n": 1}, trace_id, 1)]


def test_a_failing_handler_is_retried_then_acked(lymph_network):
    collector = lymph_network.add(Collector)
    lymph_network.client.emit("flaky", {"succeed_on": 3})
    events = wait_for(lambda: len(collector.seen("flaky")) >= 3 and collector.seen("flaky"), 15)
    assert [e[3] for e in events] == [1, 2, 3]
    time.sleep(0.3)
    assert len(collector.seen("flaky")) == 3  # acked on the third attempt: no more


def test_past_its_retries_an_event_is_dropped(lymph_network):
    collector = lymph_network.add(Collector)
    lymph_network.client.emit("flaky", {"succeed_on": 99})
    wait_for(lambda: len(collector.seen("flaky")) >= 3, 15)
    time.sleep(0.5)
    assert [e[3] for e in collector.seen("flaky")] == [1, 2, 3]  # retry=2: three attempts


def test_delayed_emits_arrive_no_sooner_than_asked(lymph_network):
    collector = lymph_network.add(Collector)
    started = time.monotonic()
    lymph_network.client.emit("noted", {"late": True}, delay=0.6)
    wait_for(lambda: collector.seen("noted"), 10)
    assert time.monotonic() - started >= 0.55


def test_coroutine_emits_and_handlers(lymph_network):
    collector = lymph_network.add(Collector)
    lymph_network.add(Echo)
    lymph_network.client.proxy("Echo").async_call_through(service="Echo", text="z")
    events = wait_for(lambda: collector.seen("async.emitted"), 10)
    assert events[0][1] == {"text": "z"} and events[0][2]


def test_once_per_service_and_broadcast(lymph_network):
    a = lymph_network.add(Collector)
    b = lymph_network.add(Collector)
    for i in range(4):
        lymph_network.client.emit("noted", {"i": i})
    lymph_network.client.emit("everyone", {})
    wait_for(lambda: len(a.seen("noted")) + len(b.seen("noted")) == 4, 10)
    wait_for(lambda: a.seen("everyone") and b.seen("everyone"), 10)
    time.sleep(0.3)
    assert len(a.seen("noted")) + len(b.seen("noted")) == 4
