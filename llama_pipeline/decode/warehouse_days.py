"""Each day's rows of chains, projects, pools and pool_snapshots, built from that day's stored /pools
and /protocols payloads, each decoded once for all four tables.

A day without a stored /pools payload (a past day: /pools serves only today) is filled from the pools'
chart history (``history``); a day whose /protocols is missing keeps the stored projects' attributes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from llama_pipeline.decode import chart_days as history  # the reads that fill a past day from chart points
from llama_pipeline.decode.decoded_payloads import FROM_RAW_STEP, FROM_STORED_BODY, NO_PAYLOAD, DecodedPayloads
from llama_pipeline.decode.pools import ParsedPools, parse_pools, snapshot_summary
from llama_pipeline.decode.protocols import (ListedProtocols, ProtocolRecords, chain_rows, listed_from,
                                             listed_protocols, with_placeholders)
from llama_pipeline.fetch import raw_archive
from llama_pipeline.fetch.raw_archive import MissingPayload
from llama_pipeline.write.batches import DailyBatch
from llama_pipeline.write.warehouse import Warehouse


@dataclasses.dataclass(frozen=True)
class DecodedDay:
    """What a day's stored payloads hold for the warehouse tables (None: no payload stored that day)."""

    day: dt.date
    pools: ParsedPools | None = None
    pool_chain_spellings: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    pool_projects: frozenset[str] = frozenset()
    protocols: ListedProtocols | None = None
    protocol_chain_spellings: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    payloads_decoded: int = 0  # stored bodies decoded here (not counting decodes taken from the raw steps)
    # endpoint -> where its decode came from (``decoded_payloads``' words), for the day's metadata
    sources: dict[str, str] = dataclasses.field(default_factory=dict)


def decode_day(warehouse: Warehouse, day: dt.date, *, protocols: bool,
               decoded_payloads: DecodedPayloads | None = None) -> DecodedDay:
    """The day's /pools (and, when asked, /protocols) payload decoded once: taken from this run's raw
    step when it decoded the very body stored for the day, else read from the archive and decoded.

    The one place where the warehouse assets call the parsers."""
    parsed, source = _pools_of(warehouse, day, decoded_payloads)
    if parsed is None:
        if decoded_payloads is not None:
            decoded_payloads.drop("protocols", day)
        return DecodedDay(day, sources={"pools": NO_PAYLOAD})
    decoded = DecodedDay(day, parsed, parsed.chain_spellings, frozenset(parsed.pools["project"]),
                         payloads_decoded=int(source == FROM_STORED_BODY), sources={"pools": source})
    if not protocols:
        if decoded_payloads is not None:
            decoded_payloads.drop("protocols", day)  # not needed by this step: not kept for the run's rest
        return decoded
    listed, source = _protocols_of(warehouse, day, decoded_payloads)
    sources = {**decoded.sources, "protocols": source}
    if listed is None:  # /protocols failed that day while /pools worked
        return dataclasses.replace(decoded, sources=sources)
    return dataclasses.replace(decoded, protocols=listed, protocol_chain_spellings=listed.chain_spellings,
                               payloads_decoded=decoded.payloads_decoded + int(source == FROM_STORED_BODY),
                               sources=sources)


def _held(warehouse: Warehouse, endpoint: str, day: dt.date, decoded_payloads: DecodedPayloads | None) -> object:
    """This run's raw-step decode of the body stored for the day, if it holds one (None otherwise)."""
    if decoded_payloads is None or not decoded_payloads.holds(endpoint, day):
        return None  # a past day of a range, or nothing held: no query for the stored body's SHA-256
    try:
        sha256 = raw_archive.stored_sha256(warehouse, endpoint, day)
    except MissingPayload:
        decoded_payloads.drop(endpoint, day)
        return None
    return decoded_payloads.take(endpoint, day, sha256)


def _pools_of(warehouse: Warehouse, day: dt.date,
              decoded_payloads: DecodedPayloads | None) -> tuple[ParsedPools | None, str]:
    held = _held(warehouse, "pools", day, decoded_payloads)
    if isinstance(held, ParsedPools):
        return held, FROM_RAW_STEP
    try:
        payload = raw_archive.load(warehouse, "pools", day)
    except MissingPayload:
        return None, NO_PAYLOAD
    # the body is the largest object of the day: only the parse outlives this call
    return parse_pools(payload.body, day, payload.url), FROM_STORED_BODY


def _protocols_of(warehouse: Warehouse, day: dt.date,
                  decoded_payloads: DecodedPayloads | None) -> tuple[ListedProtocols | None, str]:
    held = _held(warehouse, "protocols", day, decoded_payloads)
    if isinstance(held, ProtocolRecords):
        return listed_from(held, day), FROM_RAW_STEP
    try:
        payload = raw_archive.load(warehouse, "protocols", day)
    except MissingPayload:
        return None, NO_PAYLOAD
    return listed_protocols(payload.body, day, payload.url), FROM_STORED_BODY


def _from_history(warehouse: Warehouse, table: str, day: dt.date) -> DailyBatch:
    """A day with no stored /pools payload: the dimension rows its chart points name."""
    with warehouse.connection() as conn:
        rows = history.history_dimension_rows(conn, warehouse.schema_name, table, day)
    return DailyBatch(day, rows, summary={"source": "chart"}, seen_only=True)


def chains(warehouse: Warehouse, decoded: DecodedDay) -> DailyBatch:
    """One row per blockchain network under its canonical name, with every spelling that /pools and
    /protocols used for it (``BSC``/``Binance``, ``Gnosis``/``xDai`` ...) folded together by the alias
    map."""
    if decoded.pools is None:
        return _from_history(warehouse, "chains", decoded.day)
    # /protocols missing that day while /pools worked: the pools' chains only
    return DailyBatch(decoded.day, chain_rows(decoded.day, decoded.pool_chain_spellings,
                                              decoded.protocol_chain_spellings))


def projects(warehouse: Warehouse, decoded: DecodedDay) -> DailyBatch:
    """Every DeFiLlama protocol keyed by slug: identifiers, category, chains, audits, parent, descriptive
    metadata and TVL/market figures, plus a placeholder row for each project a pool names that
    /protocols lacks, so that every pool joins a project."""
    day = decoded.day
    if decoded.pools is None:
        return _from_history(warehouse, "projects", day)
    if decoded.protocols is None:
        # /protocols failed that day while /pools worked, and a past day can never be fetched again:
        # the pools' projects keep their stored attributes, and the day still loads.
        with warehouse.connection() as conn:
            rows = history.carried_projects(conn, warehouse.schema_name, decoded.pool_projects, day)
        return DailyBatch(day, rows, summary={"protocols_payload": "missing"}, seen_only=True)
    parsed = with_placeholders(decoded.protocols, decoded.pool_projects, day)
    return DailyBatch(day, parsed.projects, parsed.rejects, {"invalid_values": parsed.invalid_values})


def pools(warehouse: Warehouse, decoded: DecodedDay) -> DailyBatch:
    """One row per yield pool (by DeFiLlama's stable pool id): chain, project, symbol, pool_meta,
    exposure, IL risk, stablecoin flag, underlying and reward tokens, and the first and last day seen.
    Attributes are those of the newest day loaded."""
    if decoded.pools is None:
        return _from_history(warehouse, "pools", decoded.day)
    return DailyBatch(decoded.day, decoded.pools.pools, decoded.pools.rejects)


def pool_snapshots(warehouse: Warehouse, decoded: DecodedDay) -> DailyBatch:
    """One row per pool per day with every daily metric of /pools: TVL, APY and its parts, APY changes,
    7- and 30-day figures, volumes, mu/sigma/count, outlier flag and DeFiLlama's prediction. A day is
    replaced as a whole when re-materialized. A past day without a stored /pools payload is filled from
    the pools' chart history (TVL and APY figures; the columns a chart lacks stay NULL)."""
    day, parsed = decoded.day, decoded.pools
    if parsed is None:  # refuse_days_without_data made sure the day has chart points
        with warehouse.connection() as conn:
            rows = history.chart_snapshots(conn, warehouse.schema_name, day)
        summary = {**snapshot_summary(rows), "source": "chart",
                   "columns_not_in_chart": ", ".join(history.NOT_IN_CHART)}
        return DailyBatch(day, rows, summary=summary)
    summary = {**snapshot_summary(parsed.snapshots), "source": "pools", "invalid_values": parsed.invalid_values}
    return DailyBatch(day, parsed.snapshots, parsed.rejects, summary)
