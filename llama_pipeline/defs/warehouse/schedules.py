"""The daily refresh: the whole graph for the current UTC day (the job's daily partitions are inferred from
its assets')."""

import dagster as dg

daily_refresh = dg.define_asset_job(
    "daily_refresh",
    selection=dg.AssetSelection.all(),
    description="Fetch today's /pools and /protocols and load every table for today.",
)

# Late in the UTC day, so that the snapshot stands for the day it is filed under (DeFiLlama's own
# history keeps the last point of each day) while leaving an hour for retries before midnight.
daily_refresh_schedule = dg.build_schedule_from_partitioned_job(
    daily_refresh,
    hour_of_day=23,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
