"""Each stored payload is parsed once per process, and a replaced payload is never served stale."""

from __future__ import annotations

import datetime as dt

import pytest

from llama_pipeline import parsed_payloads
from llama_pipeline.raw_archive import MissingPayload, RawArchive
from llama_pipeline_tests.testing import synthetic

from .conftest import archive_payloads, materialize, warehouse_assets

DAY = dt.date(2026, 3, 1)


@pytest.fixture(autouse=True)
def empty_cache():
    parsed_payloads.clear()
    parsed_payloads.stats.clear()
    yield
    parsed_payloads.clear()


def test_a_run_leaves_nothing_parsed_behind(resources, warehouse, small_day):
    archive_payloads(warehouse, DAY, *small_day)
    assert materialize(warehouse_assets(), resources, DAY).success
    assert parsed_payloads.cached() == 0
    assert materialize(warehouse_assets(), resources, DAY).success
    assert parsed_payloads.stats["misses"] == 4  # the second run parsed the day again


def test_a_day_is_parsed_once_for_all_four_warehouse_assets(resources, warehouse, query, small_day):
    archive_payloads(warehouse, DAY, *small_day)
    assert materialize(warehouse_assets(), resources, DAY).success
    # One parse per endpoint; chains, projects, pools and pool_snapshots reuse them.
    assert parsed_payloads.stats["misses"] == 2  # stored payloads, not fetched in this run
    assert parsed_payloads.stats["hits"] >= 3
    assert query("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (DAY,)) == [(300,)]


def test_a_replaced_payload_is_parsed_again(warehouse, small_day):
    pools_payload, protocols = small_day
    archive_payloads(warehouse, DAY, pools_payload, protocols)
    archive = RawArchive(warehouse, "pools", (DAY,))
    first = parsed_payloads.pools_day(archive, DAY)
    assert parsed_payloads.pools_day(archive, DAY) is first

    smaller = synthetic.generate_pools(120, seed=8, protocols=protocols)
    archive_payloads(warehouse, DAY, smaller, protocols)  # today fetched again: a different body
    second = parsed_payloads.pools_day(archive, DAY)
    assert second is not first
    assert len(second.parsed.snapshots) == 120


def test_missing_payload_and_wrong_archive_are_refused(warehouse):
    with pytest.raises(MissingPayload):
        parsed_payloads.pools_day(RawArchive(warehouse, "pools", (DAY,)), DAY)
    with pytest.raises(ValueError, match="/pools archive"):
        parsed_payloads.pools_day(RawArchive(warehouse, "protocols", (DAY,)), DAY)
    with pytest.raises(ValueError, match="/pools archive"):
        parsed_payloads.pool_names(RawArchive(warehouse, "protocols", (DAY,)), DAY)


def test_todays_fetch_is_parsed_once_by_the_raw_asset_and_reused(resources, http, query, small_day):
    from .conftest import all_assets

    pools_payload, protocols = small_day
    http.set("/pools", synthetic.dumps(pools_payload))
    http.set("/protocols", synthetic.dumps(protocols))
    assert materialize(all_assets(), resources).success
    # raw_pools and raw_protocols parsed what they fetched; nothing was read back and parsed again.
    assert parsed_payloads.stats["misses"] == 0
    assert parsed_payloads.stats["hits"] >= 4
    assert query("SELECT count(*) FROM pool_snapshots") == [(300,)]


def test_a_long_range_parses_names_alone_for_chains_and_projects(resources, warehouse, query, small_day):
    pools_payload, protocols = small_day
    days = [DAY + dt.timedelta(days=i) for i in range(6)]  # more days than the full-parse cache holds
    for day in days:
        archive_payloads(warehouse, day, pools_payload, protocols)
    assert materialize(warehouse_assets(), resources, partition_range=(days[0], days[-1])).success
    # Per day: names of both payloads (chains; projects reuses them), the protocols' rows (projects),
    # and the pools' rows for pools and pool_snapshots (evicted in between, so parsed twice).
    assert parsed_payloads.stats["misses"] == 5 * len(days)
    assert query("SELECT count(*) FROM pool_snapshots") == [(300 * len(days),)]
