"""Protocol TVL history from /protocol/{slug}, for a selection of protocols."""

import dagster as dg
from pydantic import Field

from llama_pipeline import lineage
from llama_pipeline.dataset_assets import SeriesBackfillConfig, common, run_series, should_fetch
from llama_pipeline.decode.protocol_tvl_rows import parse_protocol
from llama_pipeline.fetch import history_selection
from llama_pipeline.fetch.http_client import DefiLlamaClient
from llama_pipeline.schema_datasets import protocol_tvl_daily as tvl_table
from llama_pipeline.write.series_history import SeriesKind
from llama_pipeline.write.table_write import column_schema
from llama_pipeline.write.warehouse import Warehouse

PROTOCOL_TVL = SeriesKind("protocol", "protocol_tvl_daily", tvl_table, parse_protocol, large_responses=True)


class ProtocolTvlConfig(SeriesBackfillConfig):
    """Which protocols' TVL history to fetch, and how politely."""

    slugs: list[str] = Field(default=[], description="Only these protocol slugs (known to projects).")
    limit: int = Field(default=200, description="Without slugs: the projects whose pools hold the most TVL.")
    concurrency: int = Field(default=2, description="Requests in flight at once (responses reach 28 MB).")


@dg.asset(metadata={"table": tvl_table.name, "dagster/column_schema": column_schema(tvl_table),
                    **lineage.metadata_for("protocol_tvl_daily")},
          deps=[dg.AssetKey("projects"), dg.AssetKey("pool_snapshots")],
          **common("protocol_tvl", {"python", "postgres"}))
def protocol_tvl_daily(
    context: dg.AssetExecutionContext, config: ProtocolTvlConfig, defillama: DefiLlamaClient, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Every day of each selected protocol's TVL, in total (chain '(total)') and per chainTvls key, with
    -staking/-borrowed/... series kept apart from plain chains (tvl_kind). Default selection: the 200
    projects whose pools held the most TVL on the newest day. Each response (up to tens of MB) is
    decoded once, one at a time, archived in raw_series and upserted; resumable and rate-limited."""
    if not should_fetch(context, config.fetch_today):
        context.log.info("a run of today alone fetches no history: backfill a past range, or set fetch_today")
        return dg.MaterializeResult(metadata={"series_fetched": 0, "skipped": "today only"})
    with warehouse.connection() as conn:
        slugs, unknown = history_selection.top_projects(conn, warehouse.schema_name, config.slugs, config.limit)
    if unknown:
        raise dg.Failure(description=f"{len(unknown)} configured slug(s) are not in projects: "
                         f"{', '.join(unknown[:10])}. Load the day's /protocols first, or fix the slugs.")
    if not slugs:
        raise dg.Failure(description="No protocols to fetch: the warehouse has no pool snapshots yet. Load "
                         "today's partition first, or pass slugs in the run config.")
    urls = [(slug, history_selection.url_for(defillama.protocol_url, slug=slug)) for slug in slugs]
    metadata = run_series(context, PROTOCOL_TVL, urls, concurrency=config.concurrency,
                          requests_per_second=config.requests_per_second,
                          refetch_after_hours=config.refetch_after_hours, client=defillama, warehouse=warehouse)
    return dg.MaterializeResult(metadata={**metadata, "dagster/table_name": f"{warehouse.schema_name}.{tvl_table.name}"})
