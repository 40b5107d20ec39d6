"""Chains' ids from /v2/chains (archived per day, folded into ``chains`` by the alias map) and every
chain's TVL history from /v2/historicalChainTvl/{chain}."""

import datetime as dt

import dagster as dg
import pandas as pd
from pydantic import Field

from llama_pipeline import lineage, schema
from llama_pipeline.dataset_assets import SeriesBackfillConfig, common, run_series, should_fetch, stored_records
from llama_pipeline.decode.chain_tvl_rows import CHAIN_LIST_COLUMNS, parse_chain_list, parse_chain_tvl
from llama_pipeline.defs.ingestion.assets import FETCH_RETRY_POLICY, collect_payloads
from llama_pipeline.fetch import history_selection
from llama_pipeline.fetch.http_client import DefiLlamaClient
from llama_pipeline.fetch.raw_archive import RawArchive
from llama_pipeline.schema_datasets import chain_tvl_daily as tvl_table
from llama_pipeline.write.batches import DailyBatch
from llama_pipeline.write.dimension_merge import FoldedDays
from llama_pipeline.write.series_history import SeriesKind
from llama_pipeline.write.table_write import ARCHIVE, UPSERT, column_schema, table_metadata
from llama_pipeline.write.warehouse import Warehouse

CHAIN_TVL = SeriesKind("chain_tvl", "chain_tvl_daily", tvl_table, parse_chain_tvl)


@dg.asset(metadata={**table_metadata(schema.raw_payloads, ARCHIVE), "endpoint": "chain_list",
                    **lineage.metadata_for("raw_chain_list")},
          io_manager_key="warehouse_io_manager", retry_policy=FETCH_RETRY_POLICY,
          **common("chain_tvl", {"python", "postgres"}))
def raw_chain_list(
    context: dg.AssetExecutionContext, defillama: DefiLlamaClient, warehouse: Warehouse
) -> dg.MaterializeResult:
    """The /v2/chains payload (every chain with its token and ids) for the day, stored byte for byte
    under the same capture rules as /pools (CHAINS_URL; a past day is never fetched)."""
    return collect_payloads(context, "chain_list", defillama.chains_url, defillama, warehouse)


@dg.asset(metadata={**table_metadata(schema.chains, UPSERT), **lineage.metadata_for("chain_metadata")},
          io_manager_key="warehouse_io_manager",
          deps=[dg.AssetKey("chains")], **common("chain_tvl", {"postgres", "pandas"}))
def chain_metadata(raw_chain_list: RawArchive) -> dg.MaterializeResult:
    """Enriches ``chains`` with /v2/chains' gecko_id, token_symbol, cmc_id and chain_id, through the same
    alias map as /pools and /protocols (``Binance`` and ``BSC`` are one row); chains that no pool is on
    get a row too, so that their TVL history joins. Rows written later from /pools keep these ids."""

    def day_rows(day: dt.date) -> DailyBatch:
        records = stored_records(raw_chain_list, day)
        if records is None:
            return DailyBatch(day, pd.DataFrame(columns=CHAIN_LIST_COLUMNS), summary={"chain_list_payload": "missing"})
        parsed = parse_chain_list(records, day)
        return DailyBatch(day, parsed.rows, parsed.rejects,
                          summary={"chains_listed": len(parsed.rows), "invalid_values": parsed.invalid_values})

    # Folded day by day: the range holds one row per chain, however many days it spans.
    return dg.MaterializeResult(value=FoldedDays.of(schema.chains, [day_rows(day) for day in raw_chain_list.days]))


class ChainTvlConfig(SeriesBackfillConfig):
    """Which chains' TVL history to fetch, and how politely."""

    chains: list[str] = Field(default=[], description="Only these chains (canonical names); default: every "
                              "chain the warehouse knows.")


@dg.asset(metadata={"table": tvl_table.name, "dagster/column_schema": column_schema(tvl_table),
                    **lineage.metadata_for("chain_tvl_daily")},
          deps=[chain_metadata], **common("chain_tvl", {"python", "postgres"}))
def chain_tvl_daily(
    context: dg.AssetExecutionContext, config: ChainTvlConfig, defillama: DefiLlamaClient, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Every day of each chain's TVL (back to 2017 where it exists) from /v2/historicalChainTvl/{chain},
    for every chain known to the warehouse or the configured ones. Each chain is fetched once per
    backfill whatever the range's length, archived byte for byte in raw_series and upserted (a re-fetch
    replaces the days it covers); resumable and rate-limited like chart history."""
    if not should_fetch(context, config.fetch_today):
        context.log.info("a run of today alone fetches no history: backfill a past range, or set fetch_today")
        return dg.MaterializeResult(metadata={"series_fetched": 0, "skipped": "today only"})
    with warehouse.connection() as conn:
        chains = history_selection.known_chains(conn, warehouse.schema_name, config.chains)
        api_names = history_selection.api_chain_names(conn, warehouse.schema_name)
    if not chains:
        raise dg.Failure(description="No chains to fetch TVL history for: the warehouse knows none that match. "
                         "Load today's partition first (chains and chain_metadata), or check the chains in config.")
    urls = [(chain, history_selection.url_for(defillama.chain_tvl_url, chain=api_names.get(chain, chain)))
            for chain in chains]
    metadata = run_series(context, CHAIN_TVL, urls, concurrency=config.concurrency,
                          requests_per_second=config.requests_per_second,
                          refetch_after_hours=config.refetch_after_hours, client=defillama, warehouse=warehouse)
    return dg.MaterializeResult(metadata={**metadata, "dagster/table_name": f"{warehouse.schema_name}.{tvl_table.name}"})
