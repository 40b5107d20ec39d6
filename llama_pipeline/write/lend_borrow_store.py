"""Writing a run's days of ``lend_borrow_snapshots`` in one transaction: the placeholder pools rows
its lending pools need, the rows and the rejects, so that a failure leaves every table as it was."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import psycopg2.extensions

from llama_pipeline import schema
from llama_pipeline.decode.lend_borrow_rows import ParsedLendBorrow
from llama_pipeline.schema import UNKNOWN
from llama_pipeline.schema_datasets import lend_borrow_snapshots
from llama_pipeline.write.pg_copy import copy_buffer
from llama_pipeline.write.warehouse_lock import partition_lock_key, quote_ident

ASSET = "lend_borrow_snapshots"
_REJECT_COLUMNS = [schema.rejects.c[name] for name in
                   ("asset", "partition_date", "record_index", "record_key", "reason", "record")]


def stored_tokens(conn: psycopg2.extensions.connection, schema_name: str, pool_ids: Sequence[str]) -> dict:
    with conn.cursor() as cur:
        cur.execute(f"SELECT pool_id::text, reward_tokens, underlying_tokens FROM {quote_ident(schema_name)}.pools "
                    "WHERE pool_id = ANY(%s::uuid[])", (list(pool_ids),))
        return {row[0]: (row[1], row[2]) for row in cur.fetchall()}


def _placeholders(cur: psycopg2.extensions.cursor, s: str, day: dt.date, pool_ids: list[str]) -> int:
    """pools rows for lending pools the warehouse does not know, under the '(unknown)' chain and project
    (as chart history does for pools known only from history). Returns how many were added."""
    cur.execute(f"SELECT p::text FROM unnest(%s::uuid[]) AS p WHERE NOT EXISTS "
                f"(SELECT 1 FROM {s}.pools WHERE pool_id = p)", (pool_ids,))
    unknown = [row[0] for row in cur.fetchall()]
    if not unknown:
        return 0
    seen = "first_seen_date = LEAST(t.first_seen_date, EXCLUDED.first_seen_date), " \
           "last_seen_date = GREATEST(t.last_seen_date, EXCLUDED.last_seen_date)"
    cur.execute(f"INSERT INTO {s}.chains AS t (name, aliases, first_seen_date, last_seen_date) "
                f"VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET {seen}", (UNKNOWN, [UNKNOWN], day, day))
    cur.execute(f"INSERT INTO {s}.projects AS t (slug, listed_in_protocols, first_seen_date, last_seen_date) "
                f"VALUES (%s, false, %s, %s) ON CONFLICT (slug) DO UPDATE SET {seen}", (UNKNOWN, day, day))
    cur.execute(f"INSERT INTO {s}.pools AS t (pool_id, chain, project, first_seen_date, last_seen_date) "
                "SELECT p, %s, %s, %s, %s FROM unnest(%s::uuid[]) AS p ON CONFLICT (pool_id) DO NOTHING",
                (UNKNOWN, UNKNOWN, day, day, unknown))
    return len(unknown)


def replace_days(conn: psycopg2.extensions.connection, schema_name: str,
                 days: Sequence[tuple[dt.date, ParsedLendBorrow]]) -> dict[str, int]:
    s = quote_ident(schema_name)
    columns = list(lend_borrow_snapshots.columns)
    names = ", ".join(quote_ident(c.name) for c in columns)
    stats = {"dagster/row_count": 0, "rejected": 0, "replaced": 0, "pools_added": 0}
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (partition_lock_key(schema_name, lend_borrow_snapshots.name),))
        for day, parsed in days:
            cur.execute(f"DELETE FROM {s}.rejects WHERE asset = %s AND partition_date = %s", (ASSET, day))
            cur.execute(f"DELETE FROM {s}.lend_borrow_snapshots WHERE snapshot_date = %s", (day,))
            stats["replaced"] += cur.rowcount
            stats["pools_added"] += _placeholders(cur, s, day, parsed.rows["pool_id"].tolist())
            cur.copy_expert(f"COPY {s}.lend_borrow_snapshots ({names}) FROM STDIN", copy_buffer(parsed.rows, columns))
            if parsed.rejects:
                frame = pd.DataFrame([(ASSET, day, r.record_index, r.record_key, r.reason, r.record)
                                      for r in parsed.rejects], columns=[c.name for c in _REJECT_COLUMNS])
                cur.copy_expert(f"COPY {s}.rejects ({', '.join(c.name for c in _REJECT_COLUMNS)}) FROM STDIN",
                                copy_buffer(frame, _REJECT_COLUMNS))
            stats["dagster/row_count"] += len(parsed.rows)
            stats["rejected"] += len(parsed.rejects)
    return stats
