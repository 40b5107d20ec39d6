"""Lending and borrowing: /lendBorrow archived per day like /pools, and its daily rows."""

import uuid

import dagster as dg

from llama_pipeline import lineage, schema
from llama_pipeline.dataset_assets import common, stored_records
from llama_pipeline.decode.lend_borrow_rows import lend_borrow_summary, parse_lend_borrow
from llama_pipeline.defs.ingestion.assets import FETCH_RETRY_POLICY, collect_payloads
from llama_pipeline.fetch.http_client import DefiLlamaClient
from llama_pipeline.fetch.raw_archive import RawArchive
from llama_pipeline.partitions import days_of
from llama_pipeline.schema_datasets import lend_borrow_snapshots as snapshots_table
from llama_pipeline.write import lend_borrow_store
from llama_pipeline.write.table_write import ARCHIVE, column_schema, table_metadata
from llama_pipeline.write.warehouse import Warehouse


@dg.asset(metadata={**table_metadata(schema.raw_payloads, ARCHIVE), "endpoint": "lend_borrow",
                    **lineage.metadata_for("raw_lend_borrow")},
          io_manager_key="warehouse_io_manager", retry_policy=FETCH_RETRY_POLICY,
          **common("lend_borrow", {"python", "postgres"}))
def raw_lend_borrow(
    context: dg.AssetExecutionContext, defillama: DefiLlamaClient, warehouse: Warehouse
) -> dg.MaterializeResult:
    """The /lendBorrow payload (every lending pool's borrow side, present state only) for the day,
    stored byte for byte under the same capture rules as /pools: today's partition fetches
    LEND_BORROW_URL; a past day keeps its stored payload and is never fetched."""
    return collect_payloads(context, "lend_borrow", defillama.lend_borrow_url, defillama, warehouse)


def _pool_tokens(warehouse: Warehouse, pool_ids: list[str]) -> dict:
    """The lending pools' tokens as the pools table holds them (written before this asset runs: a
    dependency), so /pools is not decoded a second time."""
    with warehouse.connection() as conn:
        return lend_borrow_store.stored_tokens(conn, warehouse.schema_name, [p for p in pool_ids if _is_uuid(p)])


def _is_uuid(text: str) -> bool:
    """A pool id pools can hold (a malformed one is rejected by the parser with its reason)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@dg.asset(
    metadata={"table": snapshots_table.name, "dagster/column_schema": column_schema(snapshots_table),
              **lineage.metadata_for("lend_borrow_snapshots")},
    deps=[dg.AssetKey("pools")],
    **common("lend_borrow", {"postgres", "pandas"}),
)
def lend_borrow_snapshots(
    context: dg.AssetExecutionContext, raw_lend_borrow: RawArchive, warehouse: Warehouse
) -> dg.MaterializeResult:
    """One row per lending pool per day: borrow APY (base, reward), total supplied and borrowed, debt
    ceiling, LTV, borrowable, minted coin, borrow factor, and the pool's tokens where /lendBorrow's
    differ from /pools'. A lending pool that /pools did not list gets a pools row (chain and project
    '(unknown)'), so every row joins pools. The run's days are replaced in one transaction with their
    rejects; a past day without a stored /lendBorrow payload is left as it is and said so."""
    days = days_of(context.partition_time_window)
    written = []
    without = []
    for day in days:
        records = stored_records(raw_lend_borrow, day)
        if records is None:
            without.append(day)
            continue
        pool_ids = [r.get("pool") for r in records if isinstance(r, dict) and isinstance(r.get("pool"), str)]
        parsed = parse_lend_borrow(records, day, _pool_tokens(warehouse, pool_ids))
        written.append((day, parsed))
    if without:
        context.log.warning(f"no /lendBorrow payload is stored for {len(without)} day(s) "
                            f"({', '.join(d.isoformat() for d in without[:5])}): left as they are")
    with warehouse.connection() as conn:
        stats = lend_borrow_store.replace_days(conn, warehouse.schema_name, written)
    metadata: dict = {**stats, "days": len(days), "days_without_payload": len(without),
                      "dagster/table_name": f"{warehouse.schema_name}.{snapshots_table.name}"}
    if written:
        day, parsed = written[-1]
        metadata.update(lend_borrow_summary(parsed.rows))
        metadata["invalid_values"] = sum(p.invalid_values for _, p in written)
    return dg.MaterializeResult(metadata=metadata)
