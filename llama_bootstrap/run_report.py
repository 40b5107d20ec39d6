"""What ``python3 llama.py run`` shows while Dagster runs: one line per asset, progress, a summary.

Runs in the ``.venv``: ``python -m llama_bootstrap.run_report --log FILE [--verbose] -- dagster asset
materialize ...``. The Dagster command is the same one a user types (so its runs are ordinary runs of the
instance, visible in the UI); its own output (every DEBUG event) goes to ``FILE``, and to the terminal too
with ``--verbose``. What this prints comes from the run's events as the instance stores them (read while
the run goes, from the same PostgreSQL storage the UI reads), not from parsing Dagster's console output:

    raw_pools             12,345 rows    1.2 s   [1/8 steps, 0.9 steps/s, ~8 s left]
    charts 1,200/5,000 (3 failed), 5.0 req/s, ~13 min left

and at the end a summary naming the log file, or on failure each failed step's error and its causes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

_CHARTS = re.compile(r"^charts ([\d,]+)/([\d,]+) \(([\d,]+) failed\), ([\d.]+) req/s$")
_POLL_S = 0.5


def _eta(seconds: float) -> str:
    if seconds < 1:
        return "<1 s left"
    if seconds < 90:
        return f"~{seconds:.0f} s left"
    if seconds < 5400:
        return f"~{seconds / 60:.0f} min left"
    return f"~{seconds / 3600:.1f} h left"


def _say(line: str) -> None:
    print(line, flush=True)


class RunWatcher:
    """Follows one run's stored events and prints what a person wants to see of them."""

    def __init__(self, instance, run_id: str):
        self.instance, self.run_id = instance, run_id
        self.cursor: str | None = None
        self.started = time.monotonic()
        self.total_steps: int | None = None
        self.steps_done = 0
        self.rows: dict[str, int] = {}  # asset -> rows over every partition of the run
        self.step_assets: dict[str, list[str]] = {}
        self.checks = {"passed": 0, "failed": 0}
        self.failures: list[str] = []
        self.status = "started"

    def _plan_steps(self) -> int | None:
        run = self.instance.get_run_by_id(self.run_id)
        if run is None or not run.execution_plan_snapshot_id:
            return None
        return len(self.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id).steps)

    def poll(self) -> None:
        import dagster as dg

        if self.total_steps is None:
            self.total_steps = self._plan_steps()
        while True:
            conn = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=500)
            self.cursor = conn.cursor
            for record in conn.records:
                self._on(record.event_log_entry, dg.DagsterEventType)
            if not conn.has_more:
                return

    def _on(self, entry, types) -> None:
        event = entry.dagster_event
        if event is None:  # a message the run's code logged
            match = _CHARTS.match(entry.user_message or "")
            if match:
                done, total = (int(g.replace(",", "")) for g in match.groups()[:2])
                rate = float(match.group(4))
                left = _eta((total - done) / rate) if rate > 0 and done < total else "done"
                _say(f"    {entry.user_message}, {left}")
            return
        kind = event.event_type
        if kind == types.ASSET_MATERIALIZATION:
            mat = event.event_specific_data.materialization
            name = mat.asset_key.to_user_string()
            value = mat.metadata.get("dagster/row_count")
            rows = getattr(value, "value", value)
            self.rows[name] = self.rows.get(name, 0) + (int(rows) if isinstance(rows, (int, float)) else 0)
            if name not in self.step_assets.setdefault(event.step_key or "", []):
                self.step_assets[event.step_key or ""].append(name)
        elif kind == types.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            self.checks["passed" if evaluation.passed else "failed"] += 1
            if not evaluation.passed:
                severity = getattr(evaluation.severity, "value", evaluation.severity)
                name = f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name}"
                _say(f"  check {name} failed ({str(severity).lower()}); see the asset's Checks tab in the UI")
        elif kind == types.STEP_SUCCESS:
            self.steps_done += 1
            seconds = (event.event_specific_data.duration_ms or 0) / 1000
            # Check steps materialize nothing: counted in the progress and the summary, not a line each.
            for name in self.step_assets.get(event.step_key or "", []):
                _say(f"  {name:20} {self.rows.get(name, 0):>10,} rows {seconds:>6.1f} s   {self._progress()}")
        elif kind == types.STEP_FAILURE:
            self.steps_done += 1
            self.failures.append(f"{event.step_key}: {_error_text(event, entry)}")
            _say(f"  {event.step_key:20} FAILED   {self._progress()}")
        elif kind in (types.RUN_SUCCESS, types.RUN_FAILURE, types.RUN_CANCELED):
            self.status = {types.RUN_SUCCESS: "succeeded", types.RUN_FAILURE: "failed"}.get(kind, "canceled")
            if kind == types.RUN_FAILURE and not self.failures:
                self.failures.append(f"run: {_error_text(event, entry)}")

    def _progress(self) -> str:
        if not self.total_steps:
            return ""
        elapsed = time.monotonic() - self.started
        rate = self.steps_done / elapsed if elapsed > 0 else 0.0
        left = _eta((self.total_steps - self.steps_done) / rate) if rate and self.steps_done < self.total_steps else ""
        return f"[{self.steps_done}/{self.total_steps} steps, {rate:.1f} steps/s{', ' + left if left else ''}]"


def _error_text(event, entry) -> str:
    err = getattr(event.event_specific_data, "error", None)
    messages: list[str] = []
    while err is not None:
        # A dg.Failure's description is the whole message; its class path is noise to a reader.
        text = err.message.strip().removeprefix("dagster._core.definitions.events.Failure: ")
        cause_text = text.split(": ", 1)[-1]
        # A cause that only repeats what its effect already said adds nothing.
        if text and not (messages and cause_text in messages[-1]):
            messages.append(text)
        err = err.cause
    return "\n      caused by: ".join(messages) or (entry.message or "")


def _find_run(instance, since: dt.datetime, partition_tags: dict[str, str]):
    import dagster as dg

    for run in instance.get_runs(filters=dg.RunsFilter(created_after=since), limit=20):
        if all(run.tags.get(k) == v for k, v in partition_tags.items()):
            return run
    return None


def _pump(source, sink, echo: bool) -> None:
    for line in iter(source.readline, ""):
        sink.write(line)
        sink.flush()
        if echo:
            sys.stdout.write(line)
            sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llama_bootstrap.run_report")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--tag", action="append", default=[], help="KEY=VALUE a run of this command carries")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    tags = dict(t.split("=", 1) for t in args.tag)

    import dagster as dg

    instance = dg.DagsterInstance.get()
    args.log.parent.mkdir(parents=True, exist_ok=True)
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=2)
    started = time.monotonic()
    with open(args.log, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        pump = threading.Thread(target=_pump, args=(proc.stdout, log, args.verbose), daemon=True)
        pump.start()
        watcher = None
        while True:
            finished = proc.poll() is not None
            if watcher is None:
                run = _find_run(instance, since, tags)
                if run is not None:
                    watcher = RunWatcher(instance, run.run_id)
            if watcher is not None:
                watcher.poll()
            if finished:
                break
            time.sleep(_POLL_S)
        pump.join(timeout=30)
    return _summary(watcher, proc.returncode, time.monotonic() - started, args.log)


def _summary(watcher: RunWatcher | None, code: int, seconds: float, log: Path) -> int:
    if watcher is None:
        _say(f"[llama] Dagster started no run (exit code {code}); its output is in {log}:")
        _say("".join(log.read_text(errors="replace").splitlines(keepends=True)[-25:]).rstrip())
        return code or 1
    ok = code == 0 and watcher.status == "succeeded"
    assets = len(watcher.rows)
    checks = f"checks: {watcher.checks['passed']} passed, {watcher.checks['failed']} failed"
    if ok:
        _say(f"[llama] {assets} assets materialized in {seconds:.1f} s, {sum(watcher.rows.values()):,} rows; "
             f"{checks}. Dagster's full log: {log}")
        return 0
    _say(f"[llama] the run FAILED ({watcher.status}, exit code {code}) after {seconds:.1f} s. What went wrong:")
    for text in dict.fromkeys(watcher.failures):
        _say(f"  {text}")
    _say(f"  run id: {watcher.run_id}; {checks}; Dagster's full log: {log}")
    return code or 1


if __name__ == "__main__":
    sys.exit(main())
