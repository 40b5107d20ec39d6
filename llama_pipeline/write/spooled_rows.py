"""A fact table's rows over a run's days, kept as COPY text in a temporary file.

A range run (a backfill of many days) computes every day before the IO manager writes the range in one
transaction. Held as DataFrames, the rows grew the step by ~5-8 MB a day of 17,000 pools (484 MB peak
for 30 days against 247 MB for one); as COPY text in a spooled file (in memory up to ``MAX_IN_MEMORY``,
about two full days, then on disk) the step holds one day's rows at a time, and the writer sends the
whole range with one COPY.
"""

from __future__ import annotations

import dataclasses
import tempfile
from typing import BinaryIO

import sqlalchemy as sa

from llama_pipeline.write.batches import DailyBatch, DayFigures
from llama_pipeline.write.pg_copy import copy_chunks

MAX_IN_MEMORY = 8 * 2**20  # bytes of COPY text kept in memory before the file goes to disk


@dataclasses.dataclass
class SpooledDays:
    """The days' rows, in ascending order of day, and each day's own figures."""

    table: sa.Table
    days: list[DayFigures] = dataclasses.field(default_factory=list)
    file: BinaryIO = dataclasses.field(
        default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=MAX_IN_MEMORY, mode="w+b"))  # noqa: SIM115

    def add(self, batch: DailyBatch) -> None:
        """Serialize the next day's rows (days arrive in ascending order)."""
        if self.days and batch.day <= self.days[-1].day:
            raise ValueError(f"{self.table.name}: {batch.day} added after {self.days[-1].day}")
        for chunk in copy_chunks(batch.rows, list(self.table.columns)):  # never the day's text whole
            self.file.write(chunk)
        self.days.append(DayFigures.of(batch))

    def rows(self) -> BinaryIO:
        """The COPY text of every day, from the start (the columns in the table's order)."""
        self.file.flush()
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.file.close()
