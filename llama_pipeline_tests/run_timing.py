"""Where the time of a run launched from the UI or the schedule goes, from the run's own event log.

From the run's creation (the launch) to its success: waiting in the queue for the daemon, the run
worker's start (a new process: imports and loading the code location), the run's setup (resources,
including the warehouse migration check) until the first step, the steps themselves, the gaps between
steps (Dagster's per-step and per-event bookkeeping) and the end of the run.
"""

from __future__ import annotations

import dataclasses

import dagster as dg


@dataclasses.dataclass(frozen=True)
class RunTiming:
    run_id: str
    status: str
    total: float  # run created (launched) -> run success/failure
    queued: float  # created -> the run launcher starts the run worker (the daemon's dequeue)
    worker_start: float  # run worker launched -> RUN_START (a new process: imports, loading the code)
    setup: float  # RUN_START -> first STEP_START (resources, migration check)
    steps: float  # sum of the steps' own durations
    between_steps: float  # first step start -> last step end, minus the steps
    teardown: float  # last step end -> run end
    step_count: int
    slowest_steps: tuple[tuple[str, float], ...]

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "slowest_steps": dict(self.slowest_steps)}

    def summary(self) -> str:
        return (f"{self.total:.2f} s launch to {self.status.lower()}: queue {self.queued:.2f}, worker start "
                f"{self.worker_start:.2f}, setup {self.setup:.2f}, {self.step_count} steps {self.steps:.2f} "
                f"+ {self.between_steps:.2f} between them, end {self.teardown:.2f}")


def run_timing(instance: dg.DagsterInstance, run_id: str) -> RunTiming:
    record = instance.get_run_record_by_id(run_id)
    assert record is not None, f"no run {run_id}"
    events = instance.all_logs(run_id)
    first: dict[dg.DagsterEventType, float] = {}
    starts: dict[str, float] = {}
    durations: dict[str, float] = {}
    step_ends: list[float] = []
    end = None
    kinds = dg.DagsterEventType
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        first.setdefault(kind, entry.timestamp)
        if kind == kinds.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif kind in (kinds.STEP_SUCCESS, kinds.STEP_FAILURE, kinds.STEP_SKIPPED) and event.step_key in starts:
            durations[event.step_key] = entry.timestamp - starts[event.step_key]
            step_ends.append(entry.timestamp)
        elif kind in (kinds.RUN_SUCCESS, kinds.RUN_FAILURE, kinds.RUN_CANCELED):
            end = entry.timestamp
    created = record.create_timestamp.timestamp()
    dequeued = first.get(kinds.RUN_STARTING, first.get(kinds.RUN_DEQUEUED, created))
    run_start = first.get(kinds.RUN_START, dequeued)
    step_start = min(starts.values(), default=run_start)
    last_step = max(step_ends, default=step_start)
    end = end if end is not None else last_step
    steps = sum(durations.values())
    return RunTiming(
        run_id=run_id, status=record.dagster_run.status.value, total=end - created, queued=dequeued - created,
        worker_start=run_start - dequeued, setup=step_start - run_start, steps=steps,
        between_steps=max(0.0, (last_step - step_start) - steps), teardown=end - last_step,
        step_count=len(durations),
        slowest_steps=tuple(sorted(((k, round(v, 3)) for k, v in durations.items()), key=lambda kv: -kv[1])[:8]),
    )
