"""What assets hand to the IO manager: the rows each day of a run contributes to a table.

Assets compute these values in their own body; the IO manager only writes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

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
    summary: dict[str, float | int | str] = dataclasses.field(default_factory=dict)
    # Rows carried from the table itself (a day known only from history, or without its /protocols):
    # they say the keys were seen that day, not what their attributes were.
    seen_only: bool = False


@dataclasses.dataclass(frozen=True)
class DayFigures:
    """What a day contributed to a table besides its rows: how many, the first few (the preview), the
    records set aside and its summary figures."""

    day: dt.date
    row_count: int
    head: pd.DataFrame
    rejects: list[Reject]
    summary: dict[str, float | int | str]

    @classmethod
    def of(cls, batch: DailyBatch, preview_rows: int = 5) -> DayFigures:
        return cls(batch.day, len(batch.rows), batch.rows.head(preview_rows), batch.rejects, batch.summary)
