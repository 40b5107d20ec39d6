"""1. One day: the whole graph in-process, cold, warm, the same day again, and the six product assets."""

from __future__ import annotations

import argparse
import datetime as dt
import gc

from llama_pipeline_tests.testing.payload_server import PayloadServer

from .common import (CORE, TABLES, Bench, Checks, Payloads, asset_names, fmt, fresh_schema, log, make_resources,
                     median, step_median, table, timed)
from .pipeline_hooks import DayTimer, materialize, step_figures

NEEDS: tuple[str, ...] = ()


def one_day_run(bench: Bench, server: PayloadServer, schema_name: str, fresh: bool = True,
                day: dt.date | None = None, selection: tuple[str, ...] | None = None) -> dict:
    """One materialization of a day: the whole run's seconds and, per asset, step, write, build, COPY/upsert."""
    if fresh:
        fresh_schema(bench.url, schema_name)
    resources = make_resources(bench.url, schema_name, server)
    gc.collect()
    with DayTimer() as timer:
        seconds, result = timed(lambda: materialize(bench.assets, resources, day=day, selection=selection))
    steps = step_figures(result)
    for name, figures in timer.per_asset.items():
        steps.setdefault(name, {}).update(build=figures["build"], copy_upsert=figures["write"])
    return {"total": seconds, "steps": steps}


def run(bench: Bench, server: PayloadServer, payloads: Payloads) -> None:
    server.set("/pools", payloads.day1_body)
    server.set("/protocols", payloads.protocols_body)
    schema_name = bench.schema("day")
    log("1. one day, cold")
    cold = one_day_run(bench, server, schema_name)
    log("1. one day, warm (fresh schema each rep)")
    one_day_run(bench, server, schema_name)  # warm-up
    warm = [one_day_run(bench, server, schema_name) for _ in range(bench.reps)]
    log("1. same day again (re-run into loaded tables)")
    again = [one_day_run(bench, server, schema_name, fresh=False) for _ in range(bench.reps)]
    log("1. one day, the six product assets only (fresh schema each rep)")
    core = [one_day_run(bench, server, schema_name, selection=CORE) for _ in range(bench.reps)]
    bench.results["one_day"] = {"cold": cold, "warm": warm, "again": again, "core": core}


def names(results: dict) -> list[str]:
    """The assets in the order every per-asset table lists them."""
    one = results["one_day"]
    return asset_names([*one["warm"], one["cold"]])


def report(results: dict, args: argparse.Namespace, checks: Checks) -> None:
    one = results["one_day"]
    warm_total = median([r["total"] for r in one["warm"]])
    rows = []
    for name in names(results):
        rows.append([name, fmt(one["cold"]["steps"].get(name, {}).get("step")),
                     fmt(one["cold"]["steps"].get(name, {}).get("write")),
                     fmt(step_median(one["warm"], name, "step")), fmt(step_median(one["warm"], name, "write")),
                     fmt(step_median(one["warm"], name, "build")), fmt(step_median(one["warm"], name, "copy_upsert")),
                     fmt(step_median(one["again"], name, "step")), fmt(step_median(one["again"], name, "write"))])
    again_total = median([r["total"] for r in one["again"]])
    rows.append(["whole run (dg.materialize)", fmt(one["cold"]["total"]), "", fmt(warm_total), "", "", "",
                 fmt(again_total), ""])
    write_warm = sum(step_median(one["warm"], n, "write") for n in TABLES)
    copy_upsert_warm = sum(step_median(one["warm"], n, "copy_upsert") for n in TABLES)
    rows.append(["4 tables", "", fmt(sum(one["cold"]["steps"].get(n, {}).get("write", 0) for n in TABLES)),
                 "", fmt(write_warm), fmt(sum(step_median(one["warm"], n, "build") for n in TABLES)),
                 fmt(copy_upsert_warm), "", fmt(sum(step_median(one["again"], n, "write") for n in TABLES))])
    table(f"1. One day ({args.pools:,} pools, {args.protocols:,} protocols): whole graph in-process, per asset "
          f"(median of {args.reps} warm reps)",
          ["asset", "cold step", "cold write_seconds", "warm step", "warm write_seconds", "= build (parse)",
           "+ COPY/upsert", "same day again step", "again write_seconds"],
          rows)
