"""A partition-aware PostgreSQL writer in the spirit of Dagster's DbIOManager.

Assets compute their rows; this IO manager only writes them, as the asset's declared ``TableWrite``
(``table_write``) says:

- ``archive``: raw payloads, upserted into ``raw_payloads`` by (endpoint, day);
- ``replace_partition``: facts; the run's days are deleted and rewritten from the asset's day batches
  (``spooled_rows.SpooledDays`` for a range of any length);
- ``upsert``: dimensions; the run's rows, folded to one per key (``dimension_merge.FoldedDays``), merge
  into the table: first/last seen dates widen, and attributes change only when the incoming day is not
  older than the day that wrote them.

Every write is one transaction per output (rows, rejects and all days of a range), goes through COPY,
and holds a per-table advisory lock so that concurrent runs queue instead of deadlocking or
interleaving. Each day of a range gets its own figures (``day_metadata``).
"""

# No ``from __future__ import annotations`` here: Dagster reads ``WarehouseIOManager.warehouse``'s
# annotation as a class to accept the run's partially configured "warehouse" (defs/resources.py).
import datetime as dt
import time
from collections.abc import Sequence

import dagster as dg
import pandas as pd
import psycopg2
import psycopg2.extensions
import sqlalchemy as sa

from llama_pipeline import schema
from llama_pipeline.fetch import quarantine, raw_archive
from llama_pipeline.fetch.raw_archive import FetchedPayloads, RawArchive
from llama_pipeline.partitions import days_of
from llama_pipeline.write import day_metadata
from llama_pipeline.write.batches import DailyBatch, DayFigures
from llama_pipeline.write.dimension_merge import FoldedDays, attribute_upsert, upsert_sql
from llama_pipeline.write.pg_copy import CopyStream, copy_buffer
from llama_pipeline.write.spooled_rows import SpooledDays
from llama_pipeline.write.table_write import TableWrite, WriteMode
from llama_pipeline.write.warehouse import Warehouse, WarehouseError
from llama_pipeline.write.warehouse_lock import archive_lock_key, partition_lock_key, quote_ident

_REJECT_COLUMNS = [schema.rejects.c[name] for name in
                   ("asset", "partition_date", "record_index", "record_key", "reason", "record")]


def partition_days(context: dg.InputContext | dg.OutputContext) -> tuple[dt.date, ...]:
    """The UTC days of the run's partition or partition range."""
    return days_of(context.asset_partitions_time_window)


def _markdown_preview(frame: pd.DataFrame, rows: int = 5, width: int = 40) -> str:
    def cell(value: object) -> str:
        text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= width else text[: width - 1] + "…"

    head = frame.head(rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    # Row by row from one object array: itertuples takes every column of a wide frame apart first.
    lines += ["| " + " | ".join(cell(v) for v in record) + " |" for record in head.to_numpy(dtype=object).tolist()]
    return "\n".join(lines)


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Writes asset outputs to the warehouse tables and reads them back as inputs.

    Downstream assets always load from PostgreSQL, so any asset can be re-materialized alone for any
    day whose inputs are stored.
    """

    warehouse: Warehouse

    # -- writing -------------------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        declared = TableWrite.declared(context.definition_metadata, context.asset_key.to_user_string())
        table = declared.table
        started = time.perf_counter()
        failure = None
        try:
            if declared.mode is WriteMode.ARCHIVE:
                stats, per_day = self._archive(context, obj)
            else:
                rows = _run_rows(context, declared, obj)
                try:
                    stats, per_day = self._write_table(context, declared, rows)
                finally:
                    if isinstance(rows, (SpooledDays, FoldedDays)):
                        rows.close()
        except psycopg2.Error as error:
            # Raised outside the except block, so the unscrubbed driver error is not kept as context;
            # a scrubbed copy of it (with its traceback) is the cause.
            failure = WarehouseError.of(f"writing {self.warehouse.schema_name}.{table.name} failed and was "
                                        "rolled back", error, self.warehouse.database_url)
        if failure is not None:
            raise failure
        stats["write_seconds"] = round(time.perf_counter() - started, 3)
        stats["dagster/table_name"] = f"{self.warehouse.schema_name}.{table.name}"
        # No "dagster/column_schema" here: the definition declares it (table_metadata, lineage) and the
        # UI shows a materialization's own over the definition's, which for the raw assets (the API
        # record's fields) would have been raw_payloads' columns; each event was also serialized with it.
        day_metadata.publish(context, stats, per_day)

    def _archive(self, context: dg.OutputContext, obj: FetchedPayloads) -> tuple[dict, dict]:
        # Only the rows being written are locked (one key per endpoint and day): today's capture never
        # queues behind a range run that holds the warehouse tables' locks for its whole write.
        with self.warehouse.connection() as conn:
            with conn.cursor() as cur:
                for payload in obj.fetched:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (archive_lock_key(
                        self.warehouse.schema_name, payload.endpoint, payload.partition_date),))
            written = raw_archive.store(conn, self.warehouse.schema_name, obj.fetched, obj.held)
            quarantine.release(conn, self.warehouse.schema_name, obj.held)
            # Every stored day's own payload figures (the asset's metadata describes today's fetch only).
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT partition_date, record_count, size_bytes, sha256, fetched_at FROM "
                    f"{self._qualified('raw_payloads')} WHERE endpoint = %s AND partition_date = ANY(%s)",
                    (obj.endpoint, list(partition_days(context))),
                )
                stored = {row[0]: row[1:] for row in cur.fetchall()}
        fetched = {payload.partition_date for payload in obj.fetched}
        per_day: dict[dt.date, dict] = {}
        for day in partition_days(context):
            if day in stored:
                records, size, sha256, fetched_at = stored[day]
                per_day[day] = {"payload": "fetched in this run" if day in fetched else "stored earlier, kept as it was",
                                "rows_from": f"the day's /{obj.endpoint} capture",
                                "payloads_archived": int(day in fetched), "dagster/row_count": records,
                                "size_bytes": size, "sha256": sha256, "fetched_at": fetched_at.isoformat()}
            else:  # raw_pools/raw_protocols have failed every past day that nothing fills (day_sources)
                per_day[day] = {"payload": f"none: no /{obj.endpoint} capture is stored for this day (/{obj.endpoint} "
                                "serves only today)",
                                "payloads_archived": 0, "dagster/row_count": 0, "size_bytes": 0, "sha256": "",
                                "fetched_at": "never"}
                if day in obj.uncaptured:
                    per_day[day]["rows_from"] = obj.uncaptured[day]
        return {"payloads_archived_in_run": written, "payloads_kept": len(obj.kept)}, per_day

    def _lock(self, conn: psycopg2.extensions.connection, table: sa.Table) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (partition_lock_key(self.warehouse.schema_name, table.name),))

    def _qualified(self, name: str) -> str:
        return f"{quote_ident(self.warehouse.schema_name)}.{quote_ident(name)}"

    def _write_table(
        self, context: dg.OutputContext, declared: TableWrite, rows: list[DailyBatch] | FoldedDays | SpooledDays,
    ) -> tuple[dict, dict[dt.date, dict]]:
        """Write the run's days in one transaction; return the run's figures and each day's own."""
        table, days = declared.table, partition_days(context)
        figures_of = [DayFigures.of(batch) for batch in rows] if isinstance(rows, list) else rows.days
        outside = sorted({f.day for f in figures_of} - set(days))
        if outside:
            raise ValueError(f"rows for days outside the run's partitions: {outside}")
        asset = context.asset_key.to_user_string()
        columns = list(table.columns)
        column_list = ", ".join(quote_ident(c.name) for c in columns)
        per_day: dict[dt.date, dict] = {day: {"dagster/row_count": 0, "rejected": 0} for day in days}
        run_wide: dict = {"days": len(days)}
        with self.warehouse.connection() as conn, conn.cursor() as cur:
            self._lock(conn, table)
            cur.execute(
                f"DELETE FROM {self._qualified('rejects')} WHERE asset = %s AND partition_date BETWEEN %s AND %s",
                (asset, days[0], days[-1]),
            )
            if declared.mode is WriteMode.REPLACE_PARTITION:
                self._replace_days(cur, declared, rows, per_day, column_list)  # type: ignore[arg-type]
            for figures in figures_of:
                self._day_figures(cur, asset, figures, per_day[figures.day])
            if declared.mode is WriteMode.UPSERT:
                folded = rows if isinstance(rows, FoldedDays) else FoldedDays.of(table, rows)
                written = []
                if folded.rows is not None:
                    # One merge for the whole range: each key once, as of its newest day, however many days.
                    cur.execute(f"CREATE TEMP TABLE _stage (LIKE {self._qualified(table.name)} INCLUDING DEFAULTS) "
                                "ON COMMIT DROP")
                    cur.copy_expert(f"COPY _stage ({column_list}) FROM STDIN", folded.copy_text(), size=CopyStream.READ_SIZE)
                    cur.execute(upsert_sql(self._qualified(table.name), table))
                    written = cur.fetchall()
                attribute_upsert(per_day, written)
                # A dimension, thousands of rows; counting the facts would grow with history.
                cur.execute(f"SELECT count(*) FROM {self._qualified(table.name)}")
                run_wide["table_rows"] = cur.fetchone()[0]
                if len(days) > 1:
                    run_wide["keys_in_run"] = 0 if folded.rows is None else len(folded.rows)
        if len(days) > 1:
            run_wide.update(_range_figures(per_day))
        return run_wide, per_day

    def _replace_days(self, cur: psycopg2.extensions.cursor, declared: TableWrite,
                      batches: list[DailyBatch] | SpooledDays, per_day: dict[dt.date, dict], column_list: str) -> None:
        if not isinstance(batches, (list, SpooledDays)):
            raise TypeError(f"{declared.table.name} is replaced day by day: expected SpooledDays or a list of "
                            "DailyBatch")
        days = sorted(per_day)
        partition_expr = declared.partition_expr
        column = quote_ident(partition_expr)
        target = self._qualified(declared.table.name)
        cur.execute(
            f"WITH gone AS (DELETE FROM {target} WHERE {column} BETWEEN %s AND %s "
            f"RETURNING {column} AS day) SELECT day, count(*) FROM gone GROUP BY day",
            (days[0], days[-1]),
        )
        for day, count in cur.fetchall():
            per_day[day]["replaced"] = count
        if isinstance(batches, SpooledDays):  # the range's rows, serialized day by day by the asset
            cur.copy_expert(f"COPY {target} ({column_list}) FROM STDIN", batches.rows(), size=CopyStream.READ_SIZE)
            counts = [(day.day, day.row_count) for day in batches.days]
        else:
            for batch in batches:
                cur.copy_expert(f"COPY {target} ({column_list}) FROM STDIN",
                                CopyStream(batch.rows, list(declared.table.columns)), size=CopyStream.READ_SIZE)
            counts = [(batch.day, len(batch.rows)) for batch in batches]
        for day, count in counts:
            per_day[day]["inserted"] = count
            per_day[day].setdefault("replaced", 0)

    def _day_figures(self, cur: psycopg2.extensions.cursor, asset: str, day: DayFigures, figures: dict) -> None:
        """A day's rejects (written with its rows) and its own figures."""
        if day.rejects:
            reject_frame = pd.DataFrame(
                [(asset, day.day, r.record_index, r.record_key, r.reason, r.record) for r in day.rejects],
                columns=[c.name for c in _REJECT_COLUMNS],
            )
            cur.copy_expert(
                f"COPY {self._qualified('rejects')} ({', '.join(c.name for c in _REJECT_COLUMNS)}) FROM STDIN",
                copy_buffer(reject_frame, _REJECT_COLUMNS),
            )
        figures["dagster/row_count"] = day.row_count
        figures["rejected"] = len(day.rejects)
        figures.update(day.summary)
        if day.row_count:
            figures["preview"] = dg.MetadataValue.md(_markdown_preview(day.head))

    # -- reading -------------------------------------------------------------------------------------

    def load_input(self, context: dg.InputContext) -> object:
        upstream = context.upstream_output
        meta = upstream.definition_metadata if upstream is not None else {}
        declared = TableWrite.declared(meta, context.asset_key.to_user_string())
        days = partition_days(context)
        if declared.mode is WriteMode.ARCHIVE:
            return RawArchive(self.warehouse, meta["endpoint"], days)
        table, partition_expr = declared.table, declared.partition_expr
        query = f"SELECT * FROM {self._qualified(table.name)}"
        params: Sequence = ()
        if declared.mode is WriteMode.REPLACE_PARTITION:
            query += f" WHERE {quote_ident(partition_expr)} BETWEEN %s AND %s"
            params = (days[0], days[-1])
        with self.warehouse.connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            names = [d.name for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=names)


def _run_rows(context: dg.OutputContext, declared: TableWrite,
              obj: object) -> list[DailyBatch] | FoldedDays | SpooledDays:
    """The asset's value as day batches (or a dimension's folded days); a bare DataFrame is the rows of
    a one-day run."""
    if isinstance(obj, pd.DataFrame):
        day, = partition_days(context)
        return [DailyBatch(day, obj)]
    if isinstance(obj, FoldedDays) and declared.mode is WriteMode.UPSERT and obj.table is declared.table:
        return obj
    if isinstance(obj, SpooledDays) and declared.mode is WriteMode.REPLACE_PARTITION and obj.table is declared.table:
        return obj
    if isinstance(obj, (list, tuple)) and all(isinstance(batch, DailyBatch) for batch in obj):
        return sorted(obj, key=lambda batch: batch.day)
    raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; expected a list of "
                    f"DailyBatch, a DataFrame or {'FoldedDays' if declared.mode is WriteMode.UPSERT else 'SpooledDays'} "
                    f"for {declared.table.name}")


def _range_figures(per_day: dict[dt.date, dict]) -> dict:
    """A range run's totals (on the output: every day's event shows them)."""
    figures = {
        "run_rows": sum(f["dagster/row_count"] for f in per_day.values()),
        "run_inserted": sum(f.get("inserted", 0) for f in per_day.values()),
        "run_rejected": sum(f["rejected"] for f in per_day.values()),
    }
    sources: dict[str, int] = {}  # days filled from each payload
    for day in per_day.values():
        source = day.get("source")
        if source:
            sources[source] = sources.get(source, 0) + 1
    figures.update({f"run_days_from_{source}": count for source, count in sorted(sources.items())})
    return figures
