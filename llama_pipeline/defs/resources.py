"""Resources, configured from the environment (or a .env file) through ``dg.EnvVar``.

Only the variable names reach the UI; values are resolved when a run starts.
"""

import os

import dagster as dg

from llama_pipeline.decode.decoded_payloads import DecodedPayloads
from llama_pipeline.fetch.http_client import (
    DEFAULT_CHAIN_TVL_URL, DEFAULT_CHAINS_URL, DEFAULT_CHART_URL, DEFAULT_LEND_BORROW_CHART_URL,
    DEFAULT_LEND_BORROW_URL, DEFAULT_POOLS_URL, DEFAULT_PROTOCOL_URL, DEFAULT_PROTOCOLS_URL, DefiLlamaClient,
)
from llama_pipeline.write.io_manager import WarehouseIOManager
from llama_pipeline.write.warehouse import Warehouse


def _env_or(name: str, default: str) -> str | dg.EnvVar:
    # Optional settings: EnvVar when the variable is set, so the UI shows where the value came from.
    return dg.EnvVar(name) if os.environ.get(name) else default


def warehouse_resources(database_url: str | dg.EnvVar, schema_name: str | dg.EnvVar) -> dict:
    """The warehouse, its IO manager and the sensors' reader, wired as a run uses them.

    Every field of "warehouse" is given, so nothing is asked at launch; it is partial so that the IO
    manager is handed the run's own "warehouse" (Dagster resolves a partial nested resource to its
    top-level key). A fully configured nested one would be set up again inside the IO manager: the
    migrations checked twice per run, and a second connection pool."""
    settings = {"database_url": database_url, "schema_name": schema_name}
    warehouse = Warehouse.configure_at_launch(**settings)
    return {
        "warehouse": warehouse,
        # Sensors only read: evaluating one never migrates the schema (a run does, when it starts).
        "warehouse_reader": Warehouse(**settings, migrate_on_start=False),
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            **warehouse_resources(dg.EnvVar("DATABASE_URL"), _env_or("WAREHOUSE_SCHEMA", "public")),
            # Run-scoped: the raw steps' decode of today's bodies, for the same run's warehouse step.
            "decoded_payloads": DecodedPayloads(),
            "defillama": DefiLlamaClient(
                pools_url=_env_or("SOURCE_URL", DEFAULT_POOLS_URL),
                protocols_url=_env_or("PROTOCOLS_URL", DEFAULT_PROTOCOLS_URL),
                chart_url=_env_or("CHART_URL", DEFAULT_CHART_URL),
                lend_borrow_url=_env_or("LEND_BORROW_URL", DEFAULT_LEND_BORROW_URL),
                chains_url=_env_or("CHAINS_URL", DEFAULT_CHAINS_URL),
                chain_tvl_url=_env_or("CHAIN_TVL_URL", DEFAULT_CHAIN_TVL_URL),
                protocol_url=_env_or("PROTOCOL_URL", DEFAULT_PROTOCOL_URL),
                lend_borrow_chart_url=_env_or("LEND_BORROW_CHART_URL", DEFAULT_LEND_BORROW_CHART_URL),
                api_key=_env_or("DEFILLAMA_API_KEY", ""),  # an EnvVar when set: the UI shows its name only
            ),
        }
    )
