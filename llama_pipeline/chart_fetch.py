"""Fetching many pools' ``/chart/{pool}`` at once: bounded concurrency, a polite rate, results handed
over in batches, and a prompt stop when the run fails or is terminated."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from llama_pipeline.http_client import DefiLlamaClient, FetchError


@dataclasses.dataclass(frozen=True)
class ChartResult:
    pool_id: str
    url: str
    fetched_at: dt.datetime
    http_status: int | None
    body: bytes | None
    error: str | None


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
) -> dict[str, int]:
    """Fetch every pool's chart with bounded concurrency and rate; hand results over in batches so the
    caller can commit them as they come. Returns counts of fetched and failed charts.

    When anything stops the loop (a write that fails in ``on_batch``, the run being terminated, which
    raises in this thread), the fetches still queued are cancelled and the ones in flight are not
    waited for: the step ends at once instead of fetching everything it had queued first."""
    limiter = _RateLimiter(rate_per_second)
    started = last_report = time.monotonic()
    counts = {"fetched": 0, "failed": 0}
    pending: list[ChartResult] = []
    stop = threading.Event()

    def one(pool_id: str) -> ChartResult | None:
        limiter.wait()
        if stop.is_set():  # stopped while this one waited its turn
            return None
        url = client.chart_url.format(pool=pool_id)
        try:
            response = client.fetch(url)
        except FetchError as error:
            return ChartResult(pool_id, url, dt.datetime.now(dt.timezone.utc), error.status,
                               error.body or None, str(error))
        return ChartResult(pool_id, url, response.fetched_at, response.status, response.body, None)

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="chart")
    try:
        futures = [pool.submit(one, pool_id) for pool_id in pool_ids]
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            counts["failed" if result.error else "fetched"] += 1
            pending.append(result)
            if len(pending) >= batch_size:
                on_batch(pending)
                pending = []
            now = time.monotonic()
            if now - last_report >= progress_every or done == len(futures):
                last_report = now
                rate = done / max(now - started, 1e-9)
                log(f"charts {done:,}/{len(futures):,} ({counts['failed']:,} failed), {rate:.1f} req/s")
    except BaseException:  # a termination arrives as a BaseException (DagsterExecutionInterruptedError)
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if pending:
        on_batch(pending)
    return counts
