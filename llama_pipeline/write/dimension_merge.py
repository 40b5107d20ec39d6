"""How a run's dimension rows (chains, projects, pools) merge into their tables: folded to one row
per key across the run's days, then one INSERT ... ON CONFLICT whose counts are attributed to days."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import BinaryIO

import pandas as pd
import sqlalchemy as sa

from llama_pipeline import schema
from llama_pipeline.write.batches import DailyBatch, DayFigures
from llama_pipeline.write.copy_ahead import CopyAhead, RenderedCopy
from llama_pipeline.write.pg_copy import CopyStream
from llama_pipeline.write.warehouse_lock import quote_ident


def fold_days(
    folded: pd.DataFrame | None, frame: pd.DataFrame, table: sa.Table, seen_only: bool = False
) -> pd.DataFrame:
    """Merge a newer day's dimension rows into the range's: per key, the newest day's attributes, the
    earliest first-seen day, and the union of union-merged columns, as the upsert itself would.

    ``seen_only`` rows (carried from the table, not read from that day's payload) only move the seen
    dates of keys the range already has, so they never put older attributes over a newer day's."""
    if folded is None or folded.empty:
        return frame
    if frame.empty:
        return folded
    key = [c.name for c in table.primary_key]
    if seen_only:
        known = folded.set_index(key)
        incoming = frame.set_index(key)
        overlap = incoming.index.intersection(known.index)
        known.loc[overlap, schema.LAST_SEEN] = incoming.loc[overlap, schema.LAST_SEEN]
        return pd.concat([known, incoming.drop(overlap)]).reset_index()[[c.name for c in table.columns]]
    both = pd.concat([folded, frame], ignore_index=True)
    grouped = both.groupby(key, sort=False)
    merged = both.drop_duplicates(subset=key, keep="last").set_index(key)  # days arrive in ascending order
    merged[schema.FIRST_SEEN] = _earliest(both, key)
    for column in table.columns:
        if column.info.get("merge") == "union":
            merged[column.name] = grouped[column.name].agg(
                lambda lists: sorted({item for values in lists if values is not None for item in values}))
        elif column.info.get("merge") == "keep_known":
            placeholder = column.info["placeholder"]
            known = both[both[column.name] != placeholder].groupby(key, sort=False)[column.name].last()
            merged.loc[known.index, column.name] = known
    return merged.reset_index()[[c.name for c in table.columns]]


def _earliest(both: pd.DataFrame, key: list[str]) -> pd.Series:
    """Each key's earliest first-seen day. The days are Python dates, on which pandas' grouped min falls
    back to one Python call per key (4 s of a 5-day range of 17,000 pools); as datetime64 it is one pass."""
    days = pd.to_datetime(both[schema.FIRST_SEEN])
    if days.isna().any():  # not expected (the column is NOT NULL), but never turn a NULL into NaT
        return both.groupby(key, sort=False)[schema.FIRST_SEEN].min()
    return days.groupby([both[k] for k in key], sort=False).min().dt.date


@dataclasses.dataclass
class FoldedDays:
    """A dimension's rows over a run's days, folded as the asset computes them day by day: one row per
    key (what upserting the days in order would make of them), so a range holds one row per key
    however many days it spans, and each day's own figures."""

    table: sa.Table
    rows: pd.DataFrame | None = None
    days: list[DayFigures] = dataclasses.field(default_factory=list)
    _text: RenderedCopy | None = dataclasses.field(default=None, repr=False)

    def add(self, batch: DailyBatch) -> None:
        """Fold in the next day (days arrive in ascending order)."""
        if self._text is not None:
            raise ValueError(f"{self.table.name}: {batch.day} folded after the rows were rendered")
        if self.days and batch.day <= self.days[-1].day:
            raise ValueError(f"{self.table.name}: {batch.day} folded after {self.days[-1].day}")
        self.rows = fold_days(self.rows, with_kept_columns(batch.rows, self.table), self.table,
                              seen_only=batch.seen_only)
        self.days.append(DayFigures.of(batch))

    def render_ahead(self, ahead: CopyAhead) -> None:
        """Start rendering the rows' COPY text in the background (once the last day is folded)."""
        if self.rows is not None and self._text is None:
            self._text = RenderedCopy(ahead.render(self.rows, self.table.columns))

    def copy_text(self) -> BinaryIO:
        """The rows as COPY text in the table's column order: rendered ahead, else rendered as it is read."""
        return self._text if self._text is not None else CopyStream(self.rows, list(self.table.columns))

    def close(self) -> None:
        if self._text is not None:
            self._text.close()

    @classmethod
    def of(cls, table: sa.Table, batches: list[DailyBatch]) -> FoldedDays:
        folded = cls(table)
        for batch in sorted(batches, key=lambda b: b.day):
            folded.add(batch)
        return folded


def with_kept_columns(frame: pd.DataFrame, table: sa.Table) -> pd.DataFrame:
    """A dimension's rows with its "keep" columns, NULL where the payload behind them does not carry
    them (the ``chains`` rows of /pools lack /v2/chains' ids): the upsert keeps the stored values."""
    missing = [c.name for c in table.columns if c.info.get("merge") == "keep" and c.name not in frame.columns]
    if not missing:
        return frame
    return frame.assign(**dict.fromkeys(missing)).reindex(columns=[c.name for c in table.columns])


def upsert_sql(target: str, table: sa.Table) -> str:
    """INSERT ... ON CONFLICT from ``_stage``; returns (inserted, updated) counts.

    Attributes take the incoming value only when the incoming day is at least as new as the stored
    last-seen day; union columns (``chains.aliases``) merge; rows whose merged values equal the stored
    ones are left untouched, so re-running a day rewrites nothing.
    """
    key = [c.name for c in table.primary_key]
    names = [c.name for c in table.columns]
    newer = f"EXCLUDED.{schema.LAST_SEEN} >= t.{schema.LAST_SEEN}"
    merged: dict[str, str] = {}
    for column in table.columns:
        name = quote_ident(column.name)
        if column.name in key:
            continue
        if column.name == schema.FIRST_SEEN:
            merged[name] = f"LEAST(t.{name}, EXCLUDED.{name})"
        elif column.name == schema.LAST_SEEN:
            merged[name] = f"GREATEST(t.{name}, EXCLUDED.{name})"
        elif column.info.get("merge") == "union":
            # Byte order, as Python sorts the aliases, so that a re-run compares equal on any collation.
            merged[name] = (f'ARRAY(SELECT DISTINCT x COLLATE "C" FROM unnest(t.{name} || EXCLUDED.{name}) AS x '
                            'ORDER BY 1)')
        elif column.info.get("merge") == "keep":
            merged[name] = (f"CASE WHEN {newer} THEN coalesce(EXCLUDED.{name}, t.{name}) "
                            f"ELSE coalesce(t.{name}, EXCLUDED.{name}) END")
        elif column.info.get("merge") == "keep_known":
            placeholder = column.info["placeholder"].replace("'", "''")
            merged[name] = f"CASE WHEN {newer} AND EXCLUDED.{name} <> '{placeholder}' THEN EXCLUDED.{name} ELSE t.{name} END"
        else:
            merged[name] = f"CASE WHEN {newer} THEN EXCLUDED.{name} ELSE t.{name} END"
    column_list = ", ".join(quote_ident(n) for n in names)
    key_list = ", ".join(quote_ident(k) for k in key)
    # Each written row counted on one day of the run: an insert on the first day it was seen, an update
    # on the day whose attributes it took (the newest), for each day's own inserted/updated figures.
    return f"""
        WITH written AS (
            INSERT INTO {target} AS t ({column_list})
            SELECT {column_list} FROM _stage
            ON CONFLICT ({key_list}) DO UPDATE SET
                {", ".join(f"{name} = {expr}" for name, expr in merged.items())}
            WHERE ({", ".join(f"t.{name}" for name in merged)}) IS DISTINCT FROM ({", ".join(merged.values())})
            RETURNING (xmax = 0) AS is_insert, {", ".join(f"t.{quote_ident(k)}" for k in key)}
        )
        SELECT CASE WHEN w.is_insert THEN s.{schema.FIRST_SEEN} ELSE s.{schema.LAST_SEEN} END AS day,
               count(*) FILTER (WHERE w.is_insert), count(*) FILTER (WHERE NOT w.is_insert)
        FROM written w JOIN _stage s USING ({key_list})
        GROUP BY 1
    """


def attribute_upsert(per_day: dict[dt.date, dict], written: list[tuple]) -> None:
    """Each day's inserted/updated/unchanged from the merge's per-day counts; a staged date outside the
    run (a day carried from history with older seen dates) is counted on the run's nearest day."""
    days = sorted(per_day)
    for figures in per_day.values():
        figures["inserted"] = figures["updated"] = 0
    for day, inserted, updated in written:
        day = min(max(day, days[0]), days[-1])
        if day not in per_day:  # a gap cannot occur in a range; the nearest earlier day then
            day = max(d for d in days if d <= day)
        per_day[day]["inserted"] += inserted
        per_day[day]["updated"] += updated
    for figures in per_day.values():
        figures["unchanged"] = max(0, figures["dagster/row_count"] - figures["inserted"] - figures["updated"])
