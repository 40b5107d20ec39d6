"""Helpers for fault tests: a run in a separate process (so it can be killed, or race another run),
table state of any schema, and a reference warehouse built by one clean run.

``python -m llama_pipeline_tests.fault_helpers`` materializes per the JSON in ``LLAMA_FAULT_RUN``:
``{"database_url", "schema", "partition" | "range": [start, end], "select": "all" | "warehouse" | "raw",
"pools_url", "protocols_url"}``; exit status 0 when the run succeeded, 1 when it failed, and the last
line of stdout is a JSON summary.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("chains", "projects", "pools", "pool_snapshots", "raw_payloads", "rejects")


def start_run(database_url: str, schema: str, *, partition: dt.date | None = None,
              partition_range: tuple[dt.date, dt.date] | None = None, select: str = "warehouse",
              pools_url: str = "http://127.0.0.1:9/pools", protocols_url: str = "http://127.0.0.1:9/protocols",
              env: dict | None = None, chart_url: str = "http://127.0.0.1:9/chart/{pool}",
              run_config: dict | None = None) -> subprocess.Popen:
    spec = {"database_url": database_url, "schema": schema, "select": select, "pools_url": pools_url,
            "protocols_url": protocols_url, "chart_url": chart_url, "run_config": run_config or {}}
    if partition_range:
        spec["range"] = [d.isoformat() for d in partition_range]
    else:
        spec["partition"] = (partition or dt.datetime.now(dt.timezone.utc).date()).isoformat()
    return subprocess.Popen(
        [sys.executable, "-m", "llama_pipeline_tests.fault_helpers"], cwd=ROOT,
        env={**os.environ, **(env or {}), "LLAMA_FAULT_RUN": json.dumps(spec)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, dict, str]:
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return process.returncode, (json.loads(lines[-1]) if lines else {}), out + err


def state(database_url: str, schema: str) -> dict[str, list[tuple]]:
    """Every row of every table (rejects without their generated id), in a stable order."""
    result = {}
    with contextlib.closing(psycopg2.connect(database_url)) as conn, conn.cursor() as cur:
        for table in TABLES:
            columns = "*"
            if table == "rejects":
                columns = "asset, partition_date, record_index, record_key, reason, record"
            elif table == "raw_payloads":
                columns = "endpoint, partition_date, sha256, size_bytes, record_count"
            cur.execute(f'SELECT {columns} FROM "{schema}"."{table}"')
            result[table] = sorted(cur.fetchall(), key=repr)
    return result


def per_asset(snapshot: dict[str, list[tuple]]) -> dict[str, list]:
    """The state split the way writes are atomic: each table, and each asset's rejects."""
    split = {t: rows for t, rows in snapshot.items() if t != "rejects"}
    for row in snapshot["rejects"]:
        split.setdefault(f"rejects:{row[0]}", []).append(row)
    return split


@contextlib.contextmanager
def scratch_schema(database_url: str) -> Iterator[str]:
    """A migrated schema of its own, dropped afterwards."""
    from llama_pipeline.write.warehouse import migrate_to_head

    name = f"f_{uuid.uuid4().hex[:10]}"
    migrate_to_head(database_url, name)
    try:
        yield name
    finally:
        with contextlib.closing(psycopg2.connect(database_url)) as conn, conn, conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def wait_for_write(database_url: str, schema: str, table: str, process: subprocess.Popen,
                   timeout: float = 120) -> int:
    """Wait until a run's backend is inside a transaction writing ``schema.table``; return its pid."""
    needle = f'"{schema}"."{table}"'
    deadline = time.monotonic() + timeout
    with contextlib.closing(psycopg2.connect(database_url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'llama_pipeline' "
                            "AND xact_start IS NOT NULL AND position(%s in query) > 0 "
                            "AND (query ILIKE 'COPY%%' OR query ILIKE 'DELETE%%' OR query ILIKE '%%INSERT%%')",
                            (needle,))
                row = cur.fetchone()
                if row:
                    return row[0]
                if process.poll() is not None:
                    raise AssertionError(f"the run ended before writing {table}: {finish(process)[2][-3000:]}")
                time.sleep(0.005)
    raise AssertionError(f"no write to {table} within {timeout}s")


def backend_gone(database_url: str, pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    with contextlib.closing(psycopg2.connect(database_url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                if cur.fetchone()[0] == 0:
                    return True
                time.sleep(0.1)
    return False


def _main() -> int:
    import dagster as dg

    from llama_pipeline.decode.decoded_payloads import DecodedPayloads
    from llama_pipeline.fetch.http_client import DefiLlamaClient
    from llama_pipeline.write.io_manager import WarehouseIOManager
    from llama_pipeline.write.warehouse import Warehouse
    from llama_pipeline_tests.conftest import all_assets, asset_keys

    spec = json.loads(os.environ["LLAMA_FAULT_RUN"])
    warehouse = Warehouse(database_url=spec["database_url"], schema_name=spec["schema"])
    resources = {
        "warehouse": warehouse,
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "decoded_payloads": DecodedPayloads(),
        "defillama": DefiLlamaClient(pools_url=spec["pools_url"], protocols_url=spec["protocols_url"],
                                     chart_url=spec["chart_url"],
                                     backoff_factor=0.05, max_wait=0.5, read_timeout=5, max_attempts=2),
    }
    assets = all_assets()
    chosen = {"all": assets, "warehouse": assets[3:], "raw": assets[:2],
              "charts": [a for a in assets if a.keys == {dg.AssetKey("raw_pool_charts")}]}[spec["select"]]
    tags, partition_key = {}, spec.get("partition")
    if "range" in spec:
        tags = {"dagster/asset_partition_range_start": spec["range"][0],
                "dagster/asset_partition_range_end": spec["range"][1]}
    result = dg.materialize(assets, selection=asset_keys(chosen), resources=resources,
                            partition_key=partition_key, tags=tags, raise_on_error=False,
                            run_config=spec.get("run_config") or {})
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    errors = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE" and event.step_failure_data.error:
            error, chain = event.step_failure_data.error, []
            while error is not None:  # the failure and its causes, outermost first
                chain.append(error.message.strip())
                error = error.cause
            errors.append(f"{event.step_key}: " + " <- ".join(chain))
    print(json.dumps({"success": result.success, "failures": failures, "errors": errors}))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(_main())
