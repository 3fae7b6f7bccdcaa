#!/usr/bin/env bash
# Throughput of profile-service on loopback, as ratios to the HTTP limit, in one run:
#   1. the embedded store (durable log in a temporary directory): GET of the schema's
#      TraitGroups (the cheapest route, no storage work: the HTTP limit), then PATCH;
#   2. PostgreSQL (a throwaway server, see service/scripts/temp-postgres.sh; installed from
#      Debian packages when missing): the same GET, then PATCH.
# Each server gets 64 profiles; wrk (a second process; apt-get install -y wrk) runs with
# 64 connections for a bounded duration; PATCH after a warm-up (WARMUP, default 5s). Prints
# each result, PATCH/GET ratios, and the service's CPU time per request (all its threads, from
# /proc; PostgreSQL's own is not counted).
# Usage: service/bench/run.sh [duration, default 10s] [connections, default 64]
# With PROFILE_SERVICE_BIN set, that binary is measured (to compare builds); otherwise the
# release build of this tree (built first).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10s}
connections=${2:-64}
warmup=${WARMUP:-5s}

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ -z "${PROFILE_SERVICE_BIN:-}" ]; then
  cargo build --release -p profile-service
  target_dir=$(cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
  PROFILE_SERVICE_BIN=$target_dir/release/profile-service
fi
work=$(mktemp -d)
export TWILIO_ACCOUNT_SID=ACbench TWILIO_AUTH_TOKEN=bench-token
export AUTHORIZATION="Basic $(printf '%s:%s' "$TWILIO_ACCOUNT_SID" "$TWILIO_AUTH_TOKEN" | base64)"
store=mem_store_00000000000000000000000000
pid=
# shellcheck source=../scripts/temp-postgres.sh
source service/scripts/temp-postgres.sh
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  temp_postgres_stop
  rm -rf "$work"
}
trap cleanup EXIT

# Starts the service with "$@", waits until it listens; sets base.
start() {
  : >"$work/out"
  "$PROFILE_SERVICE_BIN" --port 0 "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$work/out" && break; sleep 0.1; done
  base=$(sed -n 's/.*listening on //p' "$work/out")
  [ -n "$base" ] || { cat "$work/err" >&2; exit 1; }
}

stop() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

# Creates $connections profiles on $base, their ids in $work/profiles.
profiles() {
  for i in $(seq "$connections"); do
    # A create needs an identifier, and a distinct one makes a distinct profile.
    curl -sf -u "$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN" -H 'Content-Type: application/json' \
      -d "{\"traits\": {\"Contact\": {\"email\": \"bench$i@example.com\", \"firstName\": \"Bench\"}}}" "$base/v1/Stores/$store/Profiles" |
      sed 's/.*"id":"\([^"]*\)".*/\1/'
    echo
  done >"$work/profiles"
  test "$(grep -c '^mem_profile_' "$work/profiles")" = "$connections"
  export PROFILES="$work/profiles"
}

# A warm-up of PATCH (not measured): a fresh store's first writes also create its files
# (the log; PostgreSQL's first WAL segments, tables and indexes).
warm_up() {
  wrk -t2 -c"$connections" -d"$warmup" -s service/bench/patch.lua "$base" >/dev/null
}

# The service's CPU time so far (user and system, all threads), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# Runs wrk with script $1 against $base; prints its output and keeps the summary line in $2,
# and the service's CPU time per request (µs) in $2.cpu.
run_wrk() {
  local before
  before=$(cpu_ticks)
  wrk -t2 -c"$connections" -d"$duration" --latency -s "service/bench/$1" "$base" | tee "$work/wrk"
  grep '^requests/s:' "$work/wrk" >"$work/$2"
  awk -v ticks="$(($(cpu_ticks) - before))" -v hz="$(getconf CLK_TCK)" \
    -v n="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk")" \
    'BEGIN {printf "%.1f", ticks / hz * 1e6 / n}' >"$work/$2.cpu"
}

rate() { awk '{print $2}' "$work/$1"; }
p99() { sed 's/.*p99: \([0-9.]*\) ms.*/\1/' "$work/$1"; }

echo "== embedded store: GET TraitGroups (the HTTP limit)"
start --data-dir "$work/data"
profiles
run_wrk get.lua embedded-get
echo "== embedded store: PATCH (after a $warmup warm-up)"
warm_up
run_wrk patch.lua embedded-patch
echo "log size: $(du -h "$work/data/operations.log" | cut -f1)"
stop

temp_postgres_start
echo "== PostgreSQL: GET TraitGroups (the HTTP limit)"
start --postgres "$TEMP_PG_URL"
profiles
run_wrk get.lua pg-get
echo "== PostgreSQL: PATCH (after a $warmup warm-up)"
warm_up
run_wrk patch.lua pg-patch
stop

echo
echo "== summary ($connections connections, $duration each, $(nproc) cores)"
printf '%-28s %10s %10s %8s %12s\n' "" "requests/s" "p99 ms" "ratio" "svc µs/req"
for pair in "embedded-get:GET TraitGroups (embedded)" "embedded-patch:PATCH, embedded store" \
  "pg-get:GET TraitGroups (PostgreSQL)" "pg-patch:PATCH, PostgreSQL"; do
  key=${pair%%:*}
  limit=${key%-*}-get
  ratio=$(awk -v a="$(rate "$key")" -v b="$(rate "$limit")" 'BEGIN {printf "%.2f", a / b}')
  printf '%-28s %10s %10s %8s %12s\n' "${pair#*:}" "$(rate "$key")" "$(p99 "$key")" "${ratio}x" \
    "$(cat "$work/$key.cpu")"
done
