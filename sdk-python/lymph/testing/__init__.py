"""Testing services against a real lymphd, in-process (lymph had
`lymph.testing.RPCServiceTestCase` over a mock network; here the network is
a real daemon on a temporary socket, so tests see what production sees).

    from lymph.testing import LymphNetwork

    with LymphNetwork() as network:
        network.add(Greeting)
        assert network.client.proxy('Greeting').greet(name='Joe') == 'Hi, Joe!'

or `RPCServiceTestCase` (unittest), or the `lymph_network` pytest fixture
(`pytest_plugins = ["lymph.testing.fixtures"]` in a conftest.py).

lymphd is found as lymph.testing.binary says: $LYMPHD_BIN, else
$LYMPH_BIN_DIR/lymphd, else the newer of target/release and target/debug of
the checkout the tests run in, else `lymphd` on PATH."""

import os
import shutil
import signal
import socket as socket_module
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from lymph.container import Container
from lymph.testing.binary import find_lymphd

__all__ = ["find_lymphd", "Lymphd", "LymphNetwork", "RPCServiceTestCase", "WebServiceTestCase",
           "wait_for", "free_port"]

START_TIMEOUT = 20.0


def wait_for(condition, timeout=10.0, every=0.02, message=None):
    """Polls `condition()` until true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or "condition not met within %ss" % timeout)
        time.sleep(every)


def free_port():
    with socket_module.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port):
    try:
        with socket_module.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Lymphd:
    """A real lymphd on a socket in a temporary directory; its output is in
    `log_path`. `stop()` ends it (SIGTERM, then SIGKILL), `restart()` starts
    a new one on the same socket."""

    def __init__(self, binary=None, directory=None, env=None):
        self.binary = binary or find_lymphd()
        self._own_dir = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="lymph-test-")
        self.socket = os.path.join(self.directory, "lymphd.sock")
        self.log_path = os.path.join(self.directory, "lymphd.log")
        self.env = env or {}
        self.process = None

    def start(self, timeout=START_TIMEOUT):
        env = dict(os.environ)
        env.pop("LYMPHD_CONFIG", None)
        # Its own /metrics port (any free one), so test daemons run side by side.
        env.setdefault("LYMPHD_METRICS_LISTEN", "127.0.0.1:0")
        env.update(self.env)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--socket", self.socket], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            wait_for(lambda: os.path.exists(self.socket) or self.process.poll() is not None, timeout,
                     message="lymphd did not create %s within %ss" % (self.socket, timeout))
        except AssertionError:
            self.stop()
            raise
        if self.process.poll() is not None:
            raise RuntimeError("lymphd exited with %s at start:\n%s" % (self.process.returncode, self.log()))
        return self

    def stop(self, timeout=15.0):
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def kill(self):
        """Ends the daemon at once (SIGKILL), leaving its socket file behind."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def restart(self, timeout=START_TIMEOUT):
        self.stop()
        return self.start(timeout)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class LymphNetwork:
    """A lymphd plus services run in this process, each in its own
    container (as if separate processes), and a `client` for calls and emits."""

    def __init__(self, daemon=None):
        self.daemon = daemon or Lymphd()
        self.containers = []
        self._client = None

    def start(self):
        if self.daemon.process is None:
            self.daemon.start()
        return self

    @property
    def socket(self):
        return self.daemon.socket

    def add(self, cls, name=None, config=None, http_port=None, max_concurrency=None, timeout=START_TIMEOUT):
        """Runs interface class `cls` (named `name`, default its class name)
        with the config section `config`; returns the interface once registered."""
        container = Container(socket=self.socket, http_port=http_port, max_concurrency=max_concurrency,
                              app_name="test-" + (name or cls.__name__))
        interface = container.install(cls, name=name, config=config)
        container.start()
        self.containers.append(container)
        container.wait_ready(timeout)
        # Ready is sent, but registration happens in the daemon a moment later:
        # wait until Discover shows this instance, so the next call finds it.
        wait_for(lambda: self._registered(container, interface.name) or not container.running, timeout,
                 message="%s was not registered within %ss" % (interface.name, timeout))
        if not container.running:
            container.wait()
        port = http_port or getattr(interface, "http_port", None)
        if port and getattr(interface, "url_map", None) is not None:
            # The daemon opens the port when it registers the app, just after Ready.
            wait_for(lambda: _accepts(port) or not container.running, timeout,
                     message="lymphd did not open port %s within %ss" % (port, timeout))
            if not container.running:
                container.wait()
        return interface

    def discover(self, service=""):
        """{service name: [instance identities]} from the daemon's Discover."""
        import grpc

        from lymph._wire import pb, pb_grpc
        from lymph import trust
        from lymph.link import CHANNEL_OPTIONS

        trust.check(self.socket)
        with grpc.insecure_channel("unix:" + os.path.abspath(self.socket), options=CHANNEL_OPTIONS) as channel:
            reply = pb_grpc.LymphStub(channel).Discover(pb.DiscoverRequest(service=service), timeout=5)
        return {s.name: [i.identity for i in s.instances] for s in reply.services}

    def _registered(self, container, name):
        identity = container.welcome.identity if container.welcome is not None else None
        return identity in self.discover(name).get(name, [])

    @property
    def client(self):
        """A container with no interfaces: `.proxy(name)`, `.emit(type, body)`, `.call(...)`."""
        if self._client is None:
            client = Container(socket=self.socket, app_name="test-client", send_logs=False)
            client.start()
            self.containers.append(client)
            client.wait_ready(START_TIMEOUT)
            self._client = client
        return self._client

    def stop_container(self, container, grace=5.0):
        container.stop(grace)
        if container in self.containers:
            self.containers.remove(container)

    def stop(self):
        for container in reversed(self.containers):
            try:
                container.stop(grace=2.0)
            except Exception:
                pass
        self.containers = []
        self._client = None
        self.daemon.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def http_request(port, path, method="GET", body=None, headers=None, timeout=10.0):
    """(status, headers, body bytes) of a request to 127.0.0.1:`port`; errors are answers too."""
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                     method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class RPCServiceTestCase(unittest.TestCase):
    """lymph's test case: set `service_class` (and optionally `service_name`,
    `service_config`); `self.client` is a proxy to the service, `self.request`
    and `self.emit` call and emit through the daemon."""

    service_class = None
    service_config = {}
    http_port = None

    @property
    def service_name(self):
        return self.service_class.__name__

    def setUp(self):
        super().setUp()
        self.network = LymphNetwork().start()
        self.addCleanup(self.network.stop)
        self.service = self.network.add(self.service_class, name=self.service_name,
                                        config=dict(self.service_config), http_port=self.http_port)

    def get_proxy(self, **kwargs):
        return self.network.client.proxy(self.service_name, **kwargs)

    @property
    def client(self):
        return self.get_proxy()

    def request(self, method, timeout=None, **kwargs):
        return self.network.client.call(self.service_name, method, kwargs, timeout=timeout)

    def emit(self, event_type, body, delay=0):
        return self.network.client.emit(event_type, body, delay=delay)


class WebServiceTestCase(RPCServiceTestCase):
    """`RPCServiceTestCase` for a WebServiceInterface, served by the daemon
    on a free port: `self.get('/greet?name=Joe')` -> (status, headers, body)."""

    def setUp(self):
        self.http_port = free_port()
        super().setUp()

    def http(self, path, method="GET", body=None, headers=None):
        return http_request(self.http_port, path, method, body, headers)

    def get(self, path):
        return self.http(path)
