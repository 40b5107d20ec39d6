"""5. Backfill: ``--days`` stored days re-materialized as one range run, timed per day.

The schema it fills (``<prefix>_year``) is what the queries and the disk figures measure; ``run.py``
drops it at the end (unless ``--keep``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.testing.payload_server import PayloadServer

from . import one_day
from .common import (SEED, TARGETS, Bench, Checks, Payloads, archive_day, asset_names, fmt, fresh_schema, log,
                     make_resources, table, timed)
from .pipeline_hooks import PER_DAY_TIMING, DayTimer, materialize, step_figures

NEEDS: tuple[str, ...] = ()


def _year_day_payload(args: tuple) -> tuple[dt.date, bytes, int]:
    n_pools, day = args
    protocols = synthetic.generate_protocols(max(50, n_pools * 7 // 17), seed=SEED)
    envelope = synthetic.generate_pools(n_pools, seed=SEED, protocols=protocols, day=day)
    return day, synthetic.dumps(envelope), len(envelope["data"])


def run(bench: Bench, server: PayloadServer, payloads: Payloads) -> None:
    days = bench.args.days
    today = utc_today()
    first, last = today - dt.timedelta(days=days), today - dt.timedelta(days=1)
    schema_name = bench.schema("year")
    fresh_schema(bench.url, schema_name)
    log(f"5. storing {days} days of payloads ({bench.args.pools} pools/day)")
    protocols = synthetic.generate_protocols(max(50, bench.args.pools * 7 // 17), seed=SEED)
    protocols_body = synthetic.dumps(protocols)
    started = time.perf_counter()
    day_list = [first + dt.timedelta(days=i) for i in range(days)]
    with ProcessPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        for day, body, count in pool.map(_year_day_payload, [(bench.args.pools, d) for d in day_list]):
            archive_day(bench.url, schema_name, day, body, count, protocols_body, len(protocols))
    log(f"   stored in {time.perf_counter() - started:.0f} s")
    log(f"5. backfill: {days} days as one range run")
    resources = make_resources(bench.url, schema_name, server)
    gc.collect()
    with DayTimer() as timer:
        seconds, result = timed(lambda: materialize(bench.assets, resources, day_range=(first, last)))
    per_day = [timer.per_day.get(d, float("nan")) for d in day_list]
    k = min(30, max(1, days // 2))
    bench.results["backfill"] = {
        "days": days, "total": seconds, "steps": step_figures(result), "per_day": per_day, "window": k,
        "first_mean": statistics.fmean(per_day[:k]), "last_mean": statistics.fmean(per_day[-k:]),
    }


def report(results: dict, args: argparse.Namespace, checks: Checks) -> None:
    back = results["backfill"]
    names = one_day.names(results) if "one_day" in results else asset_names([back])
    k = back["window"]
    per_day = back["per_day"]
    rows = [["days in the range run", str(back["days"])], ["whole range run", fmt(back["total"])],
            ["mean per day (whole run / days)", fmt(back["total"] / back["days"])],
            [f"mean per day, first {k} days (parse+write, 4 tables)", fmt(back["first_mean"])],
            [f"mean per day, last {k} days", fmt(back["last_mean"])],
            ["last / first", f"{back['last_mean'] / back['first_mean']:.2f}x"]]
    for name in names:
        step = back["steps"].get(name, {})
        rows.append([f"step {name}", f"{fmt(step.get('step'))} (write {fmt(step.get('write'))})"])
    deciles = [statistics.fmean(per_day[i * len(per_day) // 10:(i + 1) * len(per_day) // 10] or [float('nan')])
               for i in range(10)]
    rows.append(["mean per day by tenth of the range", " ".join(f"{d:.2f}" for d in deciles)])
    table(f"5. Backfill: stored days re-materialized as one range run ({PER_DAY_TIMING})", ["figure", "value"], rows)
    checks.check("backfill last-30 / first-30 mean per day", back["last_mean"] / back["first_mean"],
                 *TARGETS["backfill last-30 / first-30 mean per day"])
