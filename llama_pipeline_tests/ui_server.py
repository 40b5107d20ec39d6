"""A Dagster webserver on 127.0.0.1 for browser tests: a throwaway instance and warehouse schema.

The instance lives in a temporary DAGSTER_HOME whose dagster.yaml stores runs, events and schedules
in PostgreSQL with the repository's own storage block (dagster-postgres with one connection kept per
process, ``llama_pipeline/instance_storage.py``; a database of its own on the test server). Without
a daemon, runs are launched with the default run coordinator, so that a run started from the UI runs
at once in a subprocess of the webserver's code server. With ``daemon=True`` a ``dagster-daemon``
runs beside the webserver and the run coordinator is the repository's own (``dagster.yaml``: queued
runs the daemon starts), as ``python3 llama.py ui`` runs them; backfills need the daemon.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from llama_pipeline.db_url import libpq_url

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_COORDINATOR = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""

DAGSTER_YAML = """\
{instance_storage}{run_coordinator}run_launcher:
  module: dagster._core.launcher
  class: DefaultRunLauncher
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {storage}
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {storage}/logs
telemetry:
  enabled: false
nux:
  enabled: false
"""


@dataclass
class UiServer:
    url: str
    dagster_home: Path
    log_path: Path
    process: subprocess.Popen
    daemon: subprocess.Popen | None = None

    def log_tail(self, chars: int = 4000) -> str:
        text = self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""
        daemon_log = self.log_path.with_name("daemon.log")
        if daemon_log.exists():
            text += "\n--- daemon ---\n" + daemon_log.read_text(errors="replace")[-chars:]
        return text


def repository_run_coordinator() -> str:
    """The ``run_coordinator`` block of the repository's dagster.yaml, as the UI and daemon run it."""
    import yaml

    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    return yaml.safe_dump({"run_coordinator": config["run_coordinator"]}, sort_keys=False)


def repository_storage(postgres_url: str) -> str:
    """The ``storage`` block of the repository's dagster.yaml (its storage class and settings), with
    ``postgres_url`` in place of the DAGSTER_PG_URL it reads."""
    import yaml

    def resolve(node):
        if node == {"env": "DAGSTER_PG_URL"}:
            return postgres_url
        return {key: resolve(value) for key, value in node.items()} if isinstance(node, dict) else node

    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    return yaml.safe_dump({"storage": resolve(config["storage"])}, sort_keys=False)


def instance_yaml(postgres_url: str, storage: Path, run_coordinator: str) -> str:
    """A test instance's dagster.yaml: the repository's storage, ``run_coordinator``, files under ``storage``."""
    return DAGSTER_YAML.format(instance_storage=repository_storage(postgres_url), storage=storage,
                               run_coordinator=run_coordinator)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def dagster_database(server_url: str) -> Iterator[str]:
    """A database for Dagster's own storage on the test server; its SQLAlchemy URL. Dropped at exit."""
    name = f"dagster_ui_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(libpq_url(server_url))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        base = libpq_url(server_url).split("?")[0].rsplit("/", 1)[0]
        yield re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg2://", base) + "/" + name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextlib.contextmanager
def dagster_webserver(
    home: Path, dagster_pg_url: str, env: dict[str, str], startup_timeout: float = 180.0, daemon: bool = False,
) -> Iterator[UiServer]:
    """``dagster-webserver`` for the repository's workspace.yaml, with ``env`` added to the environment
    (and ``dagster-daemon`` beside it with ``daemon``)."""
    home.mkdir(parents=True, exist_ok=True)
    storage = home / "storage"
    coordinator = repository_run_coordinator() if daemon else DEFAULT_COORDINATOR
    (home / "dagster.yaml").write_text(instance_yaml(dagster_pg_url, storage, coordinator))
    port = free_port()
    log_path = home / "webserver.log"
    full_env = {**os.environ, **env, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    full_env.pop("DAGSTER_PG_URL", None)
    webserver = Path(sys.executable).with_name("dagster-webserver")
    command = [str(webserver)] if webserver.exists() else [sys.executable, "-m", "dagster_webserver"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port), "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = UiServer(f"http://127.0.0.1:{port}", home, log_path, process)
    if daemon:
        executable = Path(sys.executable).with_name("dagster-daemon")
        with open(home / "daemon.log", "wb") as log:
            server.daemon = subprocess.Popen(
                [str(executable), "run", "-w", str(ROOT / "workspace.yaml")],
                cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited ({process.returncode}):\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(server.url + "/server_info", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dagster-webserver did not answer in {startup_timeout:.0f} s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        for started in (server.daemon, process):
            if started is not None and started.poll() is None:
                _stop(started)


def _stop(process: subprocess.Popen) -> None:
    # Its own session: the code server and run processes it started stop with it.
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=10)


def run_failure_details(dagster_home: Path) -> str:
    """The errors of the instance's latest run, for an assertion message."""
    from dagster import DagsterEventType, DagsterInstance

    lines = []
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(limit=1)
        if not runs:
            return "no run was recorded"
        run = runs[0]
        lines.append(f"run {run.run_id}: {run.status}")
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            error = getattr(getattr(event, "event_specific_data", None), "error", None) if event else None
            if event is not None and (error is not None or event.event_type in (
                    DagsterEventType.RUN_FAILURE, DagsterEventType.STEP_FAILURE, DagsterEventType.ENGINE_EVENT)):
                text = record.message or ""
                while error is not None:
                    text += f"\n  {error.message.strip()}"
                    error = error.cause
                if error is not None or event.event_type != DagsterEventType.ENGINE_EVENT or "rror" in text:
                    lines.append(f"{event.event_type_value} {event.step_key or ''}: {text}")
    return "\n".join(lines)
