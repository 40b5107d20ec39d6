"""Each day's own figures on its own materialization.

A backfill is one run over a range of days (``BackfillPolicy.single_run``), and Dagster records one
materialization per day of it. Metadata added to the output reaches every one of them, so a range's
totals would show on each day and the UI's per-day plots would be flat. Dagster's partition-scoped
asset metadata (``add_asset_metadata(..., partition_key=)``, merged over the output's in
``execute_step._get_output_asset_events``) gives each day its own; what is true of the whole run
(its days, the write time, the table's size) stays on the output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import dagster as dg


def partition_key(day: dt.date) -> str:
    """A day's key in ``partitions.DAILY`` (format ``%Y-%m-%d``)."""
    return day.isoformat()


def publish(context: dg.OutputContext, run_wide: Mapping[str, object],
            per_day: Mapping[dt.date, Mapping[str, object]]) -> None:
    """``run_wide`` on the output (every day's event), and each day's figures on that day's event only.

    Without a step (an IO manager called by hand, as in unit tests) there is one event per output: a
    single day's figures then go to the output too."""
    try:
        step = context.step_context
    except dg.DagsterInvariantViolationError:
        step = None
    if step is None:
        merged = dict(run_wide)
        if len(per_day) == 1:
            merged.update(next(iter(per_day.values())))
        context.add_output_metadata(merged)
        return
    for day, figures in per_day.items():
        if figures:
            step.add_asset_metadata(dict(figures), asset_key=context.asset_key, partition_key=partition_key(day))
    context.add_output_metadata(dict(run_wide))


def publish_from_asset(context: dg.AssetExecutionContext, per_day: Mapping[dt.date, Mapping[str, object]],
                       asset_key: dg.AssetKey | None = None) -> None:
    """The same from an asset's body (assets that write without the IO manager); ``asset_key`` names
    the asset of a multi-asset."""
    for day, figures in per_day.items():
        if figures:
            context.add_asset_metadata(dict(figures), asset_key=asset_key, partition_key=partition_key(day))


def failed_days_message(what: str, of_days: int, failed: Sequence[tuple[dt.date, str]], shown: int = 50) -> str:
    """``what`` failed for these days: one line per day with its reason (the first ``shown``)."""
    lines = [f"{what} failed for {len(failed)} of {of_days} day(s):"]
    lines += [f"{day.isoformat()}: {reason}" for day, reason in failed[:shown]]
    if len(failed) > shown:
        lines.append(f"... and {len(failed) - shown} more day(s)")
    return "\n".join(lines)
