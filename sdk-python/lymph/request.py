"""The work a handler is serving, as the handler sees it:
`lymph.current_request()` (its trace id, deadline and whether it was
cancelled), a contextvar set by the SDK before each handler runs, in its
worker thread or its task. Calls made while it runs take their timeout from
here (`call_timeout`): never past the handler's own deadline. Knows nothing
of the stream: the link creates one per request and cancels it."""

import contextvars
import time

from lymph.exceptions import Timeout

_current = contextvars.ContextVar("lymph_current_request", default=None)


class CurrentRequest:
    """One request, delivery or HTTP request being handled.

    - `trace_id`: its trace id (also `lymph.trace.get_id()`).
    - `traceparent`: the W3C `traceparent` of lymphd's span the handler
      runs under (None when lymphd records no spans); calls and emits made
      while it runs pass it on, so their spans are the handler's children.
    - `deadline`: when its caller stops waiting, in `time.monotonic()`
      seconds; None when it has none (events, HTTP requests).
    - `cancelled`: True once lymphd cancelled it (its caller's deadline
      passed, or the caller gave up): a plain handler may poll it and stop
      early; its answer would not be sent anyway. A coroutine handler is
      cancelled outright (`asyncio.CancelledError` in its task)."""

    __slots__ = ("trace_id", "deadline", "traceparent", "_cancelled")

    def __init__(self, trace_id=None, deadline=None, traceparent=None):
        self.trace_id = trace_id or None
        self.deadline = deadline
        self.traceparent = traceparent or None
        self._cancelled = False

    @classmethod
    def arrived(cls, trace_id, deadline_ms, now=None, traceparent=None):
        """A request that arrived `now` (monotonic) with `deadline_ms` left
        (0: no deadline, as the daemon sends for work without one)."""
        now = time.monotonic() if now is None else now
        return cls(trace_id, now + deadline_ms / 1000.0 if deadline_ms else None, traceparent)

    @property
    def cancelled(self):
        return self._cancelled

    def cancel(self):
        # A plain attribute write: atomic under the GIL, read by the handler's thread.
        self._cancelled = True

    def time_left(self, now=None):
        """Seconds until the deadline (negative once passed), or None."""
        if self.deadline is None:
            return None
        return self.deadline - (time.monotonic() if now is None else now)

    def __repr__(self):
        left = self.time_left()
        return "<CurrentRequest trace_id=%s left=%s cancelled=%s>" % (
            self.trace_id, "none" if left is None else "%.3fs" % left, self._cancelled)


class NoCurrentRequest(RuntimeError):
    """`lymph.current_request()` outside a handler."""


def current_request():
    """The request the calling handler is serving (see `CurrentRequest`).
    Valid inside an RPC method, event handler or web endpoint run by lymph,
    and in code they call; raises `NoCurrentRequest` anywhere else."""
    current = _current.get()
    if current is None:
        raise NoCurrentRequest(
            "lymph.current_request() is only valid inside a handler lymph runs "
            "(an @lymph.rpc method, an @lymph.event handler or a web endpoint)")
    return current


def get():
    """The current request, or None outside a handler."""
    return _current.get()


def traceparent_for(trace_id):
    """The `traceparent` a call or emit in trace `trace_id` made now passes
    on: the current handler's, when it is in that trace; else None."""
    current = _current.get()
    if current is None or (trace_id is not None and trace_id != current.trace_id):
        return None
    return current.traceparent


def enter(current):
    """Makes `current` the current request of this context (the SDK calls
    this in the fresh context each handler runs in)."""
    _current.set(current)


def call_timeout(timeout, what, now=None):
    """The timeout (seconds, or None for the daemon's default) of a call to
    `what` made now. Inside a handler with a deadline: the smaller of
    `timeout` and the time left, and the time left when the call has no
    timeout of its own; raises `Timeout` when no time is left, so the call
    never reaches the daemon. Outside a handler: `timeout` unchanged."""
    current = _current.get()
    if current is None:
        return timeout
    left = current.time_left(now)
    if left is None:
        return timeout
    if left <= 0:
        raise Timeout("no time left to call %s: the deadline of the request being handled has passed" % what)
    return min(timeout, left) if timeout else left
