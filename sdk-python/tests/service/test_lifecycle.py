"""Attach, reconnect after a daemon restart, drain on stop, refusals."""

import threading
import time

import pytest

from lymph.container import Container
from lymph.exceptions import NotConnected, Rejected, Unavailable
from lymph.testing import Lymphd, free_port, wait_for

from services import Echo, Web


def test_reconnects_and_re_registers_after_a_daemon_restart(lymph_network):
    lymph_network.add(Echo)
    client = lymph_network.client
    assert client.proxy("Echo").echo(text="before") == "before"
    lymph_network.daemon.restart()

    def answers():
        try:
            return client.proxy("Echo").echo(text="after") == "after"
        except (Unavailable, NotConnected, Exception):
            return False
    wait_for(answers, 15, every=0.1)


def test_calls_in_flight_fail_when_the_daemon_dies(lymph_network):
    lymph_network.add(Echo)
    deferred = lymph_network.client.proxy("Echo").sleep.defer(seconds=3)
    time.sleep(0.3)
    lymph_network.daemon.kill()
    with pytest.raises(Unavailable):
        deferred.result(timeout=10)


def test_stop_finishes_in_flight_work_then_says_goodbye(lymph_network):
    lymph_network.add(Echo)
    service = lymph_network.containers[-1]
    deferred = lymph_network.client.proxy("Echo").sleep.defer(seconds=0.5)
    time.sleep(0.2)
    stopper = threading.Thread(target=service.stop, kwargs={"grace": 5})
    stopper.start()
    assert deferred.result(timeout=10) == 0.5
    stopper.join(10)
    assert not stopper.is_alive()
    with pytest.raises(Exception) as e:
        lymph_network.client.proxy("Echo").echo(text="x")
    assert e.value.kind in ("UNKNOWN_SERVICE", "SHUTTING_DOWN", "UNAVAILABLE")


def test_a_taken_http_port_is_refused(lymph_network):
    port = free_port()
    lymph_network.add(Web, http_port=port)
    second = Container(socket=lymph_network.socket, http_port=port)
    second.install(Web, name="Other")
    second.start()
    try:
        # The daemon refuses it when it joins the port, right after Ready.
        with pytest.raises(Rejected, match="rejected the app: .*%d" % port):
            second.wait_ready(15)
            second.wait(15)
    finally:
        second.stop(grace=1)


def test_waits_for_a_daemon_that_is_not_there_yet(tmp_path):
    daemon = Lymphd(directory=str(tmp_path))
    container = Container(socket=daemon.socket)
    container.install(Echo)
    container.start()
    try:
        time.sleep(0.3)
        assert not container.ready.is_set()
        daemon.start()
        container.wait_ready(15)
    finally:
        container.stop(grace=1)
        daemon.close()
