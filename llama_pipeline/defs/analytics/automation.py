"""The sensor that evaluates the analytics assets' automation conditions."""

import dagster as dg

analytics_automation = dg.AutomationConditionSensorDefinition(
    "analytics_automation",
    target=dg.AssetSelection.groups("analytics"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    description="Brings a day's analytics up to date when the tables they read were loaded for that day "
    "without them (e.g. pool_snapshots materialized alone, or an older day reloaded), so they never lag behind.",
)
