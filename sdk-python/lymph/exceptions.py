"""What calls and emits fail with, named as in lymph (`RemoteError`,
`Timeout`, `Nack`, `LookupFailure`, `NotConnected`) with one exception per
kind of the proto's `ErrorKind`, and the one mapping between the two; and
what attaching fails with (`DaemonUnavailable`, `Rejected`, `Untrusted`).

    try:
        proxy.greet(name='')
    except RemoteError.ValueError as e:   # the handler raised ValueError
        ...
    except Nack:                          # unknown method, bad arguments, a crash
        ...
"""


class RpcError(Exception):
    """Base of every error a call or emit through lymphd fails with."""

    #: The proto's ErrorKind name, e.g. "DEADLINE_EXCEEDED".
    kind = "INTERNAL"

    def __init__(self, message="", error_type=""):
        super().__init__(message)
        self.message = message
        #: For a remote error: the type the handler raised, e.g. "ValueError".
        self.error_type = error_type

    def __repr__(self):
        return "<%s: %s>" % (self.__class__.__name__, self)


# lymph's name for errors tied to one request.
RpcRequestError = RpcError


class LookupFailure(RpcError):
    """No live instance of the service is registered (UNKNOWN_SERVICE)."""
    kind = "UNKNOWN_SERVICE"


class Nack(RpcError):
    """lymph's NACK: the instance could not or would not answer."""
    kind = "HANDLER_FAILED"


class UnknownMethod(Nack):
    kind = "UNKNOWN_METHOD"


class BadRequest(Nack):
    """The arguments are malformed or do not fit the method's parameters."""
    kind = "BAD_REQUEST"


class HandlerFailed(Nack):
    """The handler raised an exception it does not declare in `raises=`."""
    kind = "HANDLER_FAILED"


class Timeout(RpcError):
    """No reply within the deadline (DEADLINE_EXCEEDED)."""
    kind = "DEADLINE_EXCEEDED"


class Overloaded(RpcError):
    """The instance is at its concurrency limit, or a queue is full."""
    kind = "OVERLOADED"


# lymph's name for a full queue.
ResourceExhausted = Overloaded


class Unavailable(RpcError):
    """The instance or the daemon went away before it answered."""
    kind = "UNAVAILABLE"


class NotConnected(Unavailable):
    """This process is not attached to lymphd right now."""


#: How each `socket_rule.resolve_socket` source reads in a message.
_SOCKET_SOURCES = {
    "flag": "given as socket=",
    "env": "from $LYMPH_SOCKET",
    "config": "from the config file's socket:",
    "xdg": "the default under $XDG_RUNTIME_DIR",
    "tmp": "the default",
}


class DaemonUnavailable(NotConnected):
    """No lymphd answered on the socket: nothing listens there, or the
    daemon did not welcome the app. `lymph.Client` raises it at once, or
    after its `wait=` seconds. `socket` is the path tried, `reason` what
    went wrong, `source` where the path came from (the socket rule's
    "flag", "env", "config", "xdg" or "tmp")."""

    def __init__(self, socket, reason, source=None, waited=0):
        where = _SOCKET_SOURCES.get(source)
        text = reason
        if where:
            text += " (%s)" % where
        if waited:
            text += " after waiting %ss" % waited
        text += ": start lymphd with `lymphd --socket %s` (or point LYMPH_SOCKET at a running one's socket)" % socket
        if not waited:
            text += ", or pass wait=SECONDS to wait for it"
        super().__init__(text)
        self.socket, self.reason, self.source, self.waited = socket, reason, source, waited


class TooLarge(RpcError):
    kind = "TOO_LARGE"


class InvalidRequest(RpcError):
    """The request itself is invalid (empty name, bad version, ...)."""
    kind = "INVALID"


class ShuttingDown(RpcError):
    kind = "SHUTTING_DOWN"


class Cancelled(RpcError):
    """The call was given up by its caller (CANCELLED)."""
    kind = "CANCELLED"


class InternalError(RpcError):
    kind = "INTERNAL"


class _RemoteErrorType(type):
    """`RemoteError.ValueError` is the (cached) subclass for that remote type."""

    _subclasses = {}

    def __getattr__(cls, error_type):
        if error_type.startswith("__"):
            raise AttributeError(error_type)
        sub = _RemoteErrorType._subclasses.get(error_type)
        if sub is None:
            sub = _RemoteErrorType(error_type, (RemoteError,), {"__module__": __name__})
            _RemoteErrorType._subclasses[error_type] = sub
        return sub


class RemoteError(RpcError, metaclass=_RemoteErrorType):
    """The handler raised a typed error (one of its `raises=`): `error_type`
    is its class name and `str(e)` its message, as in lymph."""

    kind = "REMOTE_ERROR"

    @classmethod
    def of(cls, error_type, message):
        sub = _RemoteErrorType.__getattr__(RemoteError, error_type or "RemoteError")
        return sub(message, error_type)


class ConfigurationError(Exception):
    """A bad config file or interface class; the runner exits with it."""


class Rejected(Exception):
    """lymphd refused this app (e.g. its HTTP port is taken)."""


class Untrusted(Exception):
    """The socket's directory, the socket or the process serving it failed
    the trust check (see lymph.trust): another user may be impersonating
    lymphd, so the app does not attach. `socket`, `problem` and `fix` say
    what was found and what to do."""

    def __init__(self, socket, problem, fix):
        super().__init__("refusing to attach to lymphd on %s: %s. Fix: %s" % (socket, problem, fix))
        self.socket, self.problem, self.fix = socket, problem, fix


_BY_KIND = {
    cls.kind: cls
    for cls in (LookupFailure, UnknownMethod, BadRequest, HandlerFailed, Timeout,
                Overloaded, Unavailable, TooLarge, InvalidRequest, ShuttingDown, Cancelled, InternalError)
}


def from_call_error(error):
    """The exception for a proto `CallError`."""
    from lymph._wire import pb

    try:
        kind = pb.ErrorKind.Name(error.kind)[len("ERROR_KIND_"):]
    except ValueError:
        kind = "INTERNAL"
    if kind == "REMOTE_ERROR":
        return RemoteError.of(error.type, error.message)
    return _BY_KIND.get(kind, InternalError)(error.message)


def to_call_error(exc):
    """The proto `CallError` for one of these exceptions (or any other: INTERNAL)."""
    from lymph._wire import pb

    kind = getattr(exc, "kind", "INTERNAL")
    if kind not in _BY_KIND and kind != "REMOTE_ERROR":
        kind = "INTERNAL"
    message = getattr(exc, "message", None)
    if message is None:
        message = str(exc)
    return pb.CallError(
        kind=pb.ErrorKind.Value("ERROR_KIND_" + kind),
        type=getattr(exc, "error_type", "") or "",
        message=message,
    )
