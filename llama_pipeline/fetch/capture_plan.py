"""When today's payloads should be captured: the capture sensor's rules, as plain functions.

``/pools`` and ``/protocols`` serve only the present, so a day exists only if it is captured on that day.
The sensor asks for a capture as soon as today has none (retrying every ``LLAMA_CAPTURE_RETRY_MINUTES``,
default 15, while it has none), and again whenever the older of today's two captures is older than
``LLAMA_CAPTURE_REFRESH_HOURS`` (default 3), so the stored day ends as late as possible. A run that has
not finished within ``LLAMA_CAPTURE_MAX_RUNTIME_MINUTES`` (default 60) is treated as dead (a daemon or a
machine killed under it) and no longer holds the next capture back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg2
import psycopg2.errors

from llama_pipeline.fetch.payloads import ENDPOINTS, Endpoint
from llama_pipeline.quality import rules as quality
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline.write.warehouse_lock import quote_ident


def refresh_interval() -> dt.timedelta:
    return dt.timedelta(hours=quality.env_float("LLAMA_CAPTURE_REFRESH_HOURS", 3.0))


def retry_interval() -> dt.timedelta:
    return dt.timedelta(minutes=quality.env_float("LLAMA_CAPTURE_RETRY_MINUTES", 15.0))


def max_runtime() -> dt.timedelta:
    return dt.timedelta(minutes=quality.env_float("LLAMA_CAPTURE_MAX_RUNTIME_MINUTES", 60.0))


def captures_of(warehouse: Warehouse, day: dt.date) -> dict[Endpoint, dt.datetime]:
    """When each endpoint's stored payload of ``day`` was fetched; empty before the first migration."""
    try:
        with warehouse.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT endpoint, fetched_at FROM {quote_ident(warehouse.schema_name)}.raw_payloads "
                        "WHERE partition_date = %s", (day,))
            return dict(cur.fetchall())
    except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName):
        return {}  # not migrated yet: the first run migrates, and it has nothing captured anyway


@dataclasses.dataclass(frozen=True)
class Plan:
    run_key: str | None  # None: nothing to do now
    reason: str


def plan(now: dt.datetime, captured: dict[Endpoint, dt.datetime], refresh: dt.timedelta,
         retry: dt.timedelta) -> Plan:
    """Whether to capture today now, under a run key per retry interval of the day (so a failed attempt
    is tried again in the next interval, and never twice in one)."""
    day = now.date()
    since_midnight = now - dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone.utc)
    bucket = int(since_midnight / retry) if retry > dt.timedelta(0) else int(since_midnight.total_seconds())
    missing = [endpoint for endpoint in ENDPOINTS if endpoint not in captured]
    if missing:
        return Plan(f"{day.isoformat()}/capture/{bucket}",
                    f"{day.isoformat()} has no {' or '.join('/' + e for e in missing)} capture yet")
    oldest = min(captured.values())
    age = now - oldest
    if age < refresh:
        return Plan(None, f"today's captures are {_hours(age)} old (oldest fetched at {oldest.isoformat()}); "
                    f"the next refresh is due at {_hours(refresh)}")
    return Plan(f"{day.isoformat()}/refresh/{bucket}",
                f"the oldest of today's captures is {_hours(age)} old (fetched at {oldest.isoformat()}): refreshing")


def _hours(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.2f} h"


def day_captured(warehouse: Warehouse, day: dt.date) -> tuple[bool, str, dict]:
    """Whether ``day`` (once it has ended) kept a capture of both endpoints: (passed, description, metadata).
    A warehouse whose first stored day is later has nothing to miss yet."""
    table = f"{quote_ident(warehouse.schema_name)}.raw_payloads"
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT min(partition_date) FROM {table}")
        first = cur.fetchone()[0]
        cur.execute(f"SELECT endpoint, fetched_at FROM {table} WHERE partition_date = %s", (day,))
        captured = dict(cur.fetchall())
    metadata = {"day": day.isoformat(), **{f"{e}_fetched_at": captured[e].isoformat() for e in captured}}
    if first is None or first > day:
        return True, f"nothing stored before {day.isoformat()}: no day to miss yet", metadata
    missing = [e for e in ENDPOINTS if e not in captured]
    if missing:
        return False, (f"{day.isoformat()} ended with no {' and no '.join('/' + e for e in missing)} capture: the "
                       "day's full snapshot is lost (a chart backfill restores 7 of its metrics); see "
                       "capture_coverage"), metadata
    return True, f"{day.isoformat()} kept captures fetched at " + ", ".join(
        f"/{e} {captured[e].isoformat()}" for e in ENDPOINTS), metadata
