"""Fetching many URLs against a real server on 127.0.0.1: only a window of requests is queued ahead of
the consumer, so a backfill of any size holds a batch and a few responses, never every body."""

from __future__ import annotations

import threading
import time

from llama_pipeline.fetch.chart_fetch import fetch_many
from llama_pipeline.fetch.http_client import DefiLlamaClient
from llama_pipeline_tests.testing.payload_server import PayloadServer, Response


def test_only_a_window_of_requests_is_queued_while_a_batch_is_written(http: PayloadServer):
    http.set_handler("/series/", lambda path: Response(body=b'{"n": "' + path.rsplit("/", 1)[-1].encode() + b'"}'))
    urls = [(str(n), http.url(f"/series/{n}")) for n in range(40)]
    seen_during_first_batch: list[int] = []
    delivered: list[str] = []
    writing = threading.Event()

    def on_batch(batch) -> None:
        if not writing.is_set():  # the first write is slow: the fetches must not run ahead meanwhile
            writing.set()
            time.sleep(1.0)
            seen_during_first_batch.append(len(http.requests))
        delivered.extend(result.key for result in batch)

    counts = fetch_many(DefiLlamaClient(), urls, concurrency=2, rate_per_second=0, on_batch=on_batch,
                        log=lambda message: None, what="series", batch_size=1)
    assert seen_during_first_batch and seen_during_first_batch[0] <= 5  # a batch and 2 x concurrency
    assert sorted(delivered, key=int) == [key for key, _ in urls]
    assert counts["fetched"] == 40 and counts["failed"] == 0


def test_queue_ahead_bounds_the_requests_of_large_responses(http: PayloadServer):
    http.set_handler("/big/", lambda path: Response(body=b"x" * 1000))
    urls = [(str(n), http.url(f"/big/{n}")) for n in range(20)]
    seen: list[int] = []

    def on_batch(batch) -> None:
        if not seen:
            time.sleep(1.0)
            seen.append(len(http.requests))

    fetch_many(DefiLlamaClient(), urls, concurrency=2, rate_per_second=0, on_batch=on_batch,
               log=lambda message: None, what="big", batch_size=50, max_batch_bytes=1, queue_ahead=3)
    assert seen == [3]  # the first response closes a batch; two more were queued, no others


def test_a_batch_closes_at_its_byte_budget(http: PayloadServer):
    http.set_handler("/big/", lambda path: Response(body=b"x" * 3000))
    urls = [(str(n), http.url(f"/big/{n}")) for n in range(10)]
    sizes: list[int] = []
    fetch_many(DefiLlamaClient(), urls, concurrency=2, rate_per_second=0,
               on_batch=lambda batch: sizes.append(len(batch)), log=lambda message: None, what="big",
               batch_size=50, max_batch_bytes=7000)
    assert sizes == [3, 3, 3, 1]
