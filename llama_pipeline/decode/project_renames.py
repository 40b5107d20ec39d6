"""Project renames: DeFiLlama renames a slug in place, and the same pool ids arrive under the new slug.

A move counts as a rename when the old slug is gone that day (neither /protocols lists it nor any pool
names it): a pool merely reassigned between two live projects is not one. A slug whose pools went to
several new slugs is recorded once per new slug.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd

COLUMNS = ["old_slug", "new_slug", "detected_on", "pools_moved"]


def detect_renames(moves: Iterable[tuple[str, str, str]], gone: set[str], day: dt.date) -> pd.DataFrame:
    """``moves``: (pool_id, stored slug, the day's slug) of pools whose slug changed; ``gone``: the
    stored slugs absent from the day's /protocols and /pools."""
    counts: dict[tuple[str, str], int] = {}
    for _pool_id, old, new in moves:
        if old != new and old in gone:
            counts[(old, new)] = counts.get((old, new), 0) + 1
    rows = [(old, new, day, n) for (old, new), n in sorted(counts.items())]
    return pd.DataFrame(rows, columns=COLUMNS)
