"""3. Peers on the same rows and keys: a row-by-row SQLAlchemy upsert and dlt (merge), against the pipeline.

Their figures are ratios to the pipeline's one day and to the floor, so those two scenarios run first.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import tempfile
import time
import uuid

import requests
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from llama_pipeline import schema as wschema
from llama_pipeline.db_url import libpq_url
from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing.payload_server import PayloadServer

from . import floor as floor_scenario
from .common import (TABLES, TARGETS, Bench, Checks, Payloads, connect, drop_schema, fmt, fresh_schema, log, median,
                     table)
from .floor import fetch_and_parse

NEEDS = ("one_day", "floor")

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


def run(bench: Bench, server: PayloadServer, payloads: Payloads) -> None:
    today = utc_today()
    server.set("/pools", payloads.day1_body)
    server.set("/protocols", payloads.protocols_body)
    log("3. row-by-row SQLAlchemy upsert")
    rbr_reps = max(1, min(bench.reps, bench.args.slow_reps))
    bench.results["row_by_row"] = [row_by_row_once(bench.url, bench.schema("rbr"), server, today)
                                   for _ in range(rbr_reps)]
    drop_schema(bench.url, bench.schema("rbr"))
    bench.results["dlt"] = {}
    if bench.args.skip_dlt:
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
    dlt_reps = max(1, min(bench.reps, bench.args.slow_reps))
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
                dlt_once(bench.url, bench.schema("dlt"), server, today, file_format, strategy, kind, workdir)
                runs = [dlt_once(bench.url, bench.schema("dlt"), server, today, file_format, strategy, kind,
                                 workdir) for _ in range(dlt_reps)]
                bench.results["dlt"][label] = {"runs": runs}
            except Exception as error:  # noqa: BLE001 - a configuration dlt does not support
                cause = error.__cause__ or error
                lines = [line for line in str(cause).strip().splitlines() if line.strip()]
                message = f"{type(cause).__name__}: {lines[0] if lines else ''}"[:200]
                log(f"   failed: {message}")
                bench.results["dlt"][label] = {"error": message}
    drop_schema(bench.url, bench.schema("dlt"))


def report(results: dict, args: argparse.Namespace, checks: Checks) -> None:
    one = results["one_day"]
    warm_total = median([r["total"] for r in one["warm"]])
    floor = floor_scenario.medians(results)
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
        checks.check("dlt fastest / pipeline (six assets)", fastest[1] / core_total,
                     *TARGETS["dlt fastest / pipeline (six assets)"])
        checks.check("(info) dlt fastest / whole graph", fastest[1] / warm_total, 3.0, "ge")
    checks.check("row-by-row / pipeline (six assets)", rbr / core_total,
                 *TARGETS["row-by-row / pipeline (six assets)"])
    checks.check("(info) row-by-row / whole graph", rbr / warm_total, 20.0, "ge")
