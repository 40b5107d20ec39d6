"""Checks of chains' ids and TVL history."""

import dagster as dg

from llama_pipeline.dataset_assets import whole_table_check
from llama_pipeline.defs.ingestion.checks import run_days
from llama_pipeline.partitions import DAILY
from llama_pipeline.quality import dataset_rules as quality_datasets
from llama_pipeline.write.warehouse import Warehouse

from .assets import chain_metadata, chain_tvl_daily


@dg.asset_check(asset=chain_metadata, blocking=True, partitions_def=DAILY)
def chain_list_counts_add_up(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    """Blocking: every /v2/chains record of the day is a chains row (through the alias map) or a reject."""
    return run_days(context, warehouse, quality_datasets.chain_list_loaded)


@dg.asset_check(asset=chain_tvl_daily)
def chain_tvl_series_healthy(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Warning: chains whose TVL history could not be used (with the reason), or negative TVL points."""
    return whole_table_check(warehouse, lambda db: quality_datasets.series_healthy(db, "chain_tvl", "chain_tvl_daily"),
                             dg.AssetCheckSeverity.WARN)
