"""Integration fixtures: a real lymphd, real Rust and Python apps, real
sockets. Binaries come from $LYMPH_BIN_DIR (scripts/sdk-python sets it to
target/debug after building them); Python apps run with this interpreter's
`python -m lymph instance`. Every wait is bounded; every process is killed
at the end of its test."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "python"
HERE = Path(__file__).resolve().parent
STARTUP = 30.0


def bin_dir():
    found = Path(os.environ.get("LYMPH_BIN_DIR", REPO / "target" / "debug"))
    missing = [b for b in ("lymphd", "lymphctl", "greeting", "listen") if not (found / b).exists()]
    if missing:
        pytest.fail(
            "missing %s in %s: run `cargo build --workspace --bins` (scripts/sdk-python does)"
            % (", ".join(missing), found)
        )
    return found


def wait_until(what, cond, within=STARTUP, every=0.05):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    raise AssertionError("timed out after %.0fs waiting for %s" % (within, what))


class Proc:
    """A child process with its output in files; killed when the test ends."""

    def __init__(self, name, argv, cwd, env, directory):
        self.name = name
        self.out_path = Path(directory) / (name + ".out")
        self.err_path = Path(directory) / (name + ".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.popen = subprocess.Popen(
                argv, cwd=str(cwd), env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self):
        return self.popen.pid

    def stdout(self):
        return self.out_path.read_text(errors="replace")

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def output(self):
        return self.stdout() + self.stderr()

    def signal(self, sig):
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def wait(self, within=20.0):
        try:
            return self.popen.wait(timeout=within)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not exit within %.0fs; stderr:\n%s" % (self.name, within, self.stderr()))

    def kill(self):
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=10)


class World:
    """One test's lymphd and processes, in one temporary directory."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.bins = bin_dir()
        self.socket = self.dir / "lymphd.sock"
        self.procs = []
        self.daemon = None

    def env(self, **extra):
        env = dict(os.environ)
        env["LYMPH_SOCKET"] = str(self.socket)
        env.pop("LYMPHD_CONFIG", None)
        env["PYTHONUNBUFFERED"] = "1"
        env["RUST_LOG"] = "info"
        # Each lymphd its own /metrics port (any free one).
        env["LYMPHD_METRICS_LISTEN"] = "127.0.0.1:0"
        # `python3` in node files is this interpreter's.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(extra)
        return env

    def spawn(self, name, argv, cwd=REPO, **env):
        proc = Proc(name, [str(a) for a in argv], cwd, self.env(**env), self.dir)
        self.procs.append(proc)
        return proc

    def start_daemon(self, **env):
        self.daemon = self.spawn("lymphd", [self.bins / "lymphd", "--socket", self.socket], **env)
        wait_until("lymphd's socket", self.socket.exists)
        return self.daemon

    def rust_app(self, name, binary, config):
        return self.spawn(name, [self.bins / binary, "--config", REPO / "conf" / config])

    def python_app(self, name, config, pythonpath=EXAMPLES):
        return self.spawn(
            name,
            [sys.executable, "-m", "lymph", "instance", "--config", config],
            PYTHONPATH=str(pythonpath),
        )

    def ctl(self, *args, within=60):
        return subprocess.run(
            [str(self.bins / "lymphctl"), "--socket", str(self.socket)] + [str(a) for a in args],
            capture_output=True, text=True, timeout=within, env=self.env(),
        )

    def discover(self):
        return self.ctl("discover").stdout

    def wait_for(self, *counts):
        wait_until(
            "discover to show %s" % ", ".join(counts),
            lambda: all(c in self.discover() for c in counts),
        )

    def close(self):
        for proc in reversed(self.procs):
            proc.kill()


@pytest.fixture
def world():
    directory = tempfile.mkdtemp(prefix="lymph-py-it-")
    w = World(directory)
    try:
        yield w
    finally:
        w.close()
        shutil.rmtree(directory, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body


def http_get(port, path, timeout=30):
    """GET http://127.0.0.1:<port><path>; errors are replies too."""
    url = "http://127.0.0.1:%d%s" % (port, path)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return Reply(r.status, r.headers, r.read().decode())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.headers, e.read().decode())
