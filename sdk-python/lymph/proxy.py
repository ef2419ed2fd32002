"""`Proxy`: calls to one service, lymph's way — `proxy.greet(name='Joe')`
blocks for the reply, `proxy.greet.defer(name='Joe')` returns a `Deferred`
at once, and `await proxy.greet.call_async(name='Joe')` is for coroutine
handlers. Every call carries the current trace id, and inside a handler its
timeout is bounded by the handler's time left (`lymph.request`)."""

import asyncio


class Deferred:
    """A call in flight: `.result(timeout=None)` blocks for its value (or
    raises its error); in a coroutine, `await deferred` instead."""

    def __init__(self, future, subject):
        self._future = future
        self.subject = subject

    def result(self, timeout=None):
        from lymph.container import check_blocking_allowed

        check_blocking_allowed("Deferred.result()", "await deferred")
        return self._future.result(timeout)

    # lymph's AsyncResult name.
    get = result

    def done(self):
        return self._future.done()

    def __await__(self):
        return asyncio.wrap_future(self._future).__await__()


class ProxyMethod:
    def __init__(self, proxy, method):
        self.proxy = proxy
        self.method = method
        self.subject = "%s.%s" % (proxy._address, method)

    def __call__(self, **kwargs):
        p = self.proxy
        return p._container.call(p._address, self.method, kwargs, timeout=p._timeout, version=p._version)

    def defer(self, **kwargs):
        p = self.proxy
        future = p._container.call_future(p._address, self.method, kwargs, timeout=p._timeout, version=p._version)
        return Deferred(future, self.subject)

    async def call_async(self, **kwargs):
        p = self.proxy
        return await p._container.call_async(p._address, self.method, kwargs, timeout=p._timeout, version=p._version)

    def __repr__(self):
        return "<ProxyMethod %s>" % self.subject


class Proxy:
    def __init__(self, container, address, timeout=None, version=None):
        self._container = container
        self._address = address
        self._timeout = timeout
        self._version = str(version) if version else ""
        self._methods = {}

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        method = self._methods.get(name)
        if method is None:
            method = self._methods[name] = ProxyMethod(self, name)
        return method

    def __repr__(self):
        return "<Proxy %s>" % self._address
