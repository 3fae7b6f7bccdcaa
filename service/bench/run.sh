#!/usr/bin/env bash
# PATCH throughput of profile-service on loopback: a release build with its durable log in a
# fresh temporary directory, 64 profiles, then wrk (a second process) with 64 connections for
# a bounded duration. Needs `wrk` (Debian: apt-get install wrk).
# Usage: service/bench/run.sh [duration, default 10s] [connections, default 64]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10s}
connections=${2:-64}

cargo build --release -p profile-service
target_dir=$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
work=$(mktemp -d)
export TWILIO_ACCOUNT_SID=ACbench TWILIO_AUTH_TOKEN=bench-token
"$target_dir/release/profile-service" --port 0 --data-dir "$work/data" >"$work/out" 2>"$work/err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q listening "$work/out" && break; sleep 0.1; done
base=$(sed -n 's/.*listening on //p' "$work/out")
store=mem_store_00000000000000000000000000
for i in $(seq "$connections"); do
  # A create needs an identifier, and a distinct one makes a distinct profile.
  curl -sf -u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN" -H 'Content-Type: application/json' \
    -d "{\"traits\": {\"Contact\": {\"email\": \"bench$i@example.com\", \"firstName\": \"Bench\"}}}" "$base/v1/Stores/$store/Profiles" |
    sed 's/.*"id":"\([^"]*\)".*/\1/'
  echo
done >"$work/profiles"
export PROFILES="$work/profiles" AUTHORIZATION="Basic $(printf '%s:%s' "$TWILIO_ACCOUNT_SID" "$TWILIO_AUTH_TOKEN" | base64)"
test "$(grep -c '^mem_profile_' "$work/profiles")" = "$connections"
wrk -t2 -c"$connections" -d"$duration" --latency -s service/bench/patch.lua "$base"
echo "log size: $(du -h "$work/data/operations.log" | cut -f1)"
