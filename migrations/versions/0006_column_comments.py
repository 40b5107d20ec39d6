"""Every column has a comment: the descriptions the UI and the README show, written into the database.

The column comments in ``llama_pipeline/schema.py`` are the one description of each column (the Dagster
UI's column schema and the README's tables are built from them); this revision gives the columns that
had none their comment, as of this revision. Comments only: no data moves.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The daily metrics' comments, shared by pool_snapshots, pool_latest and pool_chart_points.
_METRICS = {
    "tvl_usd": "Total value locked, USD (tvlUsd).",
    "apy": "Total APY, percent: base + reward (apy).",
    "apy_base": "APY from fees/interest, percent (apyBase).",
    "apy_reward": "APY from reward tokens, percent (apyReward).",
    "apy_pct_1d": "APY change over 1 day, points (apyPct1D).",
    "apy_pct_7d": "APY change over 7 days, points (apyPct7D).",
    "apy_pct_30d": "APY change over 30 days, points (apyPct30D).",
    "apy_base_7d": "7-day base APY, percent (apyBase7d).",
    "apy_mean_30d": "30-day mean APY, percent (apyMean30d).",
    "apy_base_inception": "Base APY since inception, percent (apyBaseInception).",
    "il_7d": "7-day impermanent loss (il7d).",
    "volume_usd_1d": "Trading volume over 1 day, USD (volumeUsd1d).",
    "volume_usd_7d": "Trading volume over 7 days, USD (volumeUsd7d).",
    "mu": "Mean of the APY series (mu).",
    "sigma": "Standard deviation of the APY series (sigma).",
    "count": "Points in the APY series (count).",
    "outlier": "DeFiLlama flags the APY as an outlier (outlier).",
    "predicted_class": "DeFiLlama's APY forecast class (predictions.predictedClass).",
    "predicted_probability": "Its probability, percent (predictions.predictedProbability).",
    "binned_confidence": "Its confidence bin, 1-3 (predictions.binnedConfidence).",
}

# The daily statistics' comments, shared by chain_daily_stats and project_daily_stats.
_DAILY_STATS = {
    "pool_count": "Pools with a snapshot that day.",
    "total_tvl_usd": "Sum of the pools' TVL, USD.",
    "stablecoin_tvl_usd": "TVL of the stablecoin pools, USD (NULL when none).",
    "mean_apy": "Mean APY of the pools, percent (outliers included).",
    "median_apy": "Median APY of the pools, percent.",
    "tvl_weighted_apy": "APY weighted by TVL, percent: what a dollar spread like the TVL earns.",
    "max_apy": "Highest APY, percent.",
    "outlier_count": "Pools DeFiLlama flags as outliers.",
}

# table -> column -> comment (the columns that had none before this revision)
COMMENTS: dict[str, dict[str, str]] = {
    "chain_daily_stats": {
        "chain": "Canonical chain name.",
        "snapshot_date": "Day of the snapshots.",
        **_DAILY_STATS,
    },
    "pool_apy_stats": {
        "pool_id": "DeFiLlama pool id (stable UUID).",
        "chain": "Canonical chain name.",
        "project": "Project slug.",
        "symbol": "Pool symbol, e.g. 'USDC-WETH'.",
        "pool_meta": "Free-text qualifier that tells apart pools sharing a symbol.",
        "stablecoin": "Whether the pool is a stablecoin pool (stablecoin).",
        "as_of_date": "The newest snapshot day: the windows end here.",
        "apy": "APY on as_of_date (NULL when the pool has no snapshot that day).",
        "tvl_usd": "TVL on as_of_date, USD.",
        "apy_avg_7d": "Mean APY over the 7 days ending on the day, percent.",
        "apy_stddev_7d": "Sample standard deviation of the daily APY over those 7 days (volatility); NULL with one day.",
        "apy_days_7d": "Days with an APY among those 7.",
        "apy_avg_30d": "Mean APY over the 30 days ending on the day, percent.",
        "apy_stddev_30d": "Sample standard deviation of the daily APY over those 30 days (volatility); NULL with one day.",
        "apy_min_30d": "Lowest APY over the 30 days.",
        "apy_max_30d": "Highest APY over the 30 days.",
        "apy_days_30d": "Days with an APY among those 30.",
        "tvl_avg_30d": "Mean TVL over the 30 days, USD.",
    },
    "pool_chart_points": {
        **{name: _METRICS[name] for name in ('tvl_usd', 'apy', 'apy_base', 'apy_reward', 'il_7d', 'apy_base_7d')},
        "price_per_share": "Price per share of the pool's token (pricePerShare).",
    },
    "pool_latest": {
        "pool_id": "DeFiLlama pool id (stable UUID).",
        "chain": "Canonical chain name.",
        "project": "Project slug.",
        "project_name": "The project's display name (NULL for a project /protocols lacks).",
        "project_category": "The project's category.",
        "symbol": "Pool symbol, e.g. 'USDC-WETH'.",
        "pool_meta": "Free-text qualifier that tells apart pools sharing a symbol.",
        "exposure": "'single' or 'multi'.",
        "il_risk": "Impermanent-loss risk: 'yes' or 'no'.",
        "stablecoin": "Whether the pool is a stablecoin pool (stablecoin).",
        "underlying_tokens": "Token addresses deposited (underlyingTokens).",
        "reward_tokens": "Token addresses paid as rewards (rewardTokens).",
        "first_seen_date": "First snapshot day this row was seen.",
        "last_seen_date": "Last snapshot day this row was seen.",
        "snapshot_date": "Day of the pool's newest snapshot.",
        "is_current": "True when that day is the newest day in pool_snapshots.",
        **_METRICS,
        "source": "Payload that filled the row: 'pools' (/pools) or 'chart' (/chart history).",
    },
    "pool_snapshots": {
        "pool_id": "The pool (pools.pool_id).",
        **_METRICS,
    },
    "raw_payload_quarantine": {
        "id": "Row id.",
    },
    "pools": {
        "stablecoin": "Whether the pool is a stablecoin pool (stablecoin).",
        "underlying_tokens": "Token addresses deposited (underlyingTokens).",
        "reward_tokens": "Token addresses paid as rewards (rewardTokens).",
    },
    "project_daily_stats": {
        "project": "Project slug.",
        "snapshot_date": "Day of the snapshots.",
        "project_name": "The project's display name (NULL for a project /protocols lacks).",
        "project_category": "The project's category.",
        "chain_count": "Chains the project's pools are on that day.",
        **_DAILY_STATS,
    },
    "projects": {
        "audit_note": "Note on the audits (audit_note).",
        "audit_links": "Links to audit reports (audit_links).",
        "forked_from": "Protocols it was forked from (forkedFrom).",
        "oracles": "Oracles it uses (oracles).",
        "url": "Website (url).",
        "description": "Description (description).",
        "logo": "Logo URL (logo).",
        "twitter": "Twitter/X handle (twitter).",
        "github": "GitHub organisations (github).",
        "gecko_id": "CoinGecko id (gecko_id).",
        "cmc_id": "CoinMarketCap id (cmcId).",
        "methodology": "How DeFiLlama computes its TVL (methodology).",
    },
    "rejects": {
        "id": "Row id.",
    },
}


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _set(comment_of) -> None:
    for table, columns in COMMENTS.items():
        for column, comment in columns.items():
            value = comment_of(comment)
            literal = "NULL" if value is None else "'" + value.replace("'", "''") + "'"
            op.execute(f"COMMENT ON COLUMN {_quote(table)}.{_quote(column)} IS {literal}")


def upgrade() -> None:
    _set(lambda comment: comment)


def downgrade() -> None:
    _set(lambda comment: None)
