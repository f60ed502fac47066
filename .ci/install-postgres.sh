#!/usr/bin/env bash
# Installs and starts Debian's PostgreSQL server for the relay's PostgreSQL
# storage tests (packages/relay/test/storage-postgres.test.ts), and creates
# the role and database they use. Idempotent; needs root (or sudo) and
# Debian's package mirror. Prints the connection URL the tests read from
# PARLEY_TEST_POSTGRES_URL as its last line.
set -euo pipefail
ROLE=parley
PASSWORD=parley
DATABASE=parley_test
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

# The newest installed major version; its default cluster is created by the package.
VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$VERSION main"; then
  $SUDO pg_createcluster "$VERSION" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" {print $4}' | grep -qx online; then
  $SUDO pg_ctlcluster "$VERSION" main start
fi
PORT=$(pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" {print $3}')

as_postgres() { $SUDO runuser -u postgres -- "$@"; }
for _ in $(seq 1 30); do
  if as_postgres psql -p "$PORT" -tAc 'SELECT 1' >/dev/null 2>&1; then break; fi
  sleep 1
done
if ! as_postgres psql -p "$PORT" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'" | grep -q 1; then
  as_postgres psql -p "$PORT" -qc "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'"
fi
if ! as_postgres psql -p "$PORT" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1; then
  as_postgres psql -p "$PORT" -qc "CREATE DATABASE $DATABASE OWNER $ROLE"
fi
echo "postgresql $VERSION on port $PORT: role $ROLE, database $DATABASE" >&2
echo "postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
