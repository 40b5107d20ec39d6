"""Where a past day's rows come from when the day has no stored capture of an endpoint.

DeFiLlama's /pools and /protocols serve only the present, so a day that has ended and was not captured
is never fetched. It can still be loaded from the pools' chart history (``pool_chart_points``, filled
by ``raw_pool_charts``, which runs before the raw assets in the same run); a day without /protocols
whose /pools capture is stored loads too (the projects keep their stored metadata). A day with none of
these has nothing to load: its raw asset fails for it rather than report it materialized.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from llama_pipeline.fetch import raw_archive
from llama_pipeline.fetch.payloads import Endpoint
from llama_pipeline.write.day_metadata import failed_days_message
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline.write.warehouse_lock import quote_ident

# What a user can do about a day with nothing to load (the warehouse tables say the same).
WHAT_TO_DO = ("and /pools serves only today: a past day is never filled with today's data. Materialize "
              "raw_pool_charts for this day with the rest of the graph (Materialize all) to fill it from "
              "DeFiLlama's per-pool history; if it ran, no selected pool's chart has a point for the day.")


@dataclasses.dataclass(frozen=True)
class UncapturedDays:
    """The past days of a run without a capture of ``endpoint``: those some other source fills, with
    where their rows come from, and those that nothing fills, with the reason."""

    endpoint: Endpoint
    of_days: int
    filled: dict[dt.date, str]
    empty: dict[dt.date, str]

    def failure_message(self, what: str | None = None) -> str:
        """The empty days, one line each; ``what`` names the step (default: the raw asset)."""
        return failed_days_message(what or f"raw_{self.endpoint} (nothing to load)", self.of_days,
                                   sorted(self.empty.items()))


def chart_point_counts(warehouse: Warehouse, days: Sequence[dt.date]) -> dict[dt.date, int]:
    """How many pools' chart points are stored for each of ``days`` that has any."""
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT snapshot_date, count(*) FROM {quote_ident(warehouse.schema_name)}.pool_chart_points "
            "WHERE snapshot_date = ANY(%s) GROUP BY 1",
            (list(days),),
        )
        return dict(cur.fetchall())


def judge(warehouse: Warehouse, endpoint: Endpoint, of_days: int, uncaptured: Sequence[dt.date]) -> UncapturedDays:
    """Sort the run's past days without a stored ``endpoint`` capture into filled and empty.

    Only /pools and /protocols are judged: the datasets beside the yields (lending, chain list) are
    not built from /pools, and their past days have histories of their own."""
    if not uncaptured or endpoint not in ("pools", "protocols"):
        return UncapturedDays(endpoint, of_days, {}, {})
    charts = chart_point_counts(warehouse, uncaptured)
    # /protocols missing on a day whose /pools capture is stored is not a day without data: the
    # warehouse loads the day's pools and keeps the projects' stored metadata.
    with_pools = raw_archive.stored_days(warehouse, "pools", uncaptured) if endpoint == "protocols" else set()
    filled, empty = {}, {}
    for day in uncaptured:
        if day in with_pools:
            filled[day] = ("the day's stored /pools capture; projects keep the metadata of their latest stored "
                           "/protocols capture")
        elif day in charts:
            filled[day] = f"chart history: {charts[day]:,} pools' chart points stored for the day (pool_chart_points)"
        elif endpoint == "pools":
            empty[day] = f"neither a stored /pools payload nor stored chart history, {WHAT_TO_DO}"
        else:
            empty[day] = ("no /protocols capture, and neither a stored /pools payload nor stored chart history, "
                          + WHAT_TO_DO)
    return UncapturedDays(endpoint, of_days, filled, empty)
