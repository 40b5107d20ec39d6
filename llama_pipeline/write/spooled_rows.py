"""A fact table's rows over a run's days, kept as COPY text in a temporary file.

A range run (a backfill of many days) computes every day before the IO manager writes the range in one
transaction. Held as DataFrames, the rows grew the step by ~5-8 MB a day of 17,000 pools (484 MB peak
for 30 days against 247 MB for one); as COPY text in a spooled file (in memory up to
``copy_ahead.MAX_IN_MEMORY``, about two full days, then on disk) the step holds one day's rows at a time,
and the writer sends the whole range with one COPY.

With a ``CopyAhead`` renderer, a day's text is rendered in the background: each day once the next one
has been computed (one day rendering at a time, so a range holds at most two days' rows), and the last
when the asset calls ``finish`` — after it has asked for the text of the tables written before this one.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import BinaryIO

import sqlalchemy as sa

from llama_pipeline.write.batches import DailyBatch, DayFigures
from llama_pipeline.write.copy_ahead import CopyAhead, RenderedCopy, render_into, spool_file


@dataclasses.dataclass
class SpooledDays:
    """The days' rows, in ascending order of day, and each day's own figures."""

    table: sa.Table
    ahead: CopyAhead | None = None
    days: list[DayFigures] = dataclasses.field(default_factory=list)
    file: BinaryIO = dataclasses.field(default_factory=spool_file)
    _pending: DailyBatch | None = dataclasses.field(default=None, repr=False)
    _rendering: concurrent.futures.Future | None = dataclasses.field(default=None, repr=False)

    def add(self, batch: DailyBatch) -> None:
        """Serialize the next day's rows (days arrive in ascending order)."""
        if self.days and batch.day <= self.days[-1].day:
            raise ValueError(f"{self.table.name}: {batch.day} added after {self.days[-1].day}")
        self.days.append(DayFigures.of(batch))
        if self.ahead is None:
            render_into(self.file, batch.rows, self.table.columns)
            return
        self.finish()
        self._pending = batch

    def finish(self) -> None:
        """Start rendering the newest day added (the others are rendered or rendering already)."""
        if self._pending is None:
            return
        if self._rendering is not None:
            self._rendering.result()  # one day at a time, and an earlier day's error is raised here
        self._rendering = self.ahead.render(self._pending.rows, self.table.columns, into=self.file)
        self._pending = None

    def rows(self) -> BinaryIO:
        """The COPY text of every day, from the start (the columns in the table's order)."""
        self.finish()
        if self._rendering is not None:
            return RenderedCopy(self._rendering)  # waits for the last day's rendering when first read
        self.file.flush()
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.file.close()  # every day's text, rendered ahead or not, is in this one file
