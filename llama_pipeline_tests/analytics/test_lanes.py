"""The analytics refreshed on two connections: both lanes work, nothing is committed unless every
refresh succeeds, and a second run waits for the first instead of interleaving with it (real PostgreSQL)."""

from __future__ import annotations

import threading

import pytest

from llama_pipeline.analytics import lanes
from llama_pipeline.write.warehouse import Warehouse

WAIT = 60  # seconds: only a broken lane makes a test wait this long, and then it fails


@pytest.fixture
def marks(warehouse: Warehouse, query):
    query("CREATE TABLE marks (name text PRIMARY KEY, pid int)")
    return warehouse


def _mark(cur, schema: str, name: str) -> int:
    cur.execute(f'INSERT INTO "{schema}".marks VALUES (%s, pg_backend_pid()) RETURNING pid', (name,))
    return cur.fetchone()[0]


def test_the_relations_are_refreshed_on_two_connections_at_once_and_committed(marks, query):
    second_started = threading.Event()

    def refresh(cur, name: str) -> int:
        pid = _mark(cur, marks.schema_name, name)
        if name == "first":  # holds its lane until the other lane has started a refresh: one lane never would
            assert second_started.wait(WAIT), "the second relation did not start while the first ran"
        else:
            second_started.set()
        return pid

    pids = lanes.refresh_all(marks, ["first", "second", "third"], refresh)
    assert set(pids) == {"first", "second", "third"}
    assert pids["first"] != pids["second"]
    assert query("SELECT name, pid FROM marks ORDER BY name") == sorted(pids.items())


def test_a_failed_refresh_rolls_back_every_relation_of_the_run(marks, query):
    query("INSERT INTO marks VALUES ('before', 0)")
    done = threading.Event()

    def refresh(cur, name: str) -> int:
        if name == "broken":
            assert done.wait(WAIT)  # the other lane's refresh has run (and is not yet committed)
            cur.execute(f'SELECT * FROM "{marks.schema_name}".no_such_table')
        pid = _mark(cur, marks.schema_name, name)
        done.set()
        return pid

    with pytest.raises(Exception, match="no_such_table"):
        lanes.refresh_all(marks, ["fine", "broken", "never"], refresh)
    assert query("SELECT name FROM marks") == [("before",)]
    # The same relations refresh afterwards (no lock or transaction left behind).
    assert set(lanes.refresh_all(marks, ["fine", "again"], lambda cur, name: _mark(cur, marks.schema_name, name)))
    assert query("SELECT name FROM marks ORDER BY name") == [("again",), ("before",), ("fine",)]


def test_a_second_run_waits_for_the_first_holding_nothing(marks, query, database_url):
    release, first_holds = threading.Event(), threading.Event()
    calls: list[str] = []

    def first(cur, name: str) -> int:
        calls.append(f"first:{name}")
        first_holds.set()
        assert release.wait(WAIT)
        return _mark(cur, marks.schema_name, f"first:{name}")

    def second(cur, name: str) -> int:
        calls.append(f"second:{name}")
        return _mark(cur, marks.schema_name, f"second:{name}")

    errors: list[BaseException] = []

    def run(refresh) -> None:
        try:
            lanes.refresh_all(Warehouse(database_url=database_url, schema_name=marks.schema_name), ["a", "b"], refresh)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    one = threading.Thread(target=run, args=(first,))
    one.start()
    assert first_holds.wait(WAIT)
    two = threading.Thread(target=run, args=(second,))
    two.start()
    # The second run's first lane waits on the run lock (seen in pg_stat_activity), its refreshes not begun.
    waiting = []
    for _ in range(WAIT * 20):
        waiting = query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = "
                        "'advisory' AND datname = current_database() AND query LIKE 'SELECT pg_advisory_xact_lock%%'")
        if waiting[0][0]:
            break
        threading.Event().wait(0.05)
    assert waiting == [(1,)]
    assert not [c for c in calls if c.startswith("second")]
    release.set()
    one.join(WAIT)
    two.join(WAIT)
    assert not errors and not one.is_alive() and not two.is_alive()
    assert query("SELECT name FROM marks ORDER BY name") == [("first:a",), ("first:b",), ("second:a",), ("second:b",)]
