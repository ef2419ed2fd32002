"""Logging set-up: records go to stderr with their trace id, and every record
at or above the configured level is also queued for lymphd as a `LogRecord`
(which publishes it for `lymphctl tail`). The queue is bounded and never
blocks a handler: when it is full (no daemon for a while) records are dropped."""

import logging
import sys
import threading

from lymph import trace

#: Records kept while no daemon is attached; past it, new ones are dropped.
RECORD_QUEUE = 1024

#: The stderr line; `TraceFormatter` appends ` - trace_id="..."` when the
#: record has a trace id (records logged outside a handler have none).
STDERR_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"


def proto_level(levelno):
    """The proto's LogLevel number for a `logging` level."""
    if levelno >= logging.CRITICAL:
        return 6
    if levelno >= logging.ERROR:
        return 5
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 3
    if levelno >= logging.DEBUG:
        return 2
    return 1


class TraceFilter(logging.Filter):
    """Puts the current trace id on each record (lymph's `TraceFormatter`)."""

    def filter(self, record):
        if not hasattr(record, "trace_id"):
            record.trace_id = trace.get_id() or ""
        return True


class TraceFormatter(logging.Formatter):
    """`fmt`, then ` - trace_id="..."` when the record has a trace id (after
    the message, before any traceback)."""

    def formatMessage(self, record):
        text = super().formatMessage(record)
        trace_id = getattr(record, "trace_id", None)
        return '%s - trace_id="%s"' % (text, trace_id) if trace_id else text


class DaemonHandler(logging.Handler):
    """Queues records for the stream; `take()` hands them to the link, and
    `notify` (set by the link) wakes it, once per empty-to-non-empty change."""

    def __init__(self, level=logging.INFO, capacity=RECORD_QUEUE):
        super().__init__(level)
        self.capacity = capacity
        self.dropped = 0
        self.notify = None
        self._records = []
        self._lock = threading.Lock()
        self.addFilter(TraceFilter())

    def emit(self, record):
        try:
            if record.name.startswith("grpc") or record.name == "asyncio":
                return
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            entry = (proto_level(record.levelno), record.name, message, record.trace_id, record.created)
            with self._lock:
                if len(self._records) >= self.capacity:
                    self.dropped += 1
                    return
                self._records.append(entry)
                first = len(self._records) == 1
            if first and self.notify is not None:
                self.notify()
        except Exception:
            self.handleError(record)

    def take(self):
        with self._lock:
            records, self._records = self._records, []
        return records


_handler = None
_handler_lock = threading.Lock()


def daemon_handler():
    """The process's one DaemonHandler (created on first use, unattached)."""
    global _handler
    with _handler_lock:
        if _handler is None:
            _handler = DaemonHandler()
        return _handler


def setup(level="INFO", stderr=True):
    """Adds the daemon handler and (unless the program configured the root
    logger already) a stderr handler to the root logger, at `level`."""
    level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(level, int):
        raise ValueError("unknown log level %r" % level)
    root = logging.getLogger()
    handler = daemon_handler()
    handler.setLevel(level)
    if handler not in root.handlers:
        root.addHandler(handler)
    if stderr and not any(getattr(h, "_lymph_stderr", False) for h in root.handlers):
        if not [h for h in root.handlers if h is not handler]:
            console = logging.StreamHandler(sys.stderr)
            console.setFormatter(TraceFormatter(STDERR_FORMAT))
            console.addFilter(TraceFilter())
            console._lymph_stderr = True
            root.addHandler(console)
    root.setLevel(level)
    return handler
