"""The SDK checks whom it attaches to, with real uids (the tests run as
root and create a system user): another user's lymphd is refused, with an
error at every attempt and Untrusted from Client; so is a root-owned socket
served by another uid, and a group-writable directory. Named by
$LYMPH_DAEMON_USER, the other user's lymphd is trusted."""

import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

import lymph
from lymph.exceptions import Untrusted
from lymph.testing import Lymphd, find_lymphd, wait_for

MALLORY = "lymphtest-mallory"


def system_user(name):
    """The user's pwd entry, created if missing (others may create it too:
    useradd may fail on its lock or "already exists"; bounded retries)."""
    for _ in range(50):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                           capture_output=True, timeout=30)
            time.sleep(0.1)
    raise AssertionError("cannot create the test user %s (are the tests running as root?)" % name)


@pytest.fixture
def mallorys_lymphd():
    """A real lymphd run as mallory in base/evil (mallory's, 0755); yields
    (socket, its process, mallory's pwd entry, base)."""
    assert os.geteuid() == 0, "these tests create users and run lymphd as one: run them as root"
    mallory = system_user(MALLORY)
    base = tempfile.mkdtemp(prefix="lymph-trust-")
    os.chmod(base, 0o755)
    evil = os.path.join(base, "evil")
    os.mkdir(evil, 0o755)
    os.chown(evil, mallory.pw_uid, mallory.pw_gid)
    socket = os.path.join(evil, "lymphd.sock")
    env = {k: v for k, v in os.environ.items() if k != "LYMPHD_CONFIG"}
    with open(os.path.join(base, "lymphd.log"), "ab") as log:
        process = subprocess.Popen([find_lymphd(), "--socket", socket], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=base, user=mallory.pw_uid,
                                   group=mallory.pw_gid, extra_groups=[])
    try:
        wait_for(lambda: os.path.exists(socket) or process.poll() is not None, 20,
                 message="mallory's lymphd did not start")
        assert process.poll() is None, open(os.path.join(base, "lymphd.log")).read()
        yield socket, process, mallory, base
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(base, ignore_errors=True)


def refusals(caplog, needle):
    return [r for r in caplog.records
            if r.name == "lymph.link" and r.levelno == logging.ERROR and needle in r.getMessage()]


def test_another_users_lymphd_is_refused_at_every_attempt(mallorys_lymphd, caplog, monkeypatch):
    socket, _, mallory, base = mallorys_lymphd
    monkeypatch.delenv("LYMPH_DAEMON_USER", raising=False)
    caplog.set_level(logging.INFO, logger="lymph.link")
    with pytest.raises(Untrusted) as refused:
        lymph.Client(socket=socket, wait=1.5)
    text = str(refused.value)
    owner = "its directory %s/evil (owner uid %d (%s), mode 0755) belongs to another user" % (
        base, mallory.pw_uid, MALLORY)
    assert text.startswith("refusing to attach to lymphd on %s:" % socket)
    assert owner in text
    assert "set LYMPH_DAEMON_USER=%s" % MALLORY in text
    assert len(refusals(caplog, owner)) >= 2, "an error line per attempt"
    assert not [r for r in caplog.records if "attached to lymphd" in r.getMessage()]


def test_the_daemon_user_is_trusted_by_name_or_uid(mallorys_lymphd, monkeypatch):
    socket, _, mallory, _ = mallorys_lymphd
    for value in (MALLORY, str(mallory.pw_uid)):
        monkeypatch.setenv("LYMPH_DAEMON_USER", value)
        with lymph.Client(socket=socket, wait=10) as client:
            assert client.container.welcome.identity


def test_a_root_socket_served_by_another_uid_is_refused(mallorys_lymphd, monkeypatch):
    socket, process, mallory, base = mallorys_lymphd
    monkeypatch.delenv("LYMPH_DAEMON_USER", raising=False)
    # Root's directory and a root-owned hard link to mallory's socket: only
    # the peer credentials tell that mallory serves it.
    root_dir = os.path.join(base, "root")
    os.mkdir(root_dir, 0o755)
    linked = os.path.join(root_dir, "lymphd.sock")
    os.link(socket, linked)
    os.chown(linked, 0, 0)
    with pytest.raises(Untrusted) as refused:
        lymph.Client(socket=linked, wait=1.0)
    assert ("the process serving it (pid %d) runs as uid %d (%s), but the socket belongs to uid 0 (root)"
            % (process.pid, mallory.pw_uid, MALLORY)) in str(refused.value)


def test_a_group_writable_directory_is_refused_until_fixed(monkeypatch):
    monkeypatch.delenv("LYMPH_DAEMON_USER", raising=False)
    with Lymphd() as daemon:
        os.chmod(daemon.directory, 0o770)
        started = time.monotonic()
        with pytest.raises(Untrusted, match="is writable by its group or others") as refused:
            lymph.Client(socket=daemon.socket)  # no wait=: at once
        assert time.monotonic() - started < 1.0
        assert "chmod go-w %s" % daemon.directory in str(refused.value)
        os.chmod(daemon.directory, 0o700)
        with lymph.Client(socket=daemon.socket, wait=10) as client:
            assert client.container.welcome.identity
