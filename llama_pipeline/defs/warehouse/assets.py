"""Dimensions (chains, projects, pools, upserted) and daily facts (pool_snapshots), built from the
archived payloads one day at a time."""

import datetime as dt

import dagster as dg

from llama_pipeline import history, lineage, schema
from llama_pipeline.day_metadata import failed_days_message
from llama_pipeline.parsed_payloads import pool_names, pools_day, protocol_chain_names, protocols_day
from llama_pipeline.defs.ingestion.charts import raw_pool_charts
from llama_pipeline.io_manager import REPLACE_PARTITION, UPSERT, table_metadata
from llama_pipeline.partitions import DAILY
from llama_pipeline.raw_archive import MissingPayload, RawArchive
from llama_pipeline.transform.batches import DailyBatch, DailyBatches
from llama_pipeline.decode.pools import snapshot_summary
from llama_pipeline.decode.protocols import chain_rows, with_placeholders
from llama_pipeline.warehouse import Warehouse
from llama_pipeline.warehouse_lock import quote_ident

_COMMON = dict(
    partitions_def=DAILY,
    group_name="warehouse",
    kinds={"postgres", "pandas"},
    io_manager_key="warehouse_io_manager",
    backfill_policy=dg.BackfillPolicy.single_run(),
    owners=["team:data-engineering"],
)


def _from_history(warehouse: Warehouse, table: str, day: dt.date) -> DailyBatch:
    """A day with no stored /pools payload: the dimension rows its chart points name."""
    with warehouse.connection() as conn:
        rows = history.history_dimension_rows(conn, warehouse.schema_name, table, day)
    return DailyBatch(day, rows, summary={"source": "chart"}, seen_only=True)


def refuse_days_without_data(warehouse: Warehouse, asset: str, days: tuple[dt.date, ...]) -> None:
    """Fail, before anything is written, when a day of the run has neither a stored /pools payload nor
    stored chart points: every table built from /pools would be a green, empty day. Every such day is
    named on a line of its own, so a failed backfill says which days and why."""
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT d::date FROM unnest(%s::date[]) AS d WHERE NOT EXISTS (SELECT 1 FROM "
            f"{quote_ident(warehouse.schema_name)}.raw_payloads r WHERE r.endpoint = 'pools' AND r.partition_date = d) "
            f"AND NOT EXISTS (SELECT 1 FROM {quote_ident(warehouse.schema_name)}.pool_chart_points c "
            "WHERE c.snapshot_date = d) ORDER BY 1",
            (list(days),),
        )
        empty = [row[0] for row in cur.fetchall()]
    if empty:
        raise dg.Failure(description=failed_days_message(
            f"{asset} (nothing to load)", len(days),
            [(day, "neither a stored /pools payload nor stored chart history, and /pools serves only today: a past "
              "day is never filled with today's data. Materialize raw_pool_charts for this day (with the rest of "
              "the graph) to fill it from DeFiLlama's per-pool history.") for day in empty]))


@dg.asset(metadata={**table_metadata(schema.chains, UPSERT), **lineage.metadata_for("chains")},
          deps=[raw_pool_charts], **_COMMON)
def chains(raw_pools: RawArchive, raw_protocols: RawArchive, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per blockchain network under its canonical name, with every spelling that /pools and
    /protocols used for it (``BSC``/``Binance``, ``Gnosis``/``xDai`` ...) folded together by the alias
    map."""

    def build(day: dt.date) -> DailyBatch:
        try:
            pool_spellings = pool_names(raw_pools, day).chain_spellings
        except MissingPayload:
            return _from_history(warehouse, "chains", day)
        try:
            protocol_spellings = protocol_chain_names(raw_protocols, day)
        except MissingPayload:  # /protocols failed that day while /pools worked: the pools' chains only
            protocol_spellings = {}
        return DailyBatch(day, chain_rows(day, pool_spellings, protocol_spellings))

    refuse_days_without_data(warehouse, "chains", raw_pools.days)
    return dg.MaterializeResult(value=DailyBatches(raw_pools.days, build))


@dg.asset(metadata={**table_metadata(schema.projects, UPSERT), **lineage.metadata_for("projects")},
          deps=[raw_pool_charts], **_COMMON)
def projects(raw_protocols: RawArchive, raw_pools: RawArchive, warehouse: Warehouse) -> dg.MaterializeResult:
    """Every DeFiLlama protocol keyed by slug: identifiers, category, chains, audits, parent, descriptive
    metadata and TVL/market figures, plus a placeholder row for each project a pool names that
    /protocols lacks, so that every pool joins a project."""

    def build(day: dt.date) -> DailyBatch:
        try:
            pool_projects = pool_names(raw_pools, day).projects
        except MissingPayload:
            return _from_history(warehouse, "projects", day)
        try:
            listed = protocols_day(raw_protocols, day).listed
        except MissingPayload:
            # /protocols failed that day while /pools worked, and a past day can never be fetched again:
            # the pools' projects keep their stored attributes, and the day still loads.
            with warehouse.connection() as conn:
                rows = history.carried_projects(conn, warehouse.schema_name, pool_projects, day)
            return DailyBatch(day, rows, summary={"protocols_payload": "missing"}, seen_only=True)
        parsed = with_placeholders(listed, pool_projects, day)
        return DailyBatch(day, parsed.projects, parsed.rejects, {"invalid_values": parsed.invalid_values})

    refuse_days_without_data(warehouse, "projects", raw_pools.days)
    return dg.MaterializeResult(value=DailyBatches(raw_protocols.days, build))


@dg.asset(metadata={**table_metadata(schema.pools, UPSERT), **lineage.metadata_for("pools")},
          # project_renames compares the day's slugs with the stored ones before pools replaces them
          deps=[chains, projects, raw_pool_charts, dg.AssetKey("project_renames")], **_COMMON)
def pools(raw_pools: RawArchive, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per yield pool (by DeFiLlama's stable pool id): chain, project, symbol, pool_meta,
    exposure, IL risk, stablecoin flag, underlying and reward tokens, and the first and last day seen.
    Attributes are those of the newest day loaded."""

    def build(day: dt.date) -> DailyBatch:
        try:
            parsed = pools_day(raw_pools, day).parsed
        except MissingPayload:
            return _from_history(warehouse, "pools", day)
        return DailyBatch(day, parsed.pools, parsed.rejects)

    refuse_days_without_data(warehouse, "pools", raw_pools.days)
    return dg.MaterializeResult(value=DailyBatches(raw_pools.days, build))


@dg.asset(
    metadata={**table_metadata(schema.pool_snapshots, REPLACE_PARTITION, partition_expr="snapshot_date"),
              **lineage.metadata_for("pool_snapshots")},
    deps=[pools, raw_pool_charts],
    **_COMMON,
)
def pool_snapshots(raw_pools: RawArchive, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per pool per day with every daily metric of /pools: TVL, APY and its parts, APY changes,
    7- and 30-day figures, volumes, mu/sigma/count, outlier flag and DeFiLlama's prediction. A day is
    replaced as a whole when re-materialized. A past day without a stored /pools payload is filled from
    the pools' chart history (TVL and APY figures; the columns a chart lacks stay NULL)."""

    def build(day: dt.date) -> DailyBatch:
        try:
            parsed = pools_day(raw_pools, day).parsed
        except MissingPayload:  # refuse_days_without_data made sure the day has chart points
            with warehouse.connection() as conn:
                rows = history.chart_snapshots(conn, warehouse.schema_name, day)
            summary = {**snapshot_summary(rows), "source": "chart",
                       "columns_not_in_chart": ", ".join(history.NOT_IN_CHART)}
            return DailyBatch(day, rows, summary=summary)
        summary = {**snapshot_summary(parsed.snapshots), "source": "pools", "invalid_values": parsed.invalid_values}
        return DailyBatch(day, parsed.snapshots, parsed.rejects, summary)

    refuse_days_without_data(warehouse, "pool_snapshots", raw_pools.days)
    return dg.MaterializeResult(value=DailyBatches(raw_pools.days, build))
