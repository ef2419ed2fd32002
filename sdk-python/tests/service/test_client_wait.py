"""`lymph.Client(wait=SECONDS)` attaches to a daemon that starts while it
waits; without `wait` it attaches to a running one at once."""

import threading
import time

import lymph
from lymph.testing import Lymphd


def test_wait_attaches_to_a_daemon_that_starts_meanwhile(tmp_path):
    tmp_path.chmod(0o700)  # the trust check's rule for the socket's directory
    daemon = Lymphd(directory=str(tmp_path))
    starter = threading.Timer(0.7, daemon.start)
    starter.start()
    try:
        started = time.monotonic()
        with lymph.Client(socket=daemon.socket, wait=20) as client:
            assert time.monotonic() - started >= 0.7
            assert client.container.welcome.identity
            assert client.socket == daemon.socket
    finally:
        starter.join()
        daemon.close()


def test_no_wait_needed_when_the_daemon_runs():
    with Lymphd() as daemon:
        started = time.monotonic()
        with lymph.Client(socket=daemon.socket) as client:
            assert client.container.welcome.identity
        assert time.monotonic() - started < 5
