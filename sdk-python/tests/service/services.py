"""Services the service tests run: each exercises one part of the SDK."""

import asyncio
import threading
import time

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response

import lymph
from lymph import trace
from lymph.web.interfaces import WebServiceInterface


class NotFoundError(Exception):
    pass


class Echo(lymph.Interface):
    """Calls, typed errors, emits and the trace id."""

    def apply_config(self, config):
        super().apply_config(config)
        self.prefix = config.get("prefix", "")

    def on_start(self):
        self.started = True

    @lymph.rpc()
    def echo(self, text):
        return self.prefix + text

    @lymph.rpc(raises=(NotFoundError,))
    def find(self, key):
        if key == "crash":
            raise RuntimeError("it broke")
        raise NotFoundError("no %s here" % key)

    @lymph.rpc()
    def trace_id(self):
        return trace.get_id()

    @lymph.rpc()
    def emit_it(self, event_type, body, delay=0):
        self.emit(event_type, body, delay=delay)
        return trace.get_id()

    @lymph.rpc()
    def call_through(self, service, text):
        """A nested call: blocking, then deferred."""
        first = self.proxy(service).echo(text=text)
        deferred = self.proxy(service).echo.defer(text=text + "!")
        return [first, deferred.result(timeout=5), self.proxy(service).trace_id()]

    @lymph.rpc()
    async def async_call_through(self, service, text):
        first = await self.proxy(service).echo.call_async(text=text)
        second = await self.proxy(service).echo.defer(text=text + "?")
        await self.emit_async("async.emitted", {"text": text})
        return [first, second, await self.proxy(service).trace_id.call_async()]

    @lymph.rpc()
    async def blocking_in_coroutine(self):
        return self.proxy("Echo").echo(text="x")

    @lymph.rpc()
    def sleep(self, seconds):
        time.sleep(seconds)
        return seconds

    @lymph.rpc()
    async def async_sleep(self, seconds):
        await asyncio.sleep(seconds)
        return seconds


class Collector(lymph.Interface):
    """Events: ack, fail and retry, broadcast."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events = []
        self.lock = threading.Lock()

    @lymph.event("noted")
    def on_noted(self, event):
        with self.lock:
            self.events.append(("noted", event.body, event.trace_id, event.attempt))

    @lymph.event("flaky", retry=2)
    def on_flaky(self, event):
        with self.lock:
            self.events.append(("flaky", event.body, event.trace_id, event.attempt))
        if event.attempt < event["succeed_on"]:
            raise ValueError("not yet (attempt %d)" % event.attempt)

    @lymph.event("async.emitted")
    async def on_async(self, event):
        with self.lock:
            self.events.append(("async.emitted", event.body, event.trace_id, event.attempt))

    @lymph.event("everyone", broadcast=True)
    def on_everyone(self, event):
        with self.lock:
            self.events.append(("everyone", event.body, event.trace_id, event.attempt))

    def seen(self, kind):
        with self.lock:
            return [e for e in self.events if e[0] == kind]


class Web(WebServiceInterface):
    url_map = Map([
        Rule("/greet", endpoint="greet"),
        Rule("/users/<int:user_id>", endpoint="user", methods=["GET"]),
        Rule("/echo", endpoint="echo_body", methods=["POST"]),
        Rule("/async", endpoint="async_greet"),
    ])

    def greet(self, request):
        name = request.args["name"]
        return Response(self.proxy("Echo").echo(text="Hi, %s!" % name))

    def user(self, request, user_id):
        return Response("user %d" % (user_id * 2))

    def echo_body(self, request):
        return Response(request.get_data(), status=201, headers={"X-Got": request.headers.get("X-Send", "")})

    async def async_greet(self, request):
        text = await self.proxy("Echo").echo.call_async(text=request.args.get("name", "nobody"))
        return Response(text + " " + trace.get_id())


class Patient(lymph.Interface):
    """Per-handler limits, deadlines and cancellation: each handler notes
    how it ended, since its caller has stopped waiting by then."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.notes = []
        self.lock = threading.Lock()

    def note(self, *entry):
        with self.lock:
            self.notes.append(entry)

    def noted(self, kind):
        with self.lock:
            return [e[1:] for e in self.notes if e[0] == kind]

    @lymph.rpc(concurrency=2)
    def limited(self):
        return "ok"

    @lymph.event("patient.limited", concurrency=3)
    def on_limited(self, event):
        pass

    @lymph.rpc()
    def call_slow(self, timeout, seconds):
        """Calls Echo.sleep with a timeout of its own longer than this
        handler's time left."""
        started = time.monotonic()
        left = lymph.current_request().time_left()
        try:
            self.proxy("Echo", timeout=timeout).sleep(seconds=seconds)
            outcome = "replied"
        except lymph.Timeout as e:
            outcome = "timeout: %s" % e
        self.note("call_slow", outcome, time.monotonic() - started, left)

    @lymph.rpc()
    async def async_wait(self, seconds):
        self.note("async_wait_started")
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.note("async_wait", "cancelled", lymph.current_request().cancelled)
            raise
        self.note("async_wait", "finished")

    @lymph.rpc()
    async def relay(self, service, seconds):
        """Waits on `service`.async_wait: cancelling this cancels that."""
        return await self.proxy(service, timeout=30).async_wait.call_async(seconds=seconds)

    @lymph.rpc()
    def poll_cancelled(self, seconds):
        current = lymph.current_request()
        end = time.monotonic() + seconds
        while time.monotonic() < end and not current.cancelled:
            time.sleep(0.01)
        self.note("poll_cancelled", current.cancelled)
        return "done"
