"""The trace id of the request, event or HTTP request being handled: a
contextvar, set by the SDK before each handler runs (in its worker thread or
its task) and read by every call, emit and log record made while it runs.
Outside a handler there is none, and the daemon makes a new one per call."""

import contextvars
import uuid

_trace_id = contextvars.ContextVar("lymph_trace_id", default=None)


def get_id():
    """The current trace id, or None outside a handler."""
    return _trace_id.get()


def set_id(trace_id=None):
    """Sets the current trace id (a new one when None is given) and returns it."""
    trace_id = trace_id or uuid.uuid4().hex
    _trace_id.set(trace_id)
    return trace_id


def run_with(trace_id, func, *args, **kwargs):
    """Calls `func` in a fresh context whose trace id is `trace_id`."""
    context = contextvars.Context()
    return context.run(_run_traced, trace_id, func, args, kwargs)


def _run_traced(trace_id, func, args, kwargs):
    _trace_id.set(trace_id or None)
    return func(*args, **kwargs)
