"""Whether the server behind lymphd's socket may be trusted, checked before
the gRPC channel opens (the same rule as the Rust SDK and lymphctl).

Whoever can write the socket's directory can put their own server there, so:
the directory must belong to this process's uid, root, or the daemon user
($LYMPH_DAEMON_USER, a name or a numeric uid: `lymph` under the shipped
systemd units) and be writable by nobody else; the socket file must belong to
the directory's owner or root; and the process serving the socket (its peer
credentials, SO_PEERCRED) must run as the socket's owner or root.

grpc does not expose the peer credentials of its own connection, so the peer
check runs on a probe connection made just before the channel's. Between the
two only someone who can write the directory could swap the socket, and the
directory check has just shown that to be only the trusted owner."""

import os
import pwd
import socket as _socket
import stat
import struct

from lymph.exceptions import Untrusted

DAEMON_USER_ENV = "LYMPH_DAEMON_USER"
#: How long the probe connection may take (a local socket: normally at once).
PROBE_TIMEOUT = 2.0


def check(path, env=None):
    """Checks the socket at `path`; raises Untrusted, or OSError when there is
    nothing to connect to (no directory, no socket, nobody listening)."""
    env = os.environ if env is None else env
    trusted = trusted_uids(env)
    directory = os.path.dirname(path) or "."
    dir_stat = os.stat(directory)
    sock_stat = os.stat(path)
    check_dir(path, directory, dir_stat.st_uid, dir_stat.st_mode, trusted, env.get(DAEMON_USER_ENV, ""))
    check_socket(path, dir_stat.st_uid, sock_stat.st_uid)
    uid, pid = peer_of(path)
    check_peer(path, sock_stat.st_uid, uid, pid)


def trusted_uids(env):
    """This process's euid, root, and $LYMPH_DAEMON_USER's uid if it names one."""
    uids = {os.geteuid(), 0}
    daemon_user = resolve_user(env.get(DAEMON_USER_ENV, ""))
    if daemon_user is not None:
        uids.add(daemon_user)
    return uids


def check_dir(path, directory, owner, mode, trusted, daemon_user="", name_of=None):
    """The directory rule: owned by a trusted uid, writable by its owner only."""
    name_of = name_of or user_name
    found = "owner %s, mode %04o" % (_who(owner, name_of), stat.S_IMODE(mode))
    if owner not in trusted:
        uid = resolve_user(daemon_user)
        if not daemon_user:
            known = "%s is not set" % DAEMON_USER_ENV
        elif uid is None:
            known = "%s=%s names no user" % (DAEMON_USER_ENV, daemon_user)
        else:
            known = "%s=%s, uid %d" % (DAEMON_USER_ENV, daemon_user, uid)
        owner_name = name_of(owner) or str(owner)
        raise Untrusted(
            path,
            "its directory %s (%s) belongs to another user, who may be serving their own lymphd; "
            "expected this process's %s, root or the daemon user (%s)"
            % (directory, found, _who(os.geteuid(), name_of), known),
            "if lymphd runs as %s, set %s=%s; otherwise remove %s (as root if need be) and start lymphd again"
            % (owner_name, DAEMON_USER_ENV, owner_name, directory))
    if mode & 0o022:
        raise Untrusted(
            path,
            "its directory %s (%s) is writable by its group or others, who could have replaced the socket"
            % (directory, found),
            "chmod go-w %s and start lymphd again" % directory)


def check_socket(path, dir_owner, socket_owner, name_of=None):
    """The socket file's rule: owned by its directory's owner or root."""
    if socket_owner in (dir_owner, 0):
        return
    name_of = name_of or user_name
    raise Untrusted(
        path,
        "the socket belongs to %s, but its directory to %s; expected the directory's owner or root"
        % (_who(socket_owner, name_of), _who(dir_owner, name_of)),
        "remove %s and start lymphd again" % path)


def check_peer(path, socket_owner, peer_uid, peer_pid, name_of=None):
    """The server's rule: the process that accepted runs as the socket's owner or root."""
    if peer_uid in (socket_owner, 0):
        return
    name_of = name_of or user_name
    raise Untrusted(
        path,
        "the process serving it (pid %s) runs as %s, but the socket belongs to %s; expected the "
        "socket's owner or root" % (peer_pid, _who(peer_uid, name_of), _who(socket_owner, name_of)),
        "that is not your lymphd: stop pid %s and start lymphd again" % peer_pid)


def peer_of(path):
    """(uid, pid) of the process listening on `path`, from a probe
    connection that is closed at once without a byte sent."""
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        probe.settimeout(PROBE_TIMEOUT)
        probe.connect(path)
        raw = probe.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i"))
    finally:
        probe.close()
    pid, uid, _gid = struct.unpack("3i", raw)
    return uid, pid


def resolve_user(name):
    """A numeric uid as is, else the named user's uid; None when it names none."""
    if not name:
        return None
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _who(uid, name_of):
    name = name_of(uid)
    return "uid %d (%s)" % (uid, name) if name else "uid %d" % uid
