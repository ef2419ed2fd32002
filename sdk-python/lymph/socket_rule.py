"""Where lymphd's socket is, by the rule every lymph tool follows: the
--socket flag, else $LYMPH_SOCKET, else `socket:` in the config file, else
$XDG_RUNTIME_DIR/lymph/lymphd.sock, else /tmp/lymph-<uid>/lymphd.sock."""

import os


def resolve_socket(flag=None, config_file=None, env=None, uid=None):
    """The socket path and where it came from ("flag", "env", "config",
    "xdg", "tmp"). `env` and `uid` default to the process's."""
    env = os.environ if env is None else env
    if flag:
        return str(flag), "flag"
    if env.get("LYMPH_SOCKET"):
        return env["LYMPH_SOCKET"], "env"
    if config_file:
        return str(config_file), "config"
    if env.get("XDG_RUNTIME_DIR"):
        return os.path.join(env["XDG_RUNTIME_DIR"], "lymph", "lymphd.sock"), "xdg"
    uid = os.getuid() if uid is None else uid
    return "/tmp/lymph-%d/lymphd.sock" % uid, "tmp"


def grpc_target(path):
    return "unix:" + os.path.abspath(path)
