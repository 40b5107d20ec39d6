"""Quality rules of the datasets beside the yields (lending, chain ids, chain and protocol TVL); the
yields' own rules and the shared plumbing are in ``quality``."""

from __future__ import annotations

import datetime as dt

from llama_pipeline.decode.chain_tvl_rows import parse_chain_list
from llama_pipeline.quality.rules import SAMPLE, Verdict, Warehouse
from llama_pipeline.schema import UNKNOWN
from llama_pipeline.schema_datasets import TOTAL_CHAIN

# A total may differ from its chains' sum by rounding and by series that start late: 1% is a real gap.
TOTAL_TOLERANCE = 0.01


def lend_borrow_in_range(db: Warehouse, day: dt.date) -> Verdict:
    """LTV within 0..1, amounts not negative, borrow APY within 0..1e6 %, borrowed at most supplied."""
    bad = db.rows(
        f"SELECT pool_id::text, ltv, total_supply_usd, total_borrow_usd, apy_base_borrow "
        f"FROM {db.t('lend_borrow_snapshots')} WHERE snapshot_date = %s AND (ltv < 0 OR ltv > 1 "
        "OR total_supply_usd < 0 OR total_borrow_usd < 0 OR apy_base_borrow < 0 OR apy_base_borrow > 1e6 "
        "OR total_borrow_usd > total_supply_usd * 1.01) ORDER BY 1", (day,))
    metadata = {"out_of_range": len(bad),
                "sample": [f"{r[0]} ltv={r[1]} supply={r[2]} borrow={r[3]} apy_base_borrow={r[4]}" for r in bad[:SAMPLE]]}
    if bad:
        return Verdict(False, f"{len(bad):,} lending rows of {day} out of range", metadata)
    return Verdict(True, f"lending rows of {day} within range", metadata)


def lend_borrow_pools_known(db: Warehouse, day: dt.date) -> Verdict:
    """Lending pools that /pools never listed (their pools row has the '(unknown)' chain and project)."""
    rows = db.rows(f"SELECT l.pool_id::text FROM {db.t('lend_borrow_snapshots')} l JOIN {db.t('pools')} p "
                   "USING (pool_id) WHERE l.snapshot_date = %s AND p.project = %s ORDER BY 1", (day, UNKNOWN))
    metadata = {"pools_unknown_to_pools": len(rows), "sample": [r[0] for r in rows[:SAMPLE]]}
    if rows:
        return Verdict(False, f"{len(rows):,} lending pools of {day} are not in /pools (chain, project unknown)",
                       metadata)
    return Verdict(True, f"every lending pool of {day} is a /pools pool", metadata)


def chain_list_loaded(db: Warehouse, day: dt.date) -> Verdict:
    """Every /v2/chains record of the day is a chains row (seen that day, with its ids) or a reject."""
    records = db.records("chain_list", day)
    if records is None:
        return Verdict(True, f"no /v2/chains payload stored for {day}", skipped=True)
    parsed = parse_chain_list(records, day)
    names = parsed.rows["name"].tolist()
    loaded = db.one(f"SELECT count(*) FROM {db.t('chains')} WHERE name = ANY(%s) AND first_seen_date <= %s "
                    "AND last_seen_date >= %s", (names, day, day))
    rejected = db.one(f"SELECT count(*) FROM {db.t('rejects')} WHERE asset = 'chain_metadata' AND partition_date = %s",
                      (day,))
    metadata = {"payload_records": len(records), "chains": len(names), "chains_loaded": loaded, "rejected": rejected}
    if loaded == len(names) and rejected == len(parsed.rejects):
        return Verdict(True, f"{len(records):,} /v2/chains records: {loaded:,} chains + {rejected} rejects", metadata)
    return Verdict(False, f"{len(names):,} chains in the /v2/chains payload of {day} but {loaded:,} loaded and "
                   f"{rejected} rejects ({len(parsed.rejects)} expected)", metadata)


def series_healthy(db: Warehouse, endpoint: str, table: str) -> Verdict:
    """No archived history response is unusable, and no stored TVL is negative."""
    failed = db.rows(f"SELECT series_key, left(error, 200) FROM {db.t('raw_series')} WHERE endpoint = %s "
                     "AND error IS NOT NULL ORDER BY 1", (endpoint,))
    negative = db.one(f"SELECT count(*) FROM {db.t(table)} WHERE tvl_usd < 0")
    metadata = {"series_failed": len(failed), "negative_tvl": negative,
                "sample": [f"{k}: {e}" for k, e in failed[:SAMPLE]]}
    if failed or negative:
        return Verdict(False, f"{len(failed)} {endpoint} series failed, {negative} negative TVL points", metadata)
    return Verdict(True, f"every {endpoint} series usable, no negative TVL", metadata)


def protocol_totals_add_up(db: Warehouse) -> Verdict:
    """On each protocol's newest day, its '(total)' TVL equals the sum of its plain chain series (within
    1%): a chain series lost in parsing would show here."""
    rows = db.rows(
        f"""
        WITH newest AS (SELECT slug, max(day) AS day FROM {db.t('protocol_tvl_daily')} WHERE chain = %s GROUP BY slug)
        SELECT n.slug, n.day, t.tvl_usd, sum(c.tvl_usd) FILTER (WHERE c.tvl_kind = 'tvl' AND c.base_chain IS NOT NULL)
        FROM newest n JOIN {db.t('protocol_tvl_daily')} t ON t.slug = n.slug AND t.day = n.day AND t.chain = %s
        LEFT JOIN {db.t('protocol_tvl_daily')} c ON c.slug = n.slug AND c.day = n.day
        GROUP BY n.slug, n.day, t.tvl_usd
        """, (TOTAL_CHAIN, TOTAL_CHAIN))
    off = [r for r in rows if r[2] and r[3] is not None and abs(r[3] - r[2]) > TOTAL_TOLERANCE * abs(r[2])]
    metadata = {"protocols": len(rows), "totals_off": len(off),
                "sample": [f"{r[0]} {r[1]}: total {r[2]:.0f}, chains {r[3]:.0f}" for r in off[:SAMPLE]]}
    if off:
        return Verdict(False, f"{len(off)} of {len(rows)} protocols' totals differ from their chains' sum", metadata)
    return Verdict(True, f"the totals of {len(rows)} protocols add up to their chains", metadata)
