"""`lymph.Interface`, the base class of a service: it collects the class's
`@rpc` methods and `@event` handlers, holds the interface's name, version and
config, and gives handlers `emit` and `proxy`. It does not know the stream:
those go through the container that runs it."""

import inspect

from lymph.config import ConfigView
from lymph.exceptions import NotConnected


class Interface:
    #: name -> the method's RpcDeclaration, collected per class.
    methods = {}
    #: name -> the handler's EventDeclaration, collected per class.
    event_handlers = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        methods, handlers = {}, {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if not inspect.isfunction(value):
                    continue
                for table, mark in ((methods, "_lymph_rpc"), (handlers, "_lymph_event")):
                    if hasattr(value, mark):
                        table[name] = getattr(value, mark)
                    else:
                        table.pop(name, None)
        cls.methods = methods
        cls.event_handlers = handlers

    def __init__(self, container=None, name=None, version=None, builtin=False):
        self.container = container
        self.name = name or type(self).__name__
        self.base_name = self.name
        self.version = version
        self.config = ConfigView()

    def __str__(self):
        return "%s@%s" % (self.name, self.version)

    def apply_config(self, config):
        """Receives the interface's config section (a `ConfigView`). Override
        it (calling super) to read your settings; it runs before `on_start`."""
        self.config = config

    def on_start(self):
        """Runs once, attached, before the interface is registered."""

    def on_stop(self, **kwargs):
        """Runs once when the service stops, after in-flight handlers finished."""

    def _runtime(self):
        if self.container is None:
            raise NotConnected("interface %s is not running in a lymph container" % self.name)
        return self.container

    def emit(self, event_type, payload, delay=0):
        """Emits an event carrying the current trace id; `delay` in seconds.
        Blocks until lymphd accepted it; in a coroutine use `emit_async`."""
        self._runtime().emit(event_type, payload, delay=delay)

    async def emit_async(self, event_type, payload, delay=0):
        """`emit` for coroutine handlers."""
        await self._runtime().emit_async(event_type, payload, delay=delay)

    def proxy(self, address, timeout=None, version=None, **kwargs):
        """Calls to service `address`: `self.proxy('Greeting').greet(name=...)`.
        `timeout` in seconds (default: the daemon's, 3 s); `version` a semver
        requirement on the instances."""
        from lymph.proxy import Proxy

        return Proxy(self._runtime(), address, timeout=timeout, version=version)

    def request(self, address, subject, body, timeout=None, version=None):
        """A raw call: `subject` is "Service.method" (or "method"), `body` a
        dict of arguments; returns the reply's body."""
        method = subject.split(".", 1)[1] if subject.startswith(address + ".") else subject
        return self._runtime().call(address, method, body or {}, timeout=timeout, version=version)
