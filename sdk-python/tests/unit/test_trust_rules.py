"""The trust rules of lymph.trust on made-up facts, without IO."""

import os

import pytest

from lymph.exceptions import Untrusted
from lymph.trust import check_dir, check_peer, check_socket, resolve_user

ME, MALLORY, LYMPH = os.geteuid(), 54321, 54000
NAMES = {0: "root", MALLORY: "mallory", LYMPH: "lymph"}
SOCKET, DIR = "/tmp/lymph-1000/lymphd.sock", "/tmp/lymph-1000"


def name_of(uid):
    return NAMES.get(uid)


def test_own_root_and_daemon_user_directories_are_trusted():
    check_dir(SOCKET, DIR, ME, 0o40700, {ME, 0}, name_of=name_of)
    check_dir(SOCKET, DIR, 0, 0o40755, {ME, 0}, name_of=name_of)
    # The systemd unit's /run/lymph: lymph:lymph 0750, group-readable only.
    check_dir(SOCKET, DIR, LYMPH, 0o40750, {ME, 0, LYMPH}, str(LYMPH), name_of=name_of)


def test_another_users_directory_is_refused_naming_owners_and_the_fix():
    with pytest.raises(Untrusted) as refused:
        check_dir(SOCKET, DIR, MALLORY, 0o40755, {ME, 0}, name_of=name_of)
    text = str(refused.value)
    assert text.startswith("refusing to attach to lymphd on /tmp/lymph-1000/lymphd.sock:")
    for part in ("its directory /tmp/lymph-1000 (owner uid 54321 (mallory), mode 0755)",
                 "LYMPH_DAEMON_USER is not set", "set LYMPH_DAEMON_USER=mallory",
                 "remove /tmp/lymph-1000"):
        assert part in text
    assert refused.value.socket == SOCKET
    with pytest.raises(Untrusted, match="LYMPH_DAEMON_USER=lymphtest-nobody names no user"):
        check_dir(SOCKET, DIR, MALLORY, 0o40700, {ME, 0}, "lymphtest-nobody", name_of=name_of)


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o702])
def test_group_or_other_writable_directories_are_refused_even_roots(mode):
    with pytest.raises(Untrusted) as refused:
        check_dir(SOCKET, DIR, 0, 0o40000 | mode, {ME, 0}, name_of=name_of)
    text = str(refused.value)
    assert "writable by its group or others" in text
    assert "chmod go-w /tmp/lymph-1000" in text
    assert "mode %04o" % mode in text


def test_the_socket_belongs_to_its_directorys_owner_or_root():
    check_socket(SOCKET, LYMPH, LYMPH, name_of=name_of)
    check_socket(SOCKET, MALLORY, 0, name_of=name_of)
    with pytest.raises(Untrusted, match=r"the socket belongs to uid 54321 \(mallory\), but its directory to uid 0"):
        check_socket(SOCKET, 0, MALLORY, name_of=name_of)


def test_the_server_runs_as_the_sockets_owner_or_root():
    check_peer(SOCKET, LYMPH, LYMPH, 7, name_of=name_of)
    check_peer(SOCKET, LYMPH, 0, 7, name_of=name_of)
    with pytest.raises(Untrusted) as refused:
        check_peer(SOCKET, LYMPH, MALLORY, 77, name_of=name_of)
    assert "the process serving it (pid 77) runs as uid 54321 (mallory)" in str(refused.value)
    assert "stop pid 77" in refused.value.fix


def test_numeric_daemon_users_are_uids():
    assert resolve_user("4321") == 4321
    assert resolve_user("") is None
