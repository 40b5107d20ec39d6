"""Which pools a chart backfill fetches: the selection from run config, and which of those still need
their ``/chart/{pool}`` (the fetch side of pool history; ``chart_store`` writes what arrives)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import psycopg2.extensions

from llama_pipeline.decode import coerce
from llama_pipeline.write.warehouse_lock import quote_ident

# A pool DeFiLlama does not know (HTTP 400 "invalid configID!") or no longer serves will not come back:
# such failures are final, others (timeouts, 5xx after retries) are tried again by the next backfill.
FINAL_STATUSES = frozenset({400, 404, 410})


@dataclasses.dataclass(frozen=True)
class PoolSelection:
    """Which pools a backfill fetches history for; empty filters mean every pool the warehouse knows."""

    pool_ids: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    chains: tuple[str, ...] = ()
    min_tvl_usd: float = 0.0
    limit: int | None = None


def selected_pools(conn: psycopg2.extensions.connection, schema_name: str, selection: PoolSelection) -> list[str]:
    """The pools to fetch: explicit ids, plus known pools matching the filters, largest TVL first."""
    s = quote_ident(schema_name)
    explicit = [coerce.pool_id(p) for p in selection.pool_ids]
    filtered = not explicit or selection.projects or selection.chains or selection.min_tvl_usd
    known: list[str] = []
    if filtered:
        with conn.cursor() as cur:
            cur.execute(
                f"""
                SELECT p.pool_id::text
                FROM {s}.pools p
                LEFT JOIN LATERAL (
                    SELECT tvl_usd FROM {s}.pool_snapshots s
                    WHERE s.pool_id = p.pool_id ORDER BY snapshot_date DESC LIMIT 1
                ) latest ON true
                WHERE (cardinality(%(projects)s::text[]) = 0 OR p.project = ANY(%(projects)s))
                  AND (cardinality(%(chains)s::text[]) = 0 OR p.chain = ANY(%(chains)s))
                  AND coalesce(latest.tvl_usd, 0) >= %(min_tvl)s
                ORDER BY latest.tvl_usd DESC NULLS LAST, p.pool_id
                """,
                {"projects": list(selection.projects), "chains": list(selection.chains),
                 "min_tvl": selection.min_tvl_usd},
            )
            known = [row[0] for row in cur.fetchall()]
    chosen = list(dict.fromkeys(explicit + known))
    return chosen[: selection.limit] if selection.limit else chosen


def pending_pools(
    conn: psycopg2.extensions.connection, schema_name: str, pool_ids: Sequence[str], through: dt.date
) -> list[str]:
    """The pools whose stored chart does not yet cover ``through``: never fetched, fetched before the
    day ended, or failed for a reason that may pass."""
    covered_after = dt.datetime.combine(through + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT pool_id::text FROM {quote_ident(schema_name)}.raw_pool_charts
            WHERE pool_id = ANY(%s::uuid[])
              AND ((error IS NULL AND fetched_at >= %s) OR http_status = ANY(%s))
            """,
            (list(pool_ids), covered_after, sorted(FINAL_STATUSES)),
        )
        done = {row[0] for row in cur.fetchall()}
    return [p for p in pool_ids if p not in done]
