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

from llama_pipeline import parsed_payloads, quarantine, raw_archive, schema
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
                stats = self._archive(obj)
            else:
                if isinstance(obj, pd.DataFrame):
                    day, = partition_days(context)
                    obj = DailyBatches((day,), lambda _day, frame=obj: DailyBatch(day, frame))
                if not isinstance(obj, DailyBatches):
                    raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                                    "expected DailyBatches or a DataFrame")
                with paused_gc():  # building and serializing a day's rows: see gc_pause
                    stats = self._write_table(context, table, mode, meta.get("partition_expr"), obj)
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
        context.add_output_metadata(stats)

    def _archive(self, obj: FetchedPayloads) -> dict:
        # Only the rows being written are locked (one key per endpoint and day): today's capture never
        # queues behind a range run that holds the warehouse tables' locks for its whole write.
        with self.warehouse.connection() as conn:
            with conn.cursor() as cur:
                for payload in obj.fetched:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (archive_lock_key(
                        self.warehouse.schema_name, payload.endpoint, payload.partition_date),))
            written = raw_archive.store(conn, self.warehouse.schema_name, obj.fetched)
            quarantine.release(conn, self.warehouse.schema_name, obj.held)
        return {"payloads_archived": written, "payloads_kept": len(obj.kept)}

    def _lock(self, conn: psycopg2.extensions.connection, table: sa.Table) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (partition_lock_key(self.warehouse.schema_name, table.name),))

    def _qualified(self, name: str) -> str:
        return f"{quote_ident(self.warehouse.schema_name)}.{quote_ident(name)}"

    def _write_table(
        self, context: dg.OutputContext, table: sa.Table, mode: str, partition_expr: str | None,
        batches: DailyBatches,
    ) -> dict:
        days = partition_days(context)
        if set(batches.days) - set(days):
            raise ValueError(f"batches for days outside the run's partitions: {sorted(set(batches.days) - set(days))}")
        asset = context.asset_key.to_user_string()
        columns = list(table.columns)
        rows = inserted = updated = rejected = 0
        sources: dict[str, int] = {}  # days filled from each payload, for range runs
        folded: pd.DataFrame | None = None  # upserts: the range's rows, one per key
        last: DailyBatch | None = None
        with self.warehouse.connection() as conn, conn.cursor() as cur:
            self._lock(conn, table)
            cur.execute(
                f"DELETE FROM {self._qualified('rejects')} WHERE asset = %s AND partition_date BETWEEN %s AND %s",
                (asset, days[0], days[-1]),
            )
            if mode == REPLACE_PARTITION:
                cur.execute(
                    f"DELETE FROM {self._qualified(table.name)} WHERE {quote_ident(partition_expr)} BETWEEN %s AND %s",
                    (days[0], days[-1]),
                )
                replaced = cur.rowcount
            else:
                cur.execute(
                    f"CREATE TEMP TABLE _stage (LIKE {self._qualified(table.name)} INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                upsert_sql = _upsert_sql(self._qualified(table.name), table)
            column_list = ", ".join(quote_ident(c.name) for c in columns)
            for batch in batches:
                frame = batch.rows
                if mode == REPLACE_PARTITION:
                    cur.copy_expert(f"COPY {self._qualified(table.name)} ({column_list}) FROM STDIN",
                                    copy_buffer(frame, columns))
                    inserted += len(frame)
                else:
                    folded = _fold_days(folded, _with_kept_columns(frame, table), table, seen_only=batch.seen_only)
                if batch.rejects:
                    reject_frame = pd.DataFrame(
                        [(asset, batch.day, r.record_index, r.record_key, r.reason, r.record) for r in batch.rejects],
                        columns=[c.name for c in _REJECT_COLUMNS],
                    )
                    cur.copy_expert(
                        f"COPY {self._qualified('rejects')} ({', '.join(c.name for c in _REJECT_COLUMNS)}) FROM STDIN",
                        copy_buffer(reject_frame, _REJECT_COLUMNS),
                    )
                rows += len(frame)
                rejected += len(batch.rejects)
                source = batch.summary.get("source")
                if source:
                    sources[source] = sources.get(source, 0) + 1
                last = batch
            if mode == UPSERT and folded is not None:
                # One merge for the whole range: each key once, as of its newest day, however many days.
                cur.copy_expert(f"COPY _stage ({column_list}) FROM STDIN", copy_buffer(folded, columns))
                cur.execute(upsert_sql)
                inserted, updated = cur.fetchone()
                rows = len(folded)
            table_rows = None
            if mode == UPSERT:  # a dimension, thousands of rows; counting the facts would grow with history
                cur.execute(f"SELECT count(*) FROM {self._qualified(table.name)}")
                table_rows = cur.fetchone()[0]
        stats: dict = {
            "dagster/row_count": rows,
            "inserted": inserted,
            "rejected": rejected,
            "days": len(days),
        }
        if table_rows is not None:
            stats["table_rows"] = table_rows
        if mode == REPLACE_PARTITION:
            stats["replaced"] = replaced
        else:
            stats["updated"] = updated
            stats["unchanged"] = rows - inserted - updated
        stats.update({f"days_from_{source}": count for source, count in sorted(sources.items())})
        if last is not None:
            stats.update(last.summary)
            if len(last.rows):
                stats["preview"] = dg.MetadataValue.md(_markdown_preview(last.rows))
        return stats

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


def _fold_days(
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
    merged[schema.FIRST_SEEN] = grouped[schema.FIRST_SEEN].min()
    for column in table.columns:
        if column.info.get("merge") == "union":
            merged[column.name] = grouped[column.name].agg(
                lambda lists: sorted({item for values in lists if values is not None for item in values}))
        elif column.info.get("merge") == "keep_known":
            placeholder = column.info["placeholder"]
            known = both[both[column.name] != placeholder].groupby(key, sort=False)[column.name].last()
            merged.loc[known.index, column.name] = known
    return merged.reset_index()[[c.name for c in table.columns]]


def _with_kept_columns(frame: pd.DataFrame, table: sa.Table) -> pd.DataFrame:
    """A dimension's rows with its "keep" columns, NULL where the payload behind them does not carry
    them (the ``chains`` rows of /pools lack /v2/chains' ids): the upsert keeps the stored values."""
    missing = [c.name for c in table.columns if c.info.get("merge") == "keep" and c.name not in frame.columns]
    if not missing:
        return frame
    return frame.assign(**dict.fromkeys(missing)).reindex(columns=[c.name for c in table.columns])


def _upsert_sql(target: str, table: sa.Table) -> str:
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
    return f"""
        WITH written AS (
            INSERT INTO {target} AS t ({column_list})
            SELECT {column_list} FROM _stage
            ON CONFLICT ({", ".join(quote_ident(k) for k in key)}) DO UPDATE SET
                {", ".join(f"{name} = {expr}" for name, expr in merged.items())}
            WHERE ({", ".join(f"t.{name}" for name in merged)}) IS DISTINCT FROM ({", ".join(merged.values())})
            RETURNING (xmax = 0) AS is_insert
        )
        SELECT count(*) FILTER (WHERE is_insert), count(*) FILTER (WHERE NOT is_insert) FROM written
    """
