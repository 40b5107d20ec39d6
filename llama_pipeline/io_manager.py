"""A partition-aware PostgreSQL IO manager in the spirit of Dagster's DbIOManager.

Each asset's definition metadata names its table and how it is written (``table_metadata`` below):

- ``archive``: raw payloads, upserted into ``raw_payloads`` by (endpoint, day);
- ``replace_partition``: facts; the run's days are deleted and rewritten;
- ``upsert``: dimensions; rows merge by key, first/last seen dates widen, and attributes change only
  when the incoming day is not older than the day that wrote them.

Every write is one transaction (rows, rejects and all days of a range), goes through COPY, and holds a
per-table advisory lock so that concurrent runs queue instead of deadlocking or interleaving.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

import dagster as dg
import pandas as pd
import psycopg2
import psycopg2.extensions
import sqlalchemy as sa

from llama_pipeline import day_metadata, parsed_payloads, quarantine, raw_archive, schema
from llama_pipeline.dimension_merge import attribute_upsert, fold_days, upsert_sql, with_kept_columns
from llama_pipeline.gc_pause import paused_gc
from llama_pipeline.partitions import days_of
from llama_pipeline.pg_copy import copy_buffer
from llama_pipeline.raw_archive import FetchedPayloads, RawArchive
from llama_pipeline.transform.batches import DailyBatch, DailyBatches
from llama_pipeline.warehouse import Warehouse, WarehouseError
from llama_pipeline.warehouse_lock import archive_lock_key, partition_lock_key, quote_ident

ARCHIVE, REPLACE_PARTITION, UPSERT = "archive", "replace_partition", "upsert"
_REJECT_COLUMNS = [schema.rejects.c[name] for name in
                   ("asset", "partition_date", "record_index", "record_key", "reason", "record")]


def column_schema(table: sa.Table) -> dg.TableSchema:
    """The table's columns as Dagster shows them."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=str(column.type.compile(dialect=sa.dialects.postgresql.dialect())).lower(),
                description=column.comment,
                constraints=dg.TableColumnConstraints(
                    nullable=bool(column.nullable), unique=bool(column.primary_key and len(table.primary_key) == 1)
                ),
            )
            for column in table.columns
        ]
    )


def table_metadata(table: sa.Table, write: str, partition_expr: str | None = None) -> dict:
    """Definition metadata telling the IO manager where and how an asset is written."""
    metadata = {
        "table": table.name,
        "write_mode": write,
        "primary_key": [c.name for c in table.primary_key],
        "dagster/column_schema": column_schema(table),
    }
    if partition_expr:
        metadata["partition_expr"] = partition_expr
    return metadata


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
    lines += ["| " + " | ".join(cell(v) for v in record) + " |" for record in head.itertuples(index=False)]
    return "\n".join(lines)


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Writes asset outputs to the warehouse tables and reads them back as inputs.

    Downstream assets always load from PostgreSQL, so any asset can be re-materialized alone for any
    day whose inputs are stored.
    """

    warehouse: Warehouse

    # The steps of a run share parsed payloads; nothing is carried from one run to the next in a process
    # that executes several (tests, the benchmark), and the memory is given back when the run ends.
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        parsed_payloads.clear()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        parsed_payloads.clear()

    # -- writing -------------------------------------------------------------------------------------

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        meta = context.definition_metadata
        table = schema.metadata.tables[meta["table"]]
        mode = meta["write_mode"]
        started = time.perf_counter()
        failure = None
        try:
            if mode == ARCHIVE:
                stats, per_day = self._archive(context, obj)
            else:
                if isinstance(obj, pd.DataFrame):
                    day, = partition_days(context)
                    obj = DailyBatches((day,), lambda _day, frame=obj: DailyBatch(day, frame))
                if not isinstance(obj, DailyBatches):
                    raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                                    "expected DailyBatches or a DataFrame")
                with paused_gc():  # building and serializing a day's rows: see gc_pause
                    stats, per_day = self._write_table(context, table, mode, meta.get("partition_expr"), obj)
        except psycopg2.Error as error:
            # Raised outside the except block, so the unscrubbed driver error is not kept as context;
            # a scrubbed copy of it (with its traceback) is the cause.
            failure = WarehouseError.of(f"writing {self.warehouse.schema_name}.{table.name} failed and was "
                                        "rolled back", error, self.warehouse.database_url)
        if failure is not None:
            raise failure
        stats["write_seconds"] = round(time.perf_counter() - started, 3)
        stats["dagster/table_name"] = f"{self.warehouse.schema_name}.{table.name}"
        stats["dagster/column_schema"] = column_schema(table)
        day_metadata.publish(context, stats, per_day)

    def _archive(self, context: dg.OutputContext, obj: FetchedPayloads) -> tuple[dict, dict]:
        # Only the rows being written are locked (one key per endpoint and day): today's capture never
        # queues behind a range run that holds the warehouse tables' locks for its whole write.
        with self.warehouse.connection() as conn:
            with conn.cursor() as cur:
                for payload in obj.fetched:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (archive_lock_key(
                        self.warehouse.schema_name, payload.endpoint, payload.partition_date),))
            written = raw_archive.store(conn, self.warehouse.schema_name, obj.fetched)
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
                                "payloads_archived": int(day in fetched), "dagster/row_count": records,
                                "size_bytes": size, "sha256": sha256, "fetched_at": fetched_at.isoformat()}
            else:
                per_day[day] = {"payload": f"none: /{obj.endpoint} serves only today and no payload is stored for "
                                "this day, so its rows can only come from chart history",
                                "payloads_archived": 0, "dagster/row_count": 0, "size_bytes": 0, "sha256": "",
                                "fetched_at": "never"}
        return {"payloads_archived_in_run": written, "payloads_kept": len(obj.kept)}, per_day

    def _lock(self, conn: psycopg2.extensions.connection, table: sa.Table) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (partition_lock_key(self.warehouse.schema_name, table.name),))

    def _qualified(self, name: str) -> str:
        return f"{quote_ident(self.warehouse.schema_name)}.{quote_ident(name)}"

    def _write_table(
        self, context: dg.OutputContext, table: sa.Table, mode: str, partition_expr: str | None,
        batches: DailyBatches,
    ) -> tuple[dict, dict[dt.date, dict]]:
        """Write the run's days in one transaction; return the run's figures and each day's own."""
        days = partition_days(context)
        if set(batches.days) - set(days):
            raise ValueError(f"batches for days outside the run's partitions: {sorted(set(batches.days) - set(days))}")
        asset = context.asset_key.to_user_string()
        columns = list(table.columns)
        per_day: dict[dt.date, dict] = {day: {"dagster/row_count": 0, "rejected": 0} for day in days}
        folded: pd.DataFrame | None = None  # upserts: the range's rows, one per key
        with self.warehouse.connection() as conn, conn.cursor() as cur:
            self._lock(conn, table)
            cur.execute(
                f"DELETE FROM {self._qualified('rejects')} WHERE asset = %s AND partition_date BETWEEN %s AND %s",
                (asset, days[0], days[-1]),
            )
            if mode == REPLACE_PARTITION:
                column = quote_ident(partition_expr)
                cur.execute(
                    f"WITH gone AS (DELETE FROM {self._qualified(table.name)} WHERE {column} BETWEEN %s AND %s "
                    f"RETURNING {column} AS day) SELECT day, count(*) FROM gone GROUP BY day",
                    (days[0], days[-1]),
                )
                for day, count in cur.fetchall():
                    per_day[day]["replaced"] = count
            else:
                cur.execute(
                    f"CREATE TEMP TABLE _stage (LIKE {self._qualified(table.name)} INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                merge = upsert_sql(self._qualified(table.name), table)
            column_list = ", ".join(quote_ident(c.name) for c in columns)
            for batch in batches:
                frame = batch.rows
                figures = per_day[batch.day]
                if mode == REPLACE_PARTITION:
                    cur.copy_expert(f"COPY {self._qualified(table.name)} ({column_list}) FROM STDIN",
                                    copy_buffer(frame, columns))
                    figures["inserted"] = len(frame)
                    figures.setdefault("replaced", 0)
                else:
                    folded = fold_days(folded, with_kept_columns(frame, table), table, seen_only=batch.seen_only)
                if batch.rejects:
                    reject_frame = pd.DataFrame(
                        [(asset, batch.day, r.record_index, r.record_key, r.reason, r.record) for r in batch.rejects],
                        columns=[c.name for c in _REJECT_COLUMNS],
                    )
                    cur.copy_expert(
                        f"COPY {self._qualified('rejects')} ({', '.join(c.name for c in _REJECT_COLUMNS)}) FROM STDIN",
                        copy_buffer(reject_frame, _REJECT_COLUMNS),
                    )
                figures["dagster/row_count"] = len(frame)
                figures["rejected"] = len(batch.rejects)
                figures.update(batch.summary)
                if len(frame):
                    figures["preview"] = dg.MetadataValue.md(_markdown_preview(frame))
            run_wide: dict = {"days": len(days)}
            if mode == UPSERT:
                if folded is not None:
                    # One merge for the whole range: each key once, as of its newest day, however many days.
                    cur.copy_expert(f"COPY _stage ({column_list}) FROM STDIN", copy_buffer(folded, columns))
                    cur.execute(merge)
                    written = cur.fetchall()
                else:
                    written = []
                attribute_upsert(per_day, written)
                # A dimension, thousands of rows; counting the facts would grow with history.
                cur.execute(f"SELECT count(*) FROM {self._qualified(table.name)}")
                run_wide["table_rows"] = cur.fetchone()[0]
                if len(days) > 1:
                    run_wide["keys_in_run"] = 0 if folded is None else len(folded)
        if len(days) > 1:
            run_wide["run_rows"] = sum(f["dagster/row_count"] for f in per_day.values())
            run_wide["run_inserted"] = sum(f.get("inserted", 0) for f in per_day.values())
            run_wide["run_rejected"] = sum(f["rejected"] for f in per_day.values())
            sources: dict[str, int] = {}  # days filled from each payload
            for figures in per_day.values():
                source = figures.get("source")
                if source:
                    sources[source] = sources.get(source, 0) + 1
            run_wide.update({f"run_days_from_{source}": count for source, count in sorted(sources.items())})
        return run_wide, per_day

    # -- reading -------------------------------------------------------------------------------------

    def load_input(self, context: dg.InputContext) -> object:
        upstream = context.upstream_output
        meta = upstream.definition_metadata if upstream is not None else {}
        days = partition_days(context)
        if meta.get("write_mode") == ARCHIVE:
            return RawArchive(self.warehouse, meta["endpoint"], days)
        table = schema.metadata.tables[meta["table"]]
        query = f"SELECT * FROM {self._qualified(table.name)}"
        params: Sequence = ()
        if meta.get("write_mode") == REPLACE_PARTITION:
            query += f" WHERE {quote_ident(meta['partition_expr'])} BETWEEN %s AND %s"
            params = (days[0], days[-1])
        with self.warehouse.connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            names = [d.name for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=names)
