"""Asset checks on the archived payloads: a /pools payload that collapsed (blocking) and fields that
appeared or vanished since the previous stored day (warnings).

Checks are partitioned like their assets, so results are stored per day; a range run judges every day
of the range and reports each day's own result (``daily_check_results``). The
rules live in ``llama_pipeline.quality.rules``; thresholds and how to change them are described there and
in RELIABILITY.md.
"""

import datetime as dt
import warnings
from typing import Optional

import dagster as dg
from pydantic import Field

from llama_pipeline import clock
from llama_pipeline.fetch import capture_plan
from llama_pipeline.partitions import DAILY
from llama_pipeline.quality import rules as quality
from llama_pipeline.quality.daily_check_results import DailyResults, run_days
from llama_pipeline.write.warehouse import Warehouse

from .assets import raw_pools, raw_protocols

# Partitioned asset checks are a preview feature in Dagster 1.13; the API is the documented one.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")


class PoolCountConfig(dg.Config):
    min_fraction: Optional[float] = Field(
        default=None,
        description="Fail when a day's pool count is below this fraction of the previous stored day's "
        "(default: LLAMA_MIN_POOL_FRACTION, else 0.5).",
    )


@dg.asset_check(asset=raw_pools, blocking=True, partitions_def=DAILY)
def pool_count_not_collapsed(
    context: dg.AssetCheckExecutionContext, config: PoolCountConfig, warehouse: Warehouse
) -> DailyResults:
    """Blocking: the day's /pools payload holds at least a fraction (default 50%, LLAMA_MIN_POOL_FRACTION
    or this check's config) of the records of the previous stored day, so a half-empty payload never
    replaces a full day in the warehouse tables: downstream assets do not run when it fails."""
    fraction = config.min_fraction if config.min_fraction is not None else quality.min_pool_fraction()
    yield from run_days(context, warehouse, lambda db, day: quality.pool_count_holds(db, day, fraction))


@dg.asset_check(asset=raw_pools, partitions_def=DAILY)
def pools_fields_stable(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> DailyResults:
    """Warning: fields that appeared in or vanished from /pools records since the previous stored day
    (new fields are kept in pool_snapshots.extra; a vanished one turns a column NULL)."""
    yield from run_days(context, warehouse, lambda db, day: quality.fields_stable(db, "pools", day),
                        dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset=raw_protocols, partitions_def=DAILY)
def protocols_fields_stable(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> DailyResults:
    """Warning: fields that appeared in or vanished from /protocols records since the previous stored
    day (new fields are kept in projects.extra)."""
    yield from run_days(context, warehouse, lambda db, day: quality.fields_stable(db, "protocols", day),
                        dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset=raw_pools)
def yesterday_captured(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Gap alarm (ERROR): yesterday (UTC, by the pipeline's clock) ended with a /pools and a /protocols
    capture. Runs with every run and with the freshness checks' schedule, so a lost day is named soon
    after midnight; not blocking, so it never holds up today's loading."""
    yesterday = clock.today() - dt.timedelta(days=1)
    passed, description, metadata = capture_plan.day_captured(warehouse, yesterday)
    return dg.AssetCheckResult(passed=passed, severity=dg.AssetCheckSeverity.ERROR, description=description,
                               metadata=metadata)
