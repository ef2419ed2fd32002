"""The socket rule, each source in turn."""

from lymph.socket_rule import grpc_target, resolve_socket


def test_each_source_in_order():
    env = {"LYMPH_SOCKET": "/e.sock", "XDG_RUNTIME_DIR": "/run/user/7"}
    assert resolve_socket("/f.sock", "/c.sock", env, 7) == ("/f.sock", "flag")
    assert resolve_socket(None, "/c.sock", env, 7) == ("/e.sock", "env")
    env.pop("LYMPH_SOCKET")
    assert resolve_socket(None, "/c.sock", env, 7) == ("/c.sock", "config")
    assert resolve_socket(None, None, env, 7) == ("/run/user/7/lymph/lymphd.sock", "xdg")
    assert resolve_socket(None, None, {}, 7) == ("/tmp/lymph-7/lymphd.sock", "tmp")


def test_empty_values_are_skipped():
    env = {"LYMPH_SOCKET": "", "XDG_RUNTIME_DIR": ""}
    assert resolve_socket("", "", env, 3) == ("/tmp/lymph-3/lymphd.sock", "tmp")


def test_grpc_target_is_absolute():
    assert grpc_target("/a/b.sock") == "unix:/a/b.sock"
    assert grpc_target("b.sock").startswith("unix:/")
