"""Today's bodies are decoded once per run: the raw steps' decode is handed to the warehouse step through
the run-scoped ``decoded_payloads`` resource, only for the very body stored, and gives the same rows as
decoding the stored body."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib

import dagster as dg

from llama_pipeline.decode.decoded_payloads import FROM_RAW_STEP, FROM_STORED_BODY, DecodedPayloads
from llama_pipeline.decode.pools import parse_pools
from llama_pipeline.decode.warehouse_days import decode_day
from llama_pipeline.defs.warehouse.assets import CHAINS, POOL_SNAPSHOTS, POOLS, PROJECTS
from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.conftest import all_assets, archive_payloads, materialize, warehouse_assets
from llama_pipeline_tests.defs.test_pipeline import serve, snapshot_of
from llama_pipeline_tests.testing import synthetic

DAY = dt.date(2026, 3, 1)
TABLES = (CHAINS, PROJECTS, POOLS, POOL_SNAPSHOTS)


def _messy(small_day) -> tuple[dict, list]:
    """The small day with a record of each payload set aside and a value made NULL (the salvage paths)."""
    pools_payload, protocols = copy.deepcopy(small_day)
    pools_payload["data"][0]["pool"] = None
    pools_payload["data"][1]["tvlUsd"] = "lots"
    protocols[0]["slug"] = 12
    return pools_payload, protocols


def _figures(result, name: str) -> dict:
    return {m.asset_key: m.metadata[name].value for m in result.asset_materializations_for_node("warehouse_tables")
            if m.asset_key in TABLES}


def _held_resource() -> DecodedPayloads:
    resource = DecodedPayloads()
    resource.setup_for_execution(dg.build_init_resource_context())
    return resource


def test_a_run_decodes_todays_bodies_once_and_a_rerun_from_storage_changes_nothing(resources, http, query,
                                                                                   small_day):
    serve(http, *_messy(small_day))
    result = materialize(all_assets(), resources)
    assert result.success
    said = f"/pools: {FROM_RAW_STEP}; /protocols: {FROM_RAW_STEP}"
    assert _figures(result, "payload_decode") == dict.fromkeys(TABLES, said)
    assert _figures(result, "payloads_decoded") == dict.fromkeys(TABLES, 0)  # no stored body decoded again
    assert query("SELECT count(*) FROM rejects") == [(2,)]  # a pool and a protocol, as from the stored bodies
    loaded = snapshot_of(query)
    # The same day again without the raw steps: the stored bodies are decoded, and give the very same rows.
    again = materialize(warehouse_assets(), resources)
    assert again.success
    said = f"/pools: {FROM_STORED_BODY}; /protocols: {FROM_STORED_BODY}"
    assert _figures(again, "payload_decode") == dict.fromkeys(TABLES, said)
    assert _figures(again, "payloads_decoded") == dict.fromkeys(TABLES, 2)
    assert snapshot_of(query) == loaded
    pools = [m for m in again.asset_materializations_for_node("warehouse_tables") if m.asset_key == POOLS]
    assert pools[0].metadata["updated"].value == 0 and pools[0].metadata["inserted"].value == 0


def test_a_subset_takes_only_the_decode_it_needs(resources, http, query, small_day):
    serve(http, *small_day)
    assert materialize(all_assets(), resources).success  # the dimensions pool_snapshots' keys refer to
    result = materialize([*all_assets()[:3], POOL_SNAPSHOTS], resources)
    assert result.success
    assert _figures(result, "payload_decode") == {POOL_SNAPSHOTS: f"/pools: {FROM_RAW_STEP}"}
    assert query("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (utc_today(),)) == [(300,)]


def test_only_the_decode_of_the_stored_body_is_taken(warehouse, small_day):
    pools_payload, protocols = small_day
    archive_payloads(warehouse, DAY, pools_payload, protocols)
    stored = synthetic.dumps(pools_payload)
    held = _held_resource()
    # A capture replaced since: its decode names another body, so the stored one is decoded instead.
    other = synthetic.dumps(synthetic.generate_pools(120, seed=8, protocols=protocols))
    held.hold("pools", DAY, hashlib.sha256(other).hexdigest(), parse_pools(other, DAY))
    day = decode_day(warehouse, DAY, protocols=False, decoded_payloads=held)
    assert day.sources == {"pools": FROM_STORED_BODY} and day.payloads_decoded == 1
    assert len(day.pools.snapshots) == 300 and held.held_count() == 0  # the stale decode is dropped too
    # The decode of the stored body itself is taken as it is, once.
    parsed = parse_pools(stored, DAY)
    held.hold("pools", DAY, hashlib.sha256(stored).hexdigest(), parsed)
    day = decode_day(warehouse, DAY, protocols=True, decoded_payloads=held)
    assert day.pools is parsed and day.payloads_decoded == 1  # /protocols: decoded from storage
    assert day.sources == {"pools": FROM_RAW_STEP, "protocols": FROM_STORED_BODY}
    assert held.held_count() == 0
    fresh = decode_day(warehouse, DAY, protocols=True)
    assert day.pools.snapshots.equals(fresh.pools.snapshots) and day.protocols == fresh.protocols


def test_nothing_is_held_outside_a_run():
    resource = DecodedPayloads()
    resource.hold("pools", DAY, "0" * 64, object())
    assert resource.held_count() == 0 and resource.take("pools", DAY, "0" * 64) is None
    held = _held_resource()
    held.hold("pools", DAY, "0" * 64, "decoded")
    held.teardown_after_execution(dg.build_init_resource_context())
    assert held.held_count() == 0
