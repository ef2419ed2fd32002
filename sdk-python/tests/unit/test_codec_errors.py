"""MessagePack bodies and the mapping of every ErrorKind to an exception."""

import pytest

from lymph import codec
from lymph._wire import pb
from lymph.exceptions import (BadRequest, Cancelled, HandlerFailed, InternalError, LookupFailure, Nack,
                              RemoteError, RpcError, Timeout, Unavailable, UnknownMethod,
                              from_call_error, to_call_error)


def test_bodies_round_trip():
    value = {"name": "Jöe", "n": [1, 2.5, None, True], "raw": b"\x00\xff"}
    assert codec.unpack(codec.pack(value)) == value
    assert codec.unpack(b"") is None


def test_unencodable_values_name_what():
    with pytest.raises(TypeError, match="cannot encode the reply of X.y"):
        codec.pack(object(), "the reply of X.y")


@pytest.mark.parametrize("body, message", [
    (codec.pack([1, 2]), "must be a map"),
    (codec.pack({1: 2}), "must be a map"),
    (b"\xc1", "not MessagePack"),
])
def test_bad_arguments_are_bad_requests(body, message):
    with pytest.raises(BadRequest, match=message):
        codec.unpack_args(body, "Greeting.greet")


def test_no_arguments_is_an_empty_map():
    assert codec.unpack_args(b"", "x") == {}
    assert codec.unpack_args(codec.pack(None), "x") == {}


EXPECTED = {
    "UNKNOWN_SERVICE": LookupFailure, "UNKNOWN_METHOD": UnknownMethod, "BAD_REQUEST": BadRequest,
    "HANDLER_FAILED": HandlerFailed, "DEADLINE_EXCEEDED": Timeout, "UNAVAILABLE": Unavailable,
    "INTERNAL": InternalError, "CANCELLED": Cancelled,
}


@pytest.mark.parametrize("name", [n[len("ERROR_KIND_"):] for n in pb.ErrorKind.keys() if n != "ERROR_KIND_UNSPECIFIED"])
def test_every_kind_maps_to_its_own_exception_and_back(name):
    wire = pb.CallError(kind=pb.ErrorKind.Value("ERROR_KIND_" + name), type="T", message="why")
    exc = from_call_error(wire)
    assert isinstance(exc, RpcError)
    assert exc.kind == name
    assert str(exc) == "why"
    if name in EXPECTED:
        assert type(exc) is EXPECTED[name]
    back = to_call_error(exc)
    assert (back.kind, back.message) == (wire.kind, "why")


def test_nack_covers_lymphs_nack_cases():
    for cls in (UnknownMethod, BadRequest, HandlerFailed):
        assert issubclass(cls, Nack)


def test_remote_errors_keep_their_type():
    exc = from_call_error(pb.CallError(kind=pb.ERROR_KIND_REMOTE_ERROR, type="ValueError", message="empty name"))
    assert isinstance(exc, RemoteError.ValueError)
    assert isinstance(exc, RemoteError)
    assert not isinstance(exc, RemoteError.KeyError)
    assert RemoteError.ValueError is RemoteError.ValueError
    assert (exc.error_type, str(exc)) == ("ValueError", "empty name")
    wire = to_call_error(exc)
    assert (wire.kind, wire.type) == (pb.ERROR_KIND_REMOTE_ERROR, "ValueError")
    # Types named like attributes of the class still get their own subclass.
    assert RemoteError.of("kind", "x").error_type == "kind"


def test_unknown_kinds_are_internal():
    assert type(from_call_error(pb.CallError(kind=99, message="?"))) is InternalError
    assert to_call_error(ZeroDivisionError("x")).kind == pb.ERROR_KIND_INTERNAL
