# Sourced by service/run-tests.sh and service/bench/run.sh: a throwaway PostgreSQL server.
#
# temp_postgres_start: installs PostgreSQL from Debian packages when no server binaries are
# found (`apt-get install -y postgresql`, as root), then runs initdb and pg_ctl as the
# `postgres` user (through runuser when run as root, as CI is) in a fresh temporary
# directory, listening on 127.0.0.1 on a free port. Sets:
#   TEMP_PG_URL      postgresql://postgres@127.0.0.1:PORT/postgres (trust authentication)
#   TEMP_PG_RESTART  a shell command that restarts that server (pg_ctl restart -m fast)
#   TEMP_PG_DIR      the temporary directory (data, log, socket)
# temp_postgres_stop: stops it and removes the directory. Callers trap it on EXIT.

temp_pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
  fi
}

temp_pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

temp_postgres_start() {
  local bin port
  bin=$(temp_pg_bin)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "temp-postgres: no PostgreSQL in /usr/lib/postgresql/*/bin and not root to install it" >&2
      return 1
    fi
    echo "temp-postgres: installing PostgreSQL (apt-get install -y postgresql)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(temp_pg_bin)
    [ -n "$bin" ] || { echo "temp-postgres: PostgreSQL still missing after apt-get" >&2; return 1; }
  fi
  TEMP_PG_DIR=$(mktemp -d /tmp/profile-service-pg.XXXXXX)
  chmod 755 "$TEMP_PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$TEMP_PG_DIR"; fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  temp_pg_as_owner "$bin/initdb" -D "$TEMP_PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync \
    >"$TEMP_PG_DIR/initdb.log" 2>&1 || { cat "$TEMP_PG_DIR/initdb.log" >&2; return 1; }
  temp_pg_as_owner "$bin/pg_ctl" -D "$TEMP_PG_DIR/data" -l "$TEMP_PG_DIR/server.log" -w -t 60 \
    -o "-p $port -k $TEMP_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null ||
    { cat "$TEMP_PG_DIR/server.log" >&2; return 1; }
  TEMP_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  if [ "$(id -u)" = 0 ]; then
    TEMP_PG_RESTART="runuser -u postgres -- $bin/pg_ctl -D $TEMP_PG_DIR/data -l $TEMP_PG_DIR/server.log -w -t 60 -m fast restart >/dev/null"
  else
    TEMP_PG_RESTART="$bin/pg_ctl -D $TEMP_PG_DIR/data -l $TEMP_PG_DIR/server.log -w -t 60 -m fast restart >/dev/null"
  fi
  TEMP_PG_BIN=$bin
  echo "temp-postgres: $("$bin/postgres" --version) on $TEMP_PG_URL (data in $TEMP_PG_DIR)" >&2
}

temp_postgres_stop() {
  if [ -n "${TEMP_PG_DIR:-}" ] && [ -d "$TEMP_PG_DIR/data" ]; then
    temp_pg_as_owner "$TEMP_PG_BIN/pg_ctl" -D "$TEMP_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "${TEMP_PG_DIR:-}" ]; then rm -rf "$TEMP_PG_DIR"; fi
  TEMP_PG_DIR=
}
