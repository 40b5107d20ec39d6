"""``moved_pools`` reads the day's pools against the stored ones, whatever the slugs are spelled with."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from llama_pipeline.write.project_renames_store import moved_pools

DAY = dt.date(2026, 9, 2)
# Slugs with what an array literal must quote: quotes, commas, braces, backslashes, spaces, NULL.
ODD = ['plain', 'a"b', 'c,d', '{e}', 'f\\g', 'h i', 'NULL', '']
IDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(len(ODD))]


def test_moves_are_read_with_any_slug_spelling(warehouse, query) -> None:
    yesterday = DAY - dt.timedelta(days=1)
    query("INSERT INTO chains (name, aliases, first_seen_date, last_seen_date) VALUES ('Ethereum', '{}', %s, %s)",
          (yesterday, yesterday))
    for slug in [*ODD, "new"]:
        query("INSERT INTO projects (slug, listed_in_protocols, first_seen_date, last_seen_date) "
              "VALUES (%s, true, %s, %s)",
              (slug, yesterday, yesterday))
    for pool_id, slug in zip(IDS, ODD):
        query("INSERT INTO pools (pool_id, chain, project, first_seen_date, last_seen_date) "
              "VALUES (%s, 'Ethereum', %s, %s, %s)", (pool_id, slug, yesterday, yesterday))
    # Today every odd slug's pool moves to "new", and "new"'s pools stay; one pool is new to the table.
    ids = pd.Series([*IDS, "00000000-0000-4000-8000-999999999999"], dtype="str")
    today = pd.Series(["new"] * len(ODD) + ["plain"], dtype="str")
    with warehouse.connection() as conn:
        moves = moved_pools(conn, warehouse.schema_name, DAY, ids, today)
    assert sorted(moves) == sorted((pool_id, slug, "new") for pool_id, slug in zip(IDS, ODD))
    # Nothing moved: the same slugs again.
    with warehouse.connection() as conn:
        assert moved_pools(conn, warehouse.schema_name, DAY, pd.Series(IDS, dtype="str"),
                           pd.Series(ODD, dtype="str")) == []
    # A day not newer than the stored one never moves a pool (a backfilled older day).
    with warehouse.connection() as conn:
        assert moved_pools(conn, warehouse.schema_name, yesterday, ids, today) == []
