# Throwaway PostgreSQL and Redis servers on loopback, in a temporary directory, for tests.
# Source this file; call start_services DIR, then stop_services DIR when done.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Runs a command as the postgres user when we are root: PostgreSQL refuses to run as root.
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_services() {
  local dir=$1
  local pg_bin
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  mkdir -p "$dir/pg" "$dir/redis"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir/pg"

  PG_PORT=$(free_port)
  as_postgres "$pg_bin/initdb" -D "$dir/pg/data" -U tally --auth=trust -E UTF8 >"$dir/pg/initdb.log" 2>&1
  as_postgres "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w \
    -o "-p $PG_PORT -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  as_postgres "$pg_bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U tally tally_test

  REDIS_PORT=$(free_port)
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$dir/redis" --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

  export PG_BIN=$pg_bin PG_PORT REDIS_PORT
  export TALLY_TEST_DATABASE_URL="postgres://tally@127.0.0.1:$PG_PORT/tally_test?sslmode=disable"
  export TALLY_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  export TALLY_TEST_SERVICES_DIR=$dir
}

stop_services() {
  local dir=$1
  [ -f "$dir/redis/redis.pid" ] && kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
  if [ -n "${PG_BIN:-}" ] && [ -d "$dir/pg/data" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}
