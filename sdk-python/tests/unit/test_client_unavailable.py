"""`lymph.Client` with no daemon: `DaemonUnavailable` at once, naming the
socket it tried, where that path came from and how to start lymphd; with
`wait=SECONDS` only after that long. No threads are left behind."""

import inspect
import logging
import threading
import time

import pytest

import lymph
from lymph.exceptions import DaemonUnavailable, NotConnected, RpcError, Unavailable


def loop_threads():
    return [t for t in threading.enumerate() if t.name == "lymph-loop" and t.is_alive()]


def test_no_daemon_fails_at_once_naming_the_socket(tmp_path):
    socket = str(tmp_path / "lymphd.sock")
    before = len(loop_threads())
    started = time.monotonic()
    with pytest.raises(DaemonUnavailable) as e:
        lymph.Client(socket=socket)
    assert time.monotonic() - started < 1.0
    error = e.value
    assert isinstance(error, NotConnected) and isinstance(error, Unavailable) and isinstance(error, RpcError)
    assert lymph.DaemonUnavailable is DaemonUnavailable
    assert error.socket == socket
    text = str(error)
    assert text.startswith("no lymphd is listening on %s (given as socket=)" % socket), text
    assert "start lymphd with `lymphd --socket %s`" % socket in text
    assert "pass wait=SECONDS to wait for it" in text
    assert len(loop_threads()) == before


def test_the_error_is_raised_not_also_logged_as_a_warning(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="lymph")
    with pytest.raises(DaemonUnavailable):
        lymph.Client(socket=str(tmp_path / "lymphd.sock"), wait=0.3)
    attempts = [r for r in caplog.records if "no lymphd is listening" in r.getMessage()]
    assert attempts, "each attempt is still logged, at INFO"
    assert all(r.levelno == logging.INFO for r in attempts), [(r.levelname, r.getMessage()) for r in attempts]


def test_the_socket_rules_source_is_named(tmp_path, monkeypatch):
    socket = str(tmp_path / "env.sock")
    monkeypatch.setenv("LYMPH_SOCKET", socket)
    with pytest.raises(DaemonUnavailable, match=r"on %s \(from \$LYMPH_SOCKET\)" % socket):
        lymph.Client()


def test_a_socket_file_nobody_serves(tmp_path):
    import socket as socket_module

    path = str(tmp_path / "stale.sock")
    stale = socket_module.socket(socket_module.AF_UNIX)
    stale.bind(path)  # bound, never listening: what a crashed daemon leaves
    try:
        started = time.monotonic()
        with pytest.raises(DaemonUnavailable, match="no lymphd is listening on %s" % path):
            lymph.Client(socket=path)
        assert time.monotonic() - started < 1.0
    finally:
        stale.close()


def test_wait_keeps_trying_that_long(tmp_path):
    socket = str(tmp_path / "lymphd.sock")
    started = time.monotonic()
    with pytest.raises(DaemonUnavailable) as e:
        lymph.Client(socket=socket, wait=0.6)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 3, elapsed
    assert "after waiting 0.6s" in str(e.value)
    assert "pass wait=" not in str(e.value)


def test_wait_is_a_documented_keyword():
    parameters = inspect.signature(lymph.Client).parameters
    assert parameters["wait"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["wait"].default == 0
    assert "timeout" not in parameters
    assert "wait=" in lymph.Client.__doc__
    for bad in (-1, "5", True):
        with pytest.raises(ValueError, match="wait must be a number of seconds"):
            lymph.Client(socket="/nowhere.sock", wait=bad)
