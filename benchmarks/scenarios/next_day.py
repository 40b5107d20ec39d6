"""4. Day 2: yesterday stored and loaded, then today with 5% changed, 2% new, 1% gone (the upsert path)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt

from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing.payload_server import PayloadServer

from . import one_day
from .common import (Bench, Checks, Payloads, archive_day, asset_names, connect, drop_schema, fmt, fresh_schema, log,
                     make_resources, median, step_median, table)
from .pipeline_hooks import materialize

NEEDS: tuple[str, ...] = ()


def run(bench: Bench, server: PayloadServer, payloads: Payloads) -> None:
    today = utc_today()
    server.set("/pools", payloads.day1_body)
    server.set("/protocols", payloads.protocols_body)
    log("4. day 2: 5% changed, 2% new, 1% gone")
    day2 = []
    yesterday = today - dt.timedelta(days=1)
    for rep in range(bench.reps + 1):  # first is the warm-up
        schema_name = bench.schema("day2")
        fresh_schema(bench.url, schema_name)
        archive_day(bench.url, schema_name, yesterday, payloads.day1_body, len(payloads.day1["data"]),
                    payloads.protocols_body, len(payloads.protocols))
        materialize(bench.assets, make_resources(bench.url, schema_name, server), day=yesterday)
        server.set("/pools", payloads.day2_body)
        run = one_day.one_day_run(bench, server, schema_name, fresh=False, day=today)
        server.set("/pools", payloads.day1_body)
        with contextlib.closing(connect(bench.url)) as conn, conn.cursor() as cur:
            cur.execute(f'SELECT count(*), count(*) FILTER (WHERE last_seen_date < %s) FROM "{schema_name}".pools',
                        (today,))
            run["pools_total"], run["pools_gone"] = cur.fetchone()
        if rep:
            day2.append(run)
    bench.results["day2"] = day2
    drop_schema(bench.url, bench.schema("day2"))


def report(results: dict, args: argparse.Namespace, checks: Checks) -> None:
    day2 = results["day2"]
    names = one_day.names(results) if "one_day" in results else asset_names(day2)
    rows = []
    for name in names:
        rows.append([name, fmt(step_median(day2, name, "step")), fmt(step_median(day2, name, "write"))])
    rows.append(["whole run", fmt(median([r["total"] for r in day2])), ""])
    table(f"4. Day 2 (5% changed, 2% new, 1% gone; {day2[0]['pools_total']:,} pools known, "
          f"{day2[0]['pools_gone']:,} not seen today): the upsert path", ["asset", "step", "write"], rows)
