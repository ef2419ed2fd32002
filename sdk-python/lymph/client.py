"""`lymph.Client`: a process that only calls and emits (a script, a test, a
tool) attaches with no interfaces and gets lymph's client API."""

from lymph.container import Container


class Client:
    """`Client(socket=None, *, wait=0)` attaches to lymphd before it returns.

    With no daemon on the socket it raises `lymph.exceptions.DaemonUnavailable`
    at once (naming the socket it tried and how to start lymphd); `wait=SECONDS`
    keeps trying that long first (for a daemon that is starting). A socket that
    fails the trust check raises `Untrusted` the same way. Once attached it
    reconnects by itself when the daemon restarts; `close()` (or `with`)
    detaches. `socket` defaults to the socket rule's ($LYMPH_SOCKET, ...)."""

    def __init__(self, socket=None, *, wait=0, app_name="lymph-client"):
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
            raise ValueError("wait must be a number of seconds (0 or more), not %r" % (wait,))
        self.container = Container(socket=socket, app_name=app_name, send_logs=False)
        self.container.caller_waits = True  # from the first attempt: this raises, not logs
        self.container.start()
        try:
            self.container.wait_ready(wait)
        except BaseException:
            self.container.stop(grace=0)
            raise

    @property
    def socket(self):
        """The socket path this client attached to."""
        return self.container.socket

    def proxy(self, service, timeout=None, version=None):
        return self.container.proxy(service, timeout=timeout, version=version)

    def request(self, service, method, body=None, timeout=None, version=None):
        """Calls `service.method` with the dict `body` as arguments; returns the reply."""
        return self.container.call(service, method, body or {}, timeout=timeout, version=version)

    def emit(self, event_type, body, delay=0):
        return self.container.emit(event_type, body, delay=delay)

    def close(self):
        self.container.stop(grace=1.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
