"""A real ``dagster-daemon`` on a throwaway instance (runs, events and schedules in PostgreSQL), for
tests of what the daemon does on its own: sensors, the run queue, restarts.

Runs are queued (``QueuedRunCoordinator``, as ``dagster dev`` does) and launched by the daemon in
subprocesses; the daemon runs in a session of its own, so a test can SIGKILL it with everything it
started, as a crash or a machine losing power would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from llama_pipeline_tests.ui_server import ROOT, instance_yaml, repository_run_coordinator


@dataclass
class Daemon:
    home: Path
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the daemon and every process it started (code server, run workers)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def write_instance(home: Path, dagster_pg_url: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    # The repository's own storage and run coordinator (dagster.yaml: queued, dequeued by the daemon).
    coordinator = repository_run_coordinator()
    assert "QueuedRunCoordinator" in coordinator
    (home / "dagster.yaml").write_text(instance_yaml(dagster_pg_url, home / "storage", coordinator))


def child_env(home: Path, env: dict[str, str]) -> dict[str, str]:
    full = {**os.environ, **env, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    full.pop("DAGSTER_PG_URL", None)
    return full


@contextlib.contextmanager
def dagster_daemon(home: Path, dagster_pg_url: str, env: dict[str, str], log_name: str = "daemon.log"
                   ) -> Iterator[Daemon]:
    """``dagster-daemon run`` for the repository's workspace.yaml, with ``env`` added to the environment."""
    write_instance(home, dagster_pg_url)
    log_path = home / log_name
    executable = Path(sys.executable).with_name("dagster-daemon")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(executable), "run", "-w", str(ROOT / "workspace.yaml")], cwd=ROOT, env=child_env(home, env),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    daemon = Daemon(home, log_path, process)
    try:
        yield daemon
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def launch(home: Path, env: dict[str, str], job: str, partition: str) -> None:
    """Queue a run of ``job`` for ``partition`` with the dagster CLI, as a user (or the UI) would."""
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "launch", "-w", str(ROOT / "workspace.yaml"), "-j", job,
         "--tags", f'{{"dagster/partition": "{partition}"}}'],
        cwd=ROOT, env=child_env(home, env), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def wait_until(condition: Callable[[], object], what: str, daemon: Daemon, timeout: float = 300) -> object:
    """Poll ``condition`` until it returns something truthy; a deadline only so that a broken daemon
    fails the test instead of hanging it (the daemon's log goes into the message)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if daemon.process.poll() is not None:
            raise AssertionError(f"dagster-daemon exited ({daemon.process.returncode}) before {what}:\n"
                                 f"{daemon.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s:\n{daemon.log_tail()}")
        time.sleep(0.5)
