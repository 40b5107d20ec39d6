"""The two HTTP payloads as stored: raw bytes plus what is needed to replay them.

A payload is checked as a whole before anything is stored (valid JSON, the expected envelope, a
non-empty list), so a broken response fails the run and never reaches the archive or the tables.
"""

from __future__ import annotations

import dataclasses
import functools
import datetime as dt
import hashlib
import json
import zlib

import zstandard
from typing import Literal

Endpoint = Literal["pools", "protocols", "lend_borrow", "chain_list"]
# The yields' endpoints: a day is captured when these are (the capture sensor's rule).
ENDPOINTS: tuple[Endpoint, ...] = ("pools", "protocols")
# /lendBorrow and /v2/chains ("lend_borrow", "chain_list") serve only the present too: they are archived
# per day like /pools, by the same whole-graph runs that capture the yields.


class PayloadError(ValueError):
    """The response as a whole is unusable: nothing from it may be written."""


@dataclasses.dataclass(frozen=True)
class RawPayload:
    """One endpoint's response for one day, byte for byte."""

    endpoint: Endpoint
    partition_date: dt.date
    url: str
    fetched_at: dt.datetime
    http_status: int
    content_type: str | None
    body: bytes
    record_count: int
    # The body already compressed with COMPRESSION, when the raw step compressed it to hold it.
    compressed_body: bytes | None = dataclasses.field(default=None, repr=False, compare=False)
    # The body's SHA-256 when the fetch hashed it as it streamed in (``HttpResponse.sha256``).
    body_sha256: str | None = dataclasses.field(default=None, repr=False, compare=False)

    @functools.cached_property
    def sha256(self) -> str:
        return self.body_sha256 if self.body_sha256 is not None else hashlib.sha256(self.body).hexdigest()

    def records(self) -> list:
        """The payload's list of records, after checking the envelope."""
        return decode_records(self.endpoint, self.body, self.url)

    def compressed(self) -> bytes:
        """The body compressed with ``COMPRESSION``."""
        return self.compressed_body if self.compressed_body is not None else compress(self.body)


# zstd at level 3: a full synthetic day's two payloads (18.5 MB of JSON) take 3.64 MB in ~0.06-0.09 s.
# Level 6 saves 0.31 MB a day (8%) for 3-4x the time (0.13 s alone, 0.4 s on a busy machine: the largest
# pipeline-only cost of the raw steps, which compress before anything parses the body, so nothing overlaps
# it); level 9 another 0.17 MB for twice that again. gzip -6 takes 4.0 MB and decompresses ~5x slower
# (the warehouse step replays it). Rows stored at any level decompress the same way.
COMPRESSION = "zstd"
LEVEL = 3


def compress(body: bytes) -> bytes:
    # zstandard's bytes keep their worst-case allocation (about the body's size: 11.7 MB behind a 2.0 MB
    # compressed /pools); a copy of exactly its length lets the rest go while the payload is held.
    return bytes(memoryview(zstandard.ZstdCompressor(level=LEVEL).compress(body)))


def decompress(blob: bytes, compression: str) -> bytes:
    """A stored body in its original bytes; 'gzip' rows (and raw_pool_charts bodies) stay readable."""
    if compression == "zstd":
        return zstandard.ZstdDecompressor().decompress(blob)
    if compression == "gzip":
        return zlib.decompress(blob, 47)
    raise ValueError(f"unknown compression {compression!r}")


def decode_records(endpoint: Endpoint, body: bytes, url: str) -> list:
    """Parse a payload and return its records, or raise PayloadError saying what is wrong with it.

    ``/pools`` is ``{"status": "success", "data": [...]}`` (a recorded sample lacks ``status``, so a
    missing status is accepted, a different one is not); ``/protocols``, ``/lendBorrow`` and
    ``/v2/chains`` are bare lists.
    """
    where = f"{endpoint} payload from {url} ({len(body):,} bytes)"
    try:
        document = json.loads(body)
    except UnicodeDecodeError as error:
        raise PayloadError(f"{where} is not UTF-8 text: {error}") from None
    except json.JSONDecodeError as error:
        start = body[:60].decode("utf-8", "replace").strip()
        # A body that opens like a JSON document but breaks off was most likely cut short in transit.
        hint = "truncated or malformed JSON" if body.lstrip()[:1] in (b"{", b"[") else "not JSON"
        raise PayloadError(
            f"{where} is {hint}: {error.msg} at byte {error.pos:,}; it starts with {start!r}"
        ) from None
    if endpoint == "pools":
        if not isinstance(document, dict) or "data" not in document:
            raise PayloadError(f"{where} is not the expected {{'status', 'data'}} object")
        status = document.get("status", "success")
        if status != "success":
            raise PayloadError(f"{where} has status {status!r} instead of 'success'")
        records = document["data"]
    else:
        records = document
    if not isinstance(records, list):
        raise PayloadError(f"{where} holds {type(records).__name__} where a list of records was expected")
    if not records:
        raise PayloadError(f"{where} holds an empty list: refusing to record a day with no {endpoint}")
    return records
