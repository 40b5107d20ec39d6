"""Checks of protocol TVL history."""

import dagster as dg

from llama_pipeline import quality_datasets
from llama_pipeline.defs.ingestion.checks import run_days
from llama_pipeline.partitions import DAILY
from llama_pipeline.warehouse import Warehouse

from .assets import protocol_tvl_daily

WARN = dg.AssetCheckSeverity.WARN


@dg.asset_check(asset=protocol_tvl_daily, partitions_def=DAILY)
def protocol_tvl_series_healthy(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    """Warning: protocols whose history could not be used (with the reason), or negative TVL points."""
    return run_days(context, warehouse, lambda db, day: quality_datasets.series_healthy(db, "protocol",
                                                                                        "protocol_tvl_daily"), WARN)


@dg.asset_check(asset=protocol_tvl_daily, partitions_def=DAILY)
def protocol_totals_add_up(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    """Warning: a protocol's '(total)' TVL on its newest day differs by over 1% from its chains' sum."""
    return run_days(context, warehouse, lambda db, day: quality_datasets.protocol_totals_add_up(db), WARN)
