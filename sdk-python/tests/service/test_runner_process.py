"""The runner as a process: `python -m lymph instance --config FILE` serves,
drains on SIGTERM (in-flight calls finish) and exits 0; bad input and a
daemon's refusal exit non-zero with one line."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from lymph.testing import free_port, wait_for

SERVICE = textwrap.dedent("""
    import time
    import lymph

    class Sleepy(lymph.Interface):
        @lymph.rpc()
        def sleep(self, seconds):
            print('sleeping %s' % seconds)
            time.sleep(seconds)
            return seconds
""")
WEB = textwrap.dedent("""
    from werkzeug.routing import Map, Rule
    from werkzeug.wrappers import Response
    from lymph.web.interfaces import WebServiceInterface

    class Page(WebServiceInterface):
        url_map = Map([Rule('/', endpoint='index')])

        def index(self, request):
            return Response('index')
""")


def runner(tmp_path, socket, config_text, name="svc"):
    (tmp_path / "sleepy.py").write_text(SERVICE)
    (tmp_path / "page.py").write_text(WEB)
    config = tmp_path / (name + ".yml")
    config.write_text(config_text)
    out = open(tmp_path / (name + ".out"), "wb")
    # Run from elsewhere: the config file's directory is on sys.path.
    return subprocess.Popen([sys.executable, "-m", "lymph", "instance", "--config", str(config), "--socket", socket],
                            stdout=out, stderr=subprocess.STDOUT, cwd="/", env=dict(os.environ))


def output(tmp_path, name="svc"):
    return (tmp_path / (name + ".out")).read_text()


def test_sigterm_drains_in_flight_calls_and_exits_0(lymph_network, tmp_path):
    proc = runner(tmp_path, lymph_network.socket, "interfaces:\n  Sleepy:\n    class: sleepy:Sleepy\n")
    try:
        client = lymph_network.client
        wait_for(lambda: "ready" in output(tmp_path), 20, every=0.05)
        deferred = client.proxy("Sleepy").sleep.defer(seconds=1)
        wait_for(lambda: "sleeping 1" in output(tmp_path), 10)
        proc.send_signal(signal.SIGTERM)
        assert deferred.result(timeout=10) == 1
        assert proc.wait(15) == 0
        text = output(tmp_path)
        assert "lymph.rpc: Sleepy.sleep - trace_id=" in text
        assert "stopped" in text
    finally:
        proc.kill()
        proc.wait(5)


@pytest.mark.parametrize("config, code, message", [
    ("interfaces:\n  X:\n    class: nowhere_at_all:X\n", 64, "error: cannot import nowhere_at_all:X"),
    ("interfaces: [", 64, "error: bad config file"),
])
def test_bad_configs_exit_64(lymph_network, tmp_path, config, code, message):
    proc = runner(tmp_path, lymph_network.socket, config)
    assert proc.wait(20) == code
    assert output(tmp_path).strip().splitlines()[-1].startswith(message)


def test_a_refused_app_exits_78(lymph_network, tmp_path):
    port = free_port()
    config = "http_port: %d\ninterfaces:\n  Page:\n    class: page:Page\n" % port
    first = runner(tmp_path, lymph_network.socket, config, "first")
    try:
        wait_for(lambda: "ready" in output(tmp_path, "first"), 20)
        second = runner(tmp_path, lymph_network.socket, config.replace("Page:", "Other:"), "second")
        assert second.wait(20) == 78
        last = output(tmp_path, "second").strip().splitlines()[-1]
        assert last.startswith("error: lymphd at ") and "rejected the app" in last
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(15) == 0
