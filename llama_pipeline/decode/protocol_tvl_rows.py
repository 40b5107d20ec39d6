"""/protocol/{slug} -> ``protocol_tvl_daily``: the total and every ``chainTvls`` series, one row per day.

A response reaches tens of MB (aave-v3 about 28 MB), most of it per-token breakdowns this table does
not keep: it is decoded once, the TVL series are taken out, and the document is dropped before the
next response is decoded (the caller parses one response at a time).
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from llama_pipeline.decode.chain_aliases import canonical_chain
from llama_pipeline.decode.chain_tvl_rows import ParsedSeries, SeriesError, _document, daily_points
from llama_pipeline.schema_datasets import TOTAL_CHAIN
from llama_pipeline.write.batches import Reject

COLUMNS = ["slug", "chain", "day", "base_chain", "tvl_kind", "tvl_usd", "fetched_at"]
_SUFFIX = re.compile(r"^(?:(?P<chain>.+)-)?(?P<kind>staking|pool2|borrowed|vesting|treasury|offers|doublecounted|"
                     r"liquidstaking|dcandlsoverlap)$", re.IGNORECASE)


def series_key(key: str) -> tuple[str, str | None, str]:
    """(chain, base_chain, tvl_kind) of a ``chainTvls`` key: ``Ethereum`` -> ('Ethereum', 'Ethereum', 'tvl'),
    ``Binance-staking`` -> ('BSC-staking', 'BSC', 'staking'), ``borrowed`` -> ('(total)-borrowed', None,
    'borrowed'). Raises ValueError for a key that names nothing."""
    match = _SUFFIX.match(key.strip())
    if match is None:
        chain = canonical_chain(key)
        return chain, chain, "tvl"
    kind = match["kind"].lower()
    base = canonical_chain(match["chain"]) if match["chain"] else None
    return f"{base or TOTAL_CHAIN}-{kind}", base, kind


def parse_protocol(slug: str, body: bytes, fetched_at: dt.datetime) -> ParsedSeries:
    """Every day of the protocol's total TVL (chain '(total)') and of each chainTvls series."""
    document = _document(body, f"/protocol/{slug}")
    if isinstance(document, dict) and isinstance(document.get("raw"), dict) and "chain" in document:
        document = document["raw"]  # recorded samples wrapped as {"chain", "raw"}
    if not isinstance(document, dict) or "tvl" not in document:
        raise SeriesError(f"/protocol/{slug} is not a protocol object with a 'tvl' series")
    series: list[tuple[str, str | None, str, object]] = [(TOTAL_CHAIN, None, "tvl", document["tvl"])]
    rejects: list[Reject] = []
    chain_tvls = document.get("chainTvls") or {}
    if not isinstance(chain_tvls, dict):
        raise SeriesError(f"/protocol/{slug}: chainTvls is {type(chain_tvls).__name__}, not an object")
    for key, value in chain_tvls.items():
        try:
            chain, base, kind = series_key(key)
        except ValueError as error:
            rejects.append(Reject.of(0, slug, f"chainTvls key {key!r}: {error}", {"key": key}))
            continue
        points = value.get("tvl") if isinstance(value, dict) else None
        series.append((chain, base, kind, points))
    del document, chain_tvls  # the token breakdowns go now, before the rows are built
    frames = []
    seen: set[str] = set()
    for chain, base, kind, points in series:
        if chain in seen:  # two spellings of one chain ('Binance', 'BSC'): the first series is kept
            rejects.append(Reject.of(0, slug, f"chainTvls: a second series for {chain}", {"chain": chain}))
            continue
        seen.add(chain)
        try:
            by_day, bad = daily_points(points, "totalLiquidityUSD", f"{slug} {chain}")
        except SeriesError as error:
            rejects.append(Reject.of(0, slug, str(error), {"chain": chain}))
            continue
        rejects += bad
        frames.append(pd.DataFrame({"slug": slug, "chain": chain, "day": list(by_day), "base_chain": base,
                                    "tvl_kind": kind, "tvl_usd": list(by_day.values()), "fetched_at": fetched_at},
                                   columns=COLUMNS))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return ParsedSeries(rows, rejects)
