"""Running one handler: an RPC method, an event handler or a route, plain
(on the container's bounded thread pool) or a coroutine (on its loop), in a
context carrying the request's trace id and its `lymph.current_request()`;
and turning its outcome into the proto's answer (Reply, Ack/Fail,
HttpResponse), a failure logged with its traceback from the user's frame
down (lymph.tracebacks). Knows nothing of the stream."""

import asyncio
import contextvars
import functools
import inspect
import logging
import re

from lymph import codec, trace
from lymph._wire import pb
from lymph.core.events import Event
from lymph.exceptions import BadRequest, HandlerFailed, RemoteError, RpcError, UnknownMethod, to_call_error
from lymph.request import CurrentRequest, enter as enter_request
from lymph.tracebacks import user_exc_info

rpc_logger = logging.getLogger("lymph.rpc")
events_logger = logging.getLogger("lymph.events")


def _logged(logger, line, func, args):
    logger.info("%s", line)
    return func(*args)


async def run(loop, pool, func, args, current, logger, line):
    """Runs `func(*args)` with `current` (a `CurrentRequest`) as the current
    request and its trace id as the current trace id, logging `line` first;
    returns its value or raises its exception. Cancelling the awaiting task
    cancels a coroutine handler's task; a plain one runs on in its thread
    (it may poll `current.cancelled`)."""
    context = contextvars.Context()
    context.run(enter_request, current)
    if current.trace_id:
        context.run(trace.set_id, current.trace_id)
    if inspect.iscoroutinefunction(func):
        context.run(logger.info, "%s", line)
        return await context.run(loop.create_task, func(*args))
    return await loop.run_in_executor(pool, context.run, _logged, logger, line, func, args)


def log_in_trace(trace_id, logger, level, message, *args, **kwargs):
    trace.run_with(trace_id, logger.log, level, message, *args, **kwargs)


def describe(exc):
    """`TypeName: message`, the text a failed handler is reported with."""
    text = str(exc)
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


async def rpc(container, iface, request, current=None):
    """The `Reply` for a `Request` to `iface`; `current` is its
    `CurrentRequest` (made from the request when not given)."""
    what = "%s.%s" % (iface.name, request.method)
    if current is None:
        current = CurrentRequest.arrived(request.trace_id, request.deadline_ms,
                                         traceparent=request.traceparent)
    try:
        declaration = type(iface).methods.get(request.method)
        if declaration is None:
            raise UnknownMethod("%s has no method %s" % (iface.name, request.method))
        kwargs = codec.unpack_args(request.body, what)
        func = getattr(iface, request.method)
        try:
            _signature(type(iface), request.method).bind(None, **kwargs)
        except TypeError as e:
            raise BadRequest("%s: %s" % (what, e)) from None
        call = functools.partial(func, **kwargs)
        if inspect.iscoroutinefunction(func):
            call = _coroutine_partial(func, kwargs)
        try:
            value = await run(container.loop, container.pool, call, (), current, rpc_logger, what)
        except declaration.raises as e:
            return pb.Reply(id=request.id, error=to_call_error(RemoteError.of(type(e).__name__, str(e))))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log_in_trace(request.trace_id, rpc_logger, logging.WARNING, "%s failed", what, exc_info=user_exc_info(e))
            raise HandlerFailed(describe(e)) from None
        try:
            body = codec.pack(value, "the reply of %s" % what)
        except TypeError as e:
            raise HandlerFailed(str(e)) from None
        return pb.Reply(id=request.id, body=body)
    except RpcError as e:
        return pb.Reply(id=request.id, error=to_call_error(e))


@functools.lru_cache(maxsize=1024)
def _signature(cls, name):
    """The method's signature (with `self`), computed once per class."""
    return inspect.signature(getattr(cls, name))


def _coroutine_partial(func, kwargs):
    async def call():
        return await func(**kwargs)
    return call


def find_handler(iface, event_type):
    """The name of `iface`'s handler for `event_type` (exact type first,
    then lymph's `*`/`#` patterns), or None."""
    handlers = type(iface).event_handlers
    for name, declaration in sorted(handlers.items()):
        if event_type in declaration.event_types:
            return name
    for name, declaration in sorted(handlers.items()):
        if any(_pattern(t).match(event_type) for t in declaration.event_types if "*" in t or "#" in t):
            return name
    return None


@functools.lru_cache(maxsize=256)
def _pattern(event_type):
    wildcards = {"#": r"[\w.]*(?=\.|$)", "*": r"\w+"}
    words = (wildcards.get(word, re.escape(word)) for word in event_type.split("."))
    return re.compile(r"^%s$" % r"\.".join(words))


async def deliver(container, iface, delivery, current=None):
    """`Ack` or `Fail` for a `Delivery` to `iface`; `current` is its
    `CurrentRequest` (made from the delivery when not given)."""
    if current is None:
        current = CurrentRequest(delivery.trace_id, traceparent=delivery.traceparent)

    def fail(reason):
        return pb.AppMessage(fail=pb.Fail(delivery_id=delivery.delivery_id, reason=reason))

    # The daemon names the subscription's handler; older daemons do not.
    if delivery.handler and delivery.handler in type(iface).event_handlers:
        name = delivery.handler
    else:
        name = find_handler(iface, delivery.event_type)
    if name is None:
        return fail("%s has no handler for event %s" % (iface.name, delivery.event_type))
    what = "%s -> %s.%s" % (delivery.event_type, iface.name, name)
    try:
        body = codec.unpack(delivery.body, "the body of event %s" % delivery.event_type)
    except RpcError as e:
        return fail(str(e))
    event = Event(delivery.event_type, body, event_id=delivery.event_id or None,
                  trace_id=delivery.trace_id or None, attempt=delivery.attempt or 1)
    func = getattr(iface, name)
    try:
        await run(container.loop, container.pool, func, (event,), current, events_logger, what)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        log_in_trace(delivery.trace_id, events_logger, logging.WARNING,
                     "%s failed (attempt %d)", what, delivery.attempt or 1, exc_info=user_exc_info(e))
        return fail(describe(e))
    return pb.AppMessage(ack=pb.Ack(delivery_id=delivery.delivery_id))


web_logger = logging.getLogger("lymph.web")


async def http(container, iface, request, current=None):
    """The `HttpResponse` for an `HttpRequest` routed to web interface
    `iface`; `current` is its `CurrentRequest` (made when not given)."""
    from werkzeug.exceptions import HTTPException

    from lymph.web.interfaces import Request, environ_for

    line = "%s %s" % (request.method, request.path)
    wsgi_request = Request(environ_for(request))
    try:
        handler, kwargs = iface.match(wsgi_request)
    except HTTPException as e:
        trace.run_with(request.trace_id, web_logger.info, "%s (%s)", line, e.code)
        response = e.get_response(wsgi_request.environ)
    except Exception as e:
        trace.run_with(request.trace_id, web_logger.info, "%s", line)
        response = trace.run_with(request.trace_id, iface.finish, wsgi_request, None, e)
    else:
        func = iface.handle_async if inspect.iscoroutinefunction(handler) else iface.handle
        if current is None:
            current = CurrentRequest(request.trace_id, traceparent=request.traceparent)
        response = await run(container.loop, container.pool, func, (wsgi_request, handler, kwargs),
                             current, web_logger, line)
    return pb.HttpResponse(
        id=request.id,
        status=response.status_code,
        headers=[pb.Header(name=k, value=v) for k, v in response.headers.items()],
        body=response.get_data(),
    )
