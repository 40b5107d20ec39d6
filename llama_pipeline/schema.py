"""The warehouse's tables, as SQLAlchemy Core metadata.

This is the single description of the data contract that code reads: the IO manager takes column
names and types from here, asset metadata builds its column schema from here, and a test compares it
with what the Alembic migrations create, so the two can never drift apart silently. The migrations
themselves are written out by hand (``migrations/versions``) because a schema history must not change
when this module does.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()

TEXT_ARRAY = pg.ARRAY(sa.Text)

# Dimensions carry the first and last day a row was seen; the IO manager merges them on upsert so that
# an older day backfilled after a newer one widens the range but never overwrites newer attributes.
FIRST_SEEN = "first_seen_date"
LAST_SEEN = "last_seen_date"


# A day whose record names no readable chain or project files the pool under "(unknown)"; that says nothing
# about the pool, so the upsert keeps a value already known instead of overwriting it with the placeholder.
UNKNOWN = "(unknown)"
KEEP_KNOWN = {"merge": "keep_known", "placeholder": UNKNOWN}


def _seen_columns() -> list[sa.Column]:
    return [
        sa.Column(FIRST_SEEN, sa.Date, nullable=False, comment="First snapshot day this row was seen."),
        sa.Column(LAST_SEEN, sa.Date, nullable=False, comment="Last snapshot day this row was seen."),
    ]


def _response_columns() -> list[sa.Column]:
    """What is kept of an HTTP response, in the archive and in the quarantine alike."""
    return [
        sa.Column("url", sa.Text, nullable=False, comment="URL fetched (credentials removed)."),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, comment="When the response arrived."),
        sa.Column("http_status", sa.Integer, nullable=False, comment="HTTP status of the response."),
        sa.Column("content_type", sa.Text, comment="Content-Type header of the response."),
        sa.Column("compression", sa.Text, nullable=False, comment="How body is compressed: 'zstd' (or 'gzip')."),
        sa.Column("body", sa.LargeBinary, nullable=False, comment="The response body, byte for byte, compressed."),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, comment="Uncompressed body size in bytes."),
        sa.Column("sha256", sa.Text, nullable=False, comment="SHA-256 of the uncompressed body."),
    ]


raw_payloads = sa.Table(
    "raw_payloads",
    metadata,
    sa.Column("endpoint", sa.Text, primary_key=True, comment="Which payload: 'pools', 'protocols', 'lend_borrow' or 'chain_list'."),
    sa.Column("partition_date", sa.Date, primary_key=True, comment="UTC day the payload describes."),
    *_response_columns(),
    sa.Column("record_count", sa.Integer, nullable=False, comment="Records in the payload's list."),
    comment="Every HTTP payload the pipeline fetched, one per endpoint per day, kept losslessly.",
)

raw_payload_quarantine = sa.Table(
    "raw_payload_quarantine",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True, comment="Row id."),
    sa.Column("endpoint", sa.Text, nullable=False,
              comment="Which payload: 'pools', 'protocols', 'lend_borrow' or 'chain_list'."),
    sa.Column("partition_date", sa.Date, nullable=False, comment="UTC day the capture was fetched for."),
    *_response_columns(),
    sa.Column("status", sa.Text, nullable=False,
              comment="'pending' while it is validated, 'refused' when it could not be used."),
    sa.Column("reason", sa.Text, comment="Why it was refused; NULL while pending."),
    sa.Column("run_id", sa.Text, comment="Dagster run that fetched it."),
    sa.Index("ix_raw_payload_quarantine_endpoint_day", "endpoint", "partition_date"),
    comment="Captures that arrived whole but could not be used (or are being validated), with the reason.",
)

chains = sa.Table(
    "chains",
    metadata,
    sa.Column("name", sa.Text, primary_key=True, comment="Canonical chain name (as /pools spells it)."),
    sa.Column(
        "aliases", TEXT_ARRAY, nullable=False, comment="Every spelling seen for this chain.", info={"merge": "union"}
    ),
    # From /v2/chains (the chain_metadata asset). "keep": a row written without them (from /pools and
    # /protocols, which do not carry them) leaves the known values in place.
    sa.Column("gecko_id", sa.Text, comment="CoinGecko id of the chain's token (gecko_id, /v2/chains).",
              info={"merge": "keep"}),
    sa.Column("token_symbol", sa.Text, comment="Symbol of the chain's token (tokenSymbol, /v2/chains).",
              info={"merge": "keep"}),
    sa.Column("cmc_id", sa.Text, comment="CoinMarketCap id (cmcId, /v2/chains).", info={"merge": "keep"}),
    sa.Column("chain_id", sa.BigInteger, comment="EVM chain id (chainId, /v2/chains); NULL for other chains.",
              info={"merge": "keep"}),
    *_seen_columns(),
    comment="One row per network, with the spellings of both endpoints folded together.",
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("slug", sa.Text, primary_key=True, comment="DeFiLlama protocol slug; pools.project joins here."),
    sa.Column("name", sa.Text, comment="Display name."),
    sa.Column("defillama_id", sa.Text, comment="DeFiLlama's protocol id."),
    sa.Column("symbol", sa.Text, comment="Governance token symbol (NULL when DeFiLlama says '-')."),
    sa.Column("category", sa.Text, comment="Protocol category (Dexs, Lending, ...)."),
    sa.Column("chain", sa.Text, comment="Main chain label ('Multi-Chain' when several), canonical name."),
    sa.Column("chains", TEXT_ARRAY, comment="Canonical names of the chains it is deployed on."),
    sa.Column("audits", sa.Integer, comment="Number of audits."),
    sa.Column("audit_note", sa.Text, comment="Note on the audits (audit_note)."),
    sa.Column("audit_links", TEXT_ARRAY, comment="Links to audit reports (audit_links)."),
    sa.Column("parent_protocol", sa.Text, comment="Slug of the parent protocol ('parent#' removed)."),
    sa.Column("forked_from", TEXT_ARRAY, comment="Protocols it was forked from (forkedFrom)."),
    sa.Column("oracles", TEXT_ARRAY, comment="Oracles it uses (oracles)."),
    sa.Column("url", sa.Text, comment="Website (url)."),
    sa.Column("description", sa.Text, comment="Description (description)."),
    sa.Column("logo", sa.Text, comment="Logo URL (logo)."),
    sa.Column("twitter", sa.Text, comment="Twitter/X handle (twitter)."),
    sa.Column("github", TEXT_ARRAY, comment="GitHub organisations (github)."),
    sa.Column("gecko_id", sa.Text, comment="CoinGecko id (gecko_id)."),
    sa.Column("cmc_id", sa.Text, comment="CoinMarketCap id (cmcId)."),
    sa.Column("address", sa.Text, comment="Token address as sent (may carry a 'chain:' prefix)."),
    sa.Column("module", sa.Text, comment="DeFiLlama adapter module."),
    sa.Column("methodology", sa.Text, comment="How DeFiLlama computes its TVL (methodology)."),
    sa.Column("listed_at", sa.DateTime(timezone=True), comment="When DeFiLlama listed it."),
    sa.Column("dead_from", sa.Date, comment="Day the protocol was marked dead."),
    sa.Column("tvl", sa.Float, comment="TVL in USD."),
    sa.Column("change_1h", sa.Float, comment="TVL change over 1 hour, percent."),
    sa.Column("change_1d", sa.Float, comment="TVL change over 1 day, percent."),
    sa.Column("change_7d", sa.Float, comment="TVL change over 7 days, percent."),
    sa.Column("mcap", sa.Float, comment="Market cap in USD."),
    sa.Column("staking", sa.Float, comment="Staking TVL in USD."),
    sa.Column("pool2", sa.Float, comment="Pool2 TVL in USD."),
    sa.Column("chain_tvls", pg.JSONB, comment="TVL per chain, keys as sent (with -staking, -pool2 ... suffixes)."),
    sa.Column("listed_in_protocols", sa.Boolean, nullable=False, comment="False for a slug only pools name."),
    sa.Column("extra", pg.JSONB, comment="Every other field of the protocol record, as sent."),
    *_seen_columns(),
    comment="Every DeFiLlama protocol keyed by slug, plus every project a pool names.",
)

pools = sa.Table(
    "pools",
    metadata,
    sa.Column("pool_id", pg.UUID(as_uuid=False), primary_key=True, comment="DeFiLlama pool id (stable UUID)."),
    sa.Column("chain", sa.Text, sa.ForeignKey("chains.name"), nullable=False, comment="Canonical chain name.",
              info=KEEP_KNOWN),
    sa.Column("project", sa.Text, sa.ForeignKey("projects.slug"), nullable=False, comment="Project slug.",
              info=KEEP_KNOWN),
    sa.Column("symbol", sa.Text, comment="Pool symbol, e.g. 'USDC-WETH'."),
    sa.Column("pool_meta", sa.Text, comment="Free-text qualifier that tells apart pools sharing a symbol."),
    sa.Column("exposure", sa.Text, comment="'single' or 'multi'."),
    sa.Column("il_risk", sa.Text, comment="Impermanent-loss risk: 'yes' or 'no'."),
    sa.Column("stablecoin", sa.Boolean, comment="Whether the pool is a stablecoin pool (stablecoin)."),
    sa.Column("underlying_tokens", TEXT_ARRAY, comment="Token addresses deposited (underlyingTokens)."),
    sa.Column("reward_tokens", TEXT_ARRAY, comment="Token addresses paid as rewards (rewardTokens)."),
    *_seen_columns(),
    sa.Index("ix_pools_chain", "chain"),
    sa.Index("ix_pools_project", "project"),
    comment="One row per yield pool, attributes as of the newest day seen.",
)

# Every daily metric of a /pools record: column -> (type, meaning, with the API's field name).
SNAPSHOT_METRICS: dict[str, tuple[sa.types.TypeEngine, str]] = {
    "tvl_usd": (sa.Float(), "Total value locked, USD (tvlUsd)."),
    "apy": (sa.Float(), "Total APY, percent: base + reward (apy)."),
    "apy_base": (sa.Float(), "APY from fees/interest, percent (apyBase)."),
    "apy_reward": (sa.Float(), "APY from reward tokens, percent (apyReward)."),
    "apy_pct_1d": (sa.Float(), "APY change over 1 day, points (apyPct1D)."),
    "apy_pct_7d": (sa.Float(), "APY change over 7 days, points (apyPct7D)."),
    "apy_pct_30d": (sa.Float(), "APY change over 30 days, points (apyPct30D)."),
    "apy_base_7d": (sa.Float(), "7-day base APY, percent (apyBase7d)."),
    "apy_mean_30d": (sa.Float(), "30-day mean APY, percent (apyMean30d)."),
    "apy_base_inception": (sa.Float(), "Base APY since inception, percent (apyBaseInception)."),
    "il_7d": (sa.Float(), "7-day impermanent loss (il7d)."),
    "volume_usd_1d": (sa.Float(), "Trading volume over 1 day, USD (volumeUsd1d)."),
    "volume_usd_7d": (sa.Float(), "Trading volume over 7 days, USD (volumeUsd7d)."),
    "mu": (sa.Float(), "Mean of the APY series (mu)."),
    "sigma": (sa.Float(), "Standard deviation of the APY series (sigma)."),
    "count": (sa.Integer(), "Points in the APY series (count)."),
    "outlier": (sa.Boolean(), "DeFiLlama flags the APY as an outlier (outlier)."),
    "predicted_class": (sa.Text(), "DeFiLlama's APY forecast class (predictions.predictedClass)."),
    "predicted_probability": (sa.Float(), "Its probability, percent (predictions.predictedProbability)."),
    "binned_confidence": (sa.Integer(), "Its confidence bin, 1-3 (predictions.binnedConfidence)."),
}


def _metric_columns(names=SNAPSHOT_METRICS) -> list[sa.Column]:
    return [sa.Column(name, SNAPSHOT_METRICS[name][0], comment=SNAPSHOT_METRICS[name][1]) for name in names]


def _like(table: sa.Table, *names: str, comment: str | None = None) -> list[sa.Column]:
    """Columns copied from another table: same type, nullability and meaning (one description)."""
    return [sa.Column(name, table.c[name].type, nullable=table.c[name].nullable,
                      comment=comment or table.c[name].comment) for name in names]


pool_snapshots = sa.Table(
    "pool_snapshots",
    metadata,
    sa.Column("pool_id", pg.UUID(as_uuid=False), sa.ForeignKey("pools.pool_id"), primary_key=True,
              comment="The pool (pools.pool_id)."),
    sa.Column("snapshot_date", sa.Date, primary_key=True, comment="UTC day the snapshot describes."),
    *_metric_columns(),
    sa.Column("source", sa.Text, nullable=False,
              comment="Payload that filled the row: 'pools' (/pools) or 'chart' (/chart history)."),
    sa.Column("extra", pg.JSONB, comment="Fields the API added that have no column yet, as sent."),
    sa.Index("ix_pool_snapshots_snapshot_date", "snapshot_date"),
    comment="One row per pool per day with every daily metric of /pools.",
)

rejects = sa.Table(
    "rejects",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True, comment="Row id."),
    sa.Column("asset", sa.Text, nullable=False, comment="Asset that set the record aside."),
    sa.Column("partition_date", sa.Date, nullable=False, comment="Day of the payload."),
    sa.Column("record_index", sa.Integer, nullable=False, comment="Position of the record in the payload."),
    sa.Column("record_key", sa.Text, comment="The record's id, when it had a usable one."),
    sa.Column("reason", sa.Text, nullable=False, comment="Why it was set aside."),
    sa.Column("record", sa.Text, nullable=False, comment="The record as JSON text (ASCII-escaped)."),
    sa.Index("ix_rejects_asset_partition_date", "asset", "partition_date"),
    # A re-fetched chart or series replaces what its earlier fetch set aside, found by key (0008).
    sa.Index("ix_rejects_asset_record_key", "asset", "record_key"),
    comment="Records that could not be loaded, with the reason, per asset and day.",
)

raw_pool_charts = sa.Table(
    "raw_pool_charts",
    metadata,
    sa.Column("pool_id", pg.UUID(as_uuid=False), primary_key=True, comment="Pool whose history this is."),
    sa.Column("url", sa.Text, nullable=False, comment="URL fetched."),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, comment="When the response arrived."),
    sa.Column("http_status", sa.Integer, comment="HTTP status (NULL when no response came)."),
    sa.Column("error", sa.Text, comment="Why the chart could not be used; NULL when it could."),
    sa.Column("body", sa.LargeBinary, comment="The response body, byte for byte, gzip-compressed."),
    sa.Column("size_bytes", sa.BigInteger, comment="Uncompressed body size in bytes."),
    sa.Column("sha256", sa.Text, comment="SHA-256 of the uncompressed body."),
    sa.Column("point_count", sa.Integer, comment="Daily points in the chart."),
    sa.Column("first_day", sa.Date, comment="First day the chart covers."),
    sa.Column("last_day", sa.Date, comment="Last day the chart covers."),
    comment="The latest /chart/{pool} payload of each pool, kept losslessly, with failures and reasons.",
)

CHART_METRICS = ("tvl_usd", "apy", "apy_base", "apy_reward", "il_7d", "apy_base_7d")

pool_chart_points = sa.Table(
    "pool_chart_points",
    metadata,
    sa.Column("snapshot_date", sa.Date, nullable=False, comment="UTC day of the point (the day's last)."),
    sa.Column("pool_id", pg.UUID(as_uuid=False), nullable=False, comment="Pool the point belongs to."),
    *_metric_columns(CHART_METRICS),
    sa.Column("price_per_share", sa.Float, comment="Price per share of the pool's token (pricePerShare)."),
    # Keyed by the pool first (0008): a chart is written, and replaced on a re-fetch, pool by pool, so its
    # points land in one run of the key; the reads that fill a day use the index on the day.
    sa.PrimaryKeyConstraint("pool_id", "snapshot_date", name="pool_chart_points_pkey"),
    sa.Index("ix_pool_chart_points_snapshot_date", "snapshot_date"),
    comment="Each stored chart's daily points, one row per pool per day, for filling past snapshots.",
)


# -- analytics tables (migration 0004), kept up to date per day by the analytics assets ----------------

def _stats_columns() -> list[sa.Column]:
    return [
        sa.Column("pool_count", sa.BigInteger, nullable=False, comment="Pools with a snapshot that day."),
        sa.Column("total_tvl_usd", sa.Float, comment="Sum of the pools' TVL, USD."),
        sa.Column("stablecoin_tvl_usd", sa.Float, comment="TVL of the stablecoin pools, USD (NULL when none)."),
        sa.Column("mean_apy", sa.Float, comment="Mean APY of the pools, percent (outliers included)."),
        sa.Column("median_apy", sa.Float, comment="Median APY of the pools, percent."),
        sa.Column("tvl_weighted_apy", sa.Float,
                  comment="APY weighted by TVL, percent: what a dollar spread like the TVL earns."),
        sa.Column("max_apy", sa.Float, comment="Highest APY, percent."),
        sa.Column("outlier_count", sa.BigInteger, nullable=False, comment="Pools DeFiLlama flags as outliers."),
    ]


def _day(comment: str = "Day of the snapshots.", **kwargs) -> sa.Column:
    return sa.Column("snapshot_date", sa.Date, comment=comment, **kwargs)


def _window(days: int) -> list[sa.Column]:
    return [
        sa.Column(f"apy_avg_{days}d", sa.Float, comment=f"Mean APY over the {days} days ending on the day, percent."),
        sa.Column(f"apy_stddev_{days}d", sa.Float, comment=f"Sample standard deviation of the daily APY over those "
                  f"{days} days (volatility); NULL with one day."),
    ]


def _window_days(days: int) -> sa.Column:
    return sa.Column(f"apy_days_{days}d", sa.BigInteger, nullable=False, comment=f"Days with an APY among those {days}.")


def _project_columns() -> list[sa.Column]:
    return [sa.Column("project_name", sa.Text, comment="The project's display name (NULL for a project /protocols lacks)."),
            sa.Column("project_category", sa.Text, comment="The project's category.")]


chain_daily_stats = sa.Table(
    "chain_daily_stats",
    metadata,
    sa.Column("chain", sa.Text, primary_key=True, comment="Canonical chain name."),
    _day(primary_key=True),
    *_stats_columns(),
    sa.Index("ix_chain_daily_stats_snapshot_date", "snapshot_date"),
    comment="Per day per chain: pools, TVL, stablecoin TVL, mean, median, TVL-weighted and max APY, "
    "outliers. Each day's rows are replaced when the chain_daily_stats asset runs for it.",
)

project_daily_stats = sa.Table(
    "project_daily_stats",
    metadata,
    sa.Column("project", sa.Text, primary_key=True, comment="Project slug."),
    _day(primary_key=True),
    *_project_columns(),
    sa.Column("chain_count", sa.BigInteger, nullable=False, comment="Chains the project's pools are on that day."),
    *_stats_columns(),
    sa.Index("ix_project_daily_stats_snapshot_date", "snapshot_date"),
    comment="Per day per project: pools, chains, TVL, stablecoin TVL, mean, median, TVL-weighted and max "
    "APY, outliers. Each day's rows are replaced when the project_daily_stats asset runs for it.",
)

pool_latest = sa.Table(
    "pool_latest",
    metadata,
    sa.Column("pool_id", pg.UUID(as_uuid=False), primary_key=True, comment=pools.c.pool_id.comment),
    *_like(pools, "chain", "project"),
    *_project_columns(),
    *_like(pools, "symbol", "pool_meta", "exposure", "il_risk", "stablecoin", "underlying_tokens", "reward_tokens",
           FIRST_SEEN, LAST_SEEN),
    _day("Day of the pool's newest snapshot.", nullable=False),
    sa.Column("is_current", sa.Boolean, nullable=False, comment="True when that day is the newest day in "
              "pool_snapshots."),
    *_metric_columns(),
    *_like(pool_snapshots, "source"),
    # The primary key only (0009): every load rewrites the rows, and no query needs another index.
    comment="Each pool's newest snapshot with its pool and project attributes (is_current: the snapshot "
    "is of the newest day loaded). Kept up to date by the pool_latest asset.",
)

pool_apy_stats = sa.Table(
    "pool_apy_stats",
    metadata,
    sa.Column("pool_id", pg.UUID(as_uuid=False), primary_key=True, comment=pools.c.pool_id.comment),
    *_like(pools, "chain", "project", "symbol", "pool_meta", "stablecoin"),
    sa.Column("as_of_date", sa.Date, nullable=False, comment="The newest snapshot day: the windows end here."),
    sa.Column("apy", sa.Float, comment="APY on as_of_date (NULL when the pool has no snapshot that day)."),
    sa.Column("tvl_usd", sa.Float, comment="TVL on as_of_date, USD."),
    *_window(7),
    _window_days(7),
    *_window(30),
    sa.Column("apy_min_30d", sa.Float, comment="Lowest APY over the 30 days."),
    sa.Column("apy_max_30d", sa.Float, comment="Highest APY over the 30 days."),
    _window_days(30),
    sa.Column("tvl_avg_30d", sa.Float, comment="Mean TVL over the 30 days, USD."),
    # The primary key only, as pool_latest (0009).
    comment="Per pool, as of the newest snapshot day: APY mean, sample standard deviation and days over the "
    "last 7 and 30 days, 30-day APY range and mean TVL. Replaced by the pool_apy_stats asset.",
)

ALEMBIC_VERSION_TABLE = "llama_alembic_version"


# The datasets beside the yields (lending, chain and protocol TVL, renames) add their tables to the same
# metadata; imported last because they reference the tables above.
from llama_pipeline import schema_datasets  # noqa: E402,F401
