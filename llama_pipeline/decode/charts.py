"""``/chart/{pool}``: the payload's model, and a chart's points as rows of ``pool_chart_points``.

``ChartPoint`` below is the documentation of a point. A chart whose points all fit it is decoded in one
pass straight from the body; otherwise the body is decoded as JSON and each point read on its own (a
numeric string such as ``"12.5"`` is still a number), so that one unreadable point is set aside with
its reason and the rest of the chart still loads. Unknown fields of a point are not kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Annotated

import msgspec

from llama_pipeline.decode import coerce
from llama_pipeline.decode import fields
from llama_pipeline.decode.fields import Number, doc
from llama_pipeline.write.batches import Reject


class ChartPoint(msgspec.Struct, gc=False):
    """A pool's state at the last hourly update of one UTC day. Value fields in table order."""

    timestamp: Annotated[str, doc("ISO 8601 time of the update, e.g. '2023-11-10T23:01:27.607Z'.")]
    tvlUsd: Annotated[Number | None, doc("Total value locked, USD.")] = None
    apy: Annotated[Number | None, doc("Total APY, percent.")] = None
    apyBase: Annotated[Number | None, doc("Base APY from fees/interest, percent.")] = None
    apyReward: Annotated[Number | None, doc("Reward-token APY, percent.")] = None
    il7d: Annotated[Number | None, doc("Impermanent loss over 7 days, percent.")] = None
    apyBase7d: Annotated[Number | None, doc("Base APY over the last 7 days, percent.")] = None
    pricePerShare: Annotated[Number | None, doc("Price of one share of the pool's token.")] = None


class ChartDocument(msgspec.Struct):
    """The ``/chart/{pool}`` envelope: points ascending by time, 2 to 880+ of them."""

    data: list[ChartPoint]
    status: str = "success"


_DECODER = msgspec.json.Decoder(ChartDocument)
_VALUE_NAMES = ChartPoint.__struct_fields__[1:]
_READ = fields.readers(ChartPoint, _VALUE_NAMES)
DESCRIPTIONS = fields.descriptions(ChartPoint)


@dataclasses.dataclass(frozen=True)
class ParsedChart:
    points: list[tuple]  # (day, pool_id, tvl_usd, apy, apy_base, apy_reward, il_7d, apy_base_7d, pps)
    rejects: list[Reject]  # the points that could not be read, with why

    @property
    def rejected(self) -> int:
        return len(self.rejects)


def parse_chart(pool_id: str, body: bytes) -> ParsedChart:
    """The chart's points, one per UTC day (the day's last, as DeFiLlama keeps them); a point that cannot
    be read is set aside with its reason, and the rest of the chart still loads. Raises ValueError when
    the body as a whole is not a chart."""
    document = fields.decode_or_none(_DECODER, body)
    if document is not None and document.status == "success":
        try:
            by_day = {_day(point.timestamp): point for point in document.data}
        except coerce.BadField:
            pass  # a timestamp that is not a time: read point by point, to set that one aside
        else:
            return ParsedChart([(day, pool_id, *(getattr(point, name) for name in _VALUE_NAMES))
                                for day, point in sorted(by_day.items())], [])
    return _point_by_point(pool_id, _points(pool_id, body))


def _points(pool_id: str, body: bytes) -> list:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"chart of {pool_id} is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("status", "success") != "success":
        raise ValueError(f"chart of {pool_id} is not a successful {{'status', 'data'}} object")
    data = document.get("data")
    if not isinstance(data, list):
        raise ValueError(f"chart of {pool_id} has no list of points")
    return data


def _point_by_point(pool_id: str, data: list) -> ParsedChart:
    by_day: dict[dt.date, tuple] = {}
    rejects: list[Reject] = []
    for index, point in enumerate(data):
        try:
            if not isinstance(point, dict):
                raise coerce.BadField(f"point {index} is not an object")
            day = _day(coerce.required_text("timestamp", point.get("timestamp")))
            values = tuple(convert(name, point.get(name)) for name, convert in _READ.items())
        except ValueError as error:  # BadField included
            rejects.append(Reject.of(index, pool_id, f"point {index}: {error}", point))
            continue
        by_day[day] = (day, pool_id, *values)  # ascending order: the day's last point wins
    return ParsedChart([by_day[d] for d in sorted(by_day)], rejects)


def _day(stamp: str) -> dt.date:
    """The UTC day of an ISO 8601 time (a time without offset is taken as UTC)."""
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise coerce.BadField(f"timestamp: not an ISO 8601 time {stamp[:40]!r}") from None
    return moment.astimezone(dt.timezone.utc).date() if moment.tzinfo else moment.date()
