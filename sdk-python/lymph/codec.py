"""MessagePack bodies, as lymph encodes them: maps of parameter name to value
for requests, any value for replies and events. Strings are str, bytes are
bytes (msgpack's bin type); nothing else in the SDK packs or unpacks."""

import msgpack

from lymph.exceptions import BadRequest, InternalError

_NIL = b"\xc0"


def pack(value, what="the value"):
    """Encodes `value`; a TypeError names `what` (e.g. the reply of Greeting.greet)."""
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise TypeError("cannot encode %s as MessagePack: %s" % (what, e)) from None


def unpack(data, what="the body"):
    """Decodes `data`; an empty body is None."""
    if not data:
        return None
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as e:
        raise InternalError("cannot decode %s: %s" % (what, e)) from None


def unpack_args(data, what):
    """The keyword arguments of a request: a map with string keys (empty: none)."""
    try:
        args = msgpack.unpackb(data, raw=False, strict_map_key=False) if data else {}
    except Exception as e:
        raise BadRequest("the arguments of %s are not MessagePack: %s" % (what, e)) from None
    if args is None:
        return {}
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise BadRequest("the arguments of %s must be a map of parameter name to value" % what)
    return args
