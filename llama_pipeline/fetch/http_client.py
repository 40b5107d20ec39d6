"""The DeFiLlama HTTP client: one ``requests.Session`` with timeouts, bounded retries and a size cap."""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import hashlib
import io
import random
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dagster as dg
import requests
import requests.adapters
import urllib3
from pydantic import Field, PrivateAttr
from urllib3.util.retry import Retry

from llama_pipeline import clock

DEFAULT_POOLS_URL = "https://yields.llama.fi/pools"
DEFAULT_PROTOCOLS_URL = "https://api.llama.fi/protocols"
DEFAULT_CHART_URL = "https://yields.llama.fi/chart/{pool}"
DEFAULT_LEND_BORROW_URL = "https://yields.llama.fi/lendBorrow"
DEFAULT_CHAINS_URL = "https://api.llama.fi/v2/chains"
DEFAULT_CHAIN_TVL_URL = "https://api.llama.fi/v2/historicalChainTvl/{chain}"
DEFAULT_PROTOCOL_URL = "https://api.llama.fi/protocol/{slug}"
# A paid route: the key is part of the path (DeFiLlama's pro API), so it is removed from what is stored.
DEFAULT_LEND_BORROW_CHART_URL = "https://pro-api.llama.fi/{api_key}/yields/chartLendBorrow/{pool}"
RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRYABLE_LATER = (408, 429)  # client errors that a later attempt can get past


class FetchError(RuntimeError):
    """A payload could not be fetched; the message names the URL, the status and the attempts."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"", unresolvable: bool = False) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when a response came
        self.body = body  # the start of that response's body
        # The host name did not resolve: no network, or a wrong URL; waiting minutes will not fix it.
        self.unresolvable = unresolvable

    @property
    def retryable(self) -> bool:
        """Whether trying again minutes later can succeed: an outage, a timeout, a cut connection, 408,
        429 or a 5xx can pass; any other 4xx (a wrong URL, a paid route's 402, a refused request) and a
        host name that does not resolve answer the same way again."""
        if self.unresolvable:
            return False
        if self.status is None:
            return True
        return self.status in RETRYABLE_LATER or self.status >= 500


@dataclasses.dataclass(frozen=True)
class HttpResponse:
    url: str
    status: int
    content_type: str | None
    body: bytes
    fetched_at: dt.datetime
    attempts: int
    sha256: str  # of body, hashed as it streamed in


# When the current fetch must give up (time.monotonic()), so that urllib3's own retries respect the
# client's max_total_seconds too, not only the outer loop; and the attempts urllib3 made so far.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("llama_fetch_deadline", default=None)
_URLLIB3_ATTEMPTS: contextvars.ContextVar[int] = contextvars.ContextVar("llama_fetch_attempts", default=0)


def _remaining() -> float:
    deadline = _DEADLINE.get()
    return float("inf") if deadline is None else max(0.0, deadline - time.monotonic())


class _BoundedRetry(Retry):
    """urllib3's Retry with full jitter and a ceiling on any single wait, ``Retry-After`` included, so a
    server asking for an hour's pause cannot stall a run for an hour; it also stops at the fetch's
    deadline (``max_total_seconds``)."""

    max_wait: float = 60.0

    def get_backoff_time(self) -> float:
        base = super().get_backoff_time()
        return min(self.max_wait, _remaining(), random.uniform(base / 2, base)) if base else 0.0

    def get_retry_after(self, response) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, self.max_wait, _remaining())

    def is_exhausted(self) -> bool:
        _URLLIB3_ATTEMPTS.set(len(self.history))
        return super().is_exhausted() or _remaining() <= 0

    def new(self, **kw):
        retry = super().new(**kw)
        retry.max_wait = self.max_wait
        return retry


class _FileAdapter(requests.adapters.BaseAdapter):
    """``file://`` URLs, so a mirror on disk can stand in for the API."""

    def send(self, request, **kwargs):
        response = requests.Response()
        response.url = request.url
        response.request = request
        path = Path(unquote(urlsplit(request.url).path))
        try:
            response.raw = path.open("rb")
            response.status_code = 200
            response.headers["Content-Type"] = "application/json"
        except OSError as error:
            # A body to read (requests and the client stream it), so the 404 reaches the caller as a 404.
            response.status_code = 404
            response.reason = str(error)
            response.raw = urllib3.HTTPResponse(body=io.BytesIO(str(error).encode()), status=404,
                                                preload_content=False)
        return response

    def close(self) -> None:
        pass


class DefiLlamaClient(dg.ConfigurableResource):
    """Fetches DeFiLlama payloads politely: explicit connect/read timeouts, retries with exponential
    backoff and jitter on connection errors, 429 and 5xx (honouring ``Retry-After``), bounded in count
    and total time, and a cap on the body size."""

    pools_url: str = Field(default=DEFAULT_POOLS_URL, description="URL of /pools (SOURCE_URL); file:// works.")
    protocols_url: str = Field(
        default=DEFAULT_PROTOCOLS_URL, description="URL of /protocols (PROTOCOLS_URL); file:// works."
    )
    chart_url: str = Field(
        default=DEFAULT_CHART_URL, description="URL template of /chart/{pool} (CHART_URL), for history."
    )
    lend_borrow_url: str = Field(
        default=DEFAULT_LEND_BORROW_URL, description="URL of /lendBorrow (LEND_BORROW_URL); file:// works."
    )
    chains_url: str = Field(default=DEFAULT_CHAINS_URL, description="URL of /v2/chains (CHAINS_URL); file:// works.")
    chain_tvl_url: str = Field(
        default=DEFAULT_CHAIN_TVL_URL, description="URL template of /v2/historicalChainTvl/{chain} (CHAIN_TVL_URL)."
    )
    protocol_url: str = Field(
        default=DEFAULT_PROTOCOL_URL, description="URL template of /protocol/{slug} (PROTOCOL_URL)."
    )
    lend_borrow_chart_url: str = Field(
        default=DEFAULT_LEND_BORROW_CHART_URL,
        description="URL template of the paid /chartLendBorrow/{pool} (LEND_BORROW_CHART_URL), with {api_key}.",
    )
    api_key: str = Field(default="", description="DeFiLlama API key (DEFILLAMA_API_KEY); empty: paid routes off.")
    connect_timeout: float = Field(default=10.0, description="Seconds to establish a connection.")
    read_timeout: float = Field(default=60.0, description="Seconds to wait between bytes of the response.")
    max_attempts: int = Field(default=5, description="Attempts per request, the first included.")
    backoff_factor: float = Field(default=1.0, description="Base of the exponential backoff, in seconds.")
    max_wait: float = Field(default=60.0, description="Longest single wait between attempts, in seconds.")
    max_total_seconds: float = Field(default=600.0, description="Give up on a URL after this long overall.")
    max_bytes: int = Field(default=200_000_000, description="Refuse a response body larger than this.")

    _session: requests.Session | None = PrivateAttr(default=None)

    def _make_session(self) -> requests.Session:
        retry = _BoundedRetry(
            total=self.max_attempts - 1,
            connect=self.max_attempts - 1,
            read=self.max_attempts - 1,
            status=self.max_attempts - 1,
            backoff_factor=self.backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        retry.max_wait = self.max_wait
        session = requests.Session()
        session.headers["User-Agent"] = "llama-pipeline (+https://github.com/llama-pipeline)"
        session.headers["Accept"] = "application/json"
        session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
        session.mount("https://", requests.adapters.HTTPAdapter(max_retries=retry))
        session.mount("file://", _FileAdapter())
        return session

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = self._make_session()
        return self._session

    def fetch(self, url: str) -> HttpResponse:
        """GET ``url`` and return its body, or raise FetchError saying what went wrong.

        urllib3 retries connection failures and retryable statuses before a response starts; a body
        that breaks off or stalls mid-way (which urllib3 cannot retry) is fetched again here, within
        the same bounds on attempts and total time.
        """
        started = time.monotonic()
        deadline = _DEADLINE.set(started + self.max_total_seconds)
        try:
            return self._fetch_with_retries(url, started)
        finally:
            _DEADLINE.reset(deadline)

    def _fetch_with_retries(self, url: str, started: float) -> HttpResponse:
        attempts = 0
        while True:
            attempts += 1
            _URLLIB3_ATTEMPTS.set(0)
            try:
                return self._fetch_once(url, attempts)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
                if error.args and isinstance(error.args[0], urllib3.exceptions.MaxRetryError):
                    made = attempts - 1 + max(1, _URLLIB3_ATTEMPTS.get())
                    reason = error.args[0].reason
                    raise FetchError(
                        f"GET {url} failed after {made} attempts ({time.monotonic() - started:.0f}s): {reason}",
                        unresolvable=isinstance(reason, urllib3.exceptions.NameResolutionError),
                    ) from None
                problem = f"{type(error).__name__}: {error}"
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as error:
                problem = f"{type(error).__name__}: {error}"
            elapsed = time.monotonic() - started
            if attempts >= self.max_attempts or elapsed >= self.max_total_seconds:
                raise FetchError(f"GET {url} failed after {attempts} attempts ({elapsed:.0f}s): {problem}")
            time.sleep(min(self.max_wait, _remaining(), self.backoff_factor * 2 ** (attempts - 1) * random.uniform(0.5, 1)))

    def _fetch_once(self, url: str, attempt: int) -> HttpResponse:
        with self.session.get(url, timeout=(self.connect_timeout, self.read_timeout), stream=True) as response:
            retries = getattr(response.raw, "retries", None)
            history = len(retries.history) if retries is not None else 0
            if response.status_code != 200:
                snippet = response.raw.read(300, decode_content=True) if response.raw else b""
                raise FetchError(
                    f"GET {url} answered HTTP {response.status_code} after {attempt + history} attempt(s): "
                    f"{snippet.decode('utf-8', 'replace').strip()[:200]!r}",
                    status=response.status_code,
                    body=snippet,
                )
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise FetchError(f"GET {url}: body of {int(declared):,} bytes exceeds the cap of {self.max_bytes:,}", status=200)
            # Hashed piece by piece while the rest is still arriving (hashlib lets go of the GIL), so the
            # archive's SHA-256 costs no time once the body is complete.
            chunks, size, digest = [], 0, hashlib.sha256()
            for chunk in response.iter_content(chunk_size=1 << 20):
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(f"GET {url}: body exceeds the cap of {self.max_bytes:,} bytes", status=200)
                chunks.append(chunk)
                digest.update(chunk)
            return HttpResponse(
                url=url,
                status=response.status_code,
                content_type=response.headers.get("Content-Type"),
                body=b"".join(chunks),
                fetched_at=clock.now(),
                attempts=attempt + history,
                sha256=digest.hexdigest(),
            )


def without_key(text: str, api_key: str) -> str:
    """``text`` (a URL, an error naming one) with the API key replaced by ``***``."""
    return text.replace(api_key, "***") if api_key else text
