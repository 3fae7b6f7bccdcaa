#!/usr/bin/env bash
# The service's tests, as CI runs them: build the binary, the Rust tests (unit, crash/restart,
# protections), then the real-client tests: the official twilio npm package (pinned in
# package-lock.json) and the official twilio Python package (pinned in
# python-test/requirements.txt) driving the service on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n== %s\n' "$*"; }

step "cargo build -p profile-service"
cargo build -p profile-service

step "cargo test -p profile-service (unit tests, SIGKILL crash/restart test)"
cargo test -p profile-service

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
