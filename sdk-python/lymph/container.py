"""`Container`, what runs interfaces in a process (lymph's ServiceContainer):
it owns the asyncio loop (on its own thread) that runs the link, the bounded
thread pool that runs plain handlers, and the blocking and async call/emit
API that interfaces, proxies and clients use. The runner, the testing helper
and `lymph.Client` are all containers."""

import asyncio
import concurrent.futures
import inspect
import logging
import os
import threading
import time

from lymph import codec, logs, request, trace
from lymph.config import ConfigView
from lymph.exceptions import DaemonUnavailable, Timeout, Untrusted
from lymph.link import Link
from lymph.socket_rule import resolve_socket

logger = logging.getLogger("lymph.container")

SDK = "lymph-sdk-python/0.1.0"
DEFAULT_CONCURRENCY = 64
STOP_GRACE = 10.0
#: Extra time a blocking caller waits past the call's own timeout, so the
#: daemon's DEADLINE_EXCEEDED (with its reason) normally arrives first.
DEADLINE_SLACK = 5.0

_local = threading.local()


class StartFailed(Exception):
    """An interface's on_start raised; the service cannot run."""


def check_blocking_allowed(what, instead):
    """Blocking on the SDK's loop would stop it: say what to use instead."""
    if getattr(_local, "is_loop_thread", False):
        raise RuntimeError(
            "%s blocks, and this is a coroutine handler on lymph's event loop: use %s" % (what, instead))


class Container:
    def __init__(self, socket=None, config=None, app_name=None, max_concurrency=None,
                 http_port=None, send_logs=True):
        self.config = config
        self.socket, self.socket_source = resolve_socket(socket, config.socket if config else None)
        self.app_name = app_name
        self.max_concurrency = max_concurrency or (config.max_concurrency if config else None) or DEFAULT_CONCURRENCY
        self.http_port = http_port or (config.http_port if config else None)
        self.interfaces = {}
        self.log_sink = logs.daemon_handler() if send_logs else None
        self.welcome = None
        self.ready = threading.Event()
        #: Set while a caller waits in wait_ready, which raises why attaching
        #: failed itself: the link then logs failed attempts at INFO only.
        self.caller_waits = False
        self.loop = None
        self.pool = None
        self.link = None
        self._thread = None
        self._run_future = None
        self._started_hooks = False

    # -- set-up -----------------------------------------------------------------

    def install(self, cls, name=None, version=None, config=None):
        """Creates and configures an interface of class `cls`."""
        interface = cls(self, name=name, version=version)
        if interface.name in self.interfaces:
            raise ValueError("interface %s is installed twice" % interface.name)
        section = config if isinstance(config, ConfigView) else ConfigView(config or {})
        interface.apply_config(section)
        self.interfaces[interface.name] = interface
        return interface

    def interface_for(self, name, web=False):
        """The interface a message names, or the only (web) one when it names none."""
        if name:
            return self.interfaces.get(name)
        candidates = [i for i in self.interfaces.values() if not web or hasattr(i, "url_map")]
        return candidates[0] if len(candidates) == 1 else None

    def hello(self):
        from lymph._wire import pb
        from lymph.spec import interface_spec

        port = self.http_port
        for interface in self.interfaces.values():
            port = port or getattr(interface, "http_port", None)
        specs = [interface_spec(i) for i in self.interfaces.values()]
        if not port:
            # lymphd refuses routes without a port: they could not be served.
            for spec in specs:
                if spec.routes:
                    logger.warning("interface %s declares HTTP routes but no http_port is set "
                                   "(http_port: in the config): they are not served", spec.name)
                    del spec.routes[:]
        return pb.Hello(
            app_name=self.app_name or "-".join(self.interfaces) or "lymph-python",
            interfaces=specs,
            max_concurrency=self.max_concurrency,
            http_port=int(port or 0),
            sdk=SDK,
            pid=os.getpid(),
        )

    # -- running ------------------------------------------------------------------

    def start(self):
        """Starts the loop thread and the link; returns at once."""
        if self._thread is not None:
            raise RuntimeError("the container is started already")
        self.hello()  # fail here, in the caller, on a bad spec
        self.loop = asyncio.new_event_loop()
        self.pool = concurrent.futures.ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="lymph-handler")
        started = threading.Event()
        self._thread = threading.Thread(target=self._run_loop, args=(started,), name="lymph-loop", daemon=True)
        self._thread.start()
        started.wait()
        self._run_future = asyncio.run_coroutine_threadsafe(self._run_link(), self.loop)
        return self

    def _run_loop(self, started):
        _local.is_loop_thread = True
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        self.loop.run_forever()

    async def _run_link(self):
        self.link = Link(self, self.socket)
        await self.link.run()

    def wait_ready(self, timeout):
        """Waits until the interfaces are registered (Ready sent), for up to
        `timeout` seconds (0: no longer than the first attempt to attach).
        Raises the link's error if it ended; past `timeout`, why the last
        attempt failed (DaemonUnavailable, or Untrusted for a socket that
        failed the trust check), or TimeoutError when attached but on_start
        is still running (with 0, on_start is waited for)."""
        self.caller_waits = True
        try:
            self._wait_ready(timeout)
        finally:
            self.caller_waits = False

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.02):
            if self._run_future.done():
                self._run_future.result()
                raise RuntimeError("the link ended before the app was ready")
            if time.monotonic() < deadline:
                continue
            link = self.link
            failure = link.failure if link is not None else None
            if isinstance(failure, Untrusted):
                # Why it never attached, rather than only that it did not.
                raise Untrusted(failure.socket, failure.problem, failure.fix)
            if failure is not None:
                raise DaemonUnavailable(self.socket, str(failure), self.socket_source, timeout)
            if not timeout:
                continue  # 0: the first attempt (bounded) and on_start are under way
            if link is not None and link.conn is not None:
                raise TimeoutError("attached to lymphd at %s, but not ready within %ss (on_start still running)"
                                   % (self.socket, timeout))
            raise DaemonUnavailable(self.socket, "not attached to lymphd at %s" % self.socket,
                                    self.socket_source, timeout)

    def wait(self, timeout=None):
        """Waits until the link ends by itself (a fatal error: raised)."""
        try:
            return self._run_future.result(timeout)
        except concurrent.futures.TimeoutError:
            return None

    @property
    def running(self):
        return self._run_future is not None and not self._run_future.done()

    async def run_on_start(self):
        for interface in list(self.interfaces.values()):
            try:
                await self._hook(interface.on_start)
            except Exception as e:
                raise StartFailed("on_start of %s failed: %s: %s" % (interface.name, type(e).__name__, e)) from e
        self._started_hooks = True

    async def _hook(self, func):
        if inspect.iscoroutinefunction(func):
            await func()
        else:
            await self.loop.run_in_executor(self.pool, func)

    def stop(self, grace=STOP_GRACE):
        """Goodbye, in-flight work (up to `grace`), `on_stop`, then the loop ends."""
        if self._thread is None:
            return
        loop = self.loop
        try:
            if self.link is not None and self.running:
                asyncio.run_coroutine_threadsafe(self.link.stop(grace), loop).result(grace + 10)
                try:
                    self._run_future.result(10)
                except Exception:
                    pass
            if self._started_hooks:
                for interface in self.interfaces.values():
                    asyncio.run_coroutine_threadsafe(self._hook(interface.on_stop), loop).result(grace + 10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)
            self.pool.shutdown(wait=False, cancel_futures=True)
            self._thread = None

    # -- calls and emits --------------------------------------------------------------

    # Every call's timeout (seconds; None: the daemon's default) is bounded by
    # the deadline of the request being handled, if any (lymph.request): it
    # is worked out in the caller's own context (its thread), and a call with
    # no time left fails with Timeout without reaching the daemon.

    async def call_async(self, service, method, kwargs, timeout=None, version=None, trace_id=None):
        """Calls `service.method(**kwargs)` and returns the decoded reply."""
        timeout = request.call_timeout(timeout, "%s.%s" % (service, method))
        traceparent = request.traceparent_for(trace_id)
        return await self._call(service, method, kwargs, timeout, version, trace_id, traceparent)

    async def _call(self, service, method, kwargs, timeout, version, trace_id, traceparent):
        body = codec.pack(kwargs, "the arguments of %s.%s" % (service, method))
        trace_id = trace_id if trace_id is not None else trace.get_id()
        timeout_ms = max(1, int(timeout * 1000)) if timeout else 0
        raw = await self._link().call(service, method, body, trace_id, timeout_ms, version, traceparent)
        return codec.unpack(raw, "the reply of %s.%s" % (service, method))

    def call_future(self, service, method, kwargs, timeout=None, version=None):
        """Starts a call from any thread; a concurrent Future of its value
        (failed at once with Timeout when the handler has no time left)."""
        try:
            timeout = request.call_timeout(timeout, "%s.%s" % (service, method))
        except Timeout as e:
            future = concurrent.futures.Future()
            future.set_exception(e)
            return future
        return self._start_call(service, method, kwargs, timeout, version)

    def _start_call(self, service, method, kwargs, timeout, version):
        # The trace is the calling thread's; the coroutine runs on the loop.
        traceparent = request.traceparent_for(None)
        coro = self._call(service, method, kwargs, timeout, version, trace.get_id(), traceparent)
        return asyncio.run_coroutine_threadsafe(coro, self._running_loop())

    def call(self, service, method, kwargs, timeout=None, version=None):
        """Calls and blocks for the reply (not on the loop: use call_async there)."""
        check_blocking_allowed("%s.%s()" % (service, method), "`await proxy.%s.call_async(...)`" % method)
        what = "%s.%s" % (service, method)
        timeout = request.call_timeout(timeout, what)
        future = self._start_call(service, method, kwargs, timeout, version)
        return _result(future, (timeout + DEADLINE_SLACK) if timeout else None, what)

    async def emit_async(self, event_type, body, delay=0, trace_id=None, traceparent=None):
        packed = codec.pack(body, "the body of event %s" % event_type)
        traceparent = traceparent or request.traceparent_for(trace_id)
        trace_id = trace_id if trace_id is not None else trace.get_id()
        return await self._link().emit(event_type, packed, trace_id, max(0, int(delay * 1000)), traceparent)

    def emit(self, event_type, body, delay=0):
        """Emits and blocks until lymphd accepted the event; returns its id."""
        check_blocking_allowed("emit()", "`await self.emit_async(...)`")
        coro = self.emit_async(event_type, body, delay, trace_id=trace.get_id(),
                               traceparent=request.traceparent_for(None))
        return _result(asyncio.run_coroutine_threadsafe(coro, self._running_loop()), None, "emit " + event_type)

    def proxy(self, address, timeout=None, version=None):
        from lymph.proxy import Proxy

        return Proxy(self, address, timeout=timeout, version=version)

    def _running_loop(self):
        from lymph.exceptions import NotConnected

        if self.loop is None or self._thread is None:
            raise NotConnected("the lymph container is not running")
        return self.loop

    def _link(self):
        from lymph.exceptions import NotConnected

        if self.link is None:
            raise NotConnected("not connected to lymphd at %s (not running, or restarting)" % self.socket)
        return self.link


def _result(future, timeout, what):
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise Timeout("no reply from %s within %ss" % (what, timeout)) from None
