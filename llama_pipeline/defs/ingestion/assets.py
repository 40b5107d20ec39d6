"""The two HTTP payloads, archived losslessly per day in ``raw_payloads``."""

import dataclasses
import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import dagster as dg

from llama_pipeline import lineage, parsed_payloads, quality, raw_archive, schema
from llama_pipeline.gc_pause import paused_gc
from llama_pipeline.http_client import DefiLlamaClient, FetchError
from llama_pipeline.io_manager import ARCHIVE, table_metadata
from llama_pipeline.partitions import DAILY, days_of, utc_today
from llama_pipeline.payloads import Endpoint, PayloadError, RawPayload, compress, decode_records
from llama_pipeline.raw_archive import FetchedPayloads
from llama_pipeline.warehouse import Warehouse


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _refuse_collapsed(warehouse: Warehouse, endpoint: Endpoint, day: dt.date, count: int) -> None:
    """A payload far smaller than the previous stored day's is refused before it replaces anything: the
    blocking check ``pool_count_not_collapsed`` would keep it out of the tables, but not out of the
    archive, where it would replace a full payload of the same day."""
    fraction = quality.min_pool_fraction()
    with warehouse.connection() as conn:
        db = quality.Warehouse(conn, warehouse.schema_name)
        previous = db.previous_payload_day(endpoint, day)
        previous_count = db.record_count(endpoint, previous) if previous else None
    if previous_count and count < fraction * previous_count:
        raise dg.Failure(
            description=f"/{endpoint} sent {count:,} records, fewer than {fraction:.0%} of the {previous_count:,} "
            f"stored for {previous.isoformat()}: refusing to store it over {day.isoformat()}. If the drop is real, "
            "set LLAMA_MIN_POOL_FRACTION lower (0 disables this guard) and run again.",
            allow_retries=False,  # the CDN refreshes hourly: a retry minutes later would see the same
        )


def _failure(error: FetchError | PayloadError, today: dt.date) -> dg.Failure:
    """A Failure puts the reason at the top of the run's page instead of under a stack trace. Only a
    fetch that ran out of attempts is worth the RetryPolicy's later retries; a payload that arrived whole
    but is unusable would fail the same way again, and so would a host name that does not resolve (no
    network, or a wrong URL)."""
    retry = isinstance(error, FetchError) and not error.unresolvable
    hint = (" No network? Point SOURCE_URL / PROTOCOLS_URL at a mirror or at file:// copies."
            if isinstance(error, FetchError) and error.unresolvable else "")
    return dg.Failure(description=f"{error} Nothing was written for {today.isoformat()}.{hint}",
                      allow_retries=retry)


def collect_payloads(
    context: dg.AssetExecutionContext, endpoint: Endpoint, url: str, client: DefiLlamaClient, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Fetch today's payload and keep the stored payloads of past days.

    DeFiLlama serves only the present, so a past day is never fetched: filling it with today's data
    would silently falsify history. A past day with no stored payload is left without one (and said
    so); its snapshots come from the pools' chart history (``raw_pool_charts``) or, when there is none
    either, ``pool_snapshots`` fails for that day saying what to do.
    """
    days = days_of(context.partition_time_window)
    today = utc_today()
    stored = raw_archive.stored_days(warehouse, endpoint, days)
    missing = [day for day in days if day != today and day not in stored]
    fetched: list[RawPayload] = []
    metadata: dict = {"endpoint": endpoint, "source_url": _without_credentials(url),
                      "days_without_payload": len(missing)}
    if missing:
        shown = ", ".join(d.isoformat() for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
        context.log.warning(
            f"no /{endpoint} payload is stored for {len(missing)} past day(s) ({shown}) and /{endpoint} serves only "
            f"today ({today.isoformat()} UTC): those days are not fetched; their snapshots come from chart history"
        )
    if today in days:
        try:
            response = client.fetch(url)
        except FetchError as error:
            raise _failure(error, today) from error
        # zstd releases the GIL: the body is compressed for the archive on the other core while this
        # thread decodes and parses it (together ~0.15 s of a full day's /pools).
        with ThreadPoolExecutor(max_workers=1) as background:
            compressing = background.submit(compress, response.body)
            try:
                with paused_gc():
                    records = decode_records(endpoint, response.body, _without_credentials(url))
            except PayloadError as error:
                raise _failure(error, today) from error
            _refuse_collapsed(warehouse, endpoint, today, len(records))
            payload = RawPayload(endpoint, today, _without_credentials(url), response.fetched_at, response.status,
                                 response.content_type, response.body, len(records))
            # Runs execute in one process: the warehouse assets downstream reuse this parse of today's body.
            parsed_payloads.remember(endpoint, today, payload.sha256, records)
            fetched.append(dataclasses.replace(payload, compressed_body=compressing.result()))
        metadata.update(
            {
                "dagster/row_count": len(records),
                "size_bytes": len(response.body),
                "sha256": fetched[0].sha256,
                "http_attempts": response.attempts,
                "fetched_at": response.fetched_at.isoformat(),
            }
        )
        context.log.info(f"fetched /{endpoint}: {len(records):,} records, {len(response.body):,} bytes")
    kept = tuple(sorted(stored - {today}))
    if kept:
        context.log.info(f"kept the stored /{endpoint} payload of {len(kept)} past day(s)")
    return dg.MaterializeResult(value=FetchedPayloads(endpoint, tuple(fetched), kept), metadata=metadata)


# An outage longer than the HTTP client's own retries (about two minutes): retry the step after about
# delay, 3x delay and 7x delay seconds (exponential, +/- delay of jitter). LLAMA_FETCH_RETRY_DELAY
# (default 30 s) is read when the definitions load.
FETCH_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3,
    delay=float(os.environ.get("LLAMA_FETCH_RETRY_DELAY") or 30),
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)

_COMMON = dict(
    partitions_def=DAILY,
    group_name="ingestion",
    retry_policy=FETCH_RETRY_POLICY,
    kinds={"python", "postgres"},
    io_manager_key="warehouse_io_manager",
    backfill_policy=dg.BackfillPolicy.single_run(),
    owners=["team:data-engineering"],
)


@dg.asset(metadata={**table_metadata(schema.raw_payloads, ARCHIVE), "endpoint": "pools",
                    **lineage.metadata_for("raw_pools")}, **_COMMON)
def raw_pools(
    context: dg.AssetExecutionContext, defillama: DefiLlamaClient, warehouse: Warehouse
) -> dg.MaterializeResult:
    """The /pools payload (every yield pool's current state) for the day, stored byte for byte.

    Today's partition fetches SOURCE_URL and replaces today's stored payload; a past day keeps its
    stored payload, so downstream assets replay exactly what was fetched, with no network.
    """
    return collect_payloads(context, "pools", defillama.pools_url, defillama, warehouse)


@dg.asset(metadata={**table_metadata(schema.raw_payloads, ARCHIVE), "endpoint": "protocols",
                    **lineage.metadata_for("raw_protocols")}, **_COMMON)
def raw_protocols(
    context: dg.AssetExecutionContext, defillama: DefiLlamaClient, warehouse: Warehouse
) -> dg.MaterializeResult:
    """The /protocols payload (every DeFiLlama protocol with its metadata and TVL) for the day, stored
    byte for byte.

    Today's partition fetches PROTOCOLS_URL and replaces today's stored payload; a past day keeps its
    stored payload.
    """
    return collect_payloads(context, "protocols", defillama.protocols_url, defillama, warehouse)
