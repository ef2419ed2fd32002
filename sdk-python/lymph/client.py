"""`lymph.Client`: a process that only calls and emits (a script, a test, a
tool) attaches with no interfaces and gets lymph's client API."""

from lymph.container import Container


class Client:
    """`Client(socket=None)`: attaches at once (waits up to `timeout`
    seconds), reconnects later by itself; `close()` (or `with`) detaches."""

    def __init__(self, socket=None, timeout=10.0, app_name="lymph-client"):
        self.container = Container(socket=socket, app_name=app_name, send_logs=False)
        self.container.start()
        try:
            self.container.wait_ready(timeout)
        except BaseException:
            self.container.stop(grace=0)
            raise

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
