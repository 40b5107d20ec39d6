"""Lending history from the paid /chartLendBorrow/{pool}: off unless a DeFiLlama API key is set."""

from typing import Optional

import dagster as dg
from pydantic import Field

from llama_pipeline import lineage
from llama_pipeline.dataset_assets import SeriesBackfillConfig, common, run_series, should_fetch
from llama_pipeline.decode.lend_borrow_rows import parse_lend_borrow_chart
from llama_pipeline.fetch import history_selection
from llama_pipeline.fetch.http_client import DefiLlamaClient, without_key
from llama_pipeline.schema_datasets import lend_borrow_snapshots as snapshots_table
from llama_pipeline.write.series_history import SeriesKind
from llama_pipeline.write.table_write import column_schema
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline.write.warehouse_lock import quote_ident

from .assets import lend_borrow_snapshots


class LendBorrowHistoryConfig(SeriesBackfillConfig):
    """Which lending pools' history to fetch, and how politely."""

    pool_ids: list[str] = Field(default=[], description="Only these pools (known to pools).")
    limit: Optional[int] = Field(default=None, description="At most this many, most supplied first.")


def _lending_pools(warehouse: Warehouse, config: LendBorrowHistoryConfig) -> list[str]:
    """The pools /lendBorrow has listed (largest supply on their newest day first), or the configured ones."""
    s = quote_ident(warehouse.schema_name)
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT pool_id::text FROM (
                SELECT DISTINCT ON (pool_id) pool_id, total_supply_usd FROM {s}.lend_borrow_snapshots
                WHERE source = 'lend_borrow' AND (cardinality(%s::uuid[]) = 0 OR pool_id = ANY(%s::uuid[]))
                ORDER BY pool_id, snapshot_date DESC
            ) latest ORDER BY total_supply_usd DESC NULLS LAST, pool_id LIMIT %s
            """,
            (config.pool_ids, config.pool_ids, config.limit),
        )
        return [row[0] for row in cur.fetchall()]


@dg.asset(metadata={"table": snapshots_table.name, "dagster/column_schema": column_schema(snapshots_table),
                    **lineage.metadata_for("lend_borrow_history")},
          deps=[lend_borrow_snapshots], **common("lend_borrow", {"python", "postgres"}))
def lend_borrow_history(
    context: dg.AssetExecutionContext, config: LendBorrowHistoryConfig, defillama: DefiLlamaClient,
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    """Each lending pool's daily history from the paid /chartLendBorrow/{pool} (LEND_BORROW_CHART_URL),
    only when DEFILLAMA_API_KEY is set: it fills lend_borrow_snapshots for the days without a /lendBorrow
    payload (source 'chart'; borrow APYs, supply, borrow and debt ceiling, the other columns NULL) and
    never replaces a row a payload wrote. Fetched once per backfill, archived in raw_series with the key
    removed from its URL, resumable and rate-limited like chart history."""
    if not defillama.api_key:
        context.log.info("no DEFILLAMA_API_KEY: lending history (a paid route) is off")
        return dg.MaterializeResult(metadata={"series_fetched": 0, "skipped": "no API key"})
    if not should_fetch(context, config.fetch_today):
        context.log.info("a run of today alone fetches no history: backfill a past range, or set fetch_today")
        return dg.MaterializeResult(metadata={"series_fetched": 0, "skipped": "today only"})
    pools = _lending_pools(warehouse, config)
    if not pools:
        raise dg.Failure(description="No lending pools to fetch history for: load a day of /lendBorrow first "
                         "(raw_lend_borrow and lend_borrow_snapshots), or check pool_ids.")
    key = defillama.api_key
    kind = SeriesKind("lend_borrow_chart", "lend_borrow_history", snapshots_table, parse_lend_borrow_chart,
                      replaces_only="t.source = 'chart'", skip_days_of="lend_borrow", public=lambda text: without_key(text, key))
    urls = [(pool, history_selection.url_for(defillama.lend_borrow_chart_url, api_key=key, pool=pool))
            for pool in pools]
    metadata = run_series(context, kind, urls, concurrency=config.concurrency,
                          requests_per_second=config.requests_per_second,
                          refetch_after_hours=config.refetch_after_hours, client=defillama, warehouse=warehouse)
    return dg.MaterializeResult(metadata=metadata)
