"""The performance benchmark of issue 5: the pipeline against the floor and its peers, in one run.

    .venv/bin/python benchmarks/run.py [--quick] [--days 365] [--reps 5] [--database-url URL]

Every contender gets the same synthetic payloads (``llama_pipeline_tests.testing.synthetic``), served over
real HTTP on 127.0.0.1 by ``PayloadServer``, and writes into the same PostgreSQL database (one schema
per contender, dropped and re-created). Figures are medians of ``--reps`` repetitions after a warm-up.
The script prints one table per numbered item of the issue and a last table of ratios vs targets.

Nothing here changes the pipeline: per-day backfill times come from wrapping
``DailyBatches.__iter__`` inside this process only (see ``_DayTimer``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import psycopg2  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.dialects import postgresql as pg  # noqa: E402

from llama_pipeline import parsed_payloads  # noqa: E402
from llama_pipeline import schema as wschema  # noqa: E402
from llama_pipeline.gc_pause import paused_gc  # noqa: E402
from llama_pipeline.db_url import libpq_url  # noqa: E402
from llama_pipeline.http_client import DefiLlamaClient  # noqa: E402
from llama_pipeline.io_manager import WarehouseIOManager  # noqa: E402
from llama_pipeline.partitions import utc_today  # noqa: E402
from llama_pipeline.payloads import RawPayload  # noqa: E402
from llama_pipeline.pg_copy import copy_buffer  # noqa: E402
from llama_pipeline.raw_archive import store  # noqa: E402
from llama_pipeline_tests.testing import synthetic  # noqa: E402
from llama_pipeline_tests.testing.payload_server import PayloadServer  # noqa: E402
from llama_pipeline.transform import batches as batches_module  # noqa: E402
from llama_pipeline.decode.pools import parse_pools  # noqa: E402
from llama_pipeline.decode.protocols import chain_rows, listed_protocols, with_placeholders  # noqa: E402
from llama_pipeline.warehouse import Warehouse, migrate_to_head  # noqa: E402

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
    "peak RSS one day (MB)": (500.0, "le"),
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

# The datasets beside the yields have their own scenarios (benchmarks/datasets.py); these figures stay
# those of the yields' graph, comparable with the earlier sessions'.
DATASET_GROUPS = frozenset({"lend_borrow", "chain_tvl", "protocol_tvl"})
DATASET_ASSETS = frozenset({"project_renames"})


def pipeline_assets(with_datasets: bool = False) -> list[dg.AssetsDefinition]:
    """Every asset of the code location, as ``dagster dev`` loads them (without the datasets beside the
    yields unless ``with_datasets``)."""
    from llama_pipeline.definitions import defs

    definitions = defs()
    assets = [a for a in (definitions.assets or []) if isinstance(a, dg.AssetsDefinition)]
    if with_datasets:
        return assets
    return [a for a in assets if not (set(a.group_names_by_key.values()) & DATASET_GROUPS)
            and not {k.to_user_string() for k in a.keys} & DATASET_ASSETS]


def make_resources(url: str, schema_name: str, server: PayloadServer) -> dict:
    warehouse = Warehouse(database_url=url, schema_name=schema_name)
    return {
        "warehouse": warehouse,
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "defillama": DefiLlamaClient(pools_url=server.url("/pools"), protocols_url=server.url("/protocols"),
                                     chart_url=server.url("/chart/{pool}"), read_timeout=120),
    }


def materialize(assets: list, resources: dict, day: dt.date | None = None,
                day_range: tuple[dt.date, dt.date] | None = None,
                selection: tuple[str, ...] | None = None, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    # Every run starts with nothing parsed, as a run in its own process does: parses are shared by the
    # steps of one run, never carried over from an earlier repetition.
    parsed_payloads.clear()
    tags = {}
    partition = None
    if day_range:
        tags = {"dagster/asset_partition_range_start": day_range[0].isoformat(),
                "dagster/asset_partition_range_end": day_range[1].isoformat()}
    else:
        partition = (day or utc_today()).isoformat()
    return dg.materialize(assets, resources=resources, partition_key=partition, tags=tags, raise_on_error=True,
                          selection=list(selection) if selection else None, run_config=run_config)


def step_figures(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, float]]:
    """Per asset: the step's duration and the IO manager's ``write_seconds``."""
    figures: dict[str, dict[str, float]] = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            figures.setdefault(event.step_key, {})["step"] = event.event_specific_data.duration_ms / 1000
    for name in figures:
        try:
            materializations = result.asset_materializations_for_node(name)
        except Exception:  # noqa: BLE001 - a node without materializations
            materializations = []
        for materialization in materializations[:1]:
            value = materialization.metadata.get("write_seconds")
            if value is not None:
                figures[name]["write"] = float(value.value)
    return figures


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


# -- payloads ---------------------------------------------------------------------------------------

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


def _year_day_payload(args: tuple) -> tuple[dt.date, bytes, int]:
    n_pools, day = args
    protocols = synthetic.generate_protocols(max(50, n_pools * 7 // 17), seed=SEED)
    envelope = synthetic.generate_pools(n_pools, seed=SEED, protocols=protocols, day=day)
    return day, synthetic.dumps(envelope), len(envelope["data"])


# -- 2. the floor -----------------------------------------------------------------------------------

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
    with paused_gc():  # as the pipeline does (gc_pause): the contenders get the same parse at its fastest
        pools = parse_pools(pools_body, day)
        listed = listed_protocols(protocols_body, day)
        protocols = with_placeholders(listed, set(pools.pools["project"]), day)
        frames = {
            "chains": chain_rows(day, pools.chain_spellings, listed.chain_spellings),
            "projects": protocols.projects,
            "pools": pools.pools,
            "pool_snapshots": pools.snapshots,
        }
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


# -- 3. peers ---------------------------------------------------------------------------------------

def _python_value(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str, bytes)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:
        pass
    return value


def frame_records(frame) -> list[dict]:
    columns = list(frame.columns)
    return [{c: _python_value(v) for c, v in zip(columns, row)} for row in frame.itertuples(index=False, name=None)]


def row_by_row_once(url: str, schema_name: str, server: PayloadServer, day: dt.date) -> dict:
    """The naive script: fetch, parse, then one INSERT ... ON CONFLICT DO UPDATE per row (SQLAlchemy Core),
    committed at the end, into the same indexed tables (fresh schema)."""
    fresh_schema(url, schema_name)
    engine = sa.create_engine("postgresql+psycopg2://" + libpq_url(url).split("://", 1)[1])
    started = time.perf_counter()
    with requests.Session() as session:
        frames, _ = fetch_and_parse(server, day, session)
    rows = 0
    with engine.begin() as conn:
        conn.execute(sa.text(f'SET LOCAL search_path TO "{schema_name}"'))
        for name in TABLES:
            tbl = wschema.metadata.tables[name]
            key = [c.name for c in tbl.primary_key]
            for record in frame_records(frames[name]):
                statement = pg.insert(tbl).values(**record)
                statement = statement.on_conflict_do_update(
                    index_elements=key, set_={c: statement.excluded[c] for c in record if c not in key})
                conn.execute(statement)
                rows += 1
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"total": seconds, "rows": rows}


def dlt_available() -> bool:
    try:
        import dlt  # noqa: F401
    except ImportError:
        return False
    return True


def _arrow_frame(frame):
    import pyarrow as pa

    # dlt's arrow csv writer takes no list or struct columns: JSON/array columns go as JSON text.
    frame = frame.copy()
    for name in frame.columns:
        if frame[name].map(lambda v: isinstance(v, (list, dict, tuple))).any() or name in ("extra", "chain_tvls"):
            frame[name] = [None if v is None else json.dumps(list(v) if isinstance(v, tuple) else v)
                           for v in frame[name]]
    return pa.Table.from_pandas(frame, preserve_index=False)


def _with_password(url: str) -> str:
    """dlt insists on a password; with trust authentication any placeholder does."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None and parts.username:
        parts = parts._replace(netloc=f"{parts.username}:unused@{parts.hostname}" + (f":{parts.port}" if parts.port else ""))
    return urlunsplit(parts)


def dlt_once(url: str, dataset: str, server: PayloadServer, day: dt.date, file_format: str, strategy: str,
             item_kind: str, workdir: str) -> dict:
    """dlt: a source of four resources (same rows and keys) into the postgres destination with merge."""
    import dlt

    drop_schema(url, dataset)
    keys = {name: [c.name for c in wschema.metadata.tables[name].primary_key] for name in TABLES}
    started = time.perf_counter()

    @dlt.source(name="defillama")
    def source():
        with requests.Session() as session:
            frames, _ = fetch_and_parse(server, day, session)
        resources = []
        for name in TABLES:
            data = _arrow_frame(frames[name]) if item_kind == "arrow" else frame_records(frames[name])
            resources.append(dlt.resource(
                data, name=name, primary_key=keys[name],
                write_disposition={"disposition": "merge", "strategy": strategy},
                columns={"extra": {"data_type": "json"}} if item_kind == "objects" else None,
            ))
        return resources

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{uuid.uuid4().hex[:8]}", pipelines_dir=workdir,
        destination=dlt.destinations.postgres(credentials=_with_password(libpq_url(url))), dataset_name=dataset,
        progress=None,
    )
    pipeline.run(source(), loader_file_format=file_format)
    seconds = time.perf_counter() - started
    with contextlib.closing(connect(url)) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{dataset}".pool_snapshots')
        rows = cur.fetchone()[0]
    return {"total": seconds, "snapshot_rows": rows}


# -- 5. backfill instrumentation --------------------------------------------------------------------

class _DayTimer:
    """Wrap ``DailyBatches.__iter__`` (in this process only) to time each day's build and write.

    Assets return ``DailyBatches`` whose batches are built lazily *inside* the IO manager's
    ``handle_output``, so its ``write_seconds`` includes parsing. Here the time spent producing a batch
    (``build``: loading the payload, decoding, parsing) is told apart from the time until the IO manager
    asks for the next one (``write``: COPY text, COPY, upsert, rejects). The asset is named by the build
    closure (``chains.<locals>.build``). The asset's setup before the first batch (lock, DELETE, temp table)
    and its final count and commit fall outside both.
    """

    def __init__(self) -> None:
        self.per_day: dict[dt.date, float] = {}
        self.per_asset: dict[str, dict[str, float]] = {}
        self._original = batches_module.DailyBatches.__iter__

    def __enter__(self) -> _DayTimer:
        timer = self
        original = self._original

        def timed_iter(batches_self) -> Iterator:
            asset = getattr(batches_self.build, "__qualname__", "?").split(".")[0]
            figures = timer.per_asset.setdefault(asset, {"build": 0.0, "write": 0.0})
            iterator = original(batches_self)
            while True:
                started = time.perf_counter()
                try:
                    batch = next(iterator)
                except StopIteration:
                    return
                built = time.perf_counter()
                yield batch
                # control comes back here when the IO manager asks for the next batch
                done = time.perf_counter()
                figures["build"] += built - started
                figures["write"] += done - built
                timer.per_day[batch.day] = timer.per_day.get(batch.day, 0.0) + done - started

        batches_module.DailyBatches.__iter__ = timed_iter
        return self

    def __exit__(self, *exc: object) -> None:
        batches_module.DailyBatches.__iter__ = self._original


# -- 6. queries -------------------------------------------------------------------------------------

_SNAPSHOT_COLUMNS = ", ".join(f'"{c}"' for c in ("pool_id", "snapshot_date", *wschema.SNAPSHOT_METRICS, "source"))
# The questions of issue 5, as a user asks them of the warehouse (the targets).
QUERIES = {
    "latest snapshot of every pool [pool_latest]": f"SELECT {_SNAPSHOT_COLUMNS} FROM pool_latest",
    "one pool, last 90 days": """
        SELECT * FROM pool_snapshots
        WHERE pool_id = %(pool)s AND snapshot_date > %(last)s::date - 90 ORDER BY snapshot_date""",
    "TVL per chain per day, 90 days [chain_daily_stats]": """
        SELECT chain, snapshot_date, total_tvl_usd FROM chain_daily_stats
        WHERE snapshot_date > %(last)s::date - 90""",
    "top 100 by APY, TVL > $1M, one day": """
        SELECT * FROM pool_snapshots
        WHERE snapshot_date = %(last)s AND tvl_usd > 1000000 ORDER BY apy DESC NULLS LAST LIMIT 100""",
}
# The same two questions answered from the base tables alone, for comparison (not targets).
BASE_QUERIES = {
    "latest snapshot of every pool, from pool_snapshots": """
        SELECT s.* FROM pools p
        JOIN pool_snapshots s ON s.pool_id = p.pool_id AND s.snapshot_date = p.last_seen_date""",
    "TVL per chain per day, 90 days, from pool_snapshots": """
        SELECT p.chain, s.snapshot_date, sum(s.tvl_usd) AS tvl_usd
        FROM pool_snapshots s JOIN pools p USING (pool_id)
        WHERE s.snapshot_date > %(last)s::date - 90
        GROUP BY p.chain, s.snapshot_date""",
}


def extend_snapshots(url: str, schema_name: str, days: int, target_days: int) -> dict:
    """Make ``pool_snapshots`` hold ``target_days`` days for the query benchmark without running the pipeline
    for each of them: copies of the backfilled days, shifted back by whole multiples of ``days``, with TVL and
    APY moved by a deterministic factor. Only item 6 (queries) and the per-day table size see these rows."""
    columns = [c.name for c in wschema.pool_snapshots.columns]
    moved = {"snapshot_date": "snapshot_date - %(shift)s",
             "tvl_usd": "tvl_usd * (1 + 0.05 * sin(%(shift)s + hashtext(pool_id::text) %% 7))",
             "apy": "apy * (1 + 0.1 * cos(%(shift)s + hashtext(pool_id::text) %% 5))"}
    select = ", ".join(moved.get(c, f'"{c}"') for c in columns)
    started = time.perf_counter()
    with contextlib.closing(connect(url)) as conn, conn, conn.cursor() as cur:
        cur.execute(f'SET search_path TO "{schema_name}"')
        cur.execute("SELECT max(snapshot_date) FROM pool_snapshots")
        last = cur.fetchone()[0]
        oldest = last - dt.timedelta(days=target_days - 1)
        copy = 1
        while last - dt.timedelta(days=copy * days + days - 1) > oldest - dt.timedelta(days=days):
            shift = copy * days
            cur.execute(f"INSERT INTO pool_snapshots ({', '.join(chr(34) + c + chr(34) for c in columns)}) "
                        f"SELECT {select} FROM pool_snapshots WHERE snapshot_date > %(last)s::date - %(days)s "
                        "AND snapshot_date - %(shift)s >= %(oldest)s",
                        {"shift": shift, "last": last, "days": days, "oldest": oldest})
            copy += 1
        cur.execute("SELECT count(*), count(DISTINCT snapshot_date) FROM pool_snapshots")
        rows, distinct_days = cur.fetchone()
    return {"rows": rows, "days": distinct_days, "seconds": time.perf_counter() - started}


def run_queries(url: str, schema_name: str, reps: int) -> list[dict]:
    """Each query warm, three ways: the database's execution time (EXPLAIN ANALYZE), the round trip with
    every row delivered to the client as text (COPY ... TO STDOUT, what psql or a BI tool pays), and the
    same through psycopg2's fetchall into Python objects. The target is judged on the round trip."""
    results = []
    with contextlib.closing(connect(url)) as conn, conn.cursor() as cur:
        cur.execute(f'SET search_path TO "{schema_name}"')
        cur.execute("SELECT max(snapshot_date), count(*) FROM pool_snapshots")
        last, total = cur.fetchone()
        cur.execute("SELECT pool_id FROM pool_snapshots WHERE snapshot_date = %s ORDER BY tvl_usd DESC NULLS LAST "
                    "LIMIT 1", (last,))
        pool = cur.fetchone()[0]
        params = {"last": last, "pool": pool}
        for name, sql in {**QUERIES, **BASE_QUERIES}.items():
            literal = cur.mogrify(sql, params).decode()

            def round_trip() -> float:
                started = time.perf_counter()
                cur.copy_expert(f"COPY ({literal}) TO STDOUT", io.BytesIO())
                return (time.perf_counter() - started) * 1000

            def fetch_all() -> tuple[float, int]:
                started = time.perf_counter()
                cur.execute(literal)
                count = len(cur.fetchall())
                return (time.perf_counter() - started) * 1000, count

            for _ in range(2):  # warm-up
                round_trip()
                fetch_all()
            trips = [round_trip() for _ in range(max(reps, 3))]
            fetches = [fetch_all() for _ in range(max(reps, 3))]
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + literal)
            plan = cur.fetchone()[0][0]
            nodes = _plan_nodes(plan["Plan"])
            indexes = sorted({n.get("Index Name") for n in nodes if n.get("Index Name")})
            seq = sorted({n.get("Relation Name") for n in nodes if n.get("Node Type") == "Seq Scan"})
            results.append({"query": name, "target": name in QUERIES, "ms": median(trips),
                            "fetchall_ms": median([f[0] for f in fetches]), "rows": fetches[0][1],
                            "indexes": indexes, "seq_scans": seq, "plan_ms": plan.get("Execution Time"),
                            "snapshot_rows": total})
        conn.rollback()
    return results


def _plan_nodes(node: dict) -> list[dict]:
    found = [node]
    for child in node.get("Plans", []):
        found += _plan_nodes(child)
    return found


# -- 7. memory and disk ------------------------------------------------------------------------------

def child_one_day(args: argparse.Namespace) -> None:
    """In a fresh process: one whole-graph materialization of today; print peak RSS as JSON."""
    fresh_schema(args.database_url, args.child_schema)
    warehouse = Warehouse(database_url=args.database_url, schema_name=args.child_schema)
    resources = {
        "warehouse": warehouse,
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "defillama": DefiLlamaClient(pools_url=args.pools_url, protocols_url=args.protocols_url,
                                     chart_url=args.pools_url.rsplit("/", 1)[0] + "/chart/{pool}", read_timeout=120),
    }
    rss_before = _high_water_mb()
    seconds, _ = timed(lambda: materialize(pipeline_assets(), resources))
    rss = _high_water_mb()
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    drop_schema(args.database_url, args.child_schema)
    print(json.dumps({"peak_rss_mb": rss, "rss_before_run_mb": rss_before, "ru_maxrss_mb": ru_maxrss,
                      "seconds": seconds}))


def _high_water_mb() -> float:
    """Peak RSS of this process image (VmHWM). Not ``ru_maxrss``: on Linux that keeps the high-water mark of
    the forked parent across ``exec``, so a child of a big benchmark process would report the parent's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_rss(url: str, server: PayloadServer, prefix: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child-one-day", "--database-url", url,
               "--child-schema", f"{prefix}_rss", "--pools-url", server.url("/pools"),
               "--protocols-url", server.url("/protocols")]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def disk_figures(url: str, schema_name: str) -> dict:
    with contextlib.closing(connect(url)) as conn, conn.cursor() as cur:
        cur.execute(f'SET search_path TO "{schema_name}"')
        cur.execute("SELECT count(DISTINCT partition_date), coalesce(sum(octet_length(body)), 0) FROM raw_payloads")
        raw_days, raw_body = cur.fetchone()
        cur.execute("SELECT count(DISTINCT snapshot_date) FROM pool_snapshots")
        snap_days = cur.fetchone()[0]
        sizes = {}
        for name in ("raw_payloads", *TABLES):
            cur.execute("SELECT pg_total_relation_size(%s), pg_relation_size(%s), pg_indexes_size(%s)",
                        (f'"{schema_name}".{name}',) * 3)
            sizes[name] = dict(zip(("total", "heap", "indexes"), cur.fetchone()))
        conn.rollback()
    return {"raw_days": raw_days, "raw_body_bytes": raw_body, "snapshot_days": snap_days, "sizes": sizes}


# -- the benchmark ----------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = args.database_url
        self.reps = args.reps
        self.prefix = args.schema_prefix
        self.results: dict = {}
        self.assets = pipeline_assets()
        self.warehouse_asset_names = TABLES

    def dump(self) -> None:
        """Write what has been measured so far (``--json``), so a long run's figures survive an interruption."""
        if self.args.json:
            Path(self.args.json).write_text(json.dumps({"args": vars(self.args), "results": self.results},
                                                       indent=1, default=str))

    def schema(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def one_day_run(self, server: PayloadServer, schema_name: str, fresh: bool = True,
                    day: dt.date | None = None, selection: tuple[str, ...] | None = None) -> dict:
        if fresh:
            fresh_schema(self.url, schema_name)
        resources = make_resources(self.url, schema_name, server)
        gc.collect()
        with _DayTimer() as timer:
            seconds, result = timed(lambda: materialize(self.assets, resources, day=day, selection=selection))
        steps = step_figures(result)
        for name, figures in timer.per_asset.items():
            steps.setdefault(name, {}).update(build=figures["build"], copy_upsert=figures["write"])
        return {"total": seconds, "steps": steps}

    # 1 + 2 + 4
    def one_day(self, server: PayloadServer, payloads: Payloads) -> None:
        today = utc_today()
        server.set("/pools", payloads.day1_body)
        server.set("/protocols", payloads.protocols_body)
        log("1. one day, cold")
        cold = self.one_day_run(server, self.schema("day"))
        log("1. one day, warm (fresh schema each rep)")
        self.one_day_run(server, self.schema("day"))  # warm-up
        warm = [self.one_day_run(server, self.schema("day")) for _ in range(self.reps)]
        log("1. same day again (re-run into loaded tables)")
        again = [self.one_day_run(server, self.schema("day"), fresh=False) for _ in range(self.reps)]
        log("1. one day, the six product assets only (fresh schema each rep)")
        core = [self.one_day_run(server, self.schema("day"), selection=CORE) for _ in range(self.reps)]
        self.results["one_day"] = {"cold": cold, "warm": warm, "again": again, "core": core}

        log("2. floor")
        floor_schema = self.schema("floor")
        create_floor_tables(self.url, floor_schema)
        floor_once(self.url, floor_schema, server, today)  # warm-up
        floors = [floor_once(self.url, floor_schema, server, today) for _ in range(self.reps)]
        self.results["floor"] = floors
        drop_schema(self.url, floor_schema)

        log("4. day 2: 5% changed, 2% new, 1% gone")
        day2 = []
        yesterday = today - dt.timedelta(days=1)
        for rep in range(self.reps + 1):  # first is the warm-up
            schema_name = self.schema("day2")
            fresh_schema(self.url, schema_name)
            archive_day(self.url, schema_name, yesterday, payloads.day1_body, len(payloads.day1["data"]),
                        payloads.protocols_body, len(payloads.protocols))
            materialize(self.assets, make_resources(self.url, schema_name, server), day=yesterday)
            server.set("/pools", payloads.day2_body)
            run = self.one_day_run(server, schema_name, fresh=False, day=today)
            server.set("/pools", payloads.day1_body)
            with contextlib.closing(connect(self.url)) as conn, conn.cursor() as cur:
                cur.execute(f'SELECT count(*), count(*) FILTER (WHERE last_seen_date < %s) FROM "{schema_name}".pools',
                            (today,))
                run["pools_total"], run["pools_gone"] = cur.fetchone()
            if rep:
                day2.append(run)
        self.results["day2"] = day2
        drop_schema(self.url, self.schema("day2"))

    # 3
    def peers(self, server: PayloadServer, payloads: Payloads) -> None:
        today = utc_today()
        server.set("/pools", payloads.day1_body)
        server.set("/protocols", payloads.protocols_body)
        log("3. row-by-row SQLAlchemy upsert")
        rbr_reps = max(1, min(self.reps, self.args.slow_reps))
        self.results["row_by_row"] = [row_by_row_once(self.url, self.schema("rbr"), server, today)
                                      for _ in range(rbr_reps)]
        drop_schema(self.url, self.schema("rbr"))
        self.results["dlt"] = {}
        if self.args.skip_dlt:
            log("3. dlt skipped (--skip-dlt)")
            return
        if not dlt_available():
            log("3. dlt is not installed: skipped (pip install -r benchmarks/requirements.txt)")
            return
        try:
            import pyarrow  # noqa: F401
            kinds = ["objects", "arrow"]
        except ImportError:
            kinds = ["objects"]
        configs = [(fmt_, strategy, kind) for kind in kinds for fmt_ in ("insert_values", "csv")
                   for strategy in ("delete-insert", "upsert")]
        dlt_reps = max(1, min(self.reps, self.args.slow_reps))
        with tempfile.TemporaryDirectory(prefix="dlt_bench_") as workdir:
            os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
            # arrow items get dlt's load id column (a merge needs it) only when asked to
            os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
            os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID", "true")
            for file_format, strategy, kind in configs:
                label = f"{kind} / {file_format} / merge:{strategy}"
                log(f"3. dlt {label}")
                runs = []
                try:
                    dlt_once(self.url, self.schema("dlt"), server, today, file_format, strategy, kind, workdir)
                    runs = [dlt_once(self.url, self.schema("dlt"), server, today, file_format, strategy, kind,
                                     workdir) for _ in range(dlt_reps)]
                    self.results["dlt"][label] = {"runs": runs}
                except Exception as error:  # noqa: BLE001 - a configuration dlt does not support
                    cause = error.__cause__ or error
                    lines = [line for line in str(cause).strip().splitlines() if line.strip()]
                    message = f"{type(cause).__name__}: {lines[0] if lines else ''}"[:200]
                    log(f"   failed: {message}")
                    self.results["dlt"][label] = {"error": message}
        drop_schema(self.url, self.schema("dlt"))

    # 5 + 6 + 7 (disk)
    def backfill(self, server: PayloadServer) -> None:
        days = self.args.days
        today = utc_today()
        first, last = today - dt.timedelta(days=days), today - dt.timedelta(days=1)
        schema_name = self.schema("year")
        fresh_schema(self.url, schema_name)
        log(f"5. storing {days} days of payloads ({self.args.pools} pools/day)")
        protocols = synthetic.generate_protocols(max(50, self.args.pools * 7 // 17), seed=SEED)
        protocols_body = synthetic.dumps(protocols)
        started = time.perf_counter()
        day_list = [first + dt.timedelta(days=i) for i in range(days)]
        with ProcessPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
            for day, body, count in pool.map(_year_day_payload, [(self.args.pools, d) for d in day_list]):
                archive_day(self.url, schema_name, day, body, count, protocols_body, len(protocols))
        log(f"   stored in {time.perf_counter() - started:.0f} s")
        log(f"5. backfill: {days} days as one range run")
        resources = make_resources(self.url, schema_name, server)
        gc.collect()
        with _DayTimer() as timer:
            seconds, result = timed(lambda: materialize(self.assets, resources, day_range=(first, last)))
        per_day = [timer.per_day.get(d, float("nan")) for d in day_list]
        k = min(30, max(1, days // 2))
        self.results["backfill"] = {
            "days": days, "total": seconds, "steps": step_figures(result), "per_day": per_day, "window": k,
            "first_mean": statistics.fmean(per_day[:k]), "last_mean": statistics.fmean(per_day[-k:]),
        }
        self.dump()
        if self.args.query_days > days:
            log(f"6. extending pool_snapshots to {self.args.query_days} days by SQL copies of the backfilled days")
            self.results["query_extension"] = extend_snapshots(self.url, schema_name, days, self.args.query_days)
        with contextlib.closing(connect(self.url)) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'VACUUM (ANALYZE) "{schema_name}".pool_snapshots')
                cur.execute(f'VACUUM (ANALYZE) "{schema_name}".pools')
                cur.execute(f'SELECT min(snapshot_date), max(snapshot_date) FROM "{schema_name}".pool_snapshots')
                oldest, newest = cur.fetchone()
        if self.results.get("query_extension"):
            log(f"6. analytics for {oldest}..{newest} (the copied days), one range run")
            seconds, result = timed(lambda: materialize(self.assets, resources, day_range=(oldest, newest),
                                                        selection=ANALYTICS))
            self.results["analytics_year"] = {"total": seconds, "steps": step_figures(result)}
        log("6. analytics for the newest day alone, at this size (the daily cost)")
        daily = []
        for _ in range(self.reps):
            seconds, result = timed(lambda: materialize(self.assets, resources, day=newest, selection=ANALYTICS))
            daily.append({"total": seconds, "steps": step_figures(result)})
        self.results["analytics_daily"] = daily
        with contextlib.closing(connect(self.url)) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                for name in ("pool_latest", "chain_daily_stats", "pool_apy_stats"):
                    cur.execute(f'VACUUM (ANALYZE) "{schema_name}".{name}')
        log("6. queries")
        self.results["queries"] = run_queries(self.url, schema_name, self.reps)
        self.results["disk"] = disk_figures(self.url, schema_name)
        if not self.args.keep:
            drop_schema(self.url, schema_name)

    def rss(self, server: PayloadServer, payloads: Payloads) -> None:
        log("7. peak RSS of a one-day run (subprocess)")
        server.set("/pools", payloads.day1_body)
        server.set("/protocols", payloads.protocols_body)
        self.results["rss"] = measure_rss(self.url, server, self.prefix)


# -- report ------------------------------------------------------------------------------------------

def report(results: dict, args: argparse.Namespace) -> list[tuple[str, float, float, str, bool]]:
    checks: list[tuple[str, float, float, str, bool]] = []

    def check(name: str, measured: float, limit: float, how: str) -> None:
        ok = measured <= limit if how == "le" else measured >= limit
        checks.append((name, measured, limit, how, ok))

    one = results["one_day"]
    warm_total = median([r["total"] for r in one["warm"]])
    names = sorted({n for r in one["warm"] for n in r["steps"]} | set(one["cold"]["steps"]),
                   key=lambda n: (n not in ("raw_pools", "raw_protocols"), n not in TABLES, n))

    def step_median(runs: list[dict], name: str, part: str) -> float:
        return median([r["steps"].get(name, {}).get(part) for r in runs if r["steps"].get(name, {}).get(part) is not None])

    rows = []
    for name in names:
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

    floors = results["floor"]
    floor = {k: median([f[k] for f in floors]) for k in ("fetch", "parse", "serialize", "copy", "write", "total")}
    table("2. The floor: fetch + parse once + COPY the same rows into unindexed tables",
          ["part", "median"],
          [["HTTP fetch (both payloads)", fmt(floor["fetch"])], ["parse (json + transform, once)", fmt(floor["parse"])],
           ["serialize (COPY text)", fmt(floor["serialize"])], ["COPY", fmt(floor["copy"])],
           ["write = serialize + COPY + commit", fmt(floor["write"])], ["total", fmt(floor["total"])],
           ["rows", f"{floors[0]['rows']:,}"]])
    print("(write_seconds is the IO manager's figure; it includes building the lazy DailyBatches, i.e. loading and"
          " parsing the payload; 'COPY/upsert' is write_seconds without that build, timed in this process)")
    check("write path / floor write", copy_upsert_warm / floor["write"], *TARGETS["write path / floor write"])
    check("(info) write_seconds incl. parse / floor parse+write", write_warm / (floor["write"] + floor["parse"]), 2.0, "le")
    check("whole materialization / floor", warm_total / floor["total"], *TARGETS["whole materialization / floor"])

    rbr = median([r["total"] for r in results["row_by_row"]])
    core_total = median([r["total"] for r in one["core"]])
    peer_rows = [["pipeline, the six product assets (raw archive + 4 tables)", fmt(core_total), "1.00x",
                  f"{warm_total / core_total:.2f}x", ""],
                 ["pipeline, whole graph (+ chart history check, 5 analytics)", fmt(warm_total),
                  f"{core_total / warm_total:.2f}x", "1.00x", ""],
                 ["floor", fmt(floor["total"]), f"{floor['total'] / core_total:.2f}x",
                  f"{floor['total'] / warm_total:.2f}x", ""],
                 [f"row-by-row SQLAlchemy upsert ({len(results['row_by_row'])} rep)", fmt(rbr),
                  f"{rbr / core_total:.2f}x", f"{rbr / warm_total:.2f}x",
                  f"{results['row_by_row'][0]['rows']:,} statements"]]
    fastest = None
    for label, entry in results["dlt"].items():
        if "error" in entry:
            peer_rows.append([f"dlt {label}", "failed", "", "", entry["error"][:90]])
            continue
        seconds = median([r["total"] for r in entry["runs"]])
        peer_rows.append([f"dlt {label} ({len(entry['runs'])} rep)", fmt(seconds), f"{seconds / core_total:.2f}x",
                          f"{seconds / warm_total:.2f}x", ""])
        if fastest is None or seconds < fastest[1]:
            fastest = (label, seconds)
    if not results["dlt"]:
        peer_rows.append(["dlt", "skipped (not installed)", "", "", ""])
    table("3. Peers on the same rows and keys (contender time / pipeline time)",
          ["contender", "median", "vs six assets", "vs whole graph", "note"], peer_rows)
    if fastest:
        check("dlt fastest / pipeline (six assets)", fastest[1] / core_total,
              *TARGETS["dlt fastest / pipeline (six assets)"])
        check("(info) dlt fastest / whole graph", fastest[1] / warm_total, 3.0, "ge")
    check("row-by-row / pipeline (six assets)", rbr / core_total, *TARGETS["row-by-row / pipeline (six assets)"])
    check("(info) row-by-row / whole graph", rbr / warm_total, 20.0, "ge")

    day2 = results["day2"]
    rows = []
    for name in names:
        rows.append([name, fmt(step_median(day2, name, "step")), fmt(step_median(day2, name, "write"))])
    rows.append(["whole run", fmt(median([r["total"] for r in day2])), ""])
    table(f"4. Day 2 (5% changed, 2% new, 1% gone; {day2[0]['pools_total']:,} pools known, "
          f"{day2[0]['pools_gone']:,} not seen today): the upsert path", ["asset", "step", "write"], rows)

    back = results["backfill"]
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
    table("5. Backfill: stored days re-materialized as one range run (per-day: DailyBatches iteration timed "
          "in-process)", ["figure", "value"], rows)
    check("backfill last-30 / first-30 mean per day", back["last_mean"] / back["first_mean"],
          *TARGETS["backfill last-30 / first-30 mean per day"])

    queries = results["queries"]
    extension = results.get("query_extension")
    if extension:
        print(f"\n(6: pool_snapshots extended from {back['days']} backfilled days to {extension['days']} days, "
              f"{extension['rows']:,} rows, by SQL copies of the backfilled days in {extension['seconds']:.0f} s)")
    rows = []
    year = results.get("analytics_year")
    daily = results.get("analytics_daily", [])
    for name in ANALYTICS:
        rows.append([name, fmt(year["steps"].get(name, {}).get("step")) if year else "-",
                     fmt(median([d["steps"].get(name, {}).get("step") for d in daily])) if daily else "-"])
    rows.append(["all five (whole run)", fmt(year["total"]) if year else "-",
                 fmt(median([d["total"] for d in daily])) if daily else "-"])
    table(f"6a. Analytics upkeep at {extension['days'] if extension else back['days']} days", [
        "asset", "all days, one range run", f"newest day alone (median of {len(daily)})"], rows)
    table(f"6. Queries at {extension['days'] if extension else back['days']} days ({queries[0]['snapshot_rows']:,} "
          f"snapshot rows), warm, median of {max(args.reps, 3)}",
          ["query", "round trip (COPY out)", "fetchall (Python)", "in the database", "rows", "indexes used",
           "seq scans", f"< {QUERY_TARGET_MS:.0f} ms"],
          [[q["query"], fmt(q["ms"], "ms"), fmt(q.get("fetchall_ms"), "ms"), fmt(q.get("plan_ms"), "ms"),
            f"{q['rows']:,}", ", ".join(q["indexes"]) or "-", ", ".join(q["seq_scans"]) or "-",
            ("yes" if q["ms"] < QUERY_TARGET_MS else "NO") if q.get("target", True) else "(not a target)"]
           for q in queries])
    for q in queries:
        if not q.get("target", True):
            continue
        check(f"query: {q['query']} (ms)", q["ms"], QUERY_TARGET_MS, "le")

    disk = results["disk"]
    rss = results["rss"]
    mb = 1024 * 1024
    raw_per_day = disk["sizes"]["raw_payloads"]["total"] / max(1, disk["raw_days"]) / mb
    rows = [["peak RSS, one-day run (subprocess, VmHWM)", fmt(rss["peak_rss_mb"], "MB")],
            ["  of which before the run (imports)", fmt(rss["rss_before_run_mb"], "MB")],
            ["raw_payloads on disk per day (pg_total_relation_size / days)", fmt(raw_per_day, "MB")],
            ["raw payload bodies per day (compressed bytes)", fmt(disk["raw_body_bytes"] / max(1, disk["raw_days"]) / mb,
                                                                   "MB")]]
    for name in TABLES:
        s = disk["sizes"][name]
        per = f" = {s['total'] / max(1, disk['snapshot_days']) / mb:.2f} MB/day" if name == "pool_snapshots" else ""
        rows.append([f"{name}: heap + indexes", f"{s['heap'] / mb:.1f} + {s['indexes'] / mb:.1f} MB{per}"])
    all_tables = sum(disk["sizes"][n]["total"] for n in TABLES)
    rows.append(["4 tables with indexes per day", fmt(all_tables / max(1, disk["snapshot_days"]) / mb, "MB")])
    table("7. Memory and disk", ["figure", "value"], rows)
    check("peak RSS one day (MB)", rss["peak_rss_mb"], *TARGETS["peak RSS one day (MB)"])
    check("raw payloads per day (MB)", raw_per_day, *TARGETS["raw payloads per day (MB)"])

    table("Targets", ["target", "measured", "limit", "met"],
          [[name, f"{measured:.2f}", f"{'<=' if how == 'le' else '>='} {limit:g}", "yes" if ok else "NO"]
           for name, measured, limit, how, ok in checks])
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny payloads, 3 backfill days, 1 rep (smoke run)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--days", type=int, default=None, help="backfill days (default 365; 3 with --quick)")
    parser.add_argument("--query-days", type=int, default=None,
                        help="days of snapshots for the queries; beyond --days they are SQL copies (default 365)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5; 1 with --quick)")
    parser.add_argument("--slow-reps", type=int, default=3, help="at most this many reps for dlt and row-by-row")
    parser.add_argument("--pools", type=int, default=None, help="pools per day (default 17000; 200 with --quick)")
    parser.add_argument("--protocols", type=int, default=None, help="protocols (default 7000; 80 with --quick)")
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--schema-prefix", default=None, help="schemas are <prefix>_<contender>")
    parser.add_argument("--keep", action="store_true", help="keep the one-year schema for inspection")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--child-one-day", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-schema", help=argparse.SUPPRESS)
    parser.add_argument("--pools-url", help=argparse.SUPPRESS)
    parser.add_argument("--protocols-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_one_day:
        child_one_day(args)
        return 0
    args.days = args.days or (3 if args.quick else 365)
    args.reps = args.reps or (1 if args.quick else 5)
    args.query_days = args.query_days or (args.days if args.quick else 365)
    args.pools = args.pools or (200 if args.quick else 17000)
    args.protocols = args.protocols or (80 if args.quick else 7000)
    args.schema_prefix = args.schema_prefix or f"bench_{os.getpid()}"
    ensure_database(args.database_url)

    started = time.perf_counter()
    log(f"generating payloads: {args.pools} pools, {args.protocols} protocols")
    payloads = Payloads(args.pools, args.protocols)
    bench = Bench(args)
    with PayloadServer() as server:
        for phase in (bench.one_day, bench.peers, bench.rss):
            phase(server, payloads)
            bench.dump()
        bench.backfill(server)
        bench.dump()
    drop_schema(args.database_url, bench.schema("day"))
    drop_schema(args.database_url, bench.schema("rbr"))

    with contextlib.closing(connect(args.database_url)) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        pg_version = cur.fetchone()[0]
        cur.execute("SHOW shared_buffers")
        shared_buffers = cur.fetchone()[0]
    print(f"# llama-pipeline benchmark: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM, PostgreSQL {pg_version} "
          f"(shared_buffers {shared_buffers}), Python {sys.version.split()[0]}, dagster {dg.__version__}; "
          f"{args.pools:,} pools, {args.protocols:,} protocols, {args.days} backfill days, {args.reps} reps"
          f"{' (quick)' if args.quick else ''}")
    checks = report(bench.results, args)
    print(f"\nbenchmark wall time: {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": bench.results,
                                               "checks": checks}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
