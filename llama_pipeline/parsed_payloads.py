"""Each stored payload parsed once per process, however many assets read it.

``chains``, ``projects``, ``pools`` and ``pool_snapshots`` all start from the same day's ``/pools``
payload (and two of them from ``/protocols``). Runs execute their steps in one process
(``defs/execution.py``), so the first of them decodes and parses the day and the others reuse it:
decoding and parsing 17,000 pools costs ~0.5 s, which every asset used to pay again.

Entries are keyed by endpoint, day and the stored body's SHA-256, read from ``raw_payloads`` on every
lookup: a payload replaced in the archive (today fetched again) is a different key, so a stale parse is
never served. Parsing is a pure function of body and day, so the schema or database it came from does
not matter. Only the newest few entries are kept: a range run walks its days in order, one asset after
another, and holding a year of parsed days would cost gigabytes.

Entries are shared: callers must not modify the frames they get.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading

from llama_pipeline import raw_archive
from llama_pipeline.gc_pause import paused_gc
from llama_pipeline.payloads import Endpoint
from llama_pipeline.transform.pools import ParsedPools, chains_and_projects, parse_pools
from llama_pipeline.transform.protocols import ListedProtocols, listed_protocols, protocol_chain_spellings
from llama_pipeline.warehouse import Warehouse

# Two days per endpoint: the day being loaded and the one before (a range run's asset boundary).
MAX_ENTRIES = 4


@dataclasses.dataclass(frozen=True)
class PoolsDay:
    """A day's /pools payload, parsed: the rows of pools and pool_snapshots, and the chain spellings
    and project slugs of its pools."""

    parsed: ParsedPools
    chain_spellings: dict[str, set[str]]
    projects: frozenset[str]


@dataclasses.dataclass(frozen=True)
class ProtocolsDay:
    """A day's /protocols payload, parsed: the listed projects' rows and the chain spellings."""

    listed: ListedProtocols
    chain_spellings: dict[str, set[str]]


_entries: collections.OrderedDict[tuple, PoolsDay | ProtocolsDay] = collections.OrderedDict()
_lock = threading.Lock()
stats = collections.Counter()  # hits and misses, for tests and the benchmark


def _parse(endpoint: Endpoint, records: list, day: dt.date) -> PoolsDay | ProtocolsDay:
    if endpoint == "pools":
        spellings, projects = chains_and_projects(records)
        return PoolsDay(parse_pools(records, day), spellings, frozenset(projects))
    return ProtocolsDay(listed_protocols(records, day), protocol_chain_spellings(records))


def _get(warehouse: Warehouse, endpoint: Endpoint, day: dt.date) -> PoolsDay | ProtocolsDay:
    key = (endpoint, day, raw_archive.stored_sha256(warehouse, endpoint, day))
    with _lock:
        found = _entries.get(key)
        if found is not None:
            _entries.move_to_end(key)
            stats["hits"] += 1
            return found
    stats["misses"] += 1
    payload = raw_archive.load(warehouse, endpoint, day)
    with paused_gc():
        parsed = _parse(endpoint, payload.records(), day)
    # Keyed by what was read: a payload replaced since the lookup above is cached as itself.
    _keep((endpoint, day, payload.sha256), parsed)
    return parsed


def _keep(key: tuple, parsed: PoolsDay | ProtocolsDay) -> None:
    with _lock:
        _entries[key] = parsed
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)


def remember(endpoint: Endpoint, day: dt.date, sha256: str, records: list) -> None:
    """Parse the records a raw asset has just fetched and decoded, under the body's SHA-256: the
    warehouse assets that replay the same stored body then skip reading, decoding and parsing it."""
    with paused_gc():
        parsed = _parse(endpoint, records, day)
    _keep((endpoint, day, sha256), parsed)


def pools_day(archive: raw_archive.RawArchive, day: dt.date) -> PoolsDay:
    """The day's parsed /pools payload; raises ``MissingPayload`` when none is stored."""
    if archive.endpoint != "pools":
        raise ValueError(f"pools_day needs the /pools archive, got /{archive.endpoint}")
    return _get(archive.warehouse, "pools", day)  # type: ignore[return-value]


def protocols_day(archive: raw_archive.RawArchive, day: dt.date) -> ProtocolsDay:
    """The day's parsed /protocols payload; raises ``MissingPayload`` when none is stored."""
    if archive.endpoint != "protocols":
        raise ValueError(f"protocols_day needs the /protocols archive, got /{archive.endpoint}")
    return _get(archive.warehouse, "protocols", day)  # type: ignore[return-value]


def clear() -> None:
    """Forget every parsed payload (the counters in ``stats`` are kept)."""
    with _lock:
        _entries.clear()


def cached() -> int:
    """How many parsed payloads are held."""
    return len(_entries)
