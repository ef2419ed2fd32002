"""lymph's import paths, and the trace id contextvar."""

import threading

import lymph
from lymph import trace


def test_lymphs_names_are_where_lymph_had_them():
    from lymph.core import trace as core_trace
    from lymph.core.decorators import event, rpc
    from lymph.core.events import Event
    from lymph.core.interfaces import Interface
    from lymph.exceptions import Nack, RemoteError, Timeout  # noqa: F401
    from lymph.web.interfaces import WebServiceInterface

    assert (lymph.Interface, lymph.rpc, lymph.event, lymph.Event) == (Interface, rpc, event, Event)
    assert issubclass(WebServiceInterface, lymph.Interface)
    assert core_trace.get_id is lymph.trace.get_id
    assert callable(lymph.Client)


def test_events_read_like_lymphs():
    event = lymph.Event("greeted", {"name": "Joe"}, event_id="e1", trace_id="t1", attempt=2)
    assert (event["name"], event.type, event.evt_type, list(event)) == ("Joe", "greeted", "greeted", ["name"])
    assert event.headers["trace_id"] == "t1"
    assert str(event) == "{type=greeted id=e1}"


def test_trace_ids_are_per_context():
    assert trace.get_id() is None
    assert trace.run_with("abc", trace.get_id) == "abc"
    assert trace.get_id() is None
    seen = []
    thread = threading.Thread(target=lambda: seen.append(trace.run_with("t2", trace.get_id)))
    thread.start()
    thread.join(5)
    assert seen == ["t2"]
    made = trace.run_with(None, trace.set_id)
    assert len(made) == 32


def test_emit_outside_a_container_says_so():
    class Lonely(lymph.Interface):
        pass
    try:
        Lonely().emit("x", {})
    except lymph.NotConnected as e:
        assert "not running in a lymph container" in str(e)
    else:
        raise AssertionError("emit without a container must fail")
