#!/bin/sh
# Entry point of the llama-pipeline image.
#   no arguments  -> materialize today's (UTC) partition of the whole asset graph
#                    (PARTITION=YYYY-MM-DD picks another day)
#   arguments     -> run them, e.g. `alembic upgrade head`, `alembic downgrade -1`
set -eu
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
exec dagster asset materialize -m llama_pipeline.definitions --select '*' \
    --partition "${PARTITION:-$(date -u +%F)}"
