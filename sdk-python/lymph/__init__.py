"""lymph's Python API for services attached to a local lymphd.

    import lymph

    class Greeting(lymph.Interface):
        @lymph.rpc()
        def greet(self, name):
            self.emit('greeted', {'name': name})
            return u'Hi, %s!' % name

Run it with `python -m lymph instance --config conf/greeting.yml`.
"""

from lymph import trace
from lymph.decorators import event, rpc
from lymph.core.events import Event
from lymph.exceptions import (DaemonUnavailable, LookupFailure, Nack, NotConnected, RemoteError,
                              RpcError, Timeout)
from lymph.interface import Interface
from lymph.request import NoCurrentRequest, current_request

__version__ = "0.1.0"

__all__ = [
    "Interface", "rpc", "event", "Event", "Client", "trace", "current_request", "NoCurrentRequest",
    "RpcError", "RemoteError", "Timeout", "Nack", "LookupFailure", "NotConnected", "DaemonUnavailable",
]


def __getattr__(name):
    # Lazy: importing `lymph` must not import grpc.
    if name == "Client":
        from lymph.client import Client
        return Client
    raise AttributeError("module 'lymph' has no attribute %r" % name)
