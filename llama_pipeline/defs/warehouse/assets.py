"""Dimensions (chains, projects, pools, upserted), project renames and daily facts (pool_snapshots),
computed in one step from the archived payloads: each day's /pools and /protocols payloads are decoded
once for all of them (``warehouse_days``), and the IO manager writes what the step returns."""

import datetime as dt
import inspect
from collections.abc import Iterator

import dagster as dg

from llama_pipeline import lineage, schema
from llama_pipeline.decode import warehouse_days
from llama_pipeline.decode.decoded_payloads import DecodedPayloads
from llama_pipeline.fetch import day_sources, raw_archive
from llama_pipeline.partitions import DAILY, days_of
from llama_pipeline.schema_datasets import project_renames as renames_table
from llama_pipeline.write.copy_ahead import CopyAhead
from llama_pipeline.write.dimension_merge import FoldedDays
from llama_pipeline.write.project_renames_store import Move, moved_pools, record_renames
from llama_pipeline.write.spooled_rows import SpooledDays
from llama_pipeline.write.table_write import REPLACE_PARTITION, UPSERT, column_schema, table_metadata
from llama_pipeline.write.warehouse import Warehouse

CHAINS, PROJECTS, POOLS, POOL_SNAPSHOTS = (dg.AssetKey(name) for name in
                                           ("chains", "projects", "pools", "pool_snapshots"))
PROJECT_RENAMES = dg.AssetKey("project_renames")
RAW_POOLS, RAW_PROTOCOLS, RAW_POOL_CHARTS = (dg.AssetKey(name) for name in
                                             ("raw_pools", "raw_protocols", "raw_pool_charts"))
DIMENSIONS = {CHAINS: schema.chains, PROJECTS: schema.projects, POOLS: schema.pools}


def _description(build) -> str:
    return inspect.cleandoc(build.__doc__)


def _table_spec(key: dg.AssetKey, build, metadata: dict, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(
        key, description=_description(build), deps=deps, metadata={**metadata, **lineage.metadata_for(key.path[-1])},
        group_name="warehouse", kinds={"postgres", "pandas"}, owners=["team:data-engineering"],
    ).with_io_manager_key("warehouse_io_manager")


def _specs() -> list[dg.AssetSpec]:
    """The multi-asset's tables (a function: a module-level list of specs would be loaded as assets too)."""
    return [
        _table_spec(CHAINS, warehouse_days.chains, table_metadata(schema.chains, UPSERT),
                    [RAW_POOLS, RAW_PROTOCOLS, RAW_POOL_CHARTS]),
        _table_spec(PROJECTS, warehouse_days.projects, table_metadata(schema.projects, UPSERT),
                    [RAW_PROTOCOLS, RAW_POOLS, RAW_POOL_CHARTS]),
        dg.AssetSpec(
            PROJECT_RENAMES, deps=[PROJECTS, RAW_POOLS], group_name="warehouse", kinds={"postgres"},
            owners=["team:data-engineering"],
            metadata={"table": renames_table.name, "dagster/column_schema": column_schema(renames_table),
                      **lineage.metadata_for("project_renames")},
            description="Slugs DeFiLlama renamed in place: pool ids that arrive under a new project slug while their "
            "old slug has left /protocols (and no pool names it any more), recorded once as (old_slug, new_slug, "
            "detected_on). Detected before pools takes the new slug; the views project_current_slug and "
            "project_daily_series let a project's daily series run on under its current slug.",
        ),
        # project_renames compares the day's slugs with the stored ones before pools replaces them
        _table_spec(POOLS, warehouse_days.pools, table_metadata(schema.pools, UPSERT),
                    [RAW_POOLS, CHAINS, PROJECTS, RAW_POOL_CHARTS, PROJECT_RENAMES]),
        _table_spec(POOL_SNAPSHOTS, warehouse_days.pool_snapshots,
                    table_metadata(schema.pool_snapshots, REPLACE_PARTITION, partition_expr="snapshot_date"),
                    [RAW_POOLS, POOLS, RAW_POOL_CHARTS]),
    ]


def refuse_days_without_data(warehouse: Warehouse, asset: str, days: tuple[dt.date, ...]) -> None:
    """Fail, before anything is written, when a day of the run has neither a stored /pools payload nor
    stored chart points: every table built from /pools would be a green, empty day. Every such day is
    named on a line of its own, so a failed backfill says which days and why (the raw assets judge their
    days the same way, ``day_sources``)."""
    captured = raw_archive.stored_days(warehouse, "pools", days)
    judged = day_sources.judge(warehouse, "pools", len(days), [day for day in days if day not in captured])
    if judged.empty:
        raise dg.Failure(description=judged.failure_message(f"{asset} (nothing to load)"))


@dg.multi_asset(specs=_specs(), can_subset=True, partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run(),
                name="warehouse_tables")
def warehouse_tables(context: dg.AssetExecutionContext, warehouse: Warehouse,
                     decoded_payloads: DecodedPayloads) -> Iterator:
    """The selected tables of the run's days, from each day's stored payloads decoded once (by this run's
    raw step when it fetched the very body stored, ``decoded_payloads``; else here, from the archive).

    Memory stays that of one day whatever the range: dimensions are folded day by day (one row per key),
    pool_snapshots' rows are spooled as COPY text (``SpooledDays``), and of each day's pools only those
    that moved to another slug are kept for the rename detection. Outputs are yielded in dependency
    order and the IO manager writes each as it is yielded: chains and projects, then the renames
    (against the stored pools, before they take the day's slugs), then pools and pool_snapshots. Each
    table's COPY text is rendered ahead, on a second thread, while the tables before it are written."""
    days = days_of(context.partition_time_window)
    selected = set(context.selected_asset_keys)
    names = ", ".join(sorted(key.to_user_string() for key in selected))
    if selected - {PROJECT_RENAMES}:
        refuse_days_without_data(warehouse, names, days)
    # The tables' COPY text is rendered on a second thread, in the order the IO manager writes them, each
    # while the tables before it are written (copy_ahead); the with block ends after the last write.
    with CopyAhead() as ahead:
        folded = {key: FoldedDays(table) for key, table in DIMENSIONS.items() if key in selected}
        snapshots = SpooledDays(schema.pool_snapshots, ahead) if POOL_SNAPSHOTS in selected else None
        moves: list[tuple[dt.date, list[Move]]] = []
        stored_decodes = 0
        for day in days:
            decoded = warehouse_days.decode_day(warehouse, day, protocols=bool(selected & {CHAINS, PROJECTS}),
                                                decoded_payloads=decoded_payloads)
            stored_decodes += decoded.payloads_decoded
            _say_decode_source(context, selected, day, decoded.sources)
            for key, build in ((CHAINS, warehouse_days.chains), (PROJECTS, warehouse_days.projects),
                               (POOLS, warehouse_days.pools)):
                if key in folded:
                    folded[key].add(build(warehouse, decoded))
            if snapshots is not None:
                snapshots.add(warehouse_days.pool_snapshots(warehouse, decoded))
            if day == days[-1]:  # every table's rows are final: their text renders while the renames are read
                for rows in folded.values():
                    rows.render_ahead(ahead)
                if snapshots is not None:
                    snapshots.finish()
            if PROJECT_RENAMES in selected and decoded.pools is not None:  # a day filled from history names none
                pools = decoded.pools.pools
                with warehouse.connection() as conn:  # against the pools stored before this run writes any
                    moves.append((day, moved_pools(conn, warehouse.schema_name, day, pools["pool_id"],
                                                   pools["project"])))
            del decoded
        step = {"payloads_decoded": stored_decodes}
        for key in (CHAINS, PROJECTS):
            if key in folded:
                yield dg.Output(folded.pop(key), output_name=key.to_python_identifier(), metadata=step)
        if PROJECT_RENAMES in selected:
            yield _record_renames(context, warehouse, moves)
        if POOLS in folded:
            yield dg.Output(folded.pop(POOLS), output_name="pools", metadata=step)
        if snapshots is not None:
            yield dg.Output(snapshots, output_name="pool_snapshots", metadata=step)


def _say_decode_source(context: dg.AssetExecutionContext, selected: set[dg.AssetKey], day: dt.date,
                       sources: dict[str, str]) -> None:
    """Each table's event of the day says where the day's decode of each payload came from."""
    said = "; ".join(f"/{endpoint}: {source}" for endpoint, source in sources.items())
    for key in selected & {CHAINS, PROJECTS, POOLS, POOL_SNAPSHOTS}:
        context.add_asset_metadata({"payload_decode": said}, asset_key=key, partition_key=day.isoformat())


def _record_renames(context: dg.AssetExecutionContext, warehouse: Warehouse,
                    days: list[tuple[dt.date, list[Move]]]) -> dg.MaterializeResult:
    with warehouse.connection() as conn:
        recorded = record_renames(conn, warehouse.schema_name, days)
    for line in recorded.detected:
        context.log.info(f"project renamed: {line}")
    return dg.MaterializeResult(asset_key=PROJECT_RENAMES, metadata={
        "renames_detected": recorded.found, "table_rows": recorded.table_rows,
        "renames": ", ".join(recorded.detected[:20]) or "none",
        "dagster/table_name": f"{warehouse.schema_name}.{renames_table.name}"})
