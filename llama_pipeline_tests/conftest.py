"""Shared fixtures: a real PostgreSQL (TEST_DATABASE_URL, or a throwaway embedded server), one schema
per test, and a real HTTP server on 127.0.0.1 serving payloads."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from llama_pipeline.db_url import libpq_url
from llama_pipeline.decode.decoded_payloads import DecodedPayloads
from llama_pipeline.fetch.http_client import DefiLlamaClient
from llama_pipeline.fetch.payloads import RawPayload, decode_records
from llama_pipeline.fetch.raw_archive import store
from llama_pipeline.partitions import utc_today
from llama_pipeline.write.io_manager import WarehouseIOManager
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.testing.payload_server import PayloadServer
from llama_pipeline.write.warehouse import Warehouse, migrate_to_head

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "defillama"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A libpq URL to a server where tests may create a database."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from llama_bootstrap import local_postgres

    with local_postgres.temporary_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A database of this test session's own, dropped at the end."""
    name = f"llama_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(libpq_url(server_url))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = libpq_url(server_url).rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def schema_name(database_url: str) -> Iterator[str]:
    """A fresh, empty schema for one test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.closing(psycopg2.connect(database_url)) as conn, conn, conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def warehouse(database_url: str, schema_name: str) -> Warehouse:
    migrate_to_head(database_url, schema_name)
    return Warehouse(database_url=database_url, schema_name=schema_name)


@pytest.fixture
def query(warehouse: Warehouse):
    """Run SQL against the test's schema and return all rows."""

    def run(sql: str, params: tuple = ()) -> list[tuple]:
        with warehouse.connection() as conn, conn.cursor() as cur:
            cur.execute(f'SET LOCAL search_path TO "{warehouse.schema_name}"')
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture
def http() -> Iterator[PayloadServer]:
    with PayloadServer() as server:
        yield server


@pytest.fixture
def resources(warehouse: Warehouse, http: PayloadServer) -> dict:
    return {
        "warehouse": warehouse,
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "decoded_payloads": DecodedPayloads(),
        "defillama": DefiLlamaClient(
            pools_url=http.url("/pools"), protocols_url=http.url("/protocols"), chart_url=http.url("/chart/{pool}"),
            lend_borrow_url=http.url("/lendBorrow"), chains_url=http.url("/v2/chains"),
            chain_tvl_url=http.url("/v2/historicalChainTvl/{chain}"), protocol_url=http.url("/protocol/{slug}"),
            lend_borrow_chart_url=http.url("/{api_key}/yields/chartLendBorrow/{pool}"),
            backoff_factor=0.01, max_wait=0.2, read_timeout=5,
        ),
    }


@pytest.fixture(scope="session")
def small_day() -> tuple[dict, list]:
    """A small synthetic day: 300 pools, 150 protocols (the generator's full size is for benchmarks)."""
    protocols = synthetic.generate_protocols(150, seed=7)
    return synthetic.generate_pools(300, seed=7, protocols=protocols), protocols


def all_assets() -> list[dg.AssetsDefinition]:
    from llama_pipeline.defs.ingestion.assets import raw_pools, raw_protocols
    from llama_pipeline.defs.ingestion.charts import raw_pool_charts
    from llama_pipeline.defs.warehouse.assets import warehouse_tables

    return [raw_pools, raw_protocols, raw_pool_charts, warehouse_tables]


def dataset_assets() -> list[dg.AssetsDefinition]:
    """The assets of the datasets beside the yields (lending, chain ids and TVL, protocol TVL, renames)."""
    from llama_pipeline.defs.chain_tvl.assets import chain_metadata, chain_tvl_daily, raw_chain_list
    from llama_pipeline.defs.lend_borrow.assets import lend_borrow_snapshots, raw_lend_borrow
    from llama_pipeline.defs.lend_borrow.history import lend_borrow_history
    from llama_pipeline.defs.protocol_tvl.assets import protocol_tvl_daily

    return [raw_lend_borrow, lend_borrow_snapshots, raw_chain_list, chain_metadata, chain_tvl_daily,
            protocol_tvl_daily, lend_borrow_history]


def asset_keys(items) -> list[dg.AssetKey]:
    """The keys of assets (a multi-asset's every key) and of keys given as such, for a selection."""
    keys: list[dg.AssetKey] = []
    for item in items:
        keys.extend([item] if isinstance(item, dg.AssetKey) else item.keys)
    return keys


def warehouse_assets() -> list[dg.AssetsDefinition]:
    """The assets built from stored payloads (no network): the dimensions, project_renames and
    pool_snapshots (one multi-asset)."""
    return all_assets()[3:]


def archive_payloads(warehouse: Warehouse, day: dt.date, pools_payload: dict, protocols_payload: list) -> None:
    """Store payloads for a past day, as the raw assets would have on that day."""
    now = dt.datetime.combine(day, dt.time(23), tzinfo=dt.timezone.utc)
    payloads = []
    for endpoint, document in (("pools", pools_payload), ("protocols", protocols_payload)):
        body = synthetic.dumps(document)
        payloads.append(RawPayload(endpoint, day, f"http://127.0.0.1/{endpoint}", now, 200, "application/json",
                                   body, len(decode_records(endpoint, body, endpoint))))
    with warehouse.connection() as conn:
        store(conn, warehouse.schema_name, payloads)


def materialize(assets, resources: dict, partition: str | dt.date | None = None, *, raise_on_error: bool = True,
                partition_range: tuple[dt.date, dt.date] | None = None) -> dg.ExecuteInProcessResult:
    tags = {}
    if partition_range:
        tags = {"dagster/asset_partition_range_start": partition_range[0].isoformat(),
                "dagster/asset_partition_range_end": partition_range[1].isoformat()}
        partition = None
    elif partition is None:
        partition = utc_today()
    return dg.materialize(
        [*all_assets(), *dataset_assets()],
        selection=asset_keys(assets),
        resources=resources,
        partition_key=partition.isoformat() if isinstance(partition, dt.date) else partition,
        tags=tags,
        raise_on_error=raise_on_error,
    )
