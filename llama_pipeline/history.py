"""Reading one pool's ``/chart/{pool}`` body into its daily points.

Pool history lives in four modules along its flow: ``chart_pools`` (which pools to fetch),
``chart_fetch`` (fetching them politely), ``chart_store`` (archiving each chart and replacing its
points) and ``chart_days`` (filling a past day from the stored points). A chart covers a pool's whole
life, so a backfill of any range fetches each pool once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from llama_pipeline import coerce
from llama_pipeline.transform.batches import Reject

# The chart point's fields, in pool_chart_points' column order.
_CHART_FIELDS = {"tvlUsd": "tvl_usd", "apy": "apy", "apyBase": "apy_base", "apyReward": "apy_reward",
                 "il7d": "il_7d", "apyBase7d": "apy_base_7d", "pricePerShare": "price_per_share"}


@dataclasses.dataclass(frozen=True)
class ParsedChart:
    points: list[tuple]  # (day, pool_id, tvl_usd, apy, apy_base, apy_reward, il_7d, apy_base_7d, pps)
    rejects: list[Reject]  # the points that could not be read, with why

    @property
    def rejected(self) -> int:
        return len(self.rejects)


def parse_chart(pool_id: str, body: bytes) -> ParsedChart:
    """The chart's points, one per UTC day (the day's last, as DeFiLlama keeps them); a point that cannot
    be read is set aside with its reason, and the rest of the chart still loads."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"chart of {pool_id} is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("status", "success") != "success":
        raise ValueError(f"chart of {pool_id} is not a successful {{'status', 'data'}} object")
    data = document.get("data")
    if not isinstance(data, list):
        raise ValueError(f"chart of {pool_id} has no list of points")
    by_day: dict[dt.date, tuple] = {}
    rejects: list[Reject] = []
    for index, point in enumerate(data):
        try:
            if not isinstance(point, dict):
                raise coerce.BadField(f"point {index} is not an object")
            stamp = coerce.required_text("timestamp", point.get("timestamp"))
            try:
                moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except ValueError:
                raise coerce.BadField(f"timestamp: not an ISO 8601 time {stamp[:40]!r}") from None
            day = moment.astimezone(dt.timezone.utc).date() if moment.tzinfo else moment.date()
            values = tuple(coerce.number(field, point.get(field)) for field in _CHART_FIELDS)
        except (coerce.BadField, ValueError) as error:
            rejects.append(Reject.of(index, pool_id, f"point {index}: {error}", point))
            continue
        by_day[day] = (day, pool_id, *values)  # ascending order: the day's last point wins
    return ParsedChart([by_day[d] for d in sorted(by_day)], rejects)
