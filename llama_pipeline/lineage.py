"""Column lineage: which upstream column each asset's columns come from.

The raw assets store whole HTTP payloads (table ``raw_payloads``), so their column schema describes the
fields of one API record instead: ``tvlUsd``, ``apy``, ``pool``, ``chain`` ... The dimension and fact
assets map back to those fields (taken from the payload models in ``llama_pipeline/decode/``, fields and descriptions, so
lineage cannot drift from the code that parses), and the analytics views map back to the warehouse tables.

``metadata_for(asset)`` is what an asset definition adds to its metadata: ``dagster/column_lineage``
(and, for the raw assets, ``dagster/column_schema`` of the API record plus ``archive_schema`` of the
table that stores it).
"""

from __future__ import annotations

import dagster as dg

from llama_pipeline import schema
from llama_pipeline.decode import coerce
from llama_pipeline.decode import chain_tvl_rows as chain_tvl_transform
from llama_pipeline.decode import lend_borrow_rows as lend_borrow_transform
from llama_pipeline.decode import pools as decode_pools
from llama_pipeline.decode import protocols as decode_protocols

RAW_POOLS, RAW_PROTOCOLS, RAW_POOL_CHARTS = "raw_pools", "raw_protocols", "raw_pool_charts"
RAW_LEND_BORROW, RAW_CHAIN_LIST = "raw_lend_borrow", "raw_chain_list"
CHAINS, PROJECTS, POOLS, POOL_SNAPSHOTS = "chains", "projects", "pools", "pool_snapshots"

Dep = tuple[str, str]  # (asset, column)

# --------------------------------------------------------------------------------------------------
# The API records the raw assets carry.

_JSON_TYPE = {
    coerce.number: "number",
    coerce.integer: "integer",
    coerce.boolean: "boolean",
    coerce.text: "string",
    coerce.text_list: "array<string>",
    coerce.timestamp_from_epoch: "number (epoch seconds)",
    coerce.day: "date",
    decode_protocols._canonical_chains: "array<string>",
    decode_protocols._json_object: "object",
}

_POOL_FIELDS: dict[str, tuple[str, object]] = {
    "pool": ("pool_id", coerce.text),
    "chain": ("chain", coerce.text),
    "project": ("project", coerce.text),
    **{field: spec for field, spec in decode_pools._POOL_ATTRIBUTES.items()},
    **{field: spec for field, spec in decode_pools._METRICS.items()},
    **{f"predictions.{field}": spec for field, spec in decode_pools._PREDICTIONS.items()},
}
# The descriptions are the payload models' own (llama_pipeline/decode/).
_POOL_DESCRIPTIONS = decode_pools.DESCRIPTIONS

_PROTOCOL_FIELDS: dict[str, tuple[str, object]] = {
    "slug": ("slug", coerce.text),
    **{field: spec for field, spec in decode_protocols._COLUMNS.items()},
}
_PROTOCOL_DESCRIPTIONS = decode_protocols.DESCRIPTIONS


def _field_type(convert: object) -> str:
    return _JSON_TYPE.get(convert, "string")


def _api_schema(fields: dict[str, tuple[str, object]], descriptions: dict[str, str], table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field,
                type=_field_type(convert),
                description=(descriptions.get(field, "") + f" Loaded into {table}.{column}.").strip(),
            )
            for field, (column, convert) in fields.items()
        ]
    )


_LEND_BORROW_FIELDS: dict[str, tuple[str, object]] = {
    "pool": ("pool_id", coerce.text),
    **lend_borrow_transform.FIELDS,
    **{field: (column, coerce.text_list) for field, column in lend_borrow_transform.TOKEN_FIELDS.items()},
}
_CHAIN_LIST_FIELDS: dict[str, tuple[str, object]] = {"name": ("name", coerce.text), **chain_tvl_transform._IDS}

RAW_POOLS_SCHEMA = _api_schema(_POOL_FIELDS, _POOL_DESCRIPTIONS, "pools/pool_snapshots")
RAW_PROTOCOLS_SCHEMA = _api_schema(_PROTOCOL_FIELDS, _PROTOCOL_DESCRIPTIONS, "projects")
_RAW_SCHEMAS = {
    RAW_POOLS: RAW_POOLS_SCHEMA,
    RAW_PROTOCOLS: RAW_PROTOCOLS_SCHEMA,
    RAW_LEND_BORROW: _api_schema(_LEND_BORROW_FIELDS, {"pool": "Pool id, the same id as /pools."},
                                 "lend_borrow_snapshots"),
    RAW_CHAIN_LIST: _api_schema(_CHAIN_LIST_FIELDS, {"name": "Chain as /v2/chains spells it (canonicalized by "
                                                     "the alias map)."}, "chains"),
}

# --------------------------------------------------------------------------------------------------
# Column -> upstream columns, per asset.

_POOL_ATTRIBUTE_COLUMNS = [column for column, _ in decode_pools._POOL_ATTRIBUTES.values()]
_SEEN = (schema.FIRST_SEEN, schema.LAST_SEEN)


def _warehouse_lineage() -> dict[str, dict[str, list[Dep]]]:
    by_column = {column: field for field, (column, _) in _POOL_FIELDS.items()}
    chains = {
        "name": [(RAW_POOLS, "chain"), (RAW_PROTOCOLS, "chains")],
        "aliases": [(RAW_POOLS, "chain"), (RAW_PROTOCOLS, "chains")],
    }
    projects = {"slug": [(RAW_PROTOCOLS, "slug"), (RAW_POOLS, "project")]}
    projects.update({column: [(RAW_PROTOCOLS, field)] for field, (column, _) in decode_protocols._COLUMNS.items()})
    projects["listed_in_protocols"] = [(RAW_PROTOCOLS, "slug")]
    pools = {
        "pool_id": [(RAW_POOLS, "pool"), (RAW_POOL_CHARTS, "pool_id")],
        "chain": [(RAW_POOLS, "chain")],
        "project": [(RAW_POOLS, "project")],
        **{column: [(RAW_POOLS, by_column[column])] for column in _POOL_ATTRIBUTE_COLUMNS},
    }
    snapshots: dict[str, list[Dep]] = {"pool_id": [(RAW_POOLS, "pool"), (RAW_POOL_CHARTS, "pool_id")]}
    for column in schema.SNAPSHOT_METRICS:
        snapshots[column] = [(RAW_POOLS, by_column[column])]
        if column in schema.CHART_METRICS:  # days filled from history parse the archived chart body
            snapshots[column].append((RAW_POOL_CHARTS, "body"))
    return {CHAINS: chains, PROJECTS: projects, POOLS: pools, POOL_SNAPSHOTS: snapshots}


def _same(asset: str, *columns: str) -> dict[str, list[Dep]]:
    return {column: [(asset, column)] for column in columns}


_SNAPSHOT_COLUMNS = [*schema.SNAPSHOT_METRICS, "source"]
_STATS = {
    "pool_count": [(POOL_SNAPSHOTS, "pool_id")],
    "total_tvl_usd": [(POOL_SNAPSHOTS, "tvl_usd")],
    "stablecoin_tvl_usd": [(POOL_SNAPSHOTS, "tvl_usd"), (POOLS, "stablecoin")],
    "mean_apy": [(POOL_SNAPSHOTS, "apy")],
    "median_apy": [(POOL_SNAPSHOTS, "apy")],
    "tvl_weighted_apy": [(POOL_SNAPSHOTS, "apy"), (POOL_SNAPSHOTS, "tvl_usd")],
    "max_apy": [(POOL_SNAPSHOTS, "apy")],
    "outlier_count": [(POOL_SNAPSHOTS, "outlier")],
}
_APY = [(POOL_SNAPSHOTS, "apy")]

ANALYTICS_LINEAGE: dict[str, dict[str, list[Dep]]] = {
    "pool_latest": {
        **_same(POOLS, "pool_id", "chain", "project", *_POOL_ATTRIBUTE_COLUMNS, *_SEEN),
        "project_name": [(PROJECTS, "name")],
        "project_category": [(PROJECTS, "category")],
        "snapshot_date": [(POOL_SNAPSHOTS, "snapshot_date")],
        "is_current": [(POOL_SNAPSHOTS, "snapshot_date")],
        **_same(POOL_SNAPSHOTS, *_SNAPSHOT_COLUMNS),
    },
    "pool_apy_rolling": {
        **_same(POOL_SNAPSHOTS, "pool_id", "snapshot_date", "tvl_usd", "apy"),
        **{f"apy_{stat}_{window}": _APY for stat in ("avg", "stddev", "days") for window in ("7d", "30d")},
    },
    "chain_daily_stats": {
        "snapshot_date": [(POOL_SNAPSHOTS, "snapshot_date")],
        "chain": [(POOLS, "chain")],
        **_STATS,
    },
    "project_daily_stats": {
        "snapshot_date": [(POOL_SNAPSHOTS, "snapshot_date")],
        "project": [(POOLS, "project"), (PROJECTS, "slug")],
        "project_name": [(PROJECTS, "name")],
        "project_category": [(PROJECTS, "category")],
        "chain_count": [(POOLS, "chain")],
        **_STATS,
    },
    "pool_apy_stats": {
        "pool_id": [(POOL_SNAPSHOTS, "pool_id")],
        **_same(POOLS, "chain", "project", "symbol", "pool_meta", "stablecoin"),
        "as_of_date": [(POOL_SNAPSHOTS, "snapshot_date")],
        "apy": _APY,
        "tvl_usd": [(POOL_SNAPSHOTS, "tvl_usd")],
        **{name: _APY for name in ("apy_avg_7d", "apy_stddev_7d", "apy_days_7d", "apy_avg_30d", "apy_stddev_30d",
                                   "apy_min_30d", "apy_max_30d", "apy_days_30d")},
        "tvl_avg_30d": [(POOL_SNAPSHOTS, "tvl_usd")],
    },
}



def _datasets_lineage() -> dict[str, dict[str, list[Dep]]]:
    """The datasets beside the yields (issue 15). A history asset's values come from responses it fetches
    itself (archived in raw_series, no asset of their own): only its keys lead to upstream assets."""
    lend_borrow = {
        "pool_id": [(RAW_LEND_BORROW, "pool"), (POOLS, "pool_id")],
        **{column: [(RAW_LEND_BORROW, field)] for field, (column, _) in lend_borrow_transform.FIELDS.items()},
        # kept only where they differ from the pool's tokens (as the pools table has them)
        **{column: [(RAW_LEND_BORROW, field), (POOLS, column)]
           for field, column in lend_borrow_transform.TOKEN_FIELDS.items()},
    }
    chain_metadata = {
        "name": [(RAW_CHAIN_LIST, "name"), (CHAINS, "name")],
        "aliases": [(RAW_CHAIN_LIST, "name"), (CHAINS, "aliases")],
        **{column: [(RAW_CHAIN_LIST, field)] for field, (column, _) in chain_tvl_transform._IDS.items()},
    }
    return {
        "lend_borrow_snapshots": lend_borrow,
        "lend_borrow_history": {"pool_id": [("lend_borrow_snapshots", "pool_id")]},
        "chain_metadata": chain_metadata,
        "chain_tvl_daily": {"chain": [("chain_metadata", "name")]},
        "protocol_tvl_daily": {"slug": [(PROJECTS, "slug")]},
        "project_renames": {"old_slug": [(PROJECTS, "slug"), (RAW_POOLS, "project")],
                            "new_slug": [(RAW_POOLS, "project")],
                            "pools_moved": [(RAW_POOLS, "pool")]},
    }


LINEAGE: dict[str, dict[str, list[Dep]]] = {**_warehouse_lineage(), **ANALYTICS_LINEAGE, **_datasets_lineage()}


def column_lineage(asset: str) -> dg.TableColumnLineage:
    """The asset's ``dagster/column_lineage``."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=dg.AssetKey(upstream), column_name=name) for upstream, name in deps]
            for column, deps in LINEAGE[asset].items()
        }
    )


def metadata_for(asset: str) -> dict:
    """Definition metadata an asset adds for lineage: its column lineage, or for a raw asset the column
    schema of the API record it carries (the table storing it is described under ``archive_schema``)."""
    if asset in _RAW_SCHEMAS:
        from llama_pipeline.write.table_write import column_schema

        return {"dagster/column_schema": _RAW_SCHEMAS[asset], "archive_schema": column_schema(schema.raw_payloads)}
    return {"dagster/column_lineage": column_lineage(asset)}
