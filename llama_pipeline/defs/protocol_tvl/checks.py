"""Checks of protocol TVL history."""

import dagster as dg

from llama_pipeline.dataset_assets import whole_table_check
from llama_pipeline.quality import dataset_rules as quality_datasets
from llama_pipeline.write.warehouse import Warehouse

from .assets import protocol_tvl_daily

WARN = dg.AssetCheckSeverity.WARN


@dg.asset_check(asset=protocol_tvl_daily)
def protocol_tvl_series_healthy(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Warning: protocols whose history could not be used (with the reason), or negative TVL points."""
    return whole_table_check(warehouse, lambda db: quality_datasets.series_healthy(db, "protocol",
                                                                                   "protocol_tvl_daily"), WARN)


@dg.asset_check(asset=protocol_tvl_daily)
def protocol_totals_add_up(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Warning: a protocol's '(total)' TVL on its newest day differs by over 1% from its chains' sum."""
    return whole_table_check(warehouse, quality_datasets.protocol_totals_add_up, WARN)
