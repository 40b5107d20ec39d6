"""Each stored payload parsed once per run, however many assets read it.

``chains``, ``projects``, ``pools`` and ``pool_snapshots`` all start from the same day's ``/pools``
payload (and two of them from ``/protocols``). Runs execute their steps in one process
(``defs/execution.py``), so the raw asset that fetched today's payload parses it and the warehouse
assets reuse that: decoding and parsing 17,000 pools costs ~0.3 s, which every asset used to pay again.

Two levels are kept, keyed by endpoint, day and the stored body's SHA-256 (read from ``raw_payloads``
on every lookup, so a payload replaced in the archive is a different key and a stale parse is never
served):

- the full parse (the rows of ``pools``, ``pool_snapshots`` and ``projects``), for the newest few
  days only: holding a year of parsed days would cost gigabytes;
- the names a day's payload uses (chain spellings, project slugs), a few kilobytes a day, for many
  days: in a range run each asset walks every day in turn, and ``chains`` and ``projects`` need only
  these, so they are computed without a full parse and never twice.

Parsing is a pure function of body and day, so the schema or database a body came from does not
matter. The IO manager empties the cache when a run starts and when it ends. Entries are shared:
callers must not modify what they get.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable

from llama_pipeline import raw_archive
from llama_pipeline.gc_pause import paused_gc
from llama_pipeline.payloads import Endpoint
from llama_pipeline.decode.pools import ParsedPools, chains_and_projects, parse_pools
from llama_pipeline.decode.protocols import ListedProtocols, listed_protocols, protocol_chain_spellings
from llama_pipeline.warehouse import Warehouse

# Full parses: two days per endpoint (the day being loaded and the one before, at a range's boundary).
MAX_PARSED = 4
# Names only: more days than a backfill usually spans, at a few kilobytes each.
MAX_NAMES = 2000


@dataclasses.dataclass(frozen=True)
class PoolNames:
    """The chain spellings and project slugs of a day's pools (what ``chains`` and ``projects`` need)."""

    chain_spellings: dict[str, set[str]]
    projects: frozenset[str]


@dataclasses.dataclass(frozen=True)
class PoolsDay:
    """A day's /pools payload, parsed: the rows of pools and pool_snapshots, and its names."""

    parsed: ParsedPools
    names: PoolNames

    @property
    def record_count(self) -> int:
        return self.parsed.record_count


@dataclasses.dataclass(frozen=True)
class ProtocolsDay:
    """A day's /protocols payload, parsed: the listed projects' rows and the chain spellings."""

    listed: ListedProtocols
    chain_spellings: dict[str, set[str]]

    @property
    def record_count(self) -> int:
        return self.listed.record_count


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: collections.OrderedDict[tuple, object] = collections.OrderedDict()

    def get(self, key: tuple) -> object | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: tuple, value: object) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


_parsed = _Lru(MAX_PARSED)
_names = _Lru(MAX_NAMES)
_lock = threading.Lock()
stats = collections.Counter()  # hits and misses, for tests and the benchmark


def _key(warehouse: Warehouse, endpoint: Endpoint, day: dt.date) -> tuple:
    return (endpoint, day, raw_archive.stored_sha256(warehouse, endpoint, day))


def _cached(cache: _Lru, key: tuple) -> object | None:
    with _lock:
        found = cache.get(key)
    stats["hits" if found is not None else "misses"] += 1
    return found


def _put(cache: _Lru, key: tuple, value: object) -> None:
    with _lock:
        cache.put(key, value)


def _load(warehouse: Warehouse, endpoint: Endpoint, day: dt.date, parse: Callable[[bytes], object]) -> tuple:
    """Read, decode and parse a stored payload; the key is what was read (a payload replaced since a
    lookup is cached as itself)."""
    payload = raw_archive.load(warehouse, endpoint, day)
    with paused_gc():
        return (endpoint, day, payload.sha256), parse(payload.body)


def _pools_day(body: bytes, day: dt.date, url: str = "pools") -> PoolsDay:
    parsed = parse_pools(body, day, url)
    return PoolsDay(parsed, PoolNames(parsed.chain_spellings, frozenset(parsed.pools["project"])))


def _protocols_day(body: bytes, day: dt.date, url: str = "protocols") -> ProtocolsDay:
    listed = listed_protocols(body, day, url)
    return ProtocolsDay(listed, listed.chain_spellings)


def _keep(key: tuple, parsed: PoolsDay | ProtocolsDay) -> None:
    _put(_parsed, key, parsed)
    _put(_names, key, parsed.names if isinstance(parsed, PoolsDay) else parsed.chain_spellings)


def _day(archive: raw_archive.RawArchive, endpoint: Endpoint, day: dt.date) -> PoolsDay | ProtocolsDay:
    if archive.endpoint != endpoint:
        raise ValueError(f"needs the /{endpoint} archive, got /{archive.endpoint}")
    found = _cached(_parsed, _key(archive.warehouse, endpoint, day))
    if found is None:
        key, found = _load(archive.warehouse, endpoint, day,
                           lambda records: (_pools_day if endpoint == "pools" else _protocols_day)(records, day))
        _keep(key, found)
    return found  # type: ignore[return-value]


def pools_day(archive: raw_archive.RawArchive, day: dt.date) -> PoolsDay:
    """The day's parsed /pools payload; raises ``MissingPayload`` when none is stored."""
    return _day(archive, "pools", day)  # type: ignore[return-value]


def protocols_day(archive: raw_archive.RawArchive, day: dt.date) -> ProtocolsDay:
    """The day's parsed /protocols payload; raises ``MissingPayload`` when none is stored."""
    return _day(archive, "protocols", day)  # type: ignore[return-value]


def _fits(archive: raw_archive.RawArchive) -> bool:
    """Whether the run's days all fit in the full-parse cache: then a full parse now serves every asset
    of the run, and parsing names alone would only add a pass."""
    return len(archive.days) <= MAX_PARSED // 2


def _names_of(archive: raw_archive.RawArchive, endpoint: Endpoint, day: dt.date,
              from_full: Callable[[PoolsDay | ProtocolsDay], object], parse: Callable[[list], object]) -> object:
    if archive.endpoint != endpoint:
        raise ValueError(f"needs the /{endpoint} archive, got /{archive.endpoint}")
    if _fits(archive):
        return from_full(_day(archive, endpoint, day))
    found = _cached(_names, _key(archive.warehouse, endpoint, day))
    if found is None:
        key, found = _load(archive.warehouse, endpoint, day, parse)
        _put(_names, key, found)
    return found


def _pool_names(body: bytes) -> PoolNames:
    spellings, projects = chains_and_projects(body)
    return PoolNames(spellings, frozenset(projects))


def pool_names(archive: raw_archive.RawArchive, day: dt.date) -> PoolNames:
    """The chain spellings and project slugs of the day's /pools payload (without a full parse when the
    run spans more days than the full-parse cache holds)."""
    return _names_of(archive, "pools", day, lambda full: full.names, _pool_names)  # type: ignore[return-value]


def protocol_chain_names(archive: raw_archive.RawArchive, day: dt.date) -> dict[str, set[str]]:
    """The chain spellings of the day's /protocols payload (without a full parse for long runs)."""
    return _names_of(archive, "protocols", day, lambda full: full.chain_spellings,  # type: ignore[return-value]
                     protocol_chain_spellings)


def parse(endpoint: Endpoint, body: bytes, day: dt.date, url: str) -> PoolsDay | ProtocolsDay:
    """A fetched body parsed (raises ``PayloadError`` when it is unusable as a whole)."""
    with paused_gc():
        return (_pools_day if endpoint == "pools" else _protocols_day)(body, day, url)


def remember(endpoint: Endpoint, day: dt.date, sha256: str, parsed: PoolsDay | ProtocolsDay) -> None:
    """Keep the parse of the body a raw asset has just fetched, under the body's SHA-256: the
    warehouse assets that replay the same stored body then skip reading, decoding and parsing it."""
    _keep((endpoint, day, sha256), parsed)


def clear() -> None:
    """Forget every parsed payload (the counters in ``stats`` are kept)."""
    with _lock:
        _parsed.entries.clear()
        _names.entries.clear()


def cached() -> int:
    """How many full parses are held."""
    return len(_parsed.entries)
