"""Which chains and protocols a history backfill fetches, and from which URL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from urllib.parse import quote

import psycopg2.extensions

from llama_pipeline import clock
from llama_pipeline.decode.chain_tvl_rows import parse_chain_list
from llama_pipeline.fetch import raw_archive
from llama_pipeline.fetch.payloads import decode_records
from llama_pipeline.schema import UNKNOWN
from llama_pipeline.write.warehouse_lock import quote_ident


def known_chains(conn: psycopg2.extensions.connection, schema_name: str, wanted: Sequence[str]) -> list[str]:
    """Every chain the warehouse knows (or those of ``wanted``, by canonical name), by name."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT name FROM {quote_ident(schema_name)}.chains WHERE name <> %s "
                    "AND (cardinality(%s::text[]) = 0 OR name = ANY(%s)) ORDER BY name", (UNKNOWN, list(wanted),
                                                                                             list(wanted)))
        return [row[0] for row in cur.fetchall()]


def api_chain_names(conn: psycopg2.extensions.connection, schema_name: str) -> dict[str, str]:
    """canonical name -> the spelling /v2/historicalChainTvl knows, from the newest stored /v2/chains
    payload (empty when none is stored: the canonical names are used)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT max(partition_date) FROM {quote_ident(schema_name)}.raw_payloads "
                    "WHERE endpoint = 'chain_list'")
        day = cur.fetchone()[0]
    if day is None:
        return {}
    payload = raw_archive.load_in(conn, schema_name, "chain_list", day)
    return parse_chain_list(decode_records("chain_list", payload.body, payload.url), day).api_names


def top_projects(conn: psycopg2.extensions.connection, schema_name: str, wanted: Sequence[str],
                 limit: int) -> tuple[list[str], list[str]]:
    """(selected slugs, wanted slugs the warehouse does not know). Without ``wanted``: the ``limit``
    projects whose pools held the most TVL on the newest snapshot day."""
    s = quote_ident(schema_name)
    with conn.cursor() as cur:
        if wanted:
            cur.execute(f"SELECT slug FROM {s}.projects WHERE slug = ANY(%s)", (list(wanted),))
            known = {row[0] for row in cur.fetchall()}
            return [w for w in wanted if w in known], [w for w in wanted if w not in known]
        cur.execute(
            f"""
            SELECT p.project FROM {s}.pool_snapshots ps JOIN {s}.pools p USING (pool_id)
            WHERE ps.snapshot_date = (SELECT max(snapshot_date) FROM {s}.pool_snapshots) AND p.project <> %s
            GROUP BY p.project ORDER BY sum(ps.tvl_usd) DESC NULLS LAST, p.project LIMIT %s
            """,
            (UNKNOWN, limit),
        )
        return [row[0] for row in cur.fetchall()], []


def url_for(template: str, **values: str) -> str:
    """A URL template filled with path-safe values ('OP Mainnet' -> 'OP%20Mainnet')."""
    return template.format(**{key: quote(value, safe="") for key, value in values.items()})


def fetched_since(hours: float) -> dt.datetime:
    return clock.now() - dt.timedelta(hours=hours)
