"""The one partitioning every asset shares: a UTC day, the day a snapshot describes."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from llama_pipeline import clock

# DeFiLlama's yield history starts in early 2022; end_offset=1 makes today a partition, since /pools
# describes the present moment, which belongs to today.
HISTORY_START = "2022-01-01"
DAILY = dg.DailyPartitionsDefinition(start_date=HISTORY_START, end_offset=1, timezone="UTC")


def utc_today() -> dt.date:
    """Today by the pipeline's clock (``llama_pipeline.clock``); kept for the tests and benchmarks."""
    return clock.today()


def days_of(window: dg.TimeWindow) -> tuple[dt.date, ...]:
    """The days of a partition time window (one partition or a range), ascending."""
    first, end = window.start.date(), window.end.date()
    return tuple(first + dt.timedelta(days=i) for i in range((end - first).days))
