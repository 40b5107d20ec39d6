"""What assets hand to the IO manager: one batch of rows per day, built lazily.

A range run (a backfill of many days) would not fit in memory as one DataFrame, so assets return a
``DailyBatches`` whose batches the IO manager builds and writes one day at a time inside a single
transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator

import pandas as pd


@dataclasses.dataclass(frozen=True)
class Reject:
    """A record kept aside, with why."""

    record_index: int
    record_key: str | None
    reason: str
    record: str  # JSON text, ASCII-escaped so that any content survives

    @classmethod
    def of(cls, index: int, key: str | None, reason: str, record: object) -> Reject:
        return cls(index, key, reason, json.dumps(record, ensure_ascii=True, default=repr, allow_nan=True))


@dataclasses.dataclass
class DailyBatch:
    """The rows one day contributes to a table, the records set aside, and figures worth plotting."""

    day: dt.date
    rows: pd.DataFrame
    rejects: list[Reject] = dataclasses.field(default_factory=list)
    summary: dict[str, float | int] = dataclasses.field(default_factory=dict)
    # Rows carried from the table itself (a day known only from history, or without its /protocols):
    # they say the keys were seen that day, not what their attributes were.
    seen_only: bool = False


@dataclasses.dataclass(frozen=True)
class DailyBatches:
    """The batches of a run's days, in ascending order, each built only when the writer asks for it."""

    days: tuple[dt.date, ...]
    build: Callable[[dt.date], DailyBatch]

    def __iter__(self) -> Iterator[DailyBatch]:
        for day in sorted(self.days):
            yield self.build(day)
