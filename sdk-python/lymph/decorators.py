"""`@lymph.rpc()` and `@lymph.event(...)`: they mark a method and return it
unchanged (still a plain method, callable in a unit test); `Interface`
collects the marks when the class is defined."""

import inspect


class RpcDeclaration:
    """What `@lymph.rpc(raises=...)` says about a method."""

    def __init__(self, raises):
        self.raises = raises

    @property
    def raises_names(self):
        return [cls.__name__ for cls in self.raises]


class EventDeclaration:
    """What `@lymph.event(...)` says about a handler."""

    def __init__(self, event_types, broadcast, retry, queue_name):
        self.event_types = tuple(event_types)
        self.broadcast = bool(broadcast)
        self.retry = int(retry)
        self.queue_name = queue_name


def _exception_classes(raises):
    if isinstance(raises, type):
        raises = (raises,)
    raises = tuple(raises)
    for cls in raises:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError("rpc(raises=...) takes exception classes, not %r" % (cls,))
    return raises


def rpc(raises=()):
    """Marks an RPC method. Its parameters are the request's keys; it may be a
    plain method (run on the worker pool) or `async def` (run on the SDK's
    loop). Exceptions of a type in `raises` reach the caller as
    `RemoteError.<Type>` with their message; any other is a `Nack`."""
    if inspect.isfunction(raises):  # @lymph.rpc without parentheses
        return rpc()(raises)
    declaration = RpcDeclaration(_exception_classes(raises))

    def decorate(func):
        if not inspect.isfunction(func):
            raise TypeError("@lymph.rpc() decorates a method, not %r" % (func,))
        func._lymph_rpc = declaration
        return func

    return decorate


def event(*event_types, broadcast=False, retry=0, queue_name=None, **ignored):
    """Marks an event handler for `event_types`. By default one instance of
    the service handles each event; `broadcast=True`: every instance. A handler
    that raises is retried `retry` times, then the event is dropped. Instances
    of a service share the queue `<Interface>-<queue_name or method name>`."""
    if not event_types:
        raise TypeError("@lymph.event() needs at least one event type")
    if ignored.get("once"):
        raise TypeError("@lymph.event(once=True) is not supported by lymphd")
    if int(retry) < 0:
        raise ValueError("@lymph.event(retry=...) must not be negative")

    def decorate(func):
        if not inspect.isfunction(func):
            raise TypeError("@lymph.event() decorates a method, not %r" % (func,))
        if hasattr(func, "_lymph_event"):
            raise TypeError("lymph.event() decorators cannot be stacked")
        func._lymph_event = EventDeclaration(
            event_types, broadcast, retry, queue_name or func.__name__)
        return func

    return decorate
