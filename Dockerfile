# syntax=docker/dockerfile:1
# One image for every Python service of docker-compose.yml: migrate, user-code (gRPC), webserver,
# daemon and ingestion. No credentials in here: they come from the environment at run time
# (docker-compose.yml builds them from .env).
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DAGSTER_HOME=/opt/llama \
    DAGSTER_STORAGE_DIR=/opt/dagster/storage

RUN useradd --system --uid 10001 --user-group --home-dir /opt/llama --shell /usr/sbin/nologin llama

WORKDIR /opt/llama

# Dependencies first, from the runtime lock (no test tools, no embedded server), so code changes don't
# reinstall them. The lock is complete and hashed: nothing is resolved or fetched unverified.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

COPY pyproject.toml README.md alembic.ini dagster.yaml ./
COPY llama_pipeline ./llama_pipeline
COPY migrations ./migrations
COPY docker ./docker
RUN pip install --no-deps . \
    && python -c "import llama_pipeline.definitions" \
    && mkdir -p /opt/dagster/storage \
    && chown -R llama:llama /opt/dagster

USER llama
EXPOSE 3000 4000
# No arguments: materialize today's (UTC) partition of every asset. With arguments: run them
# (e.g. `alembic upgrade head`, `dagster-webserver ...`).
ENTRYPOINT ["sh", "/opt/llama/docker/entrypoint.sh"]
