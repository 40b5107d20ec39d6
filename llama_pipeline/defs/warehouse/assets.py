"""Dimensions (chains, projects, pools, upserted) and daily facts (pool_snapshots), built from the
archived payloads one day at a time."""

import datetime as dt

import dagster as dg

from llama_pipeline import schema
from llama_pipeline.io_manager import REPLACE_PARTITION, UPSERT, table_metadata
from llama_pipeline.partitions import DAILY
from llama_pipeline.raw_archive import RawArchive
from llama_pipeline.transform.batches import DailyBatch, DailyBatches
from llama_pipeline.transform.pools import parse_pools, snapshot_summary
from llama_pipeline.transform.protocols import chain_rows, parse_protocols

_COMMON = dict(
    partitions_def=DAILY,
    group_name="warehouse",
    kinds={"postgres", "pandas"},
    io_manager_key="warehouse_io_manager",
    backfill_policy=dg.BackfillPolicy.single_run(),
    owners=["team:data-engineering"],
)


@dg.asset(metadata=table_metadata(schema.chains, UPSERT), **_COMMON)
def chains(raw_pools: RawArchive, raw_protocols: RawArchive) -> dg.MaterializeResult:
    """One row per blockchain network under its canonical name, with every spelling that /pools and
    /protocols used for it (``BSC``/``Binance``, ``Gnosis``/``xDai`` ...) folded together by the alias
    map."""

    def build(day: dt.date) -> DailyBatch:
        pools = parse_pools(raw_pools.load(day).records(), day)
        protocols = parse_protocols(raw_protocols.load(day).records(), day)
        return DailyBatch(day, chain_rows(day, pools.chain_spellings, protocols.chain_spellings))

    return dg.MaterializeResult(value=DailyBatches(raw_pools.days, build))


@dg.asset(metadata=table_metadata(schema.projects, UPSERT), **_COMMON)
def projects(raw_protocols: RawArchive, raw_pools: RawArchive) -> dg.MaterializeResult:
    """Every DeFiLlama protocol keyed by slug: identifiers, category, chains, audits, parent, descriptive
    metadata and TVL/market figures, plus a placeholder row for each project a pool names that
    /protocols lacks, so that every pool joins a project."""

    def build(day: dt.date) -> DailyBatch:
        pool_projects = parse_pools(raw_pools.load(day).records(), day).projects
        parsed = parse_protocols(raw_protocols.load(day).records(), day, pool_projects)
        return DailyBatch(day, parsed.projects, parsed.rejects)

    return dg.MaterializeResult(value=DailyBatches(raw_protocols.days, build))


@dg.asset(metadata=table_metadata(schema.pools, UPSERT), deps=[chains, projects], **_COMMON)
def pools(raw_pools: RawArchive) -> dg.MaterializeResult:
    """One row per yield pool (by DeFiLlama's stable pool id): chain, project, symbol, pool_meta,
    exposure, IL risk, stablecoin flag, underlying and reward tokens, and the first and last day seen.
    Attributes are those of the newest day loaded."""

    def build(day: dt.date) -> DailyBatch:
        parsed = parse_pools(raw_pools.load(day).records(), day)
        return DailyBatch(day, parsed.pools, parsed.rejects)

    return dg.MaterializeResult(value=DailyBatches(raw_pools.days, build))


@dg.asset(
    metadata=table_metadata(schema.pool_snapshots, REPLACE_PARTITION, partition_expr="snapshot_date"),
    deps=[pools],
    **_COMMON,
)
def pool_snapshots(raw_pools: RawArchive) -> dg.MaterializeResult:
    """One row per pool per day with every daily metric of /pools: TVL, APY and its parts, APY changes,
    7- and 30-day figures, volumes, mu/sigma/count, outlier flag and DeFiLlama's prediction. A day is
    replaced as a whole when re-materialized."""

    def build(day: dt.date) -> DailyBatch:
        parsed = parse_pools(raw_pools.load(day).records(), day)
        return DailyBatch(day, parsed.snapshots, parsed.rejects, snapshot_summary(parsed.snapshots))

    return dg.MaterializeResult(value=DailyBatches(raw_pools.days, build))
