"""What an interface declares, in the proto's form for `Hello`: its RPC
methods (parameter names, docstring, `raises`, `concurrency`), its event
subscriptions (each with its handler's `concurrency`) and,
for a web service, its werkzeug routes. Pure: reads classes, never the stream."""

import inspect
import re

from lymph._wire import pb

# A werkzeug rule variable: <name>, <conv:name>, <conv(args):name>.
_VARIABLE = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?P<args>\(.*?\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
# Converters lymphd's gateway matches itself; others reach it as a plain
# segment and werkzeug (in the app) does the real conversion.
_GATEWAY_CONVERTERS = {None, "string", "default", "int", "path"}


def method_params(func):
    """Parameter names after `self`, in order (lymph's `args.args`)."""
    params = list(inspect.signature(func).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def method_help(func):
    return inspect.cleandoc(func.__doc__ or "")


def gateway_path(rule_path):
    """A werkzeug rule's path as the gateway understands it."""
    def convert(match):
        conv, args, name = match.group("conv", "args", "name")
        if conv == "default":
            conv = None
        if conv in _GATEWAY_CONVERTERS and not args:
            return match.group(0) if conv else "<%s>" % name
        if conv in ("path", "any"):
            return "<path:%s>" % name if conv == "path" else "<%s>" % name
        return "<%s>" % name
    return _VARIABLE.sub(convert, rule_path)


def routes(url_map):
    """One HttpRoute per rule and method; a rule without methods answers any."""
    out = []
    for rule in url_map.iter_rules():
        endpoint = rule.endpoint if isinstance(rule.endpoint, str) else getattr(rule.endpoint, "__name__", str(rule.endpoint))
        path = gateway_path(rule.rule)
        methods = sorted(rule.methods) if rule.methods else [""]
        for method in methods:
            out.append(pb.HttpRoute(method=method.upper(), path=path, endpoint=endpoint))
    return out


def interface_spec(interface):
    """The `InterfaceSpec` of a configured interface instance."""
    cls = type(interface)
    spec = pb.InterfaceSpec(name=interface.name, version=str(interface.version or ""))
    for name, declaration in sorted(cls.methods.items()):
        func = getattr(cls, name)
        spec.methods.append(pb.MethodSpec(
            name=name,
            params=method_params(func),
            help=method_help(func),
            raises=declaration.raises_names,
            concurrency=declaration.concurrency,
        ))
    for name, declaration in sorted(cls.event_handlers.items()):
        mode = pb.DELIVERY_MODE_BROADCAST if declaration.broadcast else pb.DELIVERY_MODE_ONCE_PER_SERVICE
        for event_type in declaration.event_types:
            spec.subscriptions.append(pb.SubscriptionSpec(
                event_type=event_type, mode=mode, retry=declaration.retry,
                handler=declaration.queue_name, concurrency=declaration.concurrency,
            ))
    url_map = getattr(interface, "url_map", None)
    if url_map is not None:
        spec.routes.extend(routes(url_map))
    return spec
