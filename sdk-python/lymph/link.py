"""The one task that owns the `Attach` stream (the "link"), on the
container's asyncio loop: it (re)connects with jittered backoff, says Hello
and Ready, multiplexes the app's calls and emits by id, starts a handler per
request, delivery and HTTP request and sends its answer on the connection the
work came from (none for work the daemon cancelled), and stops in order:
Goodbye, in-flight work, close."""

import asyncio
import logging
import os
import random

import grpc

from lymph import handlers, trust
from lymph._wire import pb, pb_grpc
from lymph.exceptions import (InternalError, LookupFailure, NotConnected, Rejected, RpcError,
                              ShuttingDown, Unavailable, Untrusted, from_call_error, to_call_error)
from lymph.request import CurrentRequest

logger = logging.getLogger("lymph.link")

#: Messages queued towards the daemon; a full outbox makes senders wait.
OUTBOX = 1024
WELCOME_TIMEOUT = 10.0
#: How long a stopping app waits for the daemon to close the stream.
CLOSE_WAIT = 2.0
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # The default authority of a unix: target is the socket's path, which
    # lymphd's HTTP/2 server refuses as a malformed :authority.
    ("grpc.default_authority", "localhost"),
]


class Backoff:
    """100 ms doubling to 5 s, each delay ±20% jitter, so that the apps of a
    restarted daemon do not all come back at once."""

    FIRST, MAX = 0.1, 5.0

    def __init__(self, rand=random.random):
        self.next = self.FIRST
        self.rand = rand

    def reset(self):
        self.next = self.FIRST

    def next_delay(self):
        base = self.next
        self.next = min(self.next * 2, self.MAX)
        return base * (0.8 + 0.4 * self.rand())


class OpenError(Exception):
    """One attempt to attach failed; `nobody` when nothing listens on the socket."""

    def __init__(self, message, nobody=False):
        super().__init__(message)
        self.nobody = nobody


class Conn:
    def __init__(self, channel, call, outbox, welcome):
        self.channel, self.call, self.outbox, self.welcome = channel, call, outbox, welcome


def _close_outbox(outbox):
    """Ends the request stream's generator (dropping what was not sent)."""
    while True:
        try:
            outbox.put_nowait(None)
            return
        except asyncio.QueueFull:
            outbox.get_nowait()


async def _close(conn_call, outbox, channel):
    _close_outbox(outbox)
    conn_call.cancel()
    await channel.close()


async def _drain_outbox(outbox):
    while True:
        message = await outbox.get()
        if message is None:
            return
        yield message


class Link:
    def __init__(self, container, socket):
        self.container = container
        self.socket = socket
        self.conn = None
        self.generation = 0
        self.next_id = 0
        self.calls = {}
        self.emits = {}
        self.requests = {}
        self.in_flight = set()
        self.draining = False
        self.stopping = False
        self.started = False
        self.start_task = None
        self.fatal = None
        #: Why the last attempt to attach failed (an OpenError or
        #: Untrusted), until an attempt succeeds.
        self.failure = None
        self.wake = asyncio.Event()
        self.records = None

    # -- the main loop --------------------------------------------------------

    async def run(self):
        """Runs until stopped; raises Rejected or a start failure."""
        backoff, failures = Backoff(), 0
        self.records = asyncio.ensure_future(self._pump_records())
        try:
            while not self.stopping and self.fatal is None:
                try:
                    conn = await self._open()
                except (OpenError, Untrusted) as e:
                    failures += 1
                    self.failure = e
                    delay = backoff.next_delay()
                    # Loud once per outage, then quiet; but a refused socket
                    # stays loud: someone may be impersonating lymphd, and an
                    # admin may fix the directory, so it is retried.
                    hint = ""
                    if isinstance(e, Untrusted):
                        log = logger.error
                    elif self.container.caller_waits:
                        log = logger.info  # the waiting caller raises it
                    else:
                        log = logger.warning if failures == 1 else logger.info
                        if failures == 1 and e.nobody:
                            hint = " (start it with `lymphd --socket %s`)" % self.socket
                    log("%s; retrying in %s%s", e, _show(delay), hint)
                    await self._sleep(delay)
                    continue
                backoff.reset()
                failures = 0
                self.failure = None
                await self._serve(conn)
            if self.fatal is not None:
                raise self.fatal
        finally:
            self.records.cancel()
            self._fail_pending("the app is stopping")

    async def _sleep(self, delay):
        self.wake.clear()
        try:
            await asyncio.wait_for(self.wake.wait(), delay)
        except asyncio.TimeoutError:
            pass

    async def _open(self):
        # Before the channel's first byte: whose directory, socket and server
        # these are (Untrusted propagates to run()). Off the loop: it stats
        # and makes a probe connection.
        try:
            await asyncio.get_running_loop().run_in_executor(None, trust.check, self.socket)
        except OSError:
            raise OpenError("no lymphd is listening on %s" % self.socket, nobody=True) from None
        channel = grpc.aio.insecure_channel("unix:" + os.path.abspath(self.socket), options=CHANNEL_OPTIONS)
        outbox = asyncio.Queue(OUTBOX)
        outbox.put_nowait(pb.AppMessage(hello=self.container.hello()))
        call = pb_grpc.LymphStub(channel).Attach(_drain_outbox(outbox))
        try:
            first = await asyncio.wait_for(call.read(), WELCOME_TIMEOUT)
        except asyncio.TimeoutError:
            await _close(call, outbox, channel)
            raise OpenError("cannot attach to lymphd at %s: no welcome within %ss" % (self.socket, WELCOME_TIMEOUT))
        except grpc.aio.AioRpcError as e:
            await _close(call, outbox, channel)
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                raise OpenError("no lymphd is listening on %s" % self.socket, nobody=True) from None
            raise OpenError("cannot attach to lymphd at %s: %s" % (self.socket, e.details())) from None
        kind = None if first is grpc.aio.EOF else first.WhichOneof("kind")
        if kind == "welcome":
            return Conn(channel, call, outbox, first.welcome)
        await _close(call, outbox, channel)
        if kind == "rejected":
            raise_rejected(self.socket, first.rejected.error)
        raise OpenError("cannot attach to lymphd at %s: the daemon did not answer Hello with Welcome" % self.socket)

    async def _serve(self, conn):
        self.conn = conn
        self.generation += 1
        self.draining = False
        self.container.welcome = conn.welcome
        logger.info("attached to lymphd at %s (identity %s, endpoint %s)",
                    self.socket, conn.welcome.identity, conn.welcome.endpoint)
        if self.started:
            await self.send(pb.AppMessage(ready=pb.Ready()))
        elif self.start_task is None:
            self.start_task = asyncio.ensure_future(self._start())
        self.wake.set()
        reason = "the stream ended"
        try:
            while True:
                message = await conn.call.read()
                if message is grpc.aio.EOF:
                    break
                await self._on_message(message)
                if self.fatal is not None:
                    break
        except grpc.aio.AioRpcError as e:
            reason = e.details() or str(e.code())
        except asyncio.CancelledError:
            reason = "closed"
            if not self.stopping and self.fatal is None:
                raise
        finally:
            self.conn = None
            await _close(conn.call, conn.outbox, conn.channel)
        self._lost(reason)

    def _lost(self, reason):
        self.requests.clear()
        self._fail_pending("lost the connection to lymphd")
        if self.stopping or self.fatal is not None:
            logger.debug("lymphd closed the stream while stopping: %s", reason)
        elif self.draining:
            logger.info("lymphd at %s stopped (%s), reconnecting", self.socket, reason)
        else:
            logger.warning("lost lymphd at %s (%s), reconnecting", self.socket, reason)

    def _fail_pending(self, reason):
        for table in (self.calls, self.emits):
            for future in table.values():
                if not future.done():
                    future.set_exception(Unavailable(reason))
            table.clear()

    async def send(self, message):
        """Sends on the current stream, if any (waits while the outbox is full)."""
        if self.conn is not None:
            await self.conn.outbox.put(message)

    async def _pump_records(self):
        """Sends the process's log records while attached."""
        sink = self.container.log_sink
        if sink is None:
            return
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        # One sink per process; the last link started pumps it (one in a
        # runner; in tests the others' records go out through it).
        def notify():
            loop.call_soon_threadsafe(ready.set)
        sink.notify = notify
        ready.set()  # records logged before the link started
        try:
            while True:
                await ready.wait()
                ready.clear()
                while self.conn is None:
                    await asyncio.sleep(0.1)
                for level, name, message, trace_id, created in sink.take():
                    await self.send(pb.AppMessage(log=pb.LogRecord(
                        level=level, logger=name, message=message, trace_id=trace_id, time=created)))
        finally:
            if sink.notify is notify:
                sink.notify = None

    # -- start and stop ---------------------------------------------------------

    async def _start(self):
        try:
            await self.container.run_on_start()
        except Exception as e:
            self.fatal = e
            if self.conn is not None:
                self.conn.call.cancel()
            return
        self.started = True
        await self.send(pb.AppMessage(ready=pb.Ready()))
        self.container.ready.set()
        logger.info("ready")

    async def stop(self, grace):
        """Goodbye, then in-flight work (up to `grace` seconds), then close."""
        if self.stopping:
            return
        self.stopping = True
        self.wake.set()
        if self.conn is None:
            logger.info("stopping (no connection to lymphd)")
        else:
            logger.info("stopping: saying goodbye to lymphd (%d in flight)", len(self.in_flight))
        await self.send(pb.AppMessage(goodbye=pb.Goodbye()))
        if self.in_flight:
            _, pending = await asyncio.wait(set(self.in_flight), timeout=grace)
            if pending:
                logger.warning("%s did not finish within %ss; abandoning %s", _count(len(pending), "handler"),
                               grace, "it" if len(pending) == 1 else "them")
                for task in pending:
                    task.cancel()
        conn = self.conn
        if conn is not None:
            # Closing the outbox ends our half; the daemon then ends its own.
            await conn.outbox.put(None)
            deadline = asyncio.get_running_loop().time() + CLOSE_WAIT
            while self.conn is conn and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            if self.conn is conn:
                conn.call.cancel()

    # -- messages from the daemon -------------------------------------------------

    async def _on_message(self, message):
        kind = message.WhichOneof("kind")
        if kind == "request":
            await self._on_request(message.request)
        elif kind == "delivery":
            await self._on_delivery(message.delivery)
        elif kind == "http_request":
            await self._on_http(message.http_request)
        elif kind == "call_result":
            result = message.call_result
            future = self.calls.pop(result.id, None)
            if future is not None and not future.done():
                if result.WhichOneof("outcome") == "error":
                    future.set_exception(from_call_error(result.error))
                else:
                    future.set_result(result.body)
        elif kind == "emit_result":
            result = message.emit_result
            future = self.emits.pop(result.id, None)
            if future is not None and not future.done():
                if result.HasField("error"):
                    future.set_exception(from_call_error(result.error))
                else:
                    future.set_result(result.event_id)
        elif kind == "cancel":
            self._cancel(message.cancel)
        elif kind == "drain":
            logger.info("lymphd is draining: finishing in-flight work")
            self.draining = True
        elif kind == "rejected":
            error = message.rejected.error
            if error.kind == pb.ERROR_KIND_INVALID:
                try:
                    raise_rejected(self.socket, error)
                except Rejected as e:
                    self.fatal = e
            else:
                logger.error("lymphd rejected a message of the app: %s", error.message)

    def _cancel(self, cancel):
        """The daemon gave up on a request (its deadline passed, or its
        caller cancelled): the flag a plain handler polls is set first, then
        the task is cancelled, which cancels a coroutine handler's task; no
        answer is sent for it."""
        entry = self.requests.pop(cancel.id, None)
        if entry is None:
            return  # answered already, or not ours to cancel
        task, current = entry
        logger.debug("request %s cancelled: %s", cancel.id, cancel.reason)
        current.cancel()
        task.cancel()

    def _spawn(self, coro, fallback, request_id=None, current=None):
        """Runs `coro` (which returns the answer) as a task; its answer goes
        out on the connection the work came from. A bug in the SDK's own
        dispatch still answers, with `fallback(error)`, so no caller hangs.
        With a `request_id`, the daemon's Cancel of that id cancels the task
        and marks `current` (its `CurrentRequest`) cancelled."""
        generation = self.generation

        async def work():
            try:
                answer = await coro
            except asyncio.CancelledError:
                raise
            except Exception as e:
                logger.error("dispatch failed", exc_info=True)
                answer = fallback("%s: %s" % (type(e).__name__, e))
            if self.conn is not None and self.generation == generation:
                await self.send(answer)

        task = asyncio.ensure_future(work())
        self.in_flight.add(task)
        task.add_done_callback(self._done)
        if request_id is not None:
            self.requests[request_id] = (task, current)
            task.add_done_callback(lambda _: self._forget(request_id, task))

    def _forget(self, request_id, task):
        entry = self.requests.get(request_id)
        if entry is not None and entry[0] is task:
            del self.requests[request_id]

    def _done(self, task):
        self.in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a handler task failed", exc_info=task.exception())

    async def _on_request(self, request):
        iface = self.container.interfaces.get(request.interface)
        if self.draining or self.stopping:
            error = ShuttingDown("the app is stopping")
        elif iface is None:
            error = LookupFailure("this app does not serve %s" % request.interface)
        else:
            # Its deadline counts from now, when it reached the app.
            current = CurrentRequest.arrived(request.trace_id, request.deadline_ms,
                                             traceparent=request.traceparent)

            async def reply():
                return pb.AppMessage(reply=await handlers.rpc(self.container, iface, request, current))

            def fallback(reason):
                error = to_call_error(InternalError(reason))
                return pb.AppMessage(reply=pb.Reply(id=request.id, error=error))
            self._spawn(reply(), fallback, request.id, current)
            return
        await self.send(pb.AppMessage(reply=pb.Reply(id=request.id, error=to_call_error(error))))

    async def _on_delivery(self, delivery):
        iface = self.container.interface_for(delivery.interface)
        if iface is None or self.stopping:
            fail = pb.Fail(delivery_id=delivery.delivery_id,
                           reason="this app cannot handle event %s now" % delivery.event_type)
            await self.send(pb.AppMessage(fail=fail))
            return
        def fallback(reason):
            return pb.AppMessage(fail=pb.Fail(delivery_id=delivery.delivery_id, reason=reason))
        self._spawn(handlers.deliver(self.container, iface, delivery), fallback)

    async def _on_http(self, request):
        iface = self.container.interface_for(request.interface, web=True)
        if iface is not None and not hasattr(iface, "match"):
            iface = None  # not a WebServiceInterface
        if iface is None or self.draining or self.stopping:
            response = pb.HttpResponse(id=request.id, status=503, body=b"the app cannot serve this now\n",
                                       headers=[pb.Header(name="Content-Type", value="text/plain; charset=utf-8")])
            await self.send(pb.AppMessage(http_response=response))
            return

        current = CurrentRequest(request.trace_id, traceparent=request.traceparent)

        async def respond():
            return pb.AppMessage(http_response=await handlers.http(self.container, iface, request, current))

        def fallback(reason):
            return pb.AppMessage(http_response=pb.HttpResponse(id=request.id, status=500))
        self._spawn(respond(), fallback, request.id, current)

    # -- the app's own calls and emits ----------------------------------------------

    async def call(self, service, method, body, trace_id, timeout_ms, version, traceparent=None):
        """Sends one call; returns the raw MessagePack reply."""
        if self.conn is None:
            raise NotConnected("not connected to lymphd at %s (not running, or restarting)" % self.socket)
        self.next_id += 1
        call_id, conn = self.next_id, self.conn
        future = asyncio.get_running_loop().create_future()
        self.calls[call_id] = future
        try:
            await self.send(pb.AppMessage(call=pb.OutgoingCall(
                id=call_id, service=service, method=method, body=body,
                trace_id=trace_id or "", timeout_ms=timeout_ms, version=version or "",
                traceparent=traceparent or "")))
            return await future
        except asyncio.CancelledError:
            # The caller gave up (a cancelled handler's task, an abandoned
            # blocking call): tell the daemon, which cancels the handler.
            if self.calls.pop(call_id, None) is not None and self.conn is conn and conn is not None:
                self._cancel_call(conn, call_id)
            raise

    def _cancel_call(self, conn, call_id):
        # Not awaited: this runs as the caller is being cancelled. A full
        # outbox drops it; the call's own deadline still ends it.
        try:
            conn.outbox.put_nowait(pb.AppMessage(cancel_call=pb.CancelCall(id=call_id)))
        except asyncio.QueueFull:
            logger.debug("outbox full: call %s not cancelled, its deadline will end it", call_id)

    async def emit(self, event_type, body, trace_id, delay_ms, traceparent=None):
        """Sends one emit; returns the event's id once the daemon accepted it."""
        if self.conn is None:
            raise NotConnected("not connected to lymphd at %s (not running, or restarting)" % self.socket)
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.emits[self.next_id] = future
        await self.send(pb.AppMessage(emit=pb.OutgoingEmit(
            id=self.next_id, event_type=event_type, body=body, trace_id=trace_id or "", delay_ms=delay_ms,
            traceparent=traceparent or "")))
        return await future


def raise_rejected(socket, error):
    exc = from_call_error(error)
    raise Rejected("lymphd at %s rejected the app: %s" % (socket, exc.message or exc.kind))


def _count(n, noun):
    """`1 handler`, `2 handlers`."""
    return "%d %s%s" % (n, noun, "" if n == 1 else "s")


def _show(delay):
    return "%dms" % (delay * 1000) if delay < 1 else "%.1fs" % delay


__all__ = ["Link", "Backoff", "RpcError"]
