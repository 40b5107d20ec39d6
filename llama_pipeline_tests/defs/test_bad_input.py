"""Bad payloads fail the day with a clear message and write nothing; a record without a usable pool id is
set aside, counted, and never fails the day; a value that cannot be read costs only that value."""

from __future__ import annotations

import json
import math

import pytest

from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.conftest import all_assets, materialize
from llama_pipeline_tests.defs.test_checks import evaluations
from llama_pipeline_tests.defs.test_checks import run as run_with_checks
from llama_pipeline_tests.defs.test_pipeline import serve, snapshot_of


def failure_message(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "the run should have failed"
    data = failures[0].step_failure_data
    return (data.error.message if data.error else "") + str(data.user_failure_data or "")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "is not JSON"),
        (None, "is truncated or malformed JSON"),
        (b'{"status": "error", "data": []}', "has status 'error'"),
        (b'{"status": "success", "data": []}', "empty list"),
        (b'{"status": "success", "data": {"pool": 1}}', "where a list of records was expected"),
    ],
    ids=["html", "truncated", "status-error", "empty-list", "not-a-list"],
)
def test_bad_pools_payload_fails_and_writes_nothing(resources, http, query, small_day, body, expected):
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success  # a good day already stored
    before = snapshot_of(query)
    if body is None:
        body = synthetic.dumps(pools_payload)[:5000]
    http.set("/pools", body)
    result = materialize(all_assets(), resources, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert expected in message and http.url("/pools") in message
    assert snapshot_of(query) == before  # today's good payload and tables are untouched


def test_empty_protocols_list_fails(resources, http, query, small_day):
    serve(http, small_day[0], [])
    result = materialize(all_assets(), resources, raise_on_error=False)
    assert "empty list" in failure_message(result)
    assert query("SELECT count(*) FROM raw_payloads WHERE endpoint = 'protocols'") == [(0,)]


def _bad_rows(good: list[dict]) -> tuple[list[dict], dict[str, str], dict[str, tuple[str, str]]]:
    """Good rows with every kind of bad row mixed in; returns the payload rows, for the rows that must
    be rejected a substring of the reason keyed by a marker in their symbol, and for the rows kept with
    an unreadable value the field and a substring of its reason."""
    rows = [dict(r) for r in good]
    template = dict(good[0])

    def variant(marker: str, **changes) -> dict:
        row = dict(template, symbol=marker, pool=f"{abs(hash(marker)) % 10**8:08d}-0000-4000-8000-000000000000")
        row.update(changes)
        return row

    rejected = {
        "MISSING-ID": "missing or malformed pool id",
        "BAD-ID": "missing or malformed pool id",
        "DUPLICATE": "duplicate pool id",
    }
    invalid = {
        "NAN": ("apy", "not a finite number"),
        "INF": ("tvlUsd", "not a finite number"),
        "TEXT-TVL": ("tvlUsd", "expected a number"),
        "HUGE": ("tvlUsd", "out of range"),
        "NUL\x00BYTE": ("symbol", "NUL character"),
        "NO-CHAIN": ("chain", "chain: missing or empty"),
    }
    bad = [
        variant("MISSING-ID", pool=None),
        variant("BAD-ID", pool="not-a-uuid'; DROP TABLE pools; --"),
        variant("DUPLICATE", pool=good[1]["pool"]),
        variant("NAN", apy=math.nan),
        variant("INF", tvlUsd=math.inf),
        variant("TEXT-TVL", tvlUsd="lots"),
        variant("HUGE", tvlUsd=10**400),
        variant("NUL\x00BYTE"),
        variant("NO-CHAIN", chain=""),
    ]
    coerced = [
        variant("STRING-NUMBER", tvlUsd="12345.5", apy="7.25"),
        variant("EMOJI 🚀 مرحبا \u202e'quote\"", poolMeta="x" * 5000),
        variant("MISSING-FIELDS", **{k: None for k in ("apyBase", "predictions", "underlyingTokens")}),
        variant("NEW-FIELD", brandNewMetric=42.5),
    ]
    for row in coerced[2:3]:
        for key in ("apyBase", "predictions", "underlyingTokens"):
            row.pop(key)
    return rows + bad + coerced, rejected, invalid


def test_bad_rows_are_set_aside_with_reasons(resources, http, query, small_day):
    pools_payload, protocols = small_day
    rows, rejected, invalid = _bad_rows(pools_payload["data"])
    body = json.dumps({"status": "success", "data": rows}, allow_nan=True).encode()
    http.set("/pools", body)
    http.set("/protocols", synthetic.dumps(protocols))
    result = run_with_checks(all_assets(), resources)
    assert result.success

    reasons = query("SELECT record, reason FROM rejects WHERE asset = 'pool_snapshots'")
    assert len(reasons) == len(rejected)
    for marker, reason in rejected.items():
        matching = [r for (record, r) in reasons if json.dumps(marker, ensure_ascii=True)[1:-1] in record]
        assert matching and reason in matching[0], (marker, matching)
    good_count = len(pools_payload["data"]) + len(invalid) + 4
    assert query("SELECT count(*) FROM pool_snapshots") == [(good_count,)]
    # One unreadable value costs that value: the pool's day is kept, the value NULL, the raw value and
    # the reason under extra._invalid_fields.
    for marker, (field, reason) in invalid.items():
        symbol = marker.replace("\x00", "")
        stored = query("SELECT s.extra->'_invalid_fields', s.apy, s.tvl_usd, p.chain FROM pool_snapshots s "
                       "JOIN pools p USING (pool_id) WHERE p.symbol = %s", (symbol,))
        assert len(stored) == 1, marker
        fields, apy, tvl, chain = stored[0]
        assert list(fields) == [field] and reason in fields[field]["reason"], (marker, fields)
        if field in ("apy", "tvlUsd"):
            assert (apy if field == "apy" else tvl) is None
    assert query("SELECT s.extra->'_invalid_fields'->'tvlUsd'->>'value' FROM pool_snapshots s "
                 "JOIN pools p USING (pool_id) WHERE p.symbol = 'TEXT-TVL'") == [("lots",)]
    assert query("SELECT chain FROM pools WHERE symbol = 'NO-CHAIN'") == [("(unknown)",)]
    # The payload's row count adds up: loaded + rejected; unreadable values are counted too.
    meta = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["pool_snapshots"]][0]
    metadata = meta.materialization.metadata
    assert metadata["rejected"].value == len(rejected)
    assert metadata["invalid_values"].value == len(invalid)
    assert metadata["dagster/row_count"].value + metadata["rejected"].value == len(rows)
    checks = evaluations(result)
    assert all(checks[f"{asset}:counts_add_up"].passed for asset in ("pools", "pool_snapshots", "projects"))
    assert checks["pools:pools_join_chain_and_project"].passed  # the (unknown) chain joins too
    assert checks["pool_snapshots:rejects_within_threshold"].metadata["invalid_values"].value == len(invalid)

    # Safely coercible values were coerced; odd text stored as sent; new fields kept in extra.
    assert query("SELECT s.tvl_usd, s.apy FROM pool_snapshots s JOIN pools p USING (pool_id) "
                 "WHERE p.symbol = 'STRING-NUMBER'") == [(12345.5, 7.25)]
    assert query("SELECT pool_meta FROM pools WHERE symbol LIKE 'EMOJI%%'") == [("x" * 5000,)]
    assert query("SELECT symbol FROM pools WHERE symbol LIKE 'EMOJI%%'") == [("EMOJI 🚀 مرحبا \u202e'quote\"",)]
    assert query("SELECT s.apy_base, s.predicted_class FROM pool_snapshots s JOIN pools p USING (pool_id) "
                 "WHERE p.symbol = 'MISSING-FIELDS'") == [(None, None)]
    assert query("SELECT s.extra FROM pool_snapshots s JOIN pools p USING (pool_id) WHERE p.symbol = 'NEW-FIELD'") \
        == [({"brandNewMetric": 42.5},)]
    # The hostile id was stored as data in rejects, not executed.
    assert query("SELECT count(*) FROM pools") == [(good_count,)]


@pytest.mark.parametrize("field", ["chain", "project"])
def test_an_unreadable_chain_or_project_never_overwrites_a_known_one(resources, http, query, small_day, field):
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success
    first = pools_payload["data"][0]
    known = query(f"SELECT {field} FROM pools WHERE pool_id = %s", (first["pool"],))
    assert known and known[0][0] != "(unknown)"
    # The same day captured again later, with that pool's field unreadable: the snapshot is kept (filed
    # under the placeholder for the day), but the pool keeps what was known about it.
    recaptured = dict(pools_payload, data=[dict(first, **{field: None}), *pools_payload["data"][1:]])
    serve(http, recaptured, protocols)
    assert materialize(all_assets(), resources).success
    assert query(f"SELECT {field} FROM pools WHERE pool_id = %s", (first["pool"],)) == known
    assert query("SELECT count(*) FROM pool_snapshots WHERE pool_id = %s", (first["pool"],)) == [(1,)]


def test_bad_protocol_rows_are_set_aside(resources, http, query, small_day):
    pools_payload, protocols = small_day
    broken = [dict(protocols[0], slug=None), dict(protocols[1], slug=protocols[2]["slug"]),
              dict(protocols[3], slug="fresh-slug", tvl="NaN-ish"), "not an object"]
    serve(http, pools_payload, protocols + broken)
    assert materialize(all_assets(), resources).success
    reasons = [r[0] for r in query("SELECT reason FROM rejects WHERE asset = 'projects' ORDER BY record_index")]
    assert len(reasons) == 3
    assert "slug: missing" in reasons[0] and "duplicate slug" in reasons[1] and "not an object" in reasons[2]
    # An attribute that cannot be coerced costs the protocol only that field, kept with its reason.
    assert query("SELECT tvl, extra->'_invalid_fields'->'tvl' FROM projects WHERE slug = 'fresh-slug'") == [
        (None, {"value": "NaN-ish", "reason": "tvl: expected a number, got 'NaN-ish'"})]


def test_a_collapsed_payload_is_not_archived_over_a_full_day(resources, http, query, warehouse, small_day):
    import datetime as dt

    from llama_pipeline.partitions import utc_today
    from llama_pipeline_tests.conftest import archive_payloads

    pools_payload, protocols = small_day
    archive_payloads(warehouse, utc_today() - dt.timedelta(days=1), pools_payload, protocols)
    serve(http, {"status": "success", "data": pools_payload["data"][:100]}, protocols)  # 100 of 300
    before = snapshot_of(query)
    result = materialize(all_assets(), resources, raise_on_error=False)
    message = failure_message(result)
    assert "fewer than 50%" in message and "LLAMA_MIN_POOL_FRACTION" in message
    after = snapshot_of(query)
    assert {t: rows for t, rows in after.items() if t != "raw_payloads"} == {
        t: rows for t, rows in before.items() if t != "raw_payloads"}
    assert query("SELECT partition_date FROM raw_payloads WHERE endpoint = 'pools'") == [
        (utc_today() - dt.timedelta(days=1),)]  # today's collapsed payload was not stored


def test_no_network_fails_at_once_naming_the_url(resources, http, query, small_day):
    from llama_pipeline.fetch.http_client import DefiLlamaClient

    serve(http, *small_day)
    offline = dict(resources, defillama=DefiLlamaClient(
        pools_url="http://pools.invalid/pools", protocols_url=http.url("/protocols"), backoff_factor=0.01, max_wait=0.1))
    result = materialize(all_assets(), offline, raise_on_error=False)
    message = failure_message(result)
    assert "http://pools.invalid/pools" in message and "No network?" in message
    # A host that does not resolve is not retried minutes later by the RetryPolicy.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert query("SELECT count(*) FROM raw_payloads WHERE endpoint = 'pools'") == [(0,)]
