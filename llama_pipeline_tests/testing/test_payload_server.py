"""The payload server speaks real HTTP: routes, scripts, hangs, cut-off bodies, 404s, clean stops."""

from __future__ import annotations

import datetime as dt
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.testing.payload_server import PayloadServer, Response


@pytest.fixture
def srv():
    with PayloadServer() as server:
        yield server


def test_static_routes_serve_json_bytes_and_text(srv: PayloadServer) -> None:
    srv.set("/pools", {"status": "success", "data": [{"pool": "a"}]})
    srv.set("/raw", b"\x00\x01", content_type="application/octet-stream")
    srv.set("/text", "héllo", status=201, headers={"Cache-Control": "max-age=600"}, content_type="text/plain")
    assert srv.url("/pools") == f"http://127.0.0.1:{srv.port}/pools" == srv.base_url + "/pools"
    r = requests.get(srv.url("/pools"), timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.content == b'{"status":"success","data":[{"pool":"a"}]}'
    assert requests.get(srv.url("/raw"), timeout=5).content == b"\x00\x01"
    r = requests.get(srv.url("/text?x=1"), timeout=5)  # query strings don't affect routing
    assert (r.status_code, r.content.decode(), r.headers["Cache-Control"]) == (201, "héllo", "max-age=600")


def test_unknown_path_is_404(srv: PayloadServer) -> None:
    srv.set("/pools", [])
    assert requests.get(srv.url("/nope"), timeout=5).status_code == 404
    assert requests.get(srv.url("/pools/extra"), timeout=5).status_code == 404


def test_script_is_consumed_in_order_then_falls_back(srv: PayloadServer) -> None:
    srv.set("/protocols", [{"slug": "aave"}])
    srv.script("/protocols", [Response(status=500, body="boom"), Response(status=500),
                              Response(status=429, headers={"Retry-After": "2"}), Response(body=[])])
    with requests.Session() as s:  # keep-alive connection reused across the whole script
        got = [s.get(srv.url("/protocols"), timeout=5) for _ in range(6)]
        for _ in range(20):
            s.get(srv.url("/protocols"), timeout=5)
    assert [r.status_code for r in got] == [500, 500, 429, 200, 200, 200]
    assert got[0].text == "boom" and got[2].headers["Retry-After"] == "2"
    assert got[3].json() == [] and got[4].json() == [{"slug": "aave"}]
    assert srv.count("/protocols") == 26


def test_script_without_static_route_then_404(srv: PayloadServer) -> None:
    srv.script("/pools", [Response(status=500), Response(status=500), Response(body={"data": []})])
    codes = [requests.get(srv.url("/pools"), timeout=5).status_code for _ in range(4)]
    assert codes == [500, 500, 200, 404]


def test_delay_past_client_timeout(srv: PayloadServer) -> None:
    srv.set("/pools", {"data": []})
    srv.script("/pools", [Response(body={"data": []}, delay=2.0)])
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(srv.url("/pools"), timeout=(2, 0.2))
    assert requests.get(srv.url("/pools"), timeout=5).json() == {"data": []}  # server still healthy


def test_truncated_body_is_an_error_for_the_client(srv: PayloadServer) -> None:
    body = synthetic.dumps(synthetic.generate_pools(50, seed=2))
    srv.script("/pools", [Response(body=body, truncate_at=100)])
    srv.set("/pools", body)
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(srv.url("/pools"), timeout=5).content  # noqa: B018 - reading the body is the point
    # A raw socket sees the full Content-Length announced but only 100 body bytes before EOF.
    srv.script("/pools", [Response(body=body, truncate_at=100)])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"GET /pools HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, got = raw.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert got == body[:100]
    assert requests.get(srv.url("/pools"), timeout=5).content == body  # then the static route again


def test_prefix_handler_for_chart_paths(srv: PayloadServer) -> None:
    def chart(path: str) -> Response:
        pool = path.rsplit("/", 1)[-1]
        if len(pool) != 36:
            return Response(status=400, body='"invalid configID!"')  # a JSON string, as the API sends
        return Response(body=synthetic.generate_chart(pool, dt.date(2024, 1, 1), dt.date(2024, 1, 10)))

    srv.set_handler("/chart/", chart)
    pid = "66985a81-9c51-46ca-9977-42b4fe7bc6df"
    r = requests.get(srv.url(f"/chart/{pid}"), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "success" and len(r.json()["data"]) >= 2
    bad = requests.get(srv.url("/chart/nope"), timeout=5)
    assert bad.status_code == 400 and bad.json() == "invalid configID!"
    assert srv.count(f"/chart/{pid}") == 1


def test_handler_returning_none_is_404_and_raising_is_500(srv: PayloadServer) -> None:
    srv.set_handler("/chart/", lambda path: None)
    srv.set_handler("/chart/boom/", lambda path: 1 / 0)  # longer prefix wins
    assert requests.get(srv.url("/chart/x"), timeout=5).status_code == 404
    r = requests.get(srv.url("/chart/boom/x"), timeout=5)
    assert r.status_code == 500 and "ZeroDivisionError" in r.text


def test_requests_are_recorded_thread_safely(srv: PayloadServer) -> None:
    srv.set("/pools", {"data": []})
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: requests.get(srv.url("/pools"), headers={"X-N": str(i)}, timeout=5)
                              .status_code, range(40)))
    requests.head(srv.url("/pools"), timeout=5)
    assert codes == [200] * 40
    assert srv.count("/pools") == 41
    log = srv.requests
    assert {m for m, _, _ in log} == {"GET", "HEAD"}
    assert sorted(int(h["X-N"]) for m, _, h in log if m == "GET") == list(range(40))


def test_full_size_body_round_trips(srv: PayloadServer) -> None:
    body = synthetic.dumps(synthetic.generate_pools(seed=0))
    srv.set("/pools", body)
    r = requests.get(srv.url("/pools"), timeout=10)
    assert r.content == body and int(r.headers["Content-Length"]) == len(body)


def test_stops_quickly_with_hanging_and_idle_connections(capfd: pytest.CaptureFixture[str]) -> None:
    server = PayloadServer().start()
    port = server.port
    server.set("/pools", {"data": []})
    server.script("/slow", [Response(delay=30)])
    session = requests.Session()
    session.get(server.url("/pools"), timeout=5)  # leaves an idle keep-alive connection open
    with ThreadPoolExecutor(1) as pool:
        hanging = pool.submit(requests.get, server.url("/slow"), timeout=10)
        time.sleep(0.2)
        server.stop()  # returns although a request sleeps for 30 s and a keep-alive connection idles
        with pytest.raises(requests.exceptions.RequestException):
            hanging.result()
    session.close()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/pools", timeout=1)
    with pytest.raises(RuntimeError):
        server.port  # noqa: B018 - a stopped server has no port
    assert capfd.readouterr().err == ""
