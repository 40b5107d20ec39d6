"""What the dataset assets beside the yields share: their common definition arguments, a day's stored
payload decoded (or None when that day has none), and the run of a history backfill with its checks."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from pydantic import Field

from llama_pipeline import clock
from llama_pipeline.fetch import chart_fetch, history_selection
from llama_pipeline.fetch.raw_archive import MissingPayload, RawArchive
from llama_pipeline.partitions import DAILY, days_of
from llama_pipeline.quality import rules as quality
from llama_pipeline.write import series_history


def common(group: str, kinds: set[str]) -> dict:
    return dict(partitions_def=DAILY, group_name=group, kinds=kinds, backfill_policy=dg.BackfillPolicy.single_run(),
                owners=["team:data-engineering"])


def stored_records(archive: RawArchive, day: dt.date) -> list | None:
    """The day's stored records, or None when no payload is stored for it (a past day before the
    dataset was added: it is never filled with today's data)."""
    try:
        payload = archive.load(day)
    except MissingPayload:
        return None
    return payload.records()


class SeriesBackfillConfig(dg.Config):
    """How politely a history backfill fetches, and when it fetches again (each history asset adds which
    series to fetch)."""

    fetch_today: bool = Field(default=False, description="Fetch even when the run covers today only.")
    refetch_after_hours: float = Field(default=20.0, description="A series fetched more recently is not fetched "
                                       "again (a stopped backfill resumes with the rest).")
    concurrency: int = Field(default=4, description="Requests in flight at once.")
    requests_per_second: float = Field(default=5.0, description="Request starts per second, at most (0: no limit).")


def should_fetch(context: dg.AssetExecutionContext, fetch_today: bool) -> bool:
    """History is fetched when the run covers a day before today (a backfill) or ``fetch_today`` says
    so: the daily graph's run of today alone fetches none, and stays as fast as the yields'."""
    days = days_of(context.partition_time_window)
    return fetch_today or any(day < clock.today() for day in days)


def run_series(context: dg.AssetExecutionContext, kind: series_history.SeriesKind, keys_urls: list[tuple[str, str]],
               *, concurrency: int, requests_per_second: float, refetch_after_hours: float, client, warehouse) -> dict:
    """Fetch what is still pending of ``keys_urls`` (resumable: a series fetched within
    ``refetch_after_hours`` is not fetched again), committing a batch at a time; return the metadata."""
    keys = [key for key, _ in keys_urls]
    with warehouse.connection() as conn:
        todo = set(series_history.pending(conn, warehouse.schema_name, kind.endpoint, keys,
                                          history_selection.fetched_since(refetch_after_hours)))
    urls = [(key, url) for key, url in keys_urls if key in todo]
    context.log.info(f"{kind.endpoint}: {len(keys):,} selected, {len(keys) - len(urls):,} fetched within "
                     f"{refetch_after_hours:g} h, {len(urls):,} to fetch")
    totals = {"points": 0, "rejected_points": 0, "unusable": 0}

    def commit(batch: list) -> None:
        with warehouse.connection() as conn:
            counts = series_history.store(conn, warehouse.schema_name, kind, batch, clock.today())
        for name, value in counts.items():
            totals[name] += value

    counts = chart_fetch.fetch_many(client, urls, concurrency=concurrency, rate_per_second=requests_per_second,
                                      on_batch=commit, log=context.log.info, what=kind.endpoint,
                                      queue_ahead=2 * max(1, concurrency) if kind.large_responses else None)
    return {"series_selected": len(keys), "series_fetched": int(counts["fetched"]),
            "series_failed": totals["unusable"], "points_upserted": totals["points"],
            "rejected_points": totals["rejected_points"], "requests_per_second": counts["requests_per_second"],
            "dagster/row_count": totals["points"]}


def whole_table_check(warehouse, rule, severity) -> dg.AssetCheckResult:
    """A check of a history table as a whole (its rows are not one day's): one verdict, whatever the range."""
    with warehouse.connection() as conn:
        verdict = rule(quality.Warehouse(conn, warehouse.schema_name))
    metadata = {key: (dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value)
                for key, value in verdict.metadata.items() if value is not None}
    return dg.AssetCheckResult(passed=verdict.passed, severity=severity, description=verdict.description,
                               metadata=metadata)
