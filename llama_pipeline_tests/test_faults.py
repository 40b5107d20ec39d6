"""Faults, each ending with nothing lost or duplicated: a run killed mid-write, PostgreSQL restarted
mid-run, concurrent runs of one day and of two days, hostile strings, and a fetch outage that outlasts
the HTTP client's own retries (the raw assets' RetryPolicy)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from llama_bootstrap import local_postgres
from llama_pipeline.defs.ingestion.assets import FETCH_RETRY_POLICY, raw_pools, raw_protocols
from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.testing.payload_server import Response
from llama_pipeline.write.warehouse import Warehouse, migrate_to_head
from llama_pipeline_tests.conftest import archive_payloads, materialize, warehouse_assets
from llama_pipeline_tests.fault_helpers import (backend_gone, finish, per_asset, scratch_schema, start_run, state,
                                                wait_for_write)

@pytest.fixture(scope="module")
def big_day() -> tuple[dict, dict, list]:
    """A day of 12,000 pools (long enough a write to be caught mid-way) and a smaller earlier version."""
    protocols = synthetic.generate_protocols(400, seed=41)
    big = synthetic.generate_pools(12_000, seed=41, protocols=protocols)
    small = {"status": "success", "data": synthetic.evolve_pools(big, seed=42)["data"][:3000]}
    return small, big, protocols


def reference(database_url: str, day: dt.date, payloads: list[dict], protocols: list) -> dict:
    """The state that clean runs of the warehouse assets leave, one per payload in turn, undisturbed."""
    with scratch_schema(database_url) as schema:
        warehouse = Warehouse(database_url=database_url, schema_name=schema)
        for pools_payload in payloads:
            archive_payloads(warehouse, day, pools_payload, protocols)
            code, summary, output = finish(start_run(database_url, schema, partition=day))
            assert code == 0, output[-3000:]
        return state(database_url, schema)


def test_sigkill_mid_write_leaves_a_complete_state_and_a_rerun_completes(
        warehouse, database_url, schema_name, big_day):
    small, big, protocols = big_day
    day = dt.date(2026, 9, 1)
    archive_payloads(warehouse, day, small, protocols)
    code, _, output = finish(start_run(database_url, schema_name, partition=day))
    assert code == 0, output[-3000:]
    before = per_asset(state(database_url, schema_name))

    archive_payloads(warehouse, day, big, protocols)  # the day's payload is replaced, then reloaded
    process = start_run(database_url, schema_name, partition=day)
    backend = wait_for_write(database_url, schema_name, "pool_snapshots", process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert backend_gone(database_url, backend), "the killed run's transaction was left open"
    killed = per_asset(state(database_url, schema_name))

    code, _, output = finish(start_run(database_url, schema_name, partition=day))
    assert code == 0, output[-3000:]
    after = per_asset(state(database_url, schema_name))
    assert after == per_asset(reference(database_url, day, [small, big], protocols))
    # Each asset's table holds the previous complete state or the new one, never a mix.
    assert killed["pool_snapshots"] == before["pool_snapshots"]  # killed inside its transaction
    for table in set(before) | set(after):
        assert killed.get(table, []) in (before.get(table, []), after.get(table, [])), table
    assert len(after["pool_snapshots"]) == len(big["data"])


def test_postgres_restart_mid_run_fails_cleanly_and_a_rerun_completes(big_day):
    small, big, protocols = big_day
    day = dt.date(2026, 9, 2)
    base = Path(tempfile.mkdtemp(prefix="llama-fault-pg-"))
    data_dir = base / "pgdata"
    try:
        os.chmod(base, 0o711)
        url = local_postgres.url_with_password(
            data_dir, local_postgres.ensure_server(data_dir, port=local_postgres.any_free_port(), fast=True))
        database_url = local_postgres.create_database(url, "faults")
        schema = "restart"
        migrate_to_head(database_url, schema)
        warehouse = Warehouse(database_url=database_url, schema_name=schema)
        archive_payloads(warehouse, day, small, protocols)
        assert finish(start_run(database_url, schema, partition=day))[0] == 0
        before = per_asset(state(database_url, schema))

        archive_payloads(warehouse, day, big, protocols)
        process = start_run(database_url, schema, partition=day)
        wait_for_write(database_url, schema, "pool_snapshots", process)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        local_postgres.stop_server(data_dir)
        local_postgres.ensure_server(data_dir, port=port, fast=True)
        started = time.monotonic()
        code, summary, output = finish(process, timeout=180)
        assert time.monotonic() - started < 120, "the run hung after the restart"
        assert code == 1, output[-3000:]  # failed cleanly, saying why, with no password to hide here
        assert any("pool_snapshots" in e and ("terminat" in e.lower() or "connection" in e.lower()
                                             or "closed" in e.lower()) for e in summary["errors"]), summary
        interrupted = per_asset(state(database_url, schema))
        assert interrupted["pool_snapshots"] == before["pool_snapshots"]

        code, _, output = finish(start_run(database_url, schema, partition=day))
        assert code == 0, output[-3000:]
        after = per_asset(state(database_url, schema))
        for table in set(before) | set(after):
            assert interrupted.get(table, []) in (before.get(table, []), after.get(table, [])), table
        assert after == per_asset(reference(database_url, day, [small, big], protocols))
    finally:
        local_postgres.stop_server(data_dir)
        shutil.rmtree(base, ignore_errors=True)


def test_two_runs_of_the_same_day_at_once(http, warehouse, database_url, schema_name, small_day):
    pools_payload, protocols = small_day
    http.set("/pools", synthetic.dumps(pools_payload))
    http.set("/protocols", synthetic.dumps(protocols))
    urls = {"pools_url": http.url("/pools"), "protocols_url": http.url("/protocols")}
    runs = [start_run(database_url, schema_name, select="all", **urls) for _ in range(2)]
    for run in runs:
        code, _, output = finish(run)
        assert code == 0, output[-3000:]
    concurrent = state(database_url, schema_name)
    assert len(concurrent["pool_snapshots"]) == len(pools_payload["data"])
    assert len({r[0] for r in concurrent["pool_snapshots"]}) == len(pools_payload["data"])  # no duplicates
    assert finish(start_run(database_url, schema_name, select="all", **urls))[0] == 0
    assert state(database_url, schema_name) == concurrent  # == a single run's state
    _no_transactions_left(database_url, schema_name)


def test_two_runs_of_different_days_at_once(warehouse, database_url, schema_name):
    protocols = synthetic.generate_protocols(200, seed=43)
    day1, day2 = dt.date(2026, 9, 3), dt.date(2026, 9, 4)
    payload1 = synthetic.generate_pools(3000, seed=43, protocols=protocols, day=day1)
    payload2 = synthetic.evolve_pools(payload1, seed=44, changed=0.3, new=0.1, gone=0.1)
    archive_payloads(warehouse, day1, payload1, protocols)
    archive_payloads(warehouse, day2, payload2, protocols)
    runs = [start_run(database_url, schema_name, partition=day) for day in (day2, day1)]
    for run in runs:
        code, _, output = finish(run)
        assert code == 0, output[-3000:]
    concurrent = state(database_url, schema_name)
    with scratch_schema(database_url) as ref:
        ref_warehouse = Warehouse(database_url=database_url, schema_name=ref)
        archive_payloads(ref_warehouse, day1, payload1, protocols)
        archive_payloads(ref_warehouse, day2, payload2, protocols)
        for day in (day1, day2):  # one run after the other, in date order
            assert finish(start_run(database_url, ref, partition=day))[0] == 0
        assert concurrent == state(database_url, ref)
    _no_transactions_left(database_url, schema_name)


def _no_transactions_left(database_url: str, schema: str) -> None:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'llama_pipeline' "
                    "AND position(%s in query) > 0 AND state <> 'idle'", (f'"{schema}"',))
        assert cur.fetchone() == (0,)
        cur.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE l.locktype = 'advisory' AND a.application_name = 'llama_pipeline' "
                    "AND position(%s in a.query) > 0", (f'"{schema}"',))
        assert cur.fetchone() == (0,)


HOSTILE = [
    "'; DROP TABLE pools; --",
    "Robert'); DROP TABLE projects;--",
    '" OR 1=1 --',
    "$$; SELECT pg_sleep(10); $$",
    "%s %(x)s {0} {}",
    "\\.\n\\N\\\\",  # COPY's end-of-data and NULL markers, and backslashes
    "tab\there\nnewline\rreturn\x1b[31mansi\x07bell\x7f",
    "\u202eRTL override \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "emoji \U0001f680\U0001f999\U0001f468\u200d\U0001f469\u200d\U0001f467 zero\u200bwidth",
    "L" * 200_000,
    "nul \x00 byte",
]


def test_hostile_strings_are_stored_as_sent_or_cleaned_with_a_reason(resources, http, query, small_day):
    pools_payload, protocols = small_day
    records = [dict(r) for r in pools_payload["data"]]
    protocol_records = [dict(p) for p in protocols]
    for i, text in enumerate(HOSTILE):
        records[i].update(symbol=text, poolMeta=text, exposure=text[:50])
        records[i][f"hostile_key_{i}'\"; --"] = text  # a field name the API never sent, kept in extra
        protocol_records[i].update(name=text, description=text)
    records[len(HOSTILE)]["chain"] = "'; DROP TABLE chains; --"
    records[len(HOSTILE) + 1]["project"] = "x'); DELETE FROM pools; --"
    http.set("/pools", json.dumps({"status": "success", "data": records}).encode())
    http.set("/protocols", json.dumps(protocol_records).encode())
    result = materialize([raw_pools, raw_protocols, *warehouse_assets()], resources)
    assert result.success  # never crashes the day

    assert query("SELECT count(*) FROM rejects") == [(0,)]  # not one record set aside
    for i, text in enumerate(HOSTILE):
        stored = query("SELECT symbol, pool_meta FROM pools WHERE pool_id = %s", (records[i]["pool"],))
        extra = query("SELECT extra FROM pool_snapshots WHERE pool_id = %s", (records[i]["pool"],))[0][0]
        name = query("SELECT name, description FROM projects WHERE slug = %s", (protocol_records[i]["slug"],))
        if "\x00" in text:  # only what PostgreSQL cannot hold is changed: the NUL removed, and recorded
            clean = text.replace("\x00", "")
            assert stored == [(clean, clean)] and name == [(clean, clean)]
            invalid = extra["_invalid_fields"]
            assert invalid["symbol"]["value"] == text.replace("\x00", "\\u0000") and "NUL" in invalid["symbol"]["reason"]
            assert f"hostile_key_{i}'\"; --" in invalid  # the extra field's value, kept JSONB-safe
        else:
            assert stored == [(text, text)], i
            assert extra[f"hostile_key_{i}'\"; --"] == text
            assert name == [(text, text)], i
    assert query("SELECT chain FROM pools WHERE pool_id = %s", (records[len(HOSTILE)]["pool"],)) == [
        ("'; DROP TABLE chains; --",)]
    assert query("SELECT project FROM pools WHERE pool_id = %s", (records[len(HOSTILE) + 1]["pool"],)) == [
        ("x'); DELETE FROM pools; --",)]
    # Nothing was executed: every table is there and whole.
    assert query("SELECT count(*) FROM pools") == [(len(records),)]
    assert query("SELECT count(*) FROM pool_snapshots") == [(len(records),)]
    assert query("SELECT count(*) FROM chains")[0][0] > 1
    # A re-run of the day is identical (the archived payload replays byte for byte).
    from llama_pipeline_tests.defs.test_pipeline import snapshot_of
    before = snapshot_of(query)
    assert materialize(warehouse_assets(), resources).success
    assert snapshot_of(query) == before


def test_a_fetch_outage_longer_than_the_client_retries_is_retried_by_the_run(
        http, warehouse, database_url, schema_name, small_day):
    assert FETCH_RETRY_POLICY.max_retries >= 2 and FETCH_RETRY_POLICY.delay >= 10
    assert raw_pools.op.retry_policy == FETCH_RETRY_POLICY == raw_protocols.op.retry_policy
    pools_payload, protocols = small_day
    http.set("/pools", synthetic.dumps(pools_payload))
    http.set("/protocols", synthetic.dumps(protocols))
    # The run's client makes 2 attempts per fetch: the first step attempt sees only 503s.
    http.script("/pools", [Response(status=503, body="maintenance", content_type="text/plain")] * 2)
    run = start_run(database_url, schema_name, select="raw", pools_url=http.url("/pools"),
                    protocols_url=http.url("/protocols"), env={"LLAMA_FETCH_RETRY_DELAY": "0.5"})
    code, summary, output = finish(run)
    assert code == 0, output[-3000:]
    assert "STEP_UP_FOR_RETRY" in output or "up for retry" in output.lower()
    assert http.count("/pools") == 3
    assert state(database_url, schema_name)["raw_payloads"][0][4] in (len(protocols), len(pools_payload["data"]))
    # A payload that arrived whole but is unusable is not retried: it would fail the same way again.
    http.set("/pools", b"<html>oops</html>", content_type="text/html")
    run = start_run(database_url, schema_name, select="raw", pools_url=http.url("/pools"),
                    protocols_url=http.url("/protocols"), env={"LLAMA_FETCH_RETRY_DELAY": "0.5"})
    code, summary, output = finish(run)
    assert code == 1 and http.count("/pools") == 4
    assert any("is not JSON" in f for f in summary["errors"] + summary["failures"]) or "is not JSON" in output
    assert utc_today()  # partition: today
