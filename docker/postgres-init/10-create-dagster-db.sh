#!/bin/sh
# Run once by the postgres image when its data volume is first initialized: next to the warehouse
# database ($POSTGRES_DB, created by the image), create Dagster's own database ($DAGSTER_DB).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=db="${DAGSTER_DB:-dagster}" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
