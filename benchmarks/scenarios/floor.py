"""2. The floor: fetch + parse once + COPY the same rows into unindexed tables (nothing to maintain).

``fetch_and_parse`` is also the peers' front half: every contender does the same fetch and parse.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import time

import requests
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from llama_pipeline import schema as wschema
from llama_pipeline.partitions import utc_today
from llama_pipeline.write.pg_copy import copy_buffer
from llama_pipeline_tests.testing.payload_server import PayloadServer

from .common import (TABLES, TARGETS, Bench, Checks, Payloads, connect, drop_schema, fmt, fresh_schema, log, median,
                     step_median, table, timed)
from .pipeline_hooks import WRITE_SECONDS_NOTE, parse_day

NEEDS: tuple[str, ...] = ()


def _ddl_type(column: sa.Column) -> str:
    return column.type.compile(dialect=pg.dialect())


def create_floor_tables(url: str, schema_name: str) -> None:
    """The four tables' columns, with no key, index, constraint or default: nothing to maintain."""
    fresh_schema(url, schema_name, migrate=False)
    with contextlib.closing(connect(url)) as conn, conn, conn.cursor() as cur:
        for name in TABLES:
            columns = ", ".join(f'"{c.name}" {_ddl_type(c)}' for c in wschema.metadata.tables[name].columns)
            cur.execute(f'CREATE TABLE "{schema_name}"."{name}" ({columns})')


def fetch_and_parse(server: PayloadServer, day: dt.date, session: requests.Session) -> tuple[dict, dict]:
    """GET both payloads and parse them once into the four tables' rows (the work every contender does)."""
    times = {}
    started = time.perf_counter()
    pools_body = session.get(server.url("/pools"), timeout=120).content
    protocols_body = session.get(server.url("/protocols"), timeout=120).content
    times["fetch"] = time.perf_counter() - started
    started = time.perf_counter()
    frames = parse_day(pools_body, protocols_body, day)
    times["parse"] = time.perf_counter() - started
    return frames, times


def floor_once(url: str, schema_name: str, server: PayloadServer, day: dt.date) -> dict:
    with contextlib.closing(connect(url)) as conn:
        with conn, conn.cursor() as cur:
            cur.execute("TRUNCATE " + ", ".join(f'"{schema_name}"."{t}"' for t in TABLES))
        with requests.Session() as session:
            frames, times = fetch_and_parse(server, day, session)
        serialize = copy = 0.0
        started_write = time.perf_counter()
        with conn, conn.cursor() as cur:
            for name in TABLES:
                # the columns the payloads fill (chains' /v2/chains ids are another dataset's)
                columns = [c for c in wschema.metadata.tables[name].columns if c.name in frames[name].columns]
                seconds, buffer = timed(lambda: copy_buffer(frames[name], columns))
                serialize += seconds
                column_list = ", ".join(f'"{c.name}"' for c in columns)
                seconds, _ = timed(lambda: cur.copy_expert(
                    f'COPY "{schema_name}"."{name}" ({column_list}) FROM STDIN', buffer))
                copy += seconds
        write = time.perf_counter() - started_write  # includes the commit
    return {**times, "serialize": serialize, "copy": copy, "write": write,
            "total": times["fetch"] + times["parse"] + write, "rows": sum(len(f) for f in frames.values())}


def run(bench: Bench, server: PayloadServer, payloads: Payloads) -> None:
    today = utc_today()
    server.set("/pools", payloads.day1_body)
    server.set("/protocols", payloads.protocols_body)
    log("2. floor")
    floor_schema = bench.schema("floor")
    create_floor_tables(bench.url, floor_schema)
    floor_once(bench.url, floor_schema, server, today)  # warm-up
    bench.results["floor"] = [floor_once(bench.url, floor_schema, server, today) for _ in range(bench.reps)]
    drop_schema(bench.url, floor_schema)


def medians(results: dict) -> dict[str, float]:
    return {k: median([f[k] for f in results["floor"]]) for k in ("fetch", "parse", "serialize", "copy", "write",
                                                                  "total")}


def report(results: dict, args: argparse.Namespace, checks: Checks) -> None:
    floors = results["floor"]
    floor = medians(results)
    table("2. The floor: fetch + parse once + COPY the same rows into unindexed tables",
          ["part", "median"],
          [["HTTP fetch (both payloads)", fmt(floor["fetch"])], ["parse (json + transform, once)", fmt(floor["parse"])],
           ["serialize (COPY text)", fmt(floor["serialize"])], ["COPY", fmt(floor["copy"])],
           ["write = serialize + COPY + commit", fmt(floor["write"])], ["total", fmt(floor["total"])],
           ["rows", f"{floors[0]['rows']:,}"]])
    print(WRITE_SECONDS_NOTE)
    one = results.get("one_day")
    if not one:  # the ratios below are the pipeline's one day over the floor
        return
    warm_total = median([r["total"] for r in one["warm"]])
    write_warm = sum(step_median(one["warm"], n, "write") for n in TABLES)
    copy_upsert_warm = sum(step_median(one["warm"], n, "copy_upsert") for n in TABLES)
    checks.check("write path / floor write", copy_upsert_warm / floor["write"], *TARGETS["write path / floor write"])
    checks.check("(info) write_seconds incl. parse / floor parse+write", write_warm / (floor["write"] + floor["parse"]),
                 2.0, "le")
    checks.check("whole materialization / floor", warm_total / floor["total"],
                 *TARGETS["whole materialization / floor"])
