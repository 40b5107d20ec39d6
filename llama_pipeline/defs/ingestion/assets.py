"""The two HTTP payloads, archived losslessly per day in ``raw_payloads``."""

import dataclasses
import datetime as dt
import os
from urllib.parse import urlsplit, urlunsplit

import dagster as dg

from llama_pipeline import clock, lineage, schema
from llama_pipeline.decode import pools as pools_model
from llama_pipeline.decode import protocols as protocols_model
from llama_pipeline.decode.decoded_payloads import DecodedPayloads
from llama_pipeline.fetch import day_sources, quarantine, raw_archive
from llama_pipeline.fetch.http_client import DefiLlamaClient, FetchError
from llama_pipeline.fetch.payloads import Endpoint, PayloadError, RawPayload, compress, decode_records
from llama_pipeline.fetch.raw_archive import FetchedPayloads
from llama_pipeline.partitions import DAILY, days_of
from llama_pipeline.quality import rules as quality
from llama_pipeline.write.table_write import ARCHIVE, table_metadata
from llama_pipeline.write.warehouse import Warehouse


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Refused(Exception):
    """A capture that arrived whole but must not be used; the message is the reason kept with it."""


def _check_collapsed(warehouse: Warehouse, endpoint: Endpoint, day: dt.date, count: int) -> None:
    """A payload far smaller than the previous stored day's is refused before it replaces anything: the
    blocking check ``pool_count_not_collapsed`` would keep it out of the tables, but not out of the
    archive, where it would replace a full payload of the same day."""
    fraction = quality.min_pool_fraction()
    with warehouse.connection() as conn:
        db = quality.Warehouse(conn, warehouse.schema_name)
        previous = db.previous_payload_day(endpoint, day)
        previous_count = db.record_count(endpoint, previous) if previous else None
    if previous_count and count < fraction * previous_count:
        raise Refused(
            f"/{endpoint} sent {count:,} records, fewer than {fraction:.0%} of the {previous_count:,} stored for "
            f"{previous.isoformat()}. If the drop is real, set LLAMA_MIN_POOL_FRACTION lower (0 disables this "
            "guard) and run again."
        )


def _validate(warehouse: Warehouse, endpoint: Endpoint, day: dt.date, payload: RawPayload) -> tuple[int, object]:
    """The capture's record count and its decode (what the warehouse step would decode again), or Refused
    saying why it cannot stand for the day."""
    if payload.fetched_at >= clock.day_end(day):
        raise Refused(f"/{endpoint} answered at {payload.fetched_at.isoformat()}, after {day.isoformat()} ended: "
                      "it describes the next day")
    try:
        # /pools and /protocols are judged by their models' decode, as the warehouse step will read the stored
        # body: one the model cannot read as a whole is refused here, before it can replace a good capture.
        # The decode (/pools' rows, /protocols' records) goes to this run's warehouse step (``decoded_payloads``),
        # which then need not decode the stored body again.
        if endpoint == "pools":
            decoded = pools_model.parse_pools(payload.body, day, payload.url)
            count = decoded.record_count
        elif endpoint == "protocols":
            decoded = protocols_model.decode_body(payload.body, payload.url)
            count = len(decoded.records)
        else:  # the datasets' payloads: parsed by their own assets
            decoded = None
            count = len(decode_records(endpoint, payload.body, payload.url))
    except PayloadError as error:
        raise Refused(str(error)) from error
    except Exception as error:  # a parser fault must not lose the capture either
        raise Refused(f"decoding the /{endpoint} payload failed: {type(error).__name__}: {error}") from error
    _check_collapsed(warehouse, endpoint, day, count)
    return count, decoded


def _fetch_failure(error: FetchError, day: dt.date) -> dg.Failure:
    """A Failure puts the reason at the top of the run's page instead of under a stack trace. Only what a
    later attempt can get past (an outage, 408, 429, 5xx) is left to the RetryPolicy; a 4xx or a host
    name that does not resolve (no network, or a wrong URL) would fail the same way again."""
    hint = (" No network? Point SOURCE_URL / PROTOCOLS_URL at a mirror or at file:// copies."
            if error.unresolvable else "")
    return dg.Failure(description=f"{error} Nothing was written for {day.isoformat()}.{hint}",
                      allow_retries=error.retryable)


def _run_id(context: dg.AssetExecutionContext) -> str | None:
    try:
        return context.run.run_id
    except dg.DagsterError:  # invoked directly (build_asset_context): there is no run
        return None


def _kept_capture(endpoint: Endpoint, day: dt.date, stored: dict[dt.date, dt.datetime]) -> str:
    if day in stored:
        return f"{day.isoformat()} keeps the /{endpoint} capture fetched at {stored[day].isoformat()}"
    return f"{day.isoformat()} has no /{endpoint} capture"


def _capture_today(context: dg.AssetExecutionContext, endpoint: Endpoint, url: str, client: DefiLlamaClient,
                   warehouse: Warehouse, today: dt.date, stored: dict[dt.date, dt.datetime],
                   decoded_payloads: DecodedPayloads | None) -> tuple[RawPayload, int, int]:
    """Fetch today's payload, hold it in the quarantine before anything parses it, and validate it.

    Returns the payload (with its record count), its
    quarantine id (which the IO manager releases when it stores the payload) and the HTTP attempts."""
    try:
        response = client.fetch(url)
    except FetchError as error:
        raise _fetch_failure(error, today) from error
    payload = RawPayload(endpoint, today, _without_credentials(url), response.fetched_at, response.status,
                         response.content_type, response.body, 0, compressed_body=compress(response.body),
                         body_sha256=response.sha256)
    held = quarantine.hold(warehouse, payload, _run_id(context))
    try:
        count, decoded = _validate(warehouse, endpoint, today, payload)
    except Refused as refusal:
        quarantine.refuse(warehouse, held, endpoint, str(refusal))
        raise dg.Failure(
            description=f"refused the /{endpoint} capture for {today.isoformat()}: {refusal} It is kept aside in "
            f"{quarantine.where(warehouse, held)} and used nowhere; {_kept_capture(endpoint, today, stored)}.",
            metadata={"quarantine_id": held, "reason": str(refusal)},
            allow_retries=False,  # the same response would be refused again; the capture sensor tries later
        ) from refusal
    payload = dataclasses.replace(payload, record_count=count)
    if decoded_payloads is not None and decoded is not None:  # for this run's warehouse step
        decoded_payloads.hold(endpoint, today, payload.sha256, decoded)
    context.log.info(f"fetched /{endpoint}: {count:,} records, {len(payload.body):,} bytes, "
                     f"at {payload.fetched_at.isoformat()}")
    return payload, held, response.attempts


def collect_payloads(
    context: dg.AssetExecutionContext, endpoint: Endpoint, url: str, client: DefiLlamaClient, warehouse: Warehouse,
    decoded_payloads: DecodedPayloads | None = None,
) -> dg.MaterializeResult:
    """Fetch today's payload and keep the stored payloads of past days.

    DeFiLlama serves only the present, so a day that has ended (by ``llama_pipeline.clock``) is never
    fetched, whenever its run starts: filling it with today's data would silently falsify history. It
    keeps its stored capture (and says which, fetched when), or is left without one. A past day without
    one is materialized only when something else fills it (``day_sources``: the chart history that
    ``raw_pool_charts``, upstream of this asset, stored before this step, or for /protocols the day's
    /pools capture), and its metadata says where its rows come from; when nothing does, the step fails
    before it fetches or writes anything, naming every such day: a day with no data is not reported as
    materialized.
    """
    days = days_of(context.partition_time_window)
    today = clock.today()
    stored = raw_archive.stored_captures(warehouse, endpoint, days)
    missing = [day for day in days if day != today and day not in stored]
    sources = day_sources.judge(warehouse, endpoint, len(days), missing)
    if sources.empty:
        raise dg.Failure(description=sources.failure_message(),
                         metadata={"days_without_data": len(sources.empty)},
                         allow_retries=False)  # nothing a retry of this run could change
    metadata: dict = {"endpoint": endpoint, "source_url": _without_credentials(url),
                      "days_without_payload": len(missing)}
    if missing:
        shown = ", ".join(d.isoformat() for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
        context.log.warning(
            f"no /{endpoint} payload is stored for {len(missing)} past day(s) ({shown}) and /{endpoint} serves only "
            f"today ({today.isoformat()} UTC): those days are not fetched; each day's materialization says where "
            "its rows come from"
        )
    kept = tuple(sorted(day for day in stored if day != today))
    if kept:
        metadata["kept_fetched_at"] = dg.MetadataValue.json({d.isoformat(): stored[d].isoformat() for d in kept[-60:]})
    if len(days) == 1 and days[0] != today:
        said = _kept_capture(endpoint, days[0], stored)
        context.log.info(f"{said}: the day is not today ({today.isoformat()} UTC), so nothing is fetched")
        metadata["capture_kept"] = said
        if days[0] in stored:
            metadata["fetched_at"] = stored[days[0]].isoformat()
    elif kept:
        context.log.info(f"kept the stored /{endpoint} payload of {len(kept)} past day(s)")
    fetched, held = (), ()
    if today in days:
        payload, held_id, attempts = _capture_today(context, endpoint, url, client, warehouse, today, stored,
                                                    decoded_payloads)
        fetched, held = (payload,), (held_id,)
        metadata.update({"dagster/row_count": payload.record_count, "size_bytes": len(payload.body),
                         "sha256": payload.sha256, "http_attempts": attempts,
                         "fetched_at": payload.fetched_at.isoformat()})
    return dg.MaterializeResult(value=FetchedPayloads(endpoint, fetched, kept, held, sources.filled),
                                metadata=metadata)


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
    # The pools' chart history of the run is stored first, so that a past day without a capture is
    # judged by what is really there (day_sources), not by what a later step might fetch.
    deps=[dg.AssetKey("raw_pool_charts")],
)


@dg.asset(metadata={**table_metadata(schema.raw_payloads, ARCHIVE), "endpoint": "pools",
                    **lineage.metadata_for("raw_pools")}, **_COMMON)
def raw_pools(
    context: dg.AssetExecutionContext, defillama: DefiLlamaClient, warehouse: Warehouse,
    decoded_payloads: DecodedPayloads,
) -> dg.MaterializeResult:
    """The /pools payload (every yield pool's current state) for the day, stored byte for byte.

    Today's partition fetches SOURCE_URL and replaces today's stored payload; a past day keeps its
    stored payload, so downstream assets replay exactly what was fetched, with no network.
    """
    return collect_payloads(context, "pools", defillama.pools_url, defillama, warehouse, decoded_payloads)


@dg.asset(metadata={**table_metadata(schema.raw_payloads, ARCHIVE), "endpoint": "protocols",
                    **lineage.metadata_for("raw_protocols")}, **_COMMON)
def raw_protocols(
    context: dg.AssetExecutionContext, defillama: DefiLlamaClient, warehouse: Warehouse,
    decoded_payloads: DecodedPayloads,
) -> dg.MaterializeResult:
    """The /protocols payload (every DeFiLlama protocol with its metadata and TVL) for the day, stored
    byte for byte.

    Today's partition fetches PROTOCOLS_URL and replaces today's stored payload; a past day keeps its
    stored payload.
    """
    return collect_payloads(context, "protocols", defillama.protocols_url, defillama, warehouse, decoded_payloads)
