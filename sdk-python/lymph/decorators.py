"""`@lymph.rpc()` and `@lymph.event(...)`: they mark a method and return it
unchanged (still a plain method, callable in a unit test); `Interface`
collects the marks when the class is defined. Misuse (a bad `raises`,
`retry` or `concurrency`) fails here, when the class is written."""

import inspect


#: The proto's uint32: the largest per-handler limit that can be declared.
MAX_CONCURRENCY = 2**32 - 1


class RpcDeclaration:
    """What `@lymph.rpc(raises=..., concurrency=...)` says about a method."""

    def __init__(self, raises, concurrency=0):
        self.raises = raises
        #: Requests it takes at once (0: no limit of its own).
        self.concurrency = concurrency

    @property
    def raises_names(self):
        return [cls.__name__ for cls in self.raises]


class EventDeclaration:
    """What `@lymph.event(...)` says about a handler."""

    def __init__(self, event_types, broadcast, retry, queue_name, concurrency=0):
        self.event_types = tuple(event_types)
        self.broadcast = bool(broadcast)
        self.retry = int(retry)
        self.queue_name = queue_name
        #: Deliveries it holds at once (0: no limit of its own).
        self.concurrency = concurrency


def _exception_classes(raises):
    if isinstance(raises, type):
        raises = (raises,)
    raises = tuple(raises)
    for cls in raises:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError("rpc(raises=...) takes exception classes, not %r" % (cls,))
    return raises


def _concurrency(value, decorator):
    """A per-handler limit as the proto carries it: None is 0 (no limit of
    its own); otherwise an int from 1 to MAX_CONCURRENCY."""
    if value is None:
        return 0
    # bool is an int to Python, never a limit.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s(concurrency=...) takes an int of at least 1, not %r" % (decorator, value))
    if not 1 <= value <= MAX_CONCURRENCY:
        raise ValueError("%s(concurrency=...) must be from 1 to %d, not %d" % (decorator, MAX_CONCURRENCY, value))
    return value


def rpc(raises=(), concurrency=None):
    """Marks an RPC method. Its parameters are the request's keys; it may be a
    plain method (run on the worker pool) or `async def` (run on the SDK's
    loop). Exceptions of a type in `raises` reach the caller as
    `RemoteError.<Type>` with their message; any other is a `Nack`.
    `concurrency=N`: lymphd hands it at most N requests at once, and answers
    those past N `Overloaded` at once (default: only the app's limit)."""
    if inspect.isfunction(raises):  # @lymph.rpc without parentheses
        return rpc()(raises)
    declaration = RpcDeclaration(_exception_classes(raises), _concurrency(concurrency, "@lymph.rpc"))

    def decorate(func):
        if not inspect.isfunction(func):
            raise TypeError("@lymph.rpc() decorates a method, not %r" % (func,))
        func._lymph_rpc = declaration
        return func

    return decorate


def event(*event_types, broadcast=False, retry=0, queue_name=None, concurrency=None, **ignored):
    """Marks an event handler for `event_types`. By default one instance of
    the service handles each event; `broadcast=True`: every instance. A handler
    that raises is retried `retry` times, then the event is dropped. Instances
    of a service share the queue `<Interface>-<queue_name or method name>`.
    `concurrency=N`: lymphd hands it at most N deliveries at once; the others
    wait in the queue (default: only the app's share for deliveries)."""
    if not event_types:
        raise TypeError("@lymph.event() needs at least one event type")
    if ignored.get("once"):
        raise TypeError("@lymph.event(once=True) is not supported by lymphd")
    if int(retry) < 0:
        raise ValueError("@lymph.event(retry=...) must not be negative")
    limit = _concurrency(concurrency, "@lymph.event")

    def decorate(func):
        if not inspect.isfunction(func):
            raise TypeError("@lymph.event() decorates a method, not %r" % (func,))
        if hasattr(func, "_lymph_event"):
            raise TypeError("lymph.event() decorators cannot be stacked")
        func._lymph_event = EventDeclaration(
            event_types, broadcast, retry, queue_name or func.__name__, limit)
        return func

    return decorate
