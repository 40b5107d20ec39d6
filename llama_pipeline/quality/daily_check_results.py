"""Daily asset checks report one result per day, also in a range run.

A backfill is one run over a range of days, and Dagster plans a check evaluation for each day of it.
An ``AssetCheckResult`` carries no partition: returned from a range step it is stored with none, the
planned days stay unresolved (the UI shows blocking checks "Skipped" for every backfilled day) and the
asset's check list and the check's page disagree. So a check yields one ``AssetCheckEvaluation`` per
day, with the day as its partition and that day's materialization as its target, then the check's
output. A failed blocking day fails the step with one line per failed day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence

import dagster as dg

# The target materialization links each day's result to the materialization it judged (Dagster's
# AssetCheckResult fills it the same way); the record type is not exported at the top level.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from llama_pipeline.partitions import days_of
from llama_pipeline.quality import rules as quality
from llama_pipeline.write.day_metadata import failed_days_message, partition_key
from llama_pipeline.write.warehouse import Warehouse

Rule = Callable[[quality.Warehouse, dt.date], quality.Verdict]
DailyResults = Iterator[dg.AssetCheckEvaluation | dg.Output]  # what a daily check yields


def _metadata(verdict: quality.Verdict) -> dict:
    return {key: (dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value)
            for key, value in verdict.metadata.items() if value is not None}


def _targets(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
             keys: Sequence[str]) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Each day's latest materialization, read in one query (newest first) and per day for any missed."""
    found: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}

    def keep(records) -> None:
        for record in records:
            key = record.partition_key
            if key in found or key is None:
                continue
            found[key] = AssetCheckEvaluationTargetMaterializationData(
                run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp)

    keep(instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=list(keys)), limit=len(keys)).records)
    for key in keys:
        if key not in found:
            keep(instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1).records)
    return found


def run_days(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse, rule: Rule,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> DailyResults:
    """Judge every day of the run's partition (or range) with ``rule``; one result per day."""
    op_context = context.op_execution_context
    if not (op_context.has_partition_key or op_context.has_partition_key_range):
        raise dg.Failure(description="this check is daily-partitioned: run it for a day or a range of days")
    spec, = context.check_specs
    days = days_of(op_context.partition_time_window)
    with warehouse.connection() as conn:
        db = quality.Warehouse(conn, warehouse.schema_name)
        verdicts = {day: rule(db, day) for day in days}
    targets = _targets(context.instance, spec.asset_key, [partition_key(day) for day in days])
    for day, verdict in verdicts.items():
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key, check_name=spec.name, passed=verdict.passed, metadata=_metadata(verdict),
            severity=severity, description=verdict.description, blocking=spec.blocking,
            partition=partition_key(day), target_materialization_data=targets.get(partition_key(day)),
        )
    failed = [day for day, verdict in verdicts.items() if not verdict.passed]
    if failed and spec.blocking and severity == dg.AssetCheckSeverity.ERROR:
        raise dg.Failure(description=failed_days_message(
            f"blocking check {spec.name} of {spec.asset_key.to_user_string()}", len(days),
            [(day, verdicts[day].description) for day in failed]))
    yield dg.Output(None)
