"""Pool history: each pool's /chart payload, fetched once per backfill and archived losslessly."""

from typing import Optional

import dagster as dg
from pydantic import Field

from llama_pipeline import clock, schema
from llama_pipeline.fetch import chart_fetch, chart_pools, raw_archive
from llama_pipeline.fetch.http_client import DefiLlamaClient
from llama_pipeline.partitions import DAILY, days_of
from llama_pipeline.write import chart_store
from llama_pipeline.write.table_write import column_schema
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline.write.warehouse_lock import quote_ident


class ChartBackfillConfig(dg.Config):
    """Which pools to fetch history for, and how politely. With no filter: every pool the warehouse
    knows; filters combine (projects AND chains AND min TVL), explicit ids are always included."""

    pool_ids: list[str] = Field(default=[], description="Pool ids to fetch, known to the warehouse or not.")
    projects: list[str] = Field(default=[], description="Only pools of these project slugs.")
    chains: list[str] = Field(default=[], description="Only pools on these (canonical) chains.")
    min_tvl_usd: float = Field(default=0.0, description="Only pools whose latest TVL is at least this.")
    limit: Optional[int] = Field(default=None, description="At most this many pools, largest TVL first.")
    concurrency: int = Field(default=4, description="Requests in flight at once.")
    requests_per_second: float = Field(default=5.0, description="Request starts per second, at most (0: no limit).")


@dg.asset(
    partitions_def=DAILY,
    group_name="ingestion",
    kinds={"python", "postgres"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    owners=["team:data-engineering"],
    metadata={"table": schema.raw_pool_charts.name, "dagster/column_schema": column_schema(schema.raw_pool_charts)},
)
def raw_pool_charts(
    context: dg.AssetExecutionContext, config: ChartBackfillConfig, defillama: DefiLlamaClient, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Each pool's daily history from /chart/{pool}, stored byte for byte, for the past days of the run
    that have no stored /pools payload (/pools serves only the present).

    A backfill of any range fetches each selected pool's chart once, not once per day, and commits each
    batch as it arrives, so a stopped backfill resumes with only what is still missing. Charts that
    fail (HTTP 400 for an unknown id, a vanished pool) are recorded with their reason and do not fail
    the range. Days with a stored /pools payload keep using it. It runs before raw_pools and
    raw_protocols, which judge a past day without a capture by the chart points stored for it.
    """
    days = days_of(context.partition_time_window)
    with_payload = raw_archive.stored_days(warehouse, "pools", days)
    # Today is captured by raw_pools (after this step), never filled from history.
    today = clock.today()
    history_days = [day for day in days if day not in with_payload and day != today]
    metadata: dict = {"days_from_history": len(history_days), "days_with_pools_payload": len(with_payload)}
    if not history_days:
        context.log.info("every past day of the run has a stored /pools payload (today is fetched): no history needed")
        return dg.MaterializeResult(metadata={**metadata, "charts_fetched": 0})

    selection = chart_pools.PoolSelection(
        pool_ids=tuple(config.pool_ids), projects=tuple(config.projects), chains=tuple(config.chains),
        min_tvl_usd=config.min_tvl_usd, limit=config.limit,
    )
    with warehouse.connection() as conn:
        selected = chart_pools.selected_pools(conn, warehouse.schema_name, selection)
        pending = chart_pools.pending_pools(conn, warehouse.schema_name, selected, max(history_days))
    if not selected:
        raise dg.Failure(
            description="No pools to fetch history for: the warehouse knows none that match. Load today's "
            "partition first (so the warehouse knows today's pools), or pass pool_ids in the run config."
        )
    context.log.info(
        f"history for {len(history_days)} day(s): {len(selected):,} pools selected, "
        f"{len(selected) - len(pending):,} already stored, {len(pending):,} to fetch"
    )

    points_rejected = 0

    def commit(batch: list[chart_fetch.ChartResult]) -> None:
        nonlocal points_rejected
        with warehouse.connection() as conn:
            spoiled = chart_store.store_charts(conn, warehouse.schema_name, batch)
        for pool_id, parsed in spoiled.items():
            points_rejected += parsed.rejected
            context.log.warning(f"chart of {pool_id}: {parsed.rejected} point(s) could not be read and were "
                                f"kept aside in rejects (first: {parsed.rejects[0].reason})")

    counts = chart_fetch.fetch_charts(
        defillama, pending, concurrency=config.concurrency, rate_per_second=config.requests_per_second,
        on_batch=commit, log=context.log.info,
    )
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE error IS NOT NULL), "
            f"coalesce(sum(point_count), 0) FROM {quote_ident(warehouse.schema_name)}.raw_pool_charts "
            "WHERE pool_id = ANY(%s::uuid[])",
            (selected,),
        )
        usable, failed, points = cur.fetchone()
        cur.execute(
            f"SELECT count(*) FROM {quote_ident(warehouse.schema_name)}.rejects WHERE asset = %s "
            "AND record_key = ANY(%s)",
            (chart_store.CHART_ASSET, selected),
        )
        kept_aside = cur.fetchone()[0]
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "pools_selected": len(selected),
            "charts_fetched": counts["fetched"],
            "charts_failed_this_run": counts["failed"],
            "charts_usable": usable,
            "charts_failed": failed,
            "chart_points": int(points),
            # Points of the selected pools' stored charts that could not be read (kept in rejects),
            # and those of the charts fetched by this run.
            "chart_points_rejected": kept_aside,
            "chart_points_rejected_this_run": points_rejected,
            "dagster/row_count": usable,
        }
    )
