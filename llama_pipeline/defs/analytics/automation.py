"""The sensor that evaluates the analytics assets' automation conditions."""

import dagster as dg

analytics_automation = dg.AutomationConditionSensorDefinition(
    "analytics_automation",
    target=dg.AssetSelection.groups("analytics"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=300,
    description="Refreshes the analytics views for the newest day when the tables they read were loaded "
    "outside the daily run (e.g. pool_snapshots materialized alone), so they never lag behind.",
)
