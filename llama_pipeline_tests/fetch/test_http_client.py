"""The HTTP client against a real server on 127.0.0.1: retries, Retry-After, timeouts, bodies cut
mid-way, HTML instead of JSON, a size cap, and failures that say what happened."""

from __future__ import annotations

import hashlib
import os
import socket
import time

import pytest

from llama_pipeline.fetch.http_client import DefiLlamaClient, FetchError
from llama_pipeline.fetch.payloads import PayloadError, decode_records
from llama_pipeline_tests.testing.payload_server import PayloadServer, Response

BODY = {"status": "success", "data": [{"pool": str(i), "tvlUsd": i} for i in range(2000)]}


def client(**overrides) -> DefiLlamaClient:
    settings = dict(connect_timeout=2, read_timeout=2, max_attempts=4, backoff_factor=0.05, max_wait=2,
                    max_total_seconds=30)
    return DefiLlamaClient(**{**settings, **overrides})


def test_500_twice_then_success(http: PayloadServer):
    http.set("/pools", BODY)
    http.script("/pools", [Response(status=500, body="boom"), Response(status=502, body="bad gateway")])
    response = client().fetch(http.url("/pools"))
    assert response.status == 200 and decode_records("pools", response.body, "x") == BODY["data"]
    assert response.attempts == 3
    assert http.count("/pools") == 3


def test_429_retry_after_is_honoured(http: PayloadServer):
    http.set("/pools", BODY)
    http.script("/pools", [Response(status=429, headers={"Retry-After": "1"})])
    started = time.monotonic()
    response = client(backoff_factor=0).fetch(http.url("/pools"))
    assert time.monotonic() - started >= 0.95  # waited as told, not the (zero) backoff
    assert response.attempts == 2 and http.count("/pools") == 2


def test_retry_after_is_capped_by_max_wait(http: PayloadServer):
    http.set("/pools", BODY)
    http.script("/pools", [Response(status=503, headers={"Retry-After": "3600"})])
    started = time.monotonic()
    assert client(max_wait=0.3).fetch(http.url("/pools")).attempts == 2
    assert time.monotonic() - started < 5


def test_a_hang_past_the_read_timeout_is_retried(http: PayloadServer):
    http.set("/pools", BODY)
    http.script("/pools", [Response(delay=3, body=BODY)])
    started = time.monotonic()
    response = client(read_timeout=0.5).fetch(http.url("/pools"))
    assert response.attempts == 2 and decode_records("pools", response.body, "x") == BODY["data"]
    assert time.monotonic() - started < 2.5  # gave up on the hanging request at the timeout


def test_a_server_that_always_hangs_fails_naming_url_and_attempts(http: PayloadServer):
    http.script("/pools", [Response(delay=3, body=BODY)] * 3)
    url = http.url("/pools")
    started = time.monotonic()
    with pytest.raises(FetchError) as raised:
        client(read_timeout=0.4, max_attempts=3).fetch(url)
    message = str(raised.value)
    assert url in message and "3 attempts" in message and "timed out" in message.lower()
    assert time.monotonic() - started < 6


def test_a_body_cut_mid_way_is_fetched_again(http: PayloadServer):
    http.set("/pools", BODY)
    http.script("/pools", [Response(body=BODY, truncate_at=500), Response(body=BODY, truncate_at=20000)])
    response = client().fetch(http.url("/pools"))
    assert decode_records("pools", response.body, "x") == BODY["data"]  # whole, never the cut copy
    assert response.attempts == 3


def test_the_sha256_hashed_as_the_body_streams_in_is_the_whole_body_s(http: PayloadServer, tmp_path):
    # Several of the client's 1 MiB reads, and a body cut mid-way first: only the complete body is hashed.
    body = os.urandom(3 * (1 << 20) + 12345)
    http.set("/pools", body)
    http.script("/pools", [Response(body=body, truncate_at=(1 << 20) + 7)])
    response = client().fetch(http.url("/pools"))
    assert response.attempts == 2 and response.body == body
    assert response.sha256 == hashlib.sha256(body).hexdigest()
    (tmp_path / "pools.json").write_bytes(body)
    assert client().fetch((tmp_path / "pools.json").as_uri()).sha256 == hashlib.sha256(body).hexdigest()


def test_bodies_always_cut_fail_naming_url_and_attempts(http: PayloadServer):
    http.script("/pools", [Response(body=BODY, truncate_at=500)] * 3)
    url = http.url("/pools")
    with pytest.raises(FetchError) as raised:
        client(max_attempts=3).fetch(url)
    assert url in str(raised.value) and "3 attempts" in str(raised.value)


def test_html_instead_of_json_is_refused_with_its_start(http: PayloadServer):
    http.set("/pools", "<html><body>Cloudflare: checking your browser</body></html>", content_type="text/html")
    response = client().fetch(http.url("/pools"))
    with pytest.raises(PayloadError, match="is not JSON.*<html><body>Cloudflare"):
        decode_records("pools", response.body, http.url("/pools"))


def test_a_persistent_5xx_fails_naming_url_status_and_attempts(http: PayloadServer):
    http.set("/pools", "upstream down", status=503, content_type="text/plain")
    url = http.url("/pools")
    with pytest.raises(FetchError) as raised:
        client(max_attempts=3).fetch(url)
    message = str(raised.value)
    assert url in message and "503" in message and "3 attempt" in message and "upstream down" in message
    assert raised.value.status == 503
    assert http.count("/pools") == 3  # bounded


def test_a_4xx_is_not_retried(http: PayloadServer):
    http.set("/pools", "nope", status=404, content_type="text/plain")
    with pytest.raises(FetchError, match="HTTP 404 after 1 attempt"):
        client().fetch(http.url("/pools"))
    assert http.count("/pools") == 1


def test_the_payload_size_cap(http: PayloadServer):
    http.set("/pools", BODY)
    url = http.url("/pools")
    with pytest.raises(FetchError, match="exceeds the cap of 1,000"):
        client(max_bytes=1000).fetch(url)
    assert len(client(max_bytes=10_000_000).fetch(url).body) > 1000


def test_connection_refused_fails_naming_url_and_attempts():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/pools"
    started = time.monotonic()
    with pytest.raises(FetchError) as raised:
        client(max_attempts=3).fetch(url)
    assert url in str(raised.value) and "3 attempts" in str(raised.value)
    assert time.monotonic() - started < 5


def test_total_time_is_bounded(http: PayloadServer):
    http.script("/pools", [Response(delay=3, body=BODY)] * 10)
    started = time.monotonic()
    with pytest.raises(FetchError):
        client(read_timeout=0.5, max_attempts=10, max_total_seconds=1.5).fetch(http.url("/pools"))
    assert time.monotonic() - started < 4


def test_file_url_to_a_missing_file_is_a_clear_404_not_retried(tmp_path):
    present = tmp_path / "pools.json"
    present.write_text('{"status": "success", "data": [{"pool": "a"}]}')
    assert client().fetch(present.as_uri()).body == present.read_bytes()
    with pytest.raises(FetchError) as raised:
        client().fetch((tmp_path / "missing.json").as_uri())
    assert raised.value.status == 404 and not raised.value.retryable
    assert "missing.json" in str(raised.value)
