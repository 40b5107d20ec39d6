"""``/pools`` records -> rows of ``pools`` (dimension) and ``pool_snapshots`` (daily facts)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from llama_pipeline import coerce
from llama_pipeline.chain_aliases import canonical_chain
from llama_pipeline.transform.batches import Reject

# API field -> (column, coercion). Order follows the table.
_POOL_ATTRIBUTES = {
    "symbol": ("symbol", coerce.text),
    "poolMeta": ("pool_meta", coerce.text),
    "exposure": ("exposure", coerce.text),
    "ilRisk": ("il_risk", coerce.text),
    "stablecoin": ("stablecoin", coerce.boolean),
    "underlyingTokens": ("underlying_tokens", coerce.text_list),
    "rewardTokens": ("reward_tokens", coerce.text_list),
}
_METRICS = {
    "tvlUsd": ("tvl_usd", coerce.number),
    "apy": ("apy", coerce.number),
    "apyBase": ("apy_base", coerce.number),
    "apyReward": ("apy_reward", coerce.number),
    "apyPct1D": ("apy_pct_1d", coerce.number),
    "apyPct7D": ("apy_pct_7d", coerce.number),
    "apyPct30D": ("apy_pct_30d", coerce.number),
    "apyBase7d": ("apy_base_7d", coerce.number),
    "apyMean30d": ("apy_mean_30d", coerce.number),
    "apyBaseInception": ("apy_base_inception", coerce.number),
    "il7d": ("il_7d", coerce.number),
    "volumeUsd1d": ("volume_usd_1d", coerce.number),
    "volumeUsd7d": ("volume_usd_7d", coerce.number),
    "mu": ("mu", coerce.number),
    "sigma": ("sigma", coerce.number),
    "count": ("count", coerce.integer),
    "outlier": ("outlier", coerce.boolean),
}
_PREDICTIONS = {
    "predictedClass": ("predicted_class", coerce.text),
    "predictedProbability": ("predicted_probability", coerce.number),
    "binnedConfidence": ("binned_confidence", coerce.integer),
}
KNOWN_FIELDS = frozenset({"pool", "chain", "project", "predictions", *_POOL_ATTRIBUTES, *_METRICS})

POOL_COLUMNS = ["pool_id", "chain", "project", *(c for c, _ in _POOL_ATTRIBUTES.values()),
                "first_seen_date", "last_seen_date"]
SNAPSHOT_COLUMNS = ["pool_id", "snapshot_date", *(c for c, _ in _METRICS.values()),
                    *(c for c, _ in _PREDICTIONS.values()), "source", "extra"]


@dataclasses.dataclass
class ParsedPools:
    """One day's ``/pools`` records, split into clean rows and rejects."""

    pools: pd.DataFrame
    snapshots: pd.DataFrame
    rejects: list[Reject]


def parse_pools(records: list, day: dt.date) -> ParsedPools:
    pool_rows: list[tuple] = []
    snapshot_rows: list[tuple] = []
    rejects: list[Reject] = []
    first_index: dict[str, int] = {}
    for index, record in enumerate(records):
        key = record.get("pool") if isinstance(record, dict) else None
        try:
            if not isinstance(record, dict):
                raise coerce.BadField(f"record is {type(record).__name__}, not an object")
            pool_id = coerce.pool_id(record.get("pool"))
            if pool_id in first_index:
                raise coerce.BadField(f"pool: duplicate pool id (first seen at record {first_index[pool_id]})")
            chain = canonical_chain(coerce.required_text("chain", record.get("chain")))
            project = coerce.required_text("project", record.get("project")).strip()
            attributes = tuple(convert(field, record.get(field)) for field, (_, convert) in _POOL_ATTRIBUTES.items())
            metrics = tuple(convert(field, record.get(field)) for field, (_, convert) in _METRICS.items())
            predictions = record.get("predictions") or {}
            if not isinstance(predictions, dict):
                raise coerce.BadField(f"predictions: expected an object, got {type(predictions).__name__}")
            predicted = tuple(
                convert(f"predictions.{field}", predictions.get(field)) for field, (_, convert) in _PREDICTIONS.items()
            )
            extra = {k: v for k, v in record.items() if k not in KNOWN_FIELDS} or None
            if extra:
                coerce.json_storable("extra", extra)
        except (coerce.BadField, ValueError) as error:
            rejects.append(Reject.of(index, key if isinstance(key, str) else None, str(error), record))
            continue
        first_index[pool_id] = index
        pool_rows.append((pool_id, chain, project, *attributes, day, day))
        snapshot_rows.append((pool_id, day, *metrics, *predicted, "pools", extra))
    return ParsedPools(
        pools=pd.DataFrame.from_records(pool_rows, columns=POOL_COLUMNS),
        snapshots=pd.DataFrame.from_records(snapshot_rows, columns=SNAPSHOT_COLUMNS),
        rejects=rejects,
    )


def chains_and_projects(records: list) -> tuple[dict[str, set[str]], set[str]]:
    """The chain spellings and project slugs of a day's pools, without parsing every field.

    ``chains`` and ``projects`` need only these; a record without a usable pool id, chain or project is
    skipped here exactly as ``parse_pools`` rejects it, so both see the same pools' names.
    """
    spellings: dict[str, set[str]] = {}
    projects: set[str] = set()
    for record in records:
        if not isinstance(record, dict):
            continue
        try:
            coerce.pool_id(record.get("pool"))
            chain = coerce.required_text("chain", record.get("chain"))
            project = coerce.required_text("project", record.get("project"))
            name = canonical_chain(chain)
        except ValueError:  # BadField included: parse_pools rejects the same records
            continue
        spellings.setdefault(name, set()).add(chain)
        projects.add(project.strip())
    return spellings, projects


def snapshot_summary(snapshots: pd.DataFrame) -> dict[str, float | int]:
    """Figures per day that the Dagster UI plots across partitions."""
    return {
        "pool_count": len(snapshots),
        "total_tvl_usd": float(snapshots["tvl_usd"].sum()) if len(snapshots) else 0.0,
        "median_apy": float(snapshots["apy"].median()) if snapshots["apy"].notna().any() else 0.0,
    }
