"""Analytics over the warehouse tables, as assets downstream of them: one multi-asset (``analytics``,
any subset) whose step refreshes the selected relations on two connections and commits them together
(``llama_pipeline/analytics/lanes.py``), so the SQL uses both cores and a failure leaves all as they were.

Four are tables that their asset keeps up to date for the days a run loads (``llama_pipeline/
analytics/tables.py``): ``chain_daily_stats`` and ``project_daily_stats`` replace those days' rows,
``pool_latest`` recomputes the pools those days touch, and ``pool_apy_stats`` (a fixed 30-day window) is
replaced, so a day costs the same at any history length. ``pool_latest`` and ``pool_apy_stats`` are
as of the newest stored day whatever partition runs (their metadata says so: ``as_of_date``).
``pool_apy_rolling`` is a plain view that reads one pool through the primary key. The assets share the
daily partitions of the tables, so the schedule and a backfill run them after ``pool_snapshots``, and report
each day's own figures on that day's materialization for the UI's plots (``day_metadata``).
"""

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator

import dagster as dg
import sqlalchemy as sa

from llama_pipeline import lineage, schema
from llama_pipeline.analytics import lanes, tables as analytics_tables
from llama_pipeline.partitions import DAILY, days_of
from llama_pipeline.write import day_metadata
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline.write.warehouse_lock import quote_ident


def _type(column: sa.Column) -> str:
    return str(column.type.compile(dialect=sa.dialects.postgresql.dialect())).lower()


def _from(table: sa.Table, *names: str) -> list[dg.TableColumn]:
    """Columns a view passes through unchanged: type and description as in the table."""
    return [dg.TableColumn(name, _type(table.c[name]), description=table.c[name].comment) for name in names]


def _all(table: sa.Table) -> tuple[dg.TableColumn, ...]:
    """A table's columns with the descriptions of its schema (the one source the README's tables use)."""
    return tuple(_from(table, *table.c.keys()))


TABLE, VIEW = "table", "view"
_RELKIND = {TABLE: "r", VIEW: "v"}


@dataclasses.dataclass(frozen=True)
class View:
    name: str
    kind: str  # TABLE or VIEW
    description: str
    deps: tuple[str, ...]
    columns: tuple[dg.TableColumn, ...]
    unique_key: tuple[str, ...]


VIEWS = (
    View(
        "pool_latest", TABLE,
        "Each pool's newest snapshot with its pool and project attributes: the warehouse's current state "
        "in one row per pool. A table kept up to date by this asset: a run recomputes only the pools with a "
        "snapshot on its days. is_current tells whether the pool was in the newest day loaded.",
        ("pools", "projects", "pool_snapshots"),
        _all(schema.pool_latest),
        ("pool_id",),
    ),
    View(
        "pool_apy_rolling", VIEW,
        "Every snapshot with its pool's APY mean and volatility (sample standard deviation) over the 7 and 30 "
        "calendar days ending that day. A plain view: filter on pool_id, which the planner pushes below the "
        "window functions, so one pool's history reads only that pool's rows.",
        ("pool_snapshots",),
        (*_from(schema.pool_snapshots, "pool_id", "snapshot_date", "tvl_usd", "apy"),
         *_from(schema.pool_apy_stats,
                *(f"apy_{figure}_{days}d" for days in (7, 30) for figure in ("avg", "stddev", "days")))),
        ("pool_id", "snapshot_date"),
    ),
    View(
        "chain_daily_stats", TABLE,
        "TVL and APY statistics per day per chain: pools, total and stablecoin TVL, mean, median, TVL-weighted "
        "and maximum APY, outliers. A table (a few hundred rows a day instead of an aggregate over millions of "
        "snapshots) whose rows for a day this asset replaces in one transaction, so readers never see a gap.",
        ("pool_snapshots", "pools"),
        _all(schema.chain_daily_stats),
        ("chain", "snapshot_date"),
    ),
    View(
        "project_daily_stats", TABLE,
        "TVL and APY statistics per day per project: pools, chains, total and stablecoin TVL, mean, median, "
        "TVL-weighted and maximum APY, outliers. A table whose rows for a day this asset replaces.",
        ("pool_snapshots", "pools", "projects"),
        _all(schema.project_daily_stats),
        ("project", "snapshot_date"),
    ),
    View(
        "pool_apy_stats", TABLE,
        "Per pool, as of the newest snapshot day (as_of_date): APY mean, volatility (sample standard "
        "deviation) and days over the last 7 and 30 days, the 30-day APY range and mean TVL; pools without a "
        "snapshot in those 30 days are left out. A table this asset replaces in one transaction after each load "
        "(readers keep the previous rows meanwhile); pool_apy_rolling gives the same figures for any day.",
        ("pool_snapshots", "pools"),
        _all(schema.pool_apy_stats),
        ("pool_id",),
    ),
)


def _markdown(columns: list[str], rows: list[tuple]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}"
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _figures(cur, view: View, schema_name: str, days: tuple[dt.date, ...]) -> dict[dt.date, dict]:
    """What the UI plots per partition, for each day of the run. Per-day relations count each day's rows
    (an index range), so the figures cost the same at any history length; the relations that describe
    the newest day only (pool_latest, pool_apy_stats) put their figures on the run's last day, and say
    so on the others."""
    qualified = f"{quote_ident(schema_name)}.{quote_ident(view.name)}"
    snapshots = f"{quote_ident(schema_name)}.pool_snapshots"
    first, last = days[0], days[-1]

    def one(sql: str, params: tuple = ()) -> tuple:
        cur.execute(sql, params)
        return cur.fetchone()

    def as_of_last(figures: dict) -> dict[dt.date, dict]:
        # One row per pool as of the newest stored day: reported once, on the run's last day.
        note = {"figures_on": f"{last.isoformat()}'s materialization (this table is one row per pool as of the "
                "newest stored day, not per day)"}
        return {**{day: note for day in days[:-1]}, last: figures}

    if view.name == "pool_latest":
        rows, current, newest = one(f"SELECT count(*), count(*) FILTER (WHERE is_current), max(snapshot_date) "
                                    f"FROM {qualified}")
        return as_of_last({"dagster/row_count": rows, "current_pools": current,
                           "newest_snapshot_date": newest.isoformat() if newest else "none"})
    if view.name == "pool_apy_rolling":
        # One row per snapshot by definition; counting each day's snapshots avoids computing any window.
        cur.execute(f"SELECT snapshot_date, count(*) FROM {snapshots} WHERE snapshot_date BETWEEN %s AND %s "
                    "GROUP BY 1", (first, last))
        counts = dict(cur.fetchall())
        return {day: {"dagster/row_count": counts.get(day, 0)} for day in days}
    if view.name in ("chain_daily_stats", "project_daily_stats"):
        key = "chain" if view.name == "chain_daily_stats" else "project"
        cur.execute(f"SELECT snapshot_date, count(*), coalesce(sum(total_tvl_usd), 0) FROM {qualified} "
                    "WHERE snapshot_date BETWEEN %s AND %s GROUP BY 1", (first, last))
        totals = {day: (groups, float(tvl)) for day, groups, tvl in cur.fetchall()}
        cur.execute(f"SELECT snapshot_date, {key}, pool_count, total_tvl_usd, median_apy, tvl_weighted_apy FROM ("
                    f"SELECT *, row_number() OVER (PARTITION BY snapshot_date ORDER BY total_tvl_usd DESC NULLS LAST) "
                    f"AS rank FROM {qualified} WHERE snapshot_date BETWEEN %s AND %s) ranked WHERE rank <= 5 "
                    "ORDER BY snapshot_date, rank", (first, last))
        top: dict[dt.date, list[tuple]] = {}
        for day, *row in cur.fetchall():
            top.setdefault(day, []).append(tuple(row))
        figures = {}
        for day in days:
            groups, tvl = totals.get(day, (0, 0.0))
            figures[day] = {"dagster/row_count": groups, f"{key}_count": groups, "total_tvl_usd": tvl,
                            f"top_{key}s_by_tvl": dg.MetadataValue.md(_markdown(
                                [key, "pools", "tvl_usd", "median_apy", "tvl_weighted_apy"], top.get(day, [])))}
        return figures
    rows, avg30, vol30 = one(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY apy_avg_30d), "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY apy_stddev_30d) FROM {qualified}")
    cur.execute(f"SELECT symbol, project, chain, tvl_usd, apy_avg_7d, apy_avg_30d, apy_stddev_30d FROM {qualified} "
                "ORDER BY tvl_usd DESC NULLS LAST LIMIT 5")
    largest = cur.fetchall()
    return as_of_last({"dagster/row_count": rows, "median_apy_avg_30d": float(avg30 or 0.0),
                       "median_apy_stddev_30d": float(vol30 or 0.0),
                       "largest_pools": dg.MetadataValue.md(_markdown(
                           ["symbol", "project", "chain", "tvl_usd", "apy_avg_7d", "apy_avg_30d", "apy_stddev_30d"],
                           largest))})


@dataclasses.dataclass(frozen=True)
class Described:
    """A refresh's figures: what is true of the whole run, and each day's own."""

    run_wide: dict
    per_day: dict[dt.date, dict]


def refresh_on(cur, view: View, schema_name: str, days: tuple[dt.date, ...]) -> Described:
    """Check that the relation exists, bring it up to date for ``days`` and return its figures, in the
    caller's transaction (the asset refreshes every relation together: ``lanes.refresh_all``)."""
    started = time.perf_counter()
    cur.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema_name, view.name),
    )
    found = cur.fetchone()
    if found is None or found[0] != _RELKIND[view.kind]:
        raise dg.Failure(
            description=f"{schema_name}.{view.name} is missing or is not a {view.kind}: the warehouse is not "
            "at the latest migration. Run `alembic upgrade head` (runs do it when they start unless "
            "migrate_on_start is off)."
        )
    metadata: dict = {"dagster/table_name": f"{schema_name}.{view.name}", "view_kind": view.kind,
                      "days": len(days)}
    if view.name == "pool_apy_stats":
        metadata["rows_written"] = analytics_tables.replace_pool_apy_stats(cur, schema_name, days[0], days[-1])
    elif view.name == "pool_latest":
        metadata["pools_recomputed"] = analytics_tables.refresh_pool_latest(cur, schema_name, days[0], days[-1])
    elif view.kind == TABLE:
        metadata["rows_written"] = analytics_tables.refresh_daily_stats(cur, schema_name, view.name,
                                                                        days[0], days[-1])
    if view.kind != VIEW:
        metadata["refresh_seconds"] = round(time.perf_counter() - started, 3)
    per_day = _figures(cur, view, schema_name, days)
    if view.name in AS_OF_NEWEST:  # true of every day of the run
        metadata.update(_as_of(cur, schema_name, days))
    return Described(metadata, per_day)


# One row per pool, as of the newest stored day: a partition says which days were loaded, not which
# day these tables describe.
AS_OF_NEWEST = ("pool_latest", "pool_apy_stats")


def _as_of(cur, schema_name: str, days: tuple[dt.date, ...]) -> dict:
    cur.execute(f"SELECT max(snapshot_date) FROM {quote_ident(schema_name)}.pool_snapshots")
    newest = cur.fetchone()[0]
    run_days = days[0].isoformat() if len(days) == 1 else f"{days[0].isoformat()}...{days[-1].isoformat()}"
    return {
        "as_of_date": newest.isoformat() if newest else "none",
        "partition_is_as_of_date": newest is not None and days[0] <= newest <= days[-1],
        "as_of": f"as of the newest stored day ({newest.isoformat() if newest else 'none'}), whatever partition "
                 f"runs; this run loaded {run_days}",
    }


def _spec(view: View) -> dg.AssetSpec:
    return dg.AssetSpec(
        view.name,
        description=view.description,
        group_name="analytics",
        kinds={"postgres", "sql"},
        owners=["team:data-engineering"],
        deps=list(view.deps),
        skippable=True,
        # Bring a day up to date by itself when a table it reads is loaded for that day outside a run that
        # included the analytics, past days too: a per-day table is not recomputed by later days.
        automation_condition=dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window()),
        metadata={
            "table": view.name,
            "view_kind": view.kind,
            "primary_key": list(view.unique_key),
            "dagster/column_schema": dg.TableSchema(columns=list(view.columns)),
            **lineage.metadata_for(view.name),
        },
    )


_BY_NAME = {view.name: view for view in VIEWS}
# The order the lanes take them in, the costliest first (a day at 17,000 pools: pool_latest 0.33 s,
# pool_apy_stats 0.25 s, project_daily_stats 0.12 s, chain_daily_stats 0.07 s, the view's count ~0): the
# longest refresh starts at once and the short ones fill the other lane.
_REFRESH_ORDER = ("pool_latest", "pool_apy_stats", "project_daily_stats", "chain_daily_stats", "pool_apy_rolling")


@dg.multi_asset(
    name="analytics",
    specs=[_spec(view) for view in VIEWS],
    can_subset=True,
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="The five analytics relations, refreshed together on two connections and committed together "
    "(llama_pipeline/analytics/lanes.py); any subset can run.",
)
def analytics(context: dg.AssetExecutionContext, warehouse: Warehouse) -> Iterator[dg.MaterializeResult]:
    days = days_of(context.partition_time_window)
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    described = lanes.refresh_all(
        warehouse, [name for name in _REFRESH_ORDER if name in selected],
        lambda cur, name: refresh_on(cur, _BY_NAME[name], warehouse.schema_name, days))
    for view in VIEWS:
        if view.name not in selected:
            continue
        figures = described[view.name]
        if "refresh_seconds" in figures.run_wide:
            context.log.info(f"refreshed {warehouse.schema_name}.{view.name} for {len(days)} day(s) in "
                             f"{figures.run_wide['refresh_seconds']} s")
        day_metadata.publish_from_asset(context, figures.per_day, asset_key=dg.AssetKey(view.name))
        yield dg.MaterializeResult(asset_key=view.name, metadata=figures.run_wide)
