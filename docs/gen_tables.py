"""The README's table reference, from llama_pipeline.schema.

    .venv/bin/python docs/gen_tables.py          # print it
    .venv/bin/python docs/gen_tables.py --write  # rewrite it in README.md, between its markers
"""

import sys
from pathlib import Path

from sqlalchemy.dialects import postgresql

from llama_pipeline import schema

START, END = "<!-- tables:start", "<!-- tables:end -->"
ORDER = ["chains", "projects", "pools", "pool_snapshots", "raw_payloads", "raw_payload_quarantine", "raw_pool_charts",
         "pool_chart_points", "rejects", "pool_latest", "chain_daily_stats", "project_daily_stats", "pool_apy_stats",
         "lend_borrow_snapshots", "chain_tvl_daily", "protocol_tvl_daily", "project_renames", "raw_series"]
# Meanings of columns whose database comment is empty (the API's own field names in parentheses).
DOCS = {
    "audit_note": "Note on the audits (audit_note).", "audit_links": "Links to audit reports (audit_links).",
    "forked_from": "Protocols it was forked from (forkedFrom).", "oracles": "Oracles it uses (oracles).",
    "url": "Website (url).", "description": "Description (description).", "logo": "Logo URL (logo).",
    "twitter": "Twitter/X handle (twitter).", "github": "GitHub organisations (github).",
    "gecko_id": "CoinGecko id (gecko_id).", "cmc_id": "CoinMarketCap id (cmcId).",
    "methodology": "How DeFiLlama computes its TVL (methodology).",
    "stablecoin": "Whether the pool is a stablecoin pool (stablecoin).",
    "underlying_tokens": "Token addresses deposited (underlyingTokens).",
    "reward_tokens": "Token addresses paid as rewards (rewardTokens).",
    "pool_id": "DeFiLlama pool id (pool).", "tvl_usd": "Total value locked, USD (tvlUsd).",
    "apy": "Total APY, percent: base + reward (apy).", "apy_base": "APY from fees/interest, percent (apyBase).",
    "apy_reward": "APY from reward tokens, percent (apyReward).",
    "apy_pct_1d": "APY change over 1 day, points (apyPct1D).", "apy_pct_7d": "APY change over 7 days (apyPct7D).",
    "apy_pct_30d": "APY change over 30 days (apyPct30D).", "apy_base_7d": "7-day base APY (apyBase7d).",
    "apy_mean_30d": "30-day mean APY (apyMean30d).", "apy_base_inception": "Base APY since inception (apyBaseInception).",
    "il_7d": "7-day impermanent loss (il7d).", "volume_usd_1d": "Trading volume over 1 day, USD (volumeUsd1d).",
    "volume_usd_7d": "Trading volume over 7 days, USD (volumeUsd7d).", "mu": "Mean of the APY series (mu).",
    "sigma": "Standard deviation of the APY series (sigma).", "count": "Points in the APY series (count).",
    "outlier": "DeFiLlama flags the APY as an outlier (outlier).",
    "predicted_class": "DeFiLlama's APY forecast class (predictions.predictedClass).",
    "predicted_probability": "Its probability, percent (predictions.predictedProbability).",
    "binned_confidence": "Its confidence bin, 1-3 (predictions.binnedConfidence).",
    "price_per_share": "Price per share of the pool's token (pricePerShare).", "id": "Row id.",
}


def _analytics_docs() -> dict[tuple[str, str], str]:
    """Column meanings of the analytics tables, as their assets declare them for the UI."""
    from llama_pipeline.defs.analytics.assets import VIEWS

    return {(view.name, column.name): column.description for view in VIEWS for column in view.columns}


def render() -> str:
    lines: list[str] = []
    analytics = _analytics_docs()
    for name in ORDER:
        table = schema.metadata.tables[name]
        key = ", ".join(c.name for c in table.primary_key)
        fks = [f"`{fk.parent.name}` → `{fk.column.table.name}.{fk.column.name}`" for fk in table.foreign_keys]
        lines.append(f"#### `{name}`\n\n{table.comment} Key: `({key})`."
                     + (f" Foreign keys: {', '.join(sorted(fks))}." if fks else "") + "\n")
        lines.append("| column | type | meaning |\n|---|---|---|")
        for column in table.columns:
            kind = str(column.type.compile(dialect=postgresql.dialect())).lower()
            meaning = column.comment or analytics.get((name, column.name)) or DOCS[column.name]
            lines.append(f"| `{column.name}` | {kind} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    text = render()
    if "--write" not in sys.argv:
        print(text)
        return
    readme = Path(__file__).resolve().parents[1] / "README.md"
    content = readme.read_text()
    start = content.index("\n", content.index(START)) + 1
    end = content.index(END)
    readme.write_text(content[:start] + text.rstrip() + "\n" + content[end:])


if __name__ == "__main__":
    main()
