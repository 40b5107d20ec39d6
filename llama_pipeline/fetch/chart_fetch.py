"""Fetching many URLs at once (pools' ``/chart/{pool}``, chains' and protocols' TVL history): bounded concurrency, a polite rate, results handed
over in batches, and a prompt stop when the run fails or is terminated."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from llama_pipeline import clock
from llama_pipeline.fetch.http_client import DefiLlamaClient, FetchError


@dataclasses.dataclass(frozen=True)
class Fetched:
    """One response (or the failure to get one) of a many-URL fetch."""

    key: str  # what was fetched: a pool id, a chain, a protocol slug
    url: str
    fetched_at: dt.datetime
    http_status: int | None
    body: bytes | None
    error: str | None

    @property
    def pool_id(self) -> str:
        return self.key


ChartResult = Fetched  # a pool's /chart response


class _RateLimiter:
    """At most ``rate`` request starts per second across threads (DeFiLlama asks for politeness)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        time.sleep(max(0.0, start - now))


def fetch_charts(
    client: DefiLlamaClient,
    pool_ids: Sequence[str],
    *,
    concurrency: int,
    rate_per_second: float,
    on_batch: Callable[[list[ChartResult]], None],
    log: Callable[[str], None],
    batch_size: int = 50,
    progress_every: float = 10.0,
) -> dict[str, float]:
    """Fetch every pool's chart (see ``fetch_many``)."""
    return fetch_many(client, [(pool_id, client.chart_url.format(pool=pool_id)) for pool_id in pool_ids],
                      concurrency=concurrency, rate_per_second=rate_per_second, on_batch=on_batch, log=log,
                      what="charts", batch_size=batch_size, progress_every=progress_every)


def fetch_many(
    client: DefiLlamaClient,
    urls: Sequence[tuple[str, str]],
    *,
    concurrency: int,
    rate_per_second: float,
    on_batch: Callable[[list[Fetched]], None],
    log: Callable[[str], None],
    what: str,
    batch_size: int = 50,
    max_batch_bytes: int = 16 << 20,
    queue_ahead: int | None = None,
    progress_every: float = 10.0,
) -> dict[str, float]:
    """Fetch every (key, url) with bounded concurrency and rate; hand results over in batches (of
    ``batch_size`` results or ``max_batch_bytes`` of bodies, whichever comes first: a protocol's body
    reaches 28 MB, and is then a batch of its own) so the caller can commit them as they come. At most
    ``queue_ahead`` requests (default: a batch and twice ``concurrency``, so fetching goes on while a
    batch is written) are queued, in flight or finished but not yet handed over, so memory holds a
    batch and a bounded number of responses, however many URLs there are. Returns counts of fetched and failed
    URLs and the requests per second.

    When anything stops the loop (a write that fails in ``on_batch``, the run being terminated, which
    raises in this thread), the fetches still queued are cancelled and the ones in flight are not
    waited for: the step ends at once instead of fetching everything it had queued first."""
    limiter = _RateLimiter(rate_per_second)
    started = last_report = time.monotonic()
    counts: dict[str, float] = {"fetched": 0, "failed": 0}
    pending: list[Fetched] = []
    pending_bytes = 0
    stop = threading.Event()

    def one(key: str, url: str) -> Fetched | None:
        limiter.wait()
        if stop.is_set():  # stopped while this one waited its turn
            return None
        try:
            response = client.fetch(url)
        except FetchError as error:
            return Fetched(key, url, clock.now(), error.status, error.body or None, str(error))
        return Fetched(key, url, response.fetched_at, response.status, response.body, None)

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix=what)
    # Only a window of requests is submitted at a time: a finished future keeps its response, so
    # submitting every URL at once kept every body of the backfill in memory until the end.
    queued = iter(urls)
    window = max(1, queue_ahead or batch_size + 2 * max(1, concurrency))
    in_flight = {pool.submit(one, key, url) for key, url in itertools.islice(queued, window)}
    done = 0
    try:
        while in_flight:
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                done += 1
                counts["failed" if result.error else "fetched"] += 1
                pending.append(result)
                pending_bytes += len(result.body or b"")
                if len(pending) >= batch_size or pending_bytes >= max_batch_bytes:
                    on_batch(pending)
                    pending, pending_bytes = [], 0
            in_flight |= {pool.submit(one, key, url) for key, url in itertools.islice(queued, window - len(in_flight))}
            now = time.monotonic()
            if now - last_report >= progress_every or done == len(urls):
                last_report = now
                rate = done / max(now - started, 1e-9)
                log(f"{what} {done:,}/{len(urls):,} ({int(counts['failed']):,} failed), {rate:.1f} req/s")
    except BaseException:  # a termination arrives as a BaseException (DagsterExecutionInterruptedError)
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if pending:
        on_batch(pending)
    counts["requests_per_second"] = round(len(urls) / max(time.monotonic() - started, 1e-9), 2)
    return counts
