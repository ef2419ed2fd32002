"""The seed's services across languages on one lymphd: Python Web and
Listen (examples/python, the seed's own code) with Rust Greeting under
`lymphctl node`, events both ways, a Python handler's typed error seen by a
Rust caller, and a Python app killed mid-call."""

import json
import re
import signal
import time

from conftest import EXAMPLES, HERE, REPO, STARTUP, http_get, wait_until

WEB_PORT = 4080  # conf/web-py.yml's http_port


def mixed_node_file(world):
    """lymph-mixed.yml as it is, with the binaries this run built and its
    relative paths anchored at the repository (the copy lives elsewhere)."""
    text = (REPO / "lymph-mixed.yml").read_text()
    assert "target/release/" in text and " conf/" in text and "examples/python" in text, text
    text = (
        text.replace("target/release/", "%s/" % world.bins)
        .replace(" conf/", " %s/conf/" % REPO)
        .replace("PYTHONPATH: examples/python", "PYTHONPATH: %s" % EXAMPLES)
    )
    path = world.dir / "lymph-mixed.yml"
    path.write_text(text)
    return path


def test_mixed_fleet_answers_through_the_gateway_under_one_trace_id(world):
    node = world.spawn(
        "node", [world.bins / "lymphctl", "--socket", world.socket, "node", "--node-file", mixed_node_file(world)],
    )
    world.wait_for("Web [2]", "Greeting [3]", "Listen [4]")

    tail = world.spawn("tail", [world.bins / "lymphctl", "--socket", world.socket, "tail",
                                "Web", "Greeting", "Listen", "--for", "90s"])
    # Subscriptions join asynchronously: ask again until one request is seen whole.
    seen = {}

    def one_request_in_every_tail():
        reply = http_get(WEB_PORT, "/greet?name=Joe")
        assert reply.status == 200, reply.body
        assert reply.body == "Hi, Joe!"
        trace = reply.headers["X-Trace-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", trace), trace
        time.sleep(0.5)
        lines = [l for l in tail.stdout().splitlines() if l.endswith('trace_id="%s"' % trace)]
        seen["trace"], seen["lines"] = trace, lines
        return (
            any(l.startswith("[Web][") for l in lines)
            and any(l.startswith("[Greeting][") and "Saying hi to Joe" in l for l in lines)
            and any(l.startswith("[Listen][") for l in lines)
        )

    wait_until("one trace id in the tail lines of Python Web, Rust Greeting, Python Listen",
               one_request_in_every_tail)
    # The seed's prints, in the node's output under each instance's name.
    out = node.stdout()
    assert re.search(r"^web\.\d +\| About to greet Joe$", out, re.M), out
    assert re.search(r"^listen\.\d +\| Somebody greeted Joe$", out, re.M), out
    assert re.search(r"^greeting\.\d +\| .*Saying hi to Joe$", out, re.M), out

    # werkzeug's answer to a missing argument: 400, with a trace id.
    missing = http_get(WEB_PORT, "/greet")
    assert missing.status == 400, missing.body
    assert missing.headers["X-Trace-Id"]
    assert http_get(WEB_PORT, "/nowhere").status == 404

    node.signal(signal.SIGTERM)
    assert node.wait(30) == 0, node.stderr()
    assert not world.socket.exists()


def test_events_cross_languages_both_ways(world):
    world.start_daemon()
    py_greeting = world.python_app("py-greeting", REPO / "conf" / "greeting-py.yml")
    rust_listen = world.rust_app("rust-listen", "listen", "listen.yml")
    py_listen = world.python_app("py-listen", REPO / "conf" / "listen-py.yml")
    world.wait_for("Greeting [1]", "Listen [2]")

    # A Python emit (Greeting.greet emits greeted) reaches one Listen of two:
    # ask for several names; both languages hear some, each name once.
    names = ["n%d" % i for i in range(12)]
    for name in names:
        reply = world.ctl("request", "Greeting.greet", '{"name": "%s"}' % name)
        assert reply.returncode == 0, reply.stderr
        assert reply.stdout.strip() == '"Hi, %s!"' % name

    def heard():
        rust = set(re.findall(r"Somebody greeted (n\d+)$", rust_listen.stderr(), re.M))
        py = set(re.findall(r"^Somebody greeted (n\d+)$", py_listen.stdout(), re.M))
        return rust, py

    wait_until("every greeted event handled once", lambda: len(heard()[0] | heard()[1]) == len(names))
    rust, py = heard()
    assert not rust & py, "each event once: %s / %s" % (rust, py)
    assert rust and py, "both languages get a share: rust %s, python %s" % (rust, py)
    assert py_greeting.stdout().count("Saying hi to") == len(names)

    # A Rust emit (lymphctl emit is a Rust caller of the daemon) reaches Python.
    out = world.ctl("emit", "greeted", '{"name": "Zed"}')
    assert out.returncode == 0, out.stderr
    wait_until("Zed heard by one Listen",
               lambda: ("Somebody greeted Zed" in py_listen.stdout()) != ("Somebody greeted Zed" in rust_listen.stderr()))


def test_python_errors_and_deaths_reach_rust_callers(world):
    world.start_daemon()
    probe = world.python_app("probe", HERE / "probe.yml", pythonpath=HERE)
    world.rust_app("rust-greeting", "greeting", "greeting.yml")
    world.wait_for("Probe [1]", "Greeting [1]")

    # A typed error: type and message reach the Rust caller.
    out = world.ctl("request", "Probe.find", '{"key": "k1"}')
    assert out.returncode == 1, out.stdout
    assert "NotFound" in out.stderr and "no such key: k1" in out.stderr, out.stderr

    # A Python handler calls Rust, under the caller's trace id.
    out = world.ctl("request", "--trace-id", "py-to-rust-1", "Probe.greet_through", '{"name": "Ann"}')
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '"Hi, Ann!"'

    # Killed mid-call: the caller gets an error at once, not at its deadline.
    started = time.monotonic()
    call = world.spawn("slow-call", [world.bins / "lymphctl", "--socket", world.socket,
                                     "request", "--timeout", "30", "Probe.sleep", '{"seconds": 20}'])
    def probe_busy():
        status = json.loads(world.ctl("status", "--json").stdout)
        return any("Probe" in app["interfaces"] and int(app.get("in_flight", 0)) >= 1
                   for app in status["apps"])

    wait_until("the slow call in flight", probe_busy)
    probe.kill()
    assert call.wait(15) == 1, call.stdout()
    elapsed = time.monotonic() - started
    assert elapsed < 15, "the caller waited %.1fs" % elapsed
    assert "unavailable" in call.stderr() or "went away" in call.stderr(), call.stderr()
