"""Data-quality rules behind the asset checks: plain functions over a psycopg2 connection, one day at
a time, with no Dagster objects (``defs/*/checks.py`` wrap them).

Each rule returns a :class:`Verdict`: whether the day passed, one line saying why, and figures for the
check's metadata. The warehouse is the source of truth: rules read the tables and the archived
payloads, never the run's in-memory values, so a check re-run later from the UI judges what is stored.

Thresholds come from the environment (read when a check runs, so a change needs no redeploy) and can
be overridden per run through the checks' config:

- ``LLAMA_MIN_POOL_FRACTION`` (default 0.5): a day's /pools record count must be at least this
  fraction of the previous stored day's;
- ``LLAMA_MAX_REJECT_FRACTION`` (default 0.01): more rejects than this fraction of a payload's
  records raises a warning;
- ``LLAMA_FRESHNESS_HOURS`` (default 36): the newest stored snapshot day may end at most this many
  hours ago.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Sequence

import psycopg2.extensions

from llama_pipeline.decode import chain_aliases, coerce
from llama_pipeline.quality import stored_records
from llama_pipeline.fetch.payloads import decode_records, decompress
from llama_pipeline.write.warehouse_lock import quote_ident

APY_MIN, APY_MAX = 0.0, 1e6
SAMPLE = 10  # keys shown in a check's metadata


def env_float(name: str, default: float) -> float:
    """A threshold from the environment; a value that is not a number is an error, not a silent default."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def min_pool_fraction() -> float:
    return env_float("LLAMA_MIN_POOL_FRACTION", 0.5)


def max_reject_fraction() -> float:
    return env_float("LLAMA_MAX_REJECT_FRACTION", 0.01)


def freshness_hours() -> float:
    return env_float("LLAMA_FRESHNESS_HOURS", 36.0)


@dataclasses.dataclass
class Verdict:
    passed: bool
    description: str
    metadata: dict = dataclasses.field(default_factory=dict)
    skipped: bool = False  # nothing to judge for this day (e.g. filled from chart history)


class Warehouse:
    """Queries of one schema through one connection."""

    def __init__(self, conn: psycopg2.extensions.connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    def t(self, table: str) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(table)}"

    def rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def one(self, sql: str, params: Sequence = ()):
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    # -- payloads ------------------------------------------------------------------------------

    def record_count(self, endpoint: str, day: dt.date) -> int | None:
        return self.one(f"SELECT record_count FROM {self.t('raw_payloads')} WHERE endpoint = %s AND partition_date = %s",
                        (endpoint, day))

    def previous_payload_day(self, endpoint: str, day: dt.date) -> dt.date | None:
        return self.one(f"SELECT max(partition_date) FROM {self.t('raw_payloads')} "
                        "WHERE endpoint = %s AND partition_date < %s", (endpoint, day))

    def body(self, endpoint: str, day: dt.date) -> bytes | None:
        """The day's stored payload as it was sent, or None when there is none."""
        rows = self.rows(f"SELECT compression, body FROM {self.t('raw_payloads')} "
                         "WHERE endpoint = %s AND partition_date = %s", (endpoint, day))
        if not rows:
            return None
        compression, body = rows[0]
        return decompress(bytes(body), compression)

    def records(self, endpoint: str, day: dt.date) -> list | None:
        body = self.body(endpoint, day)
        # Decoded on its own, not taken from the run's parse: the check must not trust the parser it checks.
        return None if body is None else decode_records(endpoint, body, endpoint)  # type: ignore[arg-type]

    def rejected_indexes(self, asset: str, day: dt.date) -> set[int]:
        return {r[0] for r in self.rows(
            f"SELECT record_index FROM {self.t('rejects')} WHERE asset = %s AND partition_date = %s", (asset, day))}


# -- blocking rules ------------------------------------------------------------------------------

# asset -> (endpoint, the record's key field, SQL counting the day's rows among keys)
_RECONCILE = {
    "pools": ("pools", "pool",
              "SELECT count(*) FROM {t} WHERE pool_id = ANY(%s::uuid[]) AND first_seen_date <= %s AND last_seen_date >= %s"),
    "projects": ("protocols", "slug",
                 "SELECT count(*) FROM {t} WHERE slug = ANY(%s) AND first_seen_date <= %s AND last_seen_date >= %s"),
    "pool_snapshots": ("pools", "pool",
                       "SELECT count(*) FROM {t} WHERE pool_id = ANY(%s::uuid[]) AND snapshot_date = %s AND %s IS NOT NULL"),
    "lend_borrow_snapshots": ("lend_borrow", "pool", "SELECT count(*) FROM {t} WHERE pool_id = ANY(%s::uuid[]) "
                              "AND snapshot_date = %s AND %s IS NOT NULL"),
}
_FACTS = ("pool_snapshots", "lend_borrow_snapshots")


def counts_add_up(db: Warehouse, asset: str, day: dt.date) -> Verdict:
    """Every record of the day's payload is either a row of the table or a reject: record_count ==
    rows loaded + rejects, checked key by key so that a dropped record cannot hide behind an extra row."""
    endpoint, field, count_sql = _RECONCILE[asset]
    body = db.body(endpoint, day)
    if body is None:
        return Verdict(True, f"no /{endpoint} payload stored for {day} (filled from chart history): nothing to add up",
                       {"source": "chart"}, skipped=True)
    # Each record's key, read from the stored body without the values this check does not need.
    records = stored_records.keys(endpoint, body, field)
    rejected = db.rejected_indexes(asset, day)
    keys: list[str] = []
    unaccounted: list[int] = []
    for index, key in enumerate(records):
        if index in rejected:
            continue
        if key is None:
            unaccounted.append(index)
        else:
            keys.append(key)
    distinct = sorted(set(keys))
    loaded = db.one(count_sql.format(t=db.t(asset)), (distinct, day, day))
    stored_count = db.record_count(endpoint, day)
    extra = 0
    if asset in _FACTS:  # a fact table's day must hold nothing beyond the payload's pools
        extra = db.one(f"SELECT count(*) FROM {db.t(asset)} WHERE snapshot_date = %s", (day,)) - loaded
    metadata = {"payload_records": len(records), "record_count_stored": stored_count, "rows_loaded": loaded,
                "rejected": len(rejected), "unaccounted": len(records) - loaded - len(rejected)}
    if extra:
        metadata["rows_not_in_payload"] = extra
    passed = (loaded + len(rejected) == len(records) == stored_count and not unaccounted
              and len(distinct) == len(keys) and not extra)
    if passed:
        return Verdict(True, f"{len(records):,} records = {loaded:,} rows + {len(rejected):,} rejects", metadata)
    return Verdict(False, f"{len(records):,} records in the /{endpoint} payload of {day} but {loaded:,} rows loaded "
                   f"and {len(rejected):,} rejects (stored record_count {stored_count})", metadata)


_KEYS = {"chains": ("name",), "projects": ("slug",), "pools": ("pool_id",), "pool_snapshots": ("pool_id", "snapshot_date")}


def keys_unique(db: Warehouse, table: str, day: dt.date) -> Verdict:
    key = ", ".join(quote_ident(c) for c in _KEYS[table])
    where = "WHERE snapshot_date = %s" if table == "pool_snapshots" else "WHERE first_seen_date <= %s AND last_seen_date >= %s"
    params = (day,) if table == "pool_snapshots" else (day, day)
    duplicates = db.rows(f"SELECT {key}, count(*) FROM {db.t(table)} {where} GROUP BY {key} HAVING count(*) > 1 "
                         f"ORDER BY 1 LIMIT {SAMPLE}", params)
    any_null = " OR ".join(f"{quote_ident(c)} IS NULL" for c in _KEYS[table])
    nulls = db.one(f"SELECT count(*) FROM {db.t(table)} {where} AND ({any_null})", params)
    metadata = {"key": list(_KEYS[table]), "duplicate_keys": [str(d[:-1]) for d in duplicates], "null_keys": nulls}
    if duplicates or nulls:
        return Verdict(False, f"{table} has {len(duplicates)}+ duplicate and {nulls} null keys for {day}", metadata)
    return Verdict(True, f"every {'/'.join(_KEYS[table])} of {table} is unique for {day}", metadata)


def pools_join(db: Warehouse, day: dt.date) -> Verdict:
    """Every pool seen on the day joins a chain and a project."""
    orphans = db.rows(
        f"SELECT p.pool_id::text, p.chain, p.project, c.name IS NULL, j.slug IS NULL FROM {db.t('pools')} p "
        f"LEFT JOIN {db.t('chains')} c ON c.name = p.chain LEFT JOIN {db.t('projects')} j ON j.slug = p.project "
        "WHERE p.first_seen_date <= %s AND p.last_seen_date >= %s AND (c.name IS NULL OR j.slug IS NULL) "
        f"ORDER BY 1 LIMIT {SAMPLE}", (day, day))
    count = db.one(
        f"SELECT count(*) FROM {db.t('pools')} p WHERE p.first_seen_date <= %s AND p.last_seen_date >= %s AND ("
        f"NOT EXISTS (SELECT 1 FROM {db.t('chains')} c WHERE c.name = p.chain) OR "
        f"NOT EXISTS (SELECT 1 FROM {db.t('projects')} j WHERE j.slug = p.project))", (day, day))
    metadata = {"orphan_pools": count, "sample": [f"{r[0]} chain={r[1]!r}{' (missing)' if r[3] else ''} "
                                                  f"project={r[2]!r}{' (missing)' if r[4] else ''}" for r in orphans]}
    if count:
        return Verdict(False, f"{count:,} pools seen on {day} do not join a chain or a project", metadata)
    return Verdict(True, f"every pool seen on {day} joins a chain and a project", metadata)


def snapshots_join(db: Warehouse, day: dt.date) -> Verdict:
    count = db.one(f"SELECT count(*) FROM {db.t('pool_snapshots')} s WHERE snapshot_date = %s AND NOT EXISTS "
                   f"(SELECT 1 FROM {db.t('pools')} p WHERE p.pool_id = s.pool_id)", (day,))
    if count:
        return Verdict(False, f"{count:,} snapshots of {day} name no pool", {"orphan_snapshots": count})
    return Verdict(True, f"every snapshot of {day} joins its pool", {"orphan_snapshots": 0})


def pool_count_holds(db: Warehouse, day: dt.date, fraction: float) -> Verdict:
    """The day's /pools record count is at least ``fraction`` of the previous stored day's."""
    today = db.record_count("pools", day)
    if today is None:
        return Verdict(True, f"no /pools payload stored for {day}", skipped=True)
    previous_day = db.previous_payload_day("pools", day)
    if previous_day is None:
        return Verdict(True, f"{today:,} pools; no earlier day stored to compare with",
                       {"pool_count": today, "min_fraction": fraction})
    previous = db.record_count("pools", previous_day)
    ratio = today / previous if previous else 1.0
    metadata = {"pool_count": today, "previous_day": previous_day.isoformat(), "previous_pool_count": previous,
                "ratio": round(ratio, 4), "min_fraction": fraction}
    if ratio < fraction:
        return Verdict(False, f"{day} has {today:,} pools, {ratio:.0%} of the {previous:,} of {previous_day} (below "
                       f"{fraction:.0%}): a truncated or partial payload? Downstream tables keep their previous state",
                       metadata)
    return Verdict(True, f"{today:,} pools, {ratio:.0%} of {previous_day}", metadata)


# -- warnings ------------------------------------------------------------------------------------

def values_in_range(db: Warehouse, day: dt.date) -> Verdict:
    bad = db.rows(
        f"SELECT pool_id::text, apy, tvl_usd FROM {db.t('pool_snapshots')} WHERE snapshot_date = %s AND "
        f"(apy < {APY_MIN} OR apy > {APY_MAX} OR tvl_usd < 0) ORDER BY 1", (day,))
    apy_low = sum(1 for r in bad if r[1] is not None and r[1] < APY_MIN)
    apy_high = sum(1 for r in bad if r[1] is not None and r[1] > APY_MAX)
    tvl_negative = sum(1 for r in bad if r[2] is not None and r[2] < 0)
    metadata = {"apy_below_0": apy_low, "apy_above_1e6": apy_high, "tvl_negative": tvl_negative,
                "sample": [f"{r[0]} apy={r[1]} tvl_usd={r[2]}" for r in bad[:SAMPLE]]}
    if bad:
        return Verdict(False, f"{len(bad):,} snapshots of {day} out of range ({apy_low} APY < 0, {apy_high} APY > 1e6, "
                       f"{tvl_negative} TVL < 0)", metadata)
    return Verdict(True, f"APY and TVL of {day} within range", metadata)


def placeholder_projects(db: Warehouse, day: dt.date) -> Verdict:
    """Projects that pools of the day name but /protocols lacks (loaded as placeholder rows)."""
    rows = db.rows(
        f"SELECT j.slug, count(*) FROM {db.t('projects')} j JOIN {db.t('pools')} p ON p.project = j.slug "
        "WHERE NOT j.listed_in_protocols AND p.first_seen_date <= %s AND p.last_seen_date >= %s "
        "GROUP BY 1 ORDER BY 2 DESC, 1", (day, day))
    metadata = {"placeholder_projects": len(rows), "pools_affected": sum(r[1] for r in rows),
                "sample": [f"{r[0]} ({r[1]} pools)" for r in rows[:SAMPLE]]}
    if rows:
        return Verdict(False, f"{len(rows)} projects named by pools of {day} are not among /protocols slugs", metadata)
    return Verdict(True, f"every pool project of {day} is a /protocols slug", metadata)


def chains_known(db: Warehouse, day: dt.date) -> Verdict:
    rows = db.rows(f"SELECT name, aliases FROM {db.t('chains')} WHERE first_seen_date <= %s AND last_seen_date >= %s",
                   (day, day))
    unknown = sorted(name for name, aliases in rows
                     if not chain_aliases.is_known(name) and not any(chain_aliases.is_known(a) for a in aliases or ()))
    folded: dict[str, list[str]] = {}
    for name, _ in rows:
        folded.setdefault(chain_aliases.fold(name), []).append(name)
    clashes = sorted("/".join(sorted(names)) for names in folded.values() if len(names) > 1)
    metadata = {"chains": len(rows), "unknown_chains": len(unknown), "sample": unknown[:SAMPLE],
                "spelling_clashes": clashes[:SAMPLE]}
    if unknown or clashes:
        return Verdict(False, f"{len(unknown)} chains of {day} are not in the alias map"
                       + (f"; {len(clashes)} names differ only in spelling" if clashes else ""), metadata)
    return Verdict(True, f"all {len(rows)} chains of {day} are in the alias map", metadata)


def _fields(db: Warehouse, endpoint: str, day: dt.date) -> set[str] | None:
    """The fields of the day's stored records (the union over records that are objects)."""
    body = db.body(endpoint, day)
    return None if body is None else stored_records.fields(endpoint, body)


def fields_stable(db: Warehouse, endpoint: str, day: dt.date) -> Verdict:
    """Fields that appeared in, or vanished from, the payload compared with the previous stored day."""
    now = _fields(db, endpoint, day)
    if now is None:
        return Verdict(True, f"no /{endpoint} payload stored for {day}", skipped=True)
    previous_day = db.previous_payload_day(endpoint, day)
    if previous_day is None:
        return Verdict(True, f"no earlier /{endpoint} payload to compare with", {"fields": len(now)})
    before = _fields(db, endpoint, previous_day) or set()
    appeared, vanished = sorted(now - before), sorted(before - now)
    metadata = {"previous_day": previous_day.isoformat(), "appeared": appeared, "vanished": vanished}
    if appeared or vanished:
        return Verdict(False, f"/{endpoint} fields changed since {previous_day}: appeared {appeared or 'none'}, "
                       f"vanished {vanished or 'none'}", metadata)
    return Verdict(True, f"/{endpoint} has the same {len(now)} fields as on {previous_day}", metadata)


def rejects_within(db: Warehouse, asset: str, endpoint: str, day: dt.date, fraction: float) -> Verdict:
    records = db.record_count(endpoint, day)
    if records is None:
        return Verdict(True, f"no /{endpoint} payload stored for {day}", skipped=True)
    rejected = db.one(f"SELECT count(*) FROM {db.t('rejects')} WHERE asset = %s AND partition_date = %s", (asset, day))
    reasons = db.rows(f"SELECT split_part(reason, ':', 1), count(*) FROM {db.t('rejects')} WHERE asset = %s AND "
                      "partition_date = %s GROUP BY 1 ORDER BY 2 DESC LIMIT 10", (asset, day))
    share = rejected / records if records else 0.0
    metadata = {"rejected": rejected, "records": records, "reject_fraction": round(share, 5),
                "max_fraction": fraction, "reasons": {r[0]: r[1] for r in reasons},
                "invalid_values": invalid_values(db, asset, day)}
    if share > fraction:
        return Verdict(False, f"{rejected:,} of {records:,} records of {day} rejected ({share:.2%} > {fraction:.2%})",
                       metadata)
    return Verdict(True, f"{rejected:,} of {records:,} records rejected ({share:.2%})", metadata)


_INVALID_SQL = {  # the day's rows, and how many values of each could not be read
    "pool_snapshots": "SELECT extra FROM {t} WHERE snapshot_date = %s AND extra ? '_invalid_fields'",
    "projects": "SELECT extra FROM {t} WHERE last_seen_date >= %s AND first_seen_date <= %s "
                "AND extra ? '_invalid_fields'",
}


def invalid_values(db: Warehouse, asset: str, day: dt.date) -> int:
    """Values of the day's rows that could not be read (NULL, kept under ``extra._invalid_fields``).
    A project's row holds its newest day's attributes, so for an old day this counts today's."""
    sql = _INVALID_SQL[asset].format(t=db.t(asset))
    rows = db.rows(sql, (day,) if asset == "pool_snapshots" else (day, day))
    return coerce.invalid_value_count(extra for (extra,) in rows)


def freshness(db: Warehouse, now: dt.datetime, max_hours: float) -> Verdict:
    """The newest stored snapshot day ended at most ``max_hours`` ago (a day's snapshot is complete at
    its end: today's, fetched in the evening, counts as 0 hours old)."""
    latest = db.one(f"SELECT max(snapshot_date) FROM {db.t('pool_snapshots')}")
    if latest is None:
        return Verdict(False, "pool_snapshots is empty", {"max_age_hours": max_hours})
    ended = dt.datetime.combine(latest + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    age = max(0.0, (now - ended).total_seconds() / 3600)
    metadata = {"latest_snapshot_date": latest.isoformat(), "age_hours": round(age, 1), "max_age_hours": max_hours}
    if age > max_hours:
        return Verdict(False, f"the newest snapshot day is {latest} ({age:.0f} h old, more than {max_hours:g} h): "
                       "has the daily schedule stopped or failed?", metadata)
    return Verdict(True, f"the newest snapshot day is {latest} ({age:.0f} h old)", metadata)
