#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests, run as the unprivileged
# `postgres` user (initdb refuses root) on a local port with a socket in /tmp.
#
#   scripts/pg-cluster.sh start DIR PORT   # prints the postgres:// URL
#   scripts/pg-cluster.sh restart DIR      # pg_ctl restart -m fast (same settings)
#   scripts/pg-cluster.sh stop DIR
#   scripts/pg-cluster.sh run DIR PORT CMD...  # CMD with REFOLD_TEST_PG_URL set: on the
#                                              # URL already in it, else on a cluster
#                                              # started for CMD and stopped after it
#
# The settings trade durability for speed (fsync=off, synchronous_commit=off): fine for
# tests, never for data you keep. PG_DURABLE=1 keeps PostgreSQL's durable defaults
# instead (for benchmarks; they report the settings they ran with).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}
bin=/usr/lib/postgresql/15/bin
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
  port=${3:-55432}
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  fi
  # A cluster left running by an interrupted run: stop it so the settings below apply.
  as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 &&
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
  opts="-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=400"
  [ "${PG_DURABLE:-0}" = 1 ] || opts="$opts -c fsync=off -c synchronous_commit=off"
  as_pg "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/log" -o "$opts" start >/dev/null
  echo "postgres://postgres@127.0.0.1:$port/postgres"
  ;;
restart)
  as_pg "$bin/pg_ctl" -D "$dir/data" -w -m fast -l "$dir/log" restart >/dev/null
  ;;
run)
  port=${3:?port}
  shift 3
  [ -n "${REFOLD_TEST_PG_URL:-}" ] && exec "$@"
  REFOLD_TEST_PG_URL=$("$0" start "$dir" "$port")
  export REFOLD_TEST_PG_URL
  status=0
  "$@" || status=$?
  "$0" stop "$dir"
  exit $status
  ;;
stop)
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: $0 start DIR PORT | restart DIR | stop DIR | run DIR PORT CMD..." >&2
  exit 2
  ;;
esac
