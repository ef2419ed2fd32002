"""HTTP through lymphd's gateway on a free port: werkzeug routes, requests
and responses, errors as werkzeug answers them, coroutine routes."""

from lymph.testing import WebServiceTestCase, free_port, http_request

from services import Echo, Web


def test_routes_are_served_by_the_gateway(lymph_network):
    port = free_port()
    lymph_network.add(Echo)
    lymph_network.add(Web, http_port=port)
    status, headers, body = http_request(port, "/greet?name=Joe")
    assert (status, body) == (200, b"Hi, Joe!")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert len(headers["X-Trace-Id"]) >= 16
    assert http_request(port, "/greet")[0] == 400      # request.args['name'] missing
    assert http_request(port, "/nowhere")[0] == 404
    assert http_request(port, "/users/21")[:3:2] == (200, b"user 42")
    status, headers, body = http_request(port, "/echo", "POST", b"payload", {"X-Send": "yes"})
    assert (status, body, headers["X-Got"]) == (201, b"payload", "yes")


def test_coroutine_routes_and_the_trace_header(lymph_network):
    port = free_port()
    lymph_network.add(Echo)
    lymph_network.add(Web, http_port=port)
    status, headers, body = http_request(port, "/async?name=Ann", headers={"X-Trace-Id": "abc123"})
    assert status == 200
    assert body == b"Ann " + headers["X-Trace-Id"].encode()


class WebTest(WebServiceTestCase):
    service_class = Web

    def test_lymphs_web_test_case_shape(self):
        self.network.add(Echo)
        status, _, body = self.get("/greet?name=Bo")
        self.assertEqual((status, body), (200, b"Hi, Bo!"))
