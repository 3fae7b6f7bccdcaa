#!/usr/bin/env bash
# The service's tests, as CI runs them: build the binary, start a throwaway PostgreSQL
# (installed from Debian packages when missing; stopped on exit), the Rust tests (unit,
# crash/restart, protections, two instances and a database restart on PostgreSQL), the API
# and identity tests once more on PostgreSQL, then the real-client tests: the official
# twilio npm package (pinned in package-lock.json) and the official twilio Python package
# (pinned in python-test/requirements.txt) driving the service on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n== %s\n' "$*"; }

step "cargo build -p profile-service"
cargo build -p profile-service

step "PostgreSQL: a throwaway server for the tests"
# shellcheck source=scripts/temp-postgres.sh
source service/scripts/temp-postgres.sh
trap temp_postgres_stop EXIT
temp_postgres_start
export PROFILE_SERVICE_POSTGRES_URL=$TEMP_PG_URL PROFILE_SERVICE_POSTGRES_RESTART=$TEMP_PG_RESTART

step "cargo test -p profile-service (unit tests, SIGKILL crash/restart, two instances and a database restart on PostgreSQL)"
cargo test -p profile-service

step "cargo test -p profile-service --test api --test identity on PostgreSQL"
PROFILE_SERVICE_TEST_STORAGE=postgres cargo test -p profile-service --test api --test identity

# Where cargo put the binary (honours CARGO_TARGET_DIR and cargo configuration).
target_dir=$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
export PROFILE_SERVICE_BIN="$target_dir/debug/profile-service"

step "real client: npm ci && node --test (twilio helper library against $PROFILE_SERVICE_BIN)"
cd service/client-test
npm ci --no-audit --no-fund
node --test

step "real client: Python twilio 9.x (pinned) in service/python-test/.venv, python3 -m unittest"
cd "$root/service/python-test"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python -m unittest discover -v
