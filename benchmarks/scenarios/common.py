"""What every scenario shares: the run's state (``Bench``), the payloads, printing and schema helpers.

Nothing here reaches into the pipeline's internals; that is ``pipeline_hooks`` (which also says which
assets the benchmark runs: ``pipeline_assets``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2

from llama_pipeline.db_url import libpq_url
from llama_pipeline.fetch.http_client import DefiLlamaClient
from llama_pipeline.decode.decoded_payloads import DecodedPayloads
from llama_pipeline.defs.resources import warehouse_resources
from llama_pipeline.fetch.payloads import RawPayload
from llama_pipeline.fetch.raw_archive import store
from llama_pipeline.partitions import utc_today
from llama_pipeline.write.warehouse import migrate_to_head
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.testing.payload_server import PayloadServer

from .pipeline_hooks import pipeline_assets

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/llama_bench"
TABLES = ("chains", "projects", "pools", "pool_snapshots")
# The product's six assets: the same rows and keys the peers load (plus the raw archive), without the
# analytics and the chart history.
CORE = ("raw_pools", "raw_protocols", *TABLES)
ANALYTICS = ("pool_latest", "pool_apy_rolling", "chain_daily_stats", "project_daily_stats", "pool_apy_stats")
SEED = 11

TARGETS = {  # name -> (limit, comparison) : "le" means measured must be <= limit
    "write path / floor write": (2.0, "le"),
    "whole materialization / floor": (4.0, "le"),
    "dlt fastest / pipeline (six assets)": (3.0, "ge"),
    "row-by-row / pipeline (six assets)": (20.0, "ge"),
    "backfill last-30 / first-30 mean per day": (1.2, "le"),
    "peak RSS one day (MB)": (300.0, "le"),  # issue 13 (issue 5 had 500)
    "raw payloads per day (MB)": (4.0, "le"),
}
QUERY_TARGET_MS = 50.0

# -- small helpers ----------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None or value != value:
        return "n/a"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MB":
        return f"{value:.2f} MB"
    return f"{value:.2f}{unit}"


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    print(f"\n== {title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    sys.stdout.flush()


def step_median(runs: list[dict], name: str, part: str) -> float:
    return median([r["steps"].get(name, {}).get(part) for r in runs if r["steps"].get(name, {}).get(part) is not None])


def asset_names(runs: list[dict]) -> list[str]:
    """The assets seen in ``runs``' steps, raw payloads first, then the four tables, then the rest."""
    return sorted({n for r in runs for n in r["steps"]},
                  key=lambda n: (n not in ("raw_pools", "raw_protocols"), n not in TABLES, n))


class Checks:
    """The rows of the last table (measured vs target), filled by each scenario's report."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, str, bool]] = []

    def check(self, name: str, measured: float, limit: float, how: str) -> None:
        ok = measured <= limit if how == "le" else measured >= limit
        self.rows.append((name, measured, limit, how, ok))


# -- the database -----------------------------------------------------------------------------------

def connect(url: str):
    return psycopg2.connect(libpq_url(url))


def ensure_database(url: str) -> None:
    """Create the database of ``url`` if it does not exist (connecting to ``postgres`` to do so)."""
    try:
        connect(url).close()
        return
    except psycopg2.OperationalError as error:
        if "does not exist" not in str(error):
            raise
    base, name = libpq_url(url).rsplit("/", 1)
    admin = psycopg2.connect(base + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name.split("?")[0]}"')
    admin.close()


def drop_schema(url: str, name: str) -> None:
    with contextlib.closing(connect(url)) as conn, conn, conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def fresh_schema(url: str, name: str, migrate: bool = True) -> str:
    drop_schema(url, name)
    if migrate:
        migrate_to_head(url, name)
    else:
        with contextlib.closing(connect(url)) as conn, conn, conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{name}"')
    return name


# -- the pipeline -----------------------------------------------------------------------------------

def make_resources(url: str, schema_name: str, server: PayloadServer) -> dict:
    return {
        **warehouse_resources(url, schema_name),  # wired as the code location wires them
        "decoded_payloads": DecodedPayloads(),
        "defillama": DefiLlamaClient(pools_url=server.url("/pools"), protocols_url=server.url("/protocols"),
                                     chart_url=server.url("/chart/{pool}"), read_timeout=120),
    }


def archive_day(url: str, schema_name: str, day: dt.date, pools_body: bytes, pools_count: int,
                protocols_body: bytes, protocols_count: int) -> None:
    """Store a past day's payloads as the raw assets would have (``raw_archive.store``)."""
    now = dt.datetime.combine(day, dt.time(23), tzinfo=dt.timezone.utc)
    payloads = [RawPayload("pools", day, "http://127.0.0.1/pools", now, 200, "application/json", pools_body,
                           pools_count),
                RawPayload("protocols", day, "http://127.0.0.1/protocols", now, 200, "application/json",
                           protocols_body, protocols_count)]
    with contextlib.closing(connect(url)) as conn, conn:
        store(conn, schema_name, payloads)


# -- payloads and the run's state -------------------------------------------------------------------

class Payloads:
    """Day 1 (today), day 2 (today, evolved from yesterday's day 1) and the protocols list."""

    def __init__(self, n_pools: int, n_protocols: int) -> None:
        self.n_pools, self.n_protocols = n_pools, n_protocols
        self.protocols = synthetic.generate_protocols(n_protocols, seed=SEED)
        self.day1 = synthetic.generate_pools(n_pools, seed=SEED, protocols=self.protocols, day=utc_today())
        self.day2 = synthetic.evolve_pools(self.day1, seed=SEED + 1)
        self.protocols_body = synthetic.dumps(self.protocols)
        self.day1_body = synthetic.dumps(self.day1)
        self.day2_body = synthetic.dumps(self.day2)


class Bench:
    """One benchmark run: its arguments, its schemas (``<prefix>_<name>``) and the figures measured so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = args.database_url
        self.reps = args.reps
        self.prefix = args.schema_prefix
        self.results: dict = {}
        self.assets = pipeline_assets()

    def dump(self) -> None:
        """Write what has been measured so far (``--json``), so a long run's figures survive an interruption."""
        if self.args.json:
            Path(self.args.json).write_text(json.dumps({"args": vars(self.args), "results": self.results},
                                                       indent=1, default=str))

    def schema(self, name: str) -> str:
        return f"{self.prefix}_{name}"
