"""What an interface class declares, as the proto's InterfaceSpec."""

import pytest
from werkzeug.routing import Map, Rule

import lymph
from lymph._wire import pb
from lymph.spec import gateway_path, interface_spec
from lymph.web.interfaces import WebServiceInterface


class NameError_(Exception):
    pass


class Greeting(lymph.Interface):

    @lymph.rpc()
    def greet(self, name):
        """
        Returns a greeting for `name`.
        """
        return "Hi, %s!" % name

    @lymph.rpc(raises=(NameError_, KeyError))
    async def lookup(self, key, *, default=None, **rest):
        return default

    def helper(self):
        return "not an rpc method"

    @lymph.event("greeted", "user.*", retry=3)
    def on_greeted(self, event):
        pass

    @lymph.event("reset", broadcast=True, queue_name="resets")
    def on_reset(self, event):
        pass


class Loud(Greeting):
    def greet(self, name):  # overridden without @rpc: no longer a method
        return name.upper()

    @lymph.rpc()
    def shout(self):
        pass


def test_methods_params_help_and_raises():
    spec = interface_spec(Greeting(name="Greeting", version="1.2.0"))
    assert (spec.name, spec.version) == ("Greeting", "1.2.0")
    methods = {m.name: m for m in spec.methods}
    assert set(methods) == {"greet", "lookup"}
    assert list(methods["greet"].params) == ["name"]
    assert methods["greet"].help == "Returns a greeting for `name`."
    assert list(methods["lookup"].params) == ["key", "default"]
    assert list(methods["lookup"].raises) == ["NameError_", "KeyError"]


def test_subscriptions_per_event_type_with_the_handler_name():
    spec = interface_spec(Greeting())
    subs = sorted((s.event_type, s.mode, s.retry, s.handler) for s in spec.subscriptions)
    assert subs == [
        ("greeted", pb.DELIVERY_MODE_ONCE_PER_SERVICE, 3, "on_greeted"),
        ("reset", pb.DELIVERY_MODE_BROADCAST, 0, "resets"),
        ("user.*", pb.DELIVERY_MODE_ONCE_PER_SERVICE, 3, "on_greeted"),
    ]


def test_subclasses_inherit_and_override():
    assert set(Loud.methods) == {"lookup", "shout"}
    assert set(Loud.event_handlers) == {"on_greeted", "on_reset"}
    assert set(Greeting.methods) == {"greet", "lookup"}
    assert Greeting().greet("Joe") == "Hi, Joe!"  # still a plain method


def test_decorator_misuse_is_refused():
    with pytest.raises(TypeError):
        lymph.rpc(raises=("ValueError",))
    with pytest.raises(TypeError):
        lymph.event()
    with pytest.raises(TypeError, match="stacked"):
        lymph.event("a")(lymph.event("b")(lambda self, e: None))
    with pytest.raises(ValueError):
        lymph.event("a", retry=-1)


def test_rpc_without_parentheses_works_too():
    class Bare(lymph.Interface):
        @lymph.rpc
        def ping(self):
            return "pong"
    assert set(Bare.methods) == {"ping"}


class Web(WebServiceInterface):
    url_map = Map([
        Rule("/greet", endpoint="greet"),
        Rule("/users/<int:user_id>", endpoint="user", methods=["GET", "POST"]),
        Rule("/files/<path:rest>", endpoint="files"),
        Rule("/f/<float:x>/<any(a, b):which>", endpoint="odd"),
    ])


def test_routes_from_the_werkzeug_map():
    routes = sorted((r.method, r.path, r.endpoint) for r in interface_spec(Web()).routes)
    assert routes == [
        ("", "/f/<x>/<which>", "odd"),
        ("", "/files/<path:rest>", "files"),
        ("", "/greet", "greet"),
        ("GET", "/users/<int:user_id>", "user"),
        ("HEAD", "/users/<int:user_id>", "user"),
        ("POST", "/users/<int:user_id>", "user"),
    ]


def test_gateway_paths():
    assert gateway_path("/a/<b>/<string:c>/<int:d>") == "/a/<b>/<string:c>/<int:d>"
    assert gateway_path("/n/<int(signed=True):n>") == "/n/<n>"
    assert gateway_path("/u/<uuid:id>") == "/u/<id>"


class Limited(lymph.Interface):

    @lymph.rpc(concurrency=2)
    def slow(self):
        pass

    @lymph.rpc(raises=KeyError, concurrency=1)
    async def one_at_a_time(self):
        pass

    @lymph.event("a", "b", concurrency=3)
    def on_ab(self, event):
        pass


def test_per_handler_limits_go_in_the_hello():
    from lymph.container import Container

    container = Container(socket="/nonexistent/lymphd.sock", send_logs=False)
    container.install(Limited)
    container.install(Greeting)
    hello = container.hello()
    methods = {(i.name, m.name): m for i in hello.interfaces for m in i.methods}
    assert methods[("Limited", "slow")].concurrency == 2
    assert methods[("Limited", "one_at_a_time")].concurrency == 1
    assert list(methods[("Limited", "one_at_a_time")].raises) == ["KeyError"]
    # Undeclared: 0, no limit of its own.
    assert methods[("Greeting", "greet")].concurrency == 0
    subs = {(i.name, s.event_type): s.concurrency for i in hello.interfaces for s in i.subscriptions}
    assert subs[("Limited", "a")] == subs[("Limited", "b")] == 3
    assert subs[("Greeting", "greeted")] == 0


@pytest.mark.parametrize("bad, error", [
    (0, ValueError), (-1, ValueError), (2**32, ValueError),
    ("2", TypeError), (2.0, TypeError), (True, TypeError),
])
def test_invalid_limits_are_refused_when_decorating(bad, error):
    with pytest.raises(error, match=r"@lymph.rpc\(concurrency=...\)"):
        lymph.rpc(concurrency=bad)
    with pytest.raises(error, match=r"@lymph.event\(concurrency=...\)"):
        lymph.event("x", concurrency=bad)
