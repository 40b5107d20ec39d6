"""Asset checks on the warehouse tables, stored per day.

Blocking (ERROR; assets downstream of a failed check do not run): the payload's records add up to
rows loaded plus rejects; keys are unique; every pool joins a chain and a project (and every snapshot a
pool). Warnings (WARN): APY/TVL out of range, pool projects missing from /protocols, chains outside the
alias map, rejects above a threshold. Freshness: the newest stored day is at most ~36 hours old,
checked by every run and every six hours by ``freshness_checks_schedule``.
"""

import datetime as dt
from typing import Optional

import dagster as dg
from pydantic import Field

from llama_pipeline import clock
from llama_pipeline.defs.ingestion.checks import yesterday_captured
from llama_pipeline.partitions import DAILY
from llama_pipeline.quality import rules as quality
from llama_pipeline.quality.daily_check_results import DailyResults, run_days
from llama_pipeline.write.warehouse import Warehouse

from .assets import CHAINS as chains, POOL_SNAPSHOTS as pool_snapshots, POOLS as pools, PROJECTS as projects

WARN = dg.AssetCheckSeverity.WARN


# -- blocking ------------------------------------------------------------------------------------

def _counts_add_up(asset: dg.AssetKey) -> dg.AssetChecksDefinition:
    name = asset.to_user_string()

    @dg.asset_check(asset=asset, name="counts_add_up", blocking=True, partitions_def=DAILY,
                    description=f"Blocking: every record of the day's payload is a row of {name} or a reject "
                    "(record_count == rows loaded + rejects, key by key). Days filled from chart history "
                    "have no payload and are skipped.")
    def check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> DailyResults:
        yield from run_days(context, warehouse, lambda db, day: quality.counts_add_up(db, name, day))

    return check


def _keys_unique(asset: dg.AssetKey) -> dg.AssetChecksDefinition:
    name = asset.to_user_string()

    @dg.asset_check(asset=asset, name="keys_unique", blocking=True, partitions_def=DAILY,
                    description=f"Blocking: no duplicate or NULL key among the rows of {name} seen on the day.")
    def check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> DailyResults:
        yield from run_days(context, warehouse, lambda db, day: quality.keys_unique(db, name, day))

    return check


projects_counts_add_up = _counts_add_up(projects)
pools_counts_add_up = _counts_add_up(pools)
pool_snapshots_counts_add_up = _counts_add_up(pool_snapshots)
chains_keys_unique = _keys_unique(chains)
projects_keys_unique = _keys_unique(projects)
pools_keys_unique = _keys_unique(pools)
pool_snapshots_keys_unique = _keys_unique(pool_snapshots)


@dg.asset_check(asset=pools, blocking=True, partitions_def=DAILY)
def pools_join_chain_and_project(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> DailyResults:
    """Blocking: every pool seen on the day joins a row of chains and a row of projects."""
    yield from run_days(context, warehouse, quality.pools_join)


@dg.asset_check(asset=pool_snapshots, blocking=True, partitions_def=DAILY)
def snapshots_join_pools(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> DailyResults:
    """Blocking: every snapshot of the day joins a row of pools."""
    yield from run_days(context, warehouse, quality.snapshots_join)


# -- warnings ------------------------------------------------------------------------------------

@dg.asset_check(asset=pool_snapshots, partitions_def=DAILY)
def values_in_range(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> DailyResults:
    """Warning: APY below 0 or above 1e6, or TVL negative, in the day's snapshots (loaded as sent)."""
    yield from run_days(context, warehouse, quality.values_in_range, WARN)


@dg.asset_check(asset=pools, partitions_def=DAILY)
def pool_projects_listed(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> DailyResults:
    """Warning: projects named by the day's pools that /protocols lacks (they get placeholder rows)."""
    yield from run_days(context, warehouse, quality.placeholder_projects, WARN)


@dg.asset_check(asset=chains, partitions_def=DAILY)
def chains_in_alias_map(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> DailyResults:
    """Warning: chains of the day that the alias map does not know (loaded under their own spelling,
    so a new spelling of a known chain would split it), and names that differ only in spelling."""
    yield from run_days(context, warehouse, quality.chains_known, WARN)


class RejectsConfig(dg.Config):
    max_fraction: Optional[float] = Field(
        default=None, description="Warn above this fraction of rejected records (default: "
        "LLAMA_MAX_REJECT_FRACTION, else 0.01).")


def _rejects_within(asset: dg.AssetKey, endpoint: str) -> dg.AssetChecksDefinition:
    name = asset.to_user_string()

    @dg.asset_check(asset=asset, name="rejects_within_threshold", partitions_def=DAILY,
                    description=f"Warning: more of the day's /{endpoint} records rejected by {name} than the "
                    "threshold (LLAMA_MAX_REJECT_FRACTION, default 1%).")
    def check(context: dg.AssetCheckExecutionContext, config: RejectsConfig, warehouse: Warehouse) -> DailyResults:
        fraction = config.max_fraction if config.max_fraction is not None else quality.max_reject_fraction()
        yield from run_days(context, warehouse, lambda db, day: quality.rejects_within(db, name, endpoint, day, fraction),
                            WARN)

    return check


pool_snapshots_rejects = _rejects_within(pool_snapshots, "pools")
projects_rejects = _rejects_within(projects, "protocols")


# -- freshness -----------------------------------------------------------------------------------

class FreshnessConfig(dg.Config):
    max_age_hours: Optional[float] = Field(
        default=None, description="Hours after its end that the newest stored day stays fresh (default: "
        "LLAMA_FRESHNESS_HOURS, else 36).")


@dg.asset_check(asset=pool_snapshots)
def pool_snapshots_fresh(
    context: dg.AssetCheckExecutionContext, config: FreshnessConfig, warehouse: Warehouse
) -> dg.AssetCheckResult:
    """Freshness: the newest day stored in pool_snapshots ended at most ~36 hours ago
    (LLAMA_FRESHNESS_HOURS). Judged on the table users query, not on Dagster's run history, so a
    backfill of an old day cannot make a stale warehouse look fresh."""
    hours = config.max_age_hours if config.max_age_hours is not None else quality.freshness_hours()
    with warehouse.connection() as conn:
        verdict = quality.freshness(quality.Warehouse(conn, warehouse.schema_name), clock.now(),
                                    hours)
    return dg.AssetCheckResult(passed=verdict.passed, description=verdict.description, metadata=verdict.metadata)


# The capture gap alarm rides along: a day lost at midnight is named by the 00:00 tick.
_TIMED_CHECKS = dg.AssetSelection.checks(pool_snapshots_fresh, yesterday_captured)

freshness_checks_job = dg.define_asset_job(
    "freshness_checks", selection=_TIMED_CHECKS,
    description="Evaluates the freshness of pool_snapshots and whether yesterday was captured, materializing "
    "nothing.",
)

freshness_checks_schedule = dg.ScheduleDefinition(
    name="freshness_checks_schedule", job=freshness_checks_job, cron_schedule="0 */6 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every six hours: is the newest stored day of pool_snapshots at most ~36 hours old, and did "
    "yesterday keep a capture?",
)


# Re-judge stored days (one day or a range, e.g. after a threshold change) without rewriting anything.
daily_checks_job = dg.define_asset_job(
    "daily_checks",
    selection=dg.AssetSelection.all_asset_checks() - _TIMED_CHECKS,
    description="Runs every daily asset check for a day or a range of days, materializing nothing.",
)
