"""The capture sensor: today's /pools and /protocols are captured as soon as the pipeline runs and
today has none, and refreshed through the day (rules and settings in ``llama_pipeline.fetch.capture_plan``).

The 23:00 UTC schedule alone gives a day one chance: a daemon down at 23:00, an API outage that hour
or a run that starts after midnight loses the day for good. The sensor requests the same whole-graph
run for today's partition, so today's tables always reflect the latest good capture.
"""

from __future__ import annotations

import os
import time

import dagster as dg

from llama_pipeline import clock
from llama_pipeline.defs.warehouse.schedules import daily_refresh
from llama_pipeline.fetch import capture_plan
from llama_pipeline.partitions import DAILY
from llama_pipeline.write.warehouse import Warehouse, WarehouseError

_NOT_FINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                 dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def _live_run(instance: dg.DagsterInstance, now_timestamp: float, limit_seconds: float) -> dg.DagsterRun | None:
    """A daily_refresh run still queued or running; one older than the runtime limit is taken for dead
    (its process was killed with the daemon), so it cannot hold captures back for the rest of the day."""
    for record in instance.get_run_records(dg.RunsFilter(job_name=daily_refresh.name, statuses=_NOT_FINISHED),
                                           limit=20):
        started = record.start_time or record.create_timestamp.timestamp()
        if now_timestamp - started < limit_seconds:
            return record.dagster_run
    return None


@dg.sensor(
    job=daily_refresh,
    default_status=dg.DefaultSensorStatus.RUNNING,
    # Read when the definitions load (tests evaluate it every few seconds); every minute by default.
    minimum_interval_seconds=int(os.environ.get("LLAMA_CAPTURE_SENSOR_SECONDS") or 60),
    description="Captures today's /pools and /protocols as soon as today has none, and refreshes them when "
    "the older is over LLAMA_CAPTURE_REFRESH_HOURS (default 3) old; one run at a time.",
)
def capture_today_sensor(context: dg.SensorEvaluationContext, warehouse_reader: Warehouse):
    now = clock.now()
    day = now.date()
    if not DAILY.has_partition_key(day.isoformat()):
        return dg.SkipReason(f"{day.isoformat()} is not a partition yet")
    limit = capture_plan.max_runtime().total_seconds()
    # Dagster stamps runs with the real time, not the pipeline's (shiftable) clock.
    live = _live_run(context.instance, time.time(), limit)
    if live is not None:
        return dg.SkipReason(f"run {live.run_id} of {daily_refresh.name} is still {live.status.value.lower()}")
    try:
        captured = capture_plan.captures_of(warehouse_reader, day)
    except WarehouseError as error:  # its message has the password scrubbed
        return dg.SkipReason(f"cannot read the warehouse: {error}")
    decided = capture_plan.plan(now, captured, capture_plan.refresh_interval(), capture_plan.retry_interval())
    if decided.run_key is None:
        return dg.SkipReason(decided.reason)
    context.log.info(decided.reason)
    return dg.RunRequest(
        run_key=decided.run_key,
        partition_key=day.isoformat(),
        # Run monitoring (where enabled) ends a run killed under the daemon after this long.
        tags={"dagster/max_runtime_seconds": str(int(limit)), "llama/capture": decided.reason[:200]},
    )
