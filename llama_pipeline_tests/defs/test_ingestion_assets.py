"""The raw assets invoked directly with ``dg.build_asset_context``: what they fetch, keep and refuse."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from llama_pipeline.defs.ingestion.assets import raw_pools, raw_protocols
from llama_pipeline.fetch.raw_archive import FetchedPayloads
from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.conftest import archive_payloads


def test_today_is_fetched_and_described(resources, http, small_day):
    pools_payload, _ = small_day
    http.set("/pools", synthetic.dumps(pools_payload))
    context = dg.build_asset_context(partition_key=utc_today().isoformat())
    result = raw_pools(context, defillama=resources["defillama"], warehouse=resources["warehouse"],
                       decoded_payloads=resources["decoded_payloads"])
    value = result.value
    assert isinstance(value, FetchedPayloads) and value.kept == ()
    (payload,) = value.fetched
    assert payload.body == synthetic.dumps(pools_payload) and payload.record_count == len(pools_payload["data"])
    assert result.metadata["dagster/row_count"] == len(pools_payload["data"])
    assert http.url("/pools") == result.metadata["source_url"]


def test_a_past_day_keeps_its_stored_payload_and_never_fetches(resources, http, warehouse, small_day):
    pools_payload, protocols = small_day
    past = utc_today() - dt.timedelta(days=5)
    archive_payloads(warehouse, past, pools_payload, protocols)
    context = dg.build_asset_context(partition_key=past.isoformat())
    result = raw_protocols(context, defillama=resources["defillama"], warehouse=resources["warehouse"],
                       decoded_payloads=resources["decoded_payloads"])
    assert result.value.fetched == () and result.value.kept == (past,)
    assert http.count("/protocols") == 0
