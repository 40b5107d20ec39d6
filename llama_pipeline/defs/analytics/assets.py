"""Analytics over the warehouse tables, as assets downstream of them.

Four are tables that their asset keeps up to date for the days a run loads (``llama_pipeline/
analytics_tables.py``): ``chain_daily_stats`` and ``project_daily_stats`` replace those days' rows,
``pool_latest`` recomputes the pools those days touch, and ``pool_apy_stats`` (a fixed 30-day window) is
replaced, so a day costs the same at any history length. ``pool_latest`` and ``pool_apy_stats`` are
as of the newest stored day whatever partition runs (their metadata says so: ``as_of_date``).
``pool_apy_rolling`` is a plain view that reads one pool through the primary key. The assets share the
daily partitions of the tables, so the schedule and a backfill run them after ``pool_snapshots``, and report
the figures of the run's last day for the UI's plots.
"""

import dataclasses
import datetime as dt
import time

import dagster as dg
import sqlalchemy as sa

from llama_pipeline import analytics_tables, lineage, schema
from llama_pipeline.partitions import DAILY, days_of
from llama_pipeline.warehouse import Warehouse
from llama_pipeline.warehouse_lock import quote_ident


def _type(column: sa.Column) -> str:
    return str(column.type.compile(dialect=sa.dialects.postgresql.dialect())).lower()


def _from(table: sa.Table, *names: str) -> list[dg.TableColumn]:
    """Columns a view passes through unchanged: type and description as in the table."""
    return [dg.TableColumn(name, _type(table.c[name]), description=table.c[name].comment) for name in names]


def _col(name: str, type_: str, description: str) -> dg.TableColumn:
    return dg.TableColumn(name, type_, description=description)


_POOL_ATTRIBUTES = ("pool_id", "chain", "project", "symbol", "pool_meta", "exposure", "il_risk", "stablecoin",
                    "underlying_tokens", "reward_tokens", schema.FIRST_SEEN, schema.LAST_SEEN)
_SNAPSHOT_COLUMNS = (*schema.SNAPSHOT_METRICS, "source")
_FLOAT, _BIGINT = "float", "bigint"  # "float" as the tables' column schemas spell double precision
_DAILY_STATS = [
    _col("pool_count", _BIGINT, "Pools with a snapshot that day."),
    _col("total_tvl_usd", _FLOAT, "Sum of the pools' TVL, USD."),
    _col("stablecoin_tvl_usd", _FLOAT, "TVL of the stablecoin pools, USD (NULL when none)."),
    _col("mean_apy", _FLOAT, "Mean APY of the pools, percent (outliers included)."),
    _col("median_apy", _FLOAT, "Median APY of the pools, percent."),
    _col("tvl_weighted_apy", _FLOAT, "APY weighted by TVL, percent: what a dollar spread like the TVL earns."),
    _col("max_apy", _FLOAT, "Highest APY, percent."),
    _col("outlier_count", _BIGINT, "Pools DeFiLlama flags as outliers."),
]


def _window_stats(prefix: str = "apy") -> list[dg.TableColumn]:
    return [
        column
        for days in (7, 30)
        for column in (
            _col(f"{prefix}_avg_{days}d", _FLOAT, f"Mean APY over the {days} days ending on the day, percent."),
            _col(f"{prefix}_stddev_{days}d", _FLOAT,
                 f"Sample standard deviation of the daily APY over those {days} days (volatility); NULL with one day."),
            _col(f"{prefix}_days_{days}d", _BIGINT, f"Days with an APY among those {days}."),
        )
    ]


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
        (*_from(schema.pools, *_POOL_ATTRIBUTES[:3]),
         _col("project_name", "text", "The project's display name (NULL for a project /protocols lacks)."),
         _col("project_category", "text", "The project's category."),
         *_from(schema.pools, *_POOL_ATTRIBUTES[3:]),
         _col("snapshot_date", "date", "Day of the pool's newest snapshot."),
         _col("is_current", "boolean", "True when that day is the newest day in pool_snapshots."),
         *_from(schema.pool_snapshots, *_SNAPSHOT_COLUMNS)),
        ("pool_id",),
    ),
    View(
        "pool_apy_rolling", VIEW,
        "Every snapshot with its pool's APY mean and volatility (sample standard deviation) over the 7 and 30 "
        "calendar days ending that day. A plain view: filter on pool_id, which the planner pushes below the "
        "window functions, so one pool's history reads only that pool's rows.",
        ("pool_snapshots",),
        (*_from(schema.pool_snapshots, "pool_id", "snapshot_date", "tvl_usd", "apy"), *_window_stats()),
        ("pool_id", "snapshot_date"),
    ),
    View(
        "chain_daily_stats", TABLE,
        "TVL and APY statistics per day per chain: pools, total and stablecoin TVL, mean, median, TVL-weighted "
        "and maximum APY, outliers. A table (a few hundred rows a day instead of an aggregate over millions of "
        "snapshots) whose rows for a day this asset replaces in one transaction, so readers never see a gap.",
        ("pool_snapshots", "pools"),
        (_col("chain", "text", "Canonical chain name."),
         _col("snapshot_date", "date", "Day of the snapshots."), *_DAILY_STATS),
        ("chain", "snapshot_date"),
    ),
    View(
        "project_daily_stats", TABLE,
        "TVL and APY statistics per day per project: pools, chains, total and stablecoin TVL, mean, median, "
        "TVL-weighted and maximum APY, outliers. A table whose rows for a day this asset replaces.",
        ("pool_snapshots", "pools", "projects"),
        (_col("project", "text", "Project slug."),
         _col("snapshot_date", "date", "Day of the snapshots."),
         _col("project_name", "text", "Display name."),
         _col("project_category", "text", "Category."),
         _col("chain_count", _BIGINT, "Chains the project's pools are on that day."),
         *_DAILY_STATS),
        ("project", "snapshot_date"),
    ),
    View(
        "pool_apy_stats", TABLE,
        "Per pool, as of the newest snapshot day (as_of_date): APY mean, volatility (sample standard "
        "deviation) and days over the last 7 and 30 days, the 30-day APY range and mean TVL; pools without a "
        "snapshot in those 30 days are left out. A table this asset replaces in one transaction after each load "
        "(readers keep the previous rows meanwhile); pool_apy_rolling gives the same figures for any day.",
        ("pool_snapshots", "pools"),
        (*_from(schema.pools, "pool_id", "chain", "project", "symbol", "pool_meta", "stablecoin"),
         _col("as_of_date", "date", "The newest snapshot day: the windows end here."),
         _col("apy", _FLOAT, "APY on as_of_date (NULL when the pool has no snapshot that day)."),
         _col("tvl_usd", _FLOAT, "TVL on as_of_date, USD."),
         *_window_stats()[:3],
         *_window_stats()[3:5],
         _col("apy_min_30d", _FLOAT, "Lowest APY over the 30 days."),
         _col("apy_max_30d", _FLOAT, "Highest APY over the 30 days."),
         _window_stats()[5],
         _col("tvl_avg_30d", _FLOAT, "Mean TVL over the 30 days, USD.")),
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


def _figures(cur, view: View, schema_name: str, day: dt.date) -> dict:
    """What the UI plots per partition: the figures of the run's last day. Per-day relations count the
    day's rows (an index range), so the figures cost the same at any history length."""
    qualified = f"{quote_ident(schema_name)}.{quote_ident(view.name)}"
    snapshots = f"{quote_ident(schema_name)}.pool_snapshots"
    def one(sql: str, params: tuple = ()) -> tuple:
        cur.execute(sql, params)
        return cur.fetchone()

    if view.name == "pool_latest":
        rows, current, newest = one(f"SELECT count(*), count(*) FILTER (WHERE is_current), max(snapshot_date) "
                                    f"FROM {qualified}")
        return {"dagster/row_count": rows, "current_pools": current,
                "newest_snapshot_date": newest.isoformat() if newest else "none"}
    if view.name == "pool_apy_rolling":
        # One row per snapshot by definition; counting the day's snapshots avoids computing any window.
        on_day, = one(f"SELECT count(*) FROM {snapshots} WHERE snapshot_date = %s", (day,))
        return {"dagster/row_count": on_day}
    if view.name in ("chain_daily_stats", "project_daily_stats"):
        key = "chain" if view.name == "chain_daily_stats" else "project"
        groups, tvl = one(f"SELECT count(*), coalesce(sum(total_tvl_usd), 0) FROM {qualified} WHERE snapshot_date = %s",
                          (day,))
        cur.execute(f"SELECT {key}, pool_count, total_tvl_usd, median_apy, tvl_weighted_apy FROM {qualified} "
                    f"WHERE snapshot_date = %s ORDER BY total_tvl_usd DESC NULLS LAST LIMIT 5", (day,))
        top = cur.fetchall()
        return {"dagster/row_count": groups, f"{key}_count": groups, "total_tvl_usd": float(tvl),
                f"top_{key}s_by_tvl": dg.MetadataValue.md(_markdown([key, "pools", "tvl_usd", "median_apy",
                                                                      "tvl_weighted_apy"], top))}
    rows, as_of, avg30, vol30 = one(
        "SELECT count(*), max(as_of_date), percentile_cont(0.5) WITHIN GROUP (ORDER BY apy_avg_30d), "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY apy_stddev_30d) FROM {qualified}")
    cur.execute(f"SELECT symbol, project, chain, tvl_usd, apy_avg_7d, apy_avg_30d, apy_stddev_30d FROM {qualified} "
                "ORDER BY tvl_usd DESC NULLS LAST LIMIT 5")
    top = cur.fetchall()
    return {"dagster/row_count": rows, "as_of_date": as_of.isoformat() if as_of else "none",
            "median_apy_avg_30d": float(avg30 or 0.0), "median_apy_stddev_30d": float(vol30 or 0.0),
            "largest_pools": dg.MetadataValue.md(_markdown(
                ["symbol", "project", "chain", "tvl_usd", "apy_avg_7d", "apy_avg_30d", "apy_stddev_30d"], top))}


def refresh_and_describe(view: View, warehouse: Warehouse, days: tuple[dt.date, ...], log=None) -> dict:
    """Check that the relation exists, bring it up to date for ``days`` and return its figures."""
    schema_name = warehouse.schema_name
    started = time.perf_counter()
    with warehouse.connection() as conn, conn.cursor() as cur:
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
        metadata: dict = {"dagster/table_name": f"{schema_name}.{view.name}", "view_kind": view.kind}
        if view.name == "pool_apy_stats":
            metadata["rows_written"] = analytics_tables.replace_pool_apy_stats(cur, schema_name, days[0], days[-1])
        elif view.name == "pool_latest":
            metadata["pools_recomputed"] = analytics_tables.refresh_pool_latest(cur, schema_name, days[0], days[-1])
        elif view.kind == TABLE:
            metadata["rows_written"] = analytics_tables.refresh_daily_stats(cur, schema_name, view.name,
                                                                            days[0], days[-1])
        if view.kind != VIEW:
            metadata["refresh_seconds"] = round(time.perf_counter() - started, 3)
            if log:
                log.info(f"refreshed {schema_name}.{view.name} for {len(days)} day(s) in "
                         f"{metadata['refresh_seconds']} s")
        metadata.update(_figures(cur, view, schema_name, days[-1]))
        if view.name in AS_OF_NEWEST:
            metadata.update(_as_of(cur, schema_name, days))
    return metadata


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


def _build(view: View) -> dg.AssetsDefinition:
    @dg.asset(
        name=view.name,
        description=view.description,
        group_name="analytics",
        kinds={"postgres", "sql"},
        owners=["team:data-engineering"],
        deps=list(view.deps),
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
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
    def _asset(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        days = days_of(context.partition_time_window)
        return dg.MaterializeResult(metadata=refresh_and_describe(view, warehouse, days, context.log))

    return _asset


pool_latest, pool_apy_rolling, chain_daily_stats, project_daily_stats, pool_apy_stats = (_build(v) for v in VIEWS)
