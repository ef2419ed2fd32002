"""Python services the integration tests run with `python -m lymph instance`."""

import time

import lymph


class NotFound(Exception):
    """A typed error: callers see its type and message."""


class Probe(lymph.Interface):

    @lymph.rpc(raises=(NotFound,))
    def find(self, key):
        raise NotFound('no such key: %s' % key)

    @lymph.rpc()
    def sleep(self, seconds):
        time.sleep(seconds)
        return seconds

    @lymph.rpc()
    def echo(self, text):
        return text

    @lymph.rpc()
    def greet_through(self, name):
        """Calls the (Rust) Greeting service and returns its answer."""
        return self.proxy('Greeting').greet(name=name)
