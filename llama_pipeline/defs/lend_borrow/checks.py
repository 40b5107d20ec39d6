"""Checks of the lending dataset, stored per day like the yields'."""

import dagster as dg

from llama_pipeline.defs.ingestion.checks import run_days
from llama_pipeline.partitions import DAILY
from llama_pipeline.quality import rules as quality, dataset_rules as quality_datasets
from llama_pipeline.write.warehouse import Warehouse

from .assets import lend_borrow_snapshots, raw_lend_borrow

WARN = dg.AssetCheckSeverity.WARN


@dg.asset_check(asset=lend_borrow_snapshots, blocking=True, partitions_def=DAILY)
def lend_borrow_counts_add_up(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    """Blocking: every record of the day's /lendBorrow payload is a row or a reject, key by key, and the
    day holds no row beyond the payload's pools."""
    return run_days(context, warehouse, lambda db, day: quality.counts_add_up(db, "lend_borrow_snapshots", day))


@dg.asset_check(asset=lend_borrow_snapshots, partitions_def=DAILY)
def lend_borrow_values_in_range(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    """Warning: LTV outside 0..1, negative amounts, borrow APY outside 0..1e6 %, more borrowed than supplied."""
    return run_days(context, warehouse, quality_datasets.lend_borrow_in_range, WARN)


@dg.asset_check(asset=lend_borrow_snapshots, partitions_def=DAILY)
def lend_borrow_pools_in_pools(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    """Warning: lending pools that /pools did not list (joined through a placeholder pools row)."""
    return run_days(context, warehouse, quality_datasets.lend_borrow_pools_known, WARN)


@dg.asset_check(asset=raw_lend_borrow, partitions_def=DAILY)
def lend_borrow_fields_stable(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    """Warning: fields that appeared in or vanished from /lendBorrow records since the previous stored day."""
    return run_days(context, warehouse, lambda db, day: quality.fields_stable(db, "lend_borrow", day), WARN)
