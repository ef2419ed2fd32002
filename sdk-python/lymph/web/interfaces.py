"""`WebServiceInterface`: an interface whose werkzeug `url_map` routes are
served by lymphd's HTTP gateway on the service's `http_port`. Each request
arrives over the stream, becomes a werkzeug `Request`, is matched against
`url_map` here (werkzeug's converters and all) and handed to the endpoint's
method, which returns a werkzeug `Response` — lymph's dispatch, minus the
WSGI server, which is the daemon's job now."""

import inspect
import io
import logging
import sys
from urllib.parse import unquote_to_bytes

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request as BaseRequest
from werkzeug.wrappers import Response

from lymph.interface import Interface
from lymph.tracebacks import user_exc_info

logger = logging.getLogger("lymph.web")


class Request(BaseRequest):
    @property
    def full_path(self):
        return super().full_path.rstrip("?")


def environ_for(http):
    """A WSGI environ for a proto `HttpRequest`."""
    host = "localhost"
    environ = {
        "REQUEST_METHOD": http.method or "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(http.path or "/").decode("latin-1"),
        "QUERY_STRING": http.query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(http.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(http.body)),
    }
    for header in http.headers:
        name = header.name.lower()
        if name == "content-type":
            environ["CONTENT_TYPE"] = header.value
        elif name == "content-length":
            continue
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = environ[key] + "," + header.value if key in environ else header.value
        if name == "host":
            host = header.value
    name, _, port = host.partition(":")
    environ["SERVER_NAME"] = name or "localhost"
    environ["SERVER_PORT"] = port or "80"
    return environ


class WebServiceInterface(Interface):
    #: The routes: `Map([Rule('/greet', endpoint='greet')])`; each endpoint
    #: names a method taking `(request, **path_args)`.
    url_map = Map([])
    #: The port lymphd serves this interface on (the config's top-level
    #: `http_port`, or the interface section's `port`).
    http_port = None

    NotFound = NotFound
    MethodNotAllowed = MethodNotAllowed

    def apply_config(self, config):
        super().apply_config(config)
        port = config.get("port")
        if port:
            self.http_port = int(port)

    def is_healthy(self):
        return True

    def match(self, request):
        """The handler and its keyword arguments; raises werkzeug's HTTPException."""
        urls = self.url_map.bind_to_environ(request.environ)
        request.urls = urls
        rule, kwargs = urls.match(method=request.method, return_rule=True)
        return self.get_handler(request, rule), kwargs

    def get_handler(self, request, rule):
        if callable(rule.endpoint):
            return rule.endpoint(self, request)
        return getattr(self, rule.endpoint)

    def finish(self, request, response=None, error=None):
        """lymph's answer for a handler's outcome: its Response, an
        HTTPException's response, else 500 with an empty body."""
        if error is None and not isinstance(response, BaseResponseTypes):
            error = TypeError("%r is not a valid response - expected werkzeug.wrappers.Response instance" % (response,))
        if error is None:
            return response
        if isinstance(error, HTTPException):
            return error.get_response(request.environ)
        if hasattr(error, "to_http_response"):
            return error.to_http_response(request.environ)
        logger.error("uncaught exception in %s %s", request.method, request.path,
                     exc_info=user_exc_info(error))
        return Response("", status=500)

    def handle(self, request, handler, kwargs):
        """Runs a plain handler (on a worker thread)."""
        try:
            response = handler(request, **kwargs)
        except Exception as e:
            return self.finish(request, error=e)
        return self.finish(request, response)

    async def handle_async(self, request, handler, kwargs):
        """Runs a coroutine handler (on the SDK's loop)."""
        try:
            response = await handler(request, **kwargs)
        except Exception as e:
            return self.finish(request, error=e)
        return self.finish(request, response)

    def dispatch_request(self, request):
        """The whole dispatch for a plain handler, as lymph had it."""
        try:
            handler, kwargs = self.match(request)
        except HTTPException as e:
            return e.get_response(request.environ)
        if inspect.iscoroutinefunction(handler):
            raise TypeError("dispatch_request() runs plain handlers only")
        return self.handle(request, handler, kwargs)


BaseResponseTypes = (Response,)
