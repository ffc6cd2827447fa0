#!/usr/bin/env bash
# bench/run.sh - refold's benchmarks (issue 9), each figure beside its reference,
# measured on the same machine in the same run. `make bench` runs it; see
# bench/README.md for what every figure means.
#
#   bench/run.sh [--full | --scale N] [--runs N] [--duration S] [--out FILE]
#
#   --scale N     1/N of the full data set (default 20: 50,000 traces)
#   --full        the full data set (1,000,000 traces, 3,000,000 executions)
#   --runs N      repetitions of every measurement; the figure is the median (default 3)
#   --duration S  seconds per wrk run (default 10)
#   --out FILE    results file (default bench/results/<YYYY-MM-DD>.md, -full when --full)
#
# Environment: BUILD (build directory, default ./build), BENCH_WORK (scratch space for
# data and databases, default $BUILD/bench-work; the full size needs about 8 GB).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
WORK=${BENCH_WORK:-$BUILD/bench-work}
SCALE=20
RUNS=3
DURATION=10
SEED=9
OUT=
WRK_THREADS=2
WRK_CONNS=64

while [ $# -gt 0 ]; do
  case "$1" in
    --full) SCALE=1 ;;
    --scale) SCALE=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --out) OUT=$2; shift ;;
    *) echo "usage: bench/run.sh [--full | --scale N] [--runs N] [--duration S] [--out FILE]" >&2
       exit 2 ;;
  esac
  shift
done
if [ -z "$OUT" ]; then
  OUT=$ROOT/bench/results/$(date -u +%Y-%m-%d)$([ "$SCALE" = 1 ] && echo -full || true).md
fi

log() { printf '%s bench: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target bench_tools -j"$(nproc)" >/dev/null
BIN=$BUILD/refold
TOOLS=$BUILD/bench
RECOUNT=$ROOT/tests/data/recount.sql
mkdir -p "$WORK" "$(dirname "$OUT")"

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# ---- helpers ----

median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
# Latency as printed by wrk (123.45us, 1.23ms, 1.02s) in milliseconds.
to_ms() {
  awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)}
        else if (v ~ /m$/) {sub(/m$/,"",v); v*=60000} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000};
        printf "%.3f\n", v}'
}
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
wrk_pct() { awk -v p="$2%" '$1 == p {print $2}' "$1" | to_ms; }
kv() { awk -F= -v k="$2" '$1 == k {print substr($0, length(k) + 2)}' "$1"; }
rss_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# Start `refold serve` on db (dir holds its files); sets SRV_PID and SRV_URL.
start_refold() {
  local dir=$1 db=$2
  rm -f "$dir/port"
  REFOLD_LOG=warn "$BIN" serve --db "$db" --listen 127.0.0.1:0 --port-file "$dir/port" \
    2>>"$dir/serve.log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  for _ in $(seq 200); do [ -s "$dir/port" ] && break; sleep 0.05; done
  SRV_URL=http://127.0.0.1:$(cat "$dir/port")
}

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# ---- machine ----

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)
MEM_TOTAL=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
log "machine: $(nproc) CPUs, $MEM_TOTAL, load $LOAD_START"

# ---- data ----

DATA=$WORK/data-scale$SCALE-seed$SEED
if [ ! -s "$DATA/manifest" ]; then
  log "generating data (scale 1/$SCALE) into $DATA"
  mkdir -p "$DATA"
  "$TOOLS/bench_gen" --scale "$SCALE" --seed "$SEED" --out "$DATA"
fi
NTRACES=$(kv "$DATA/manifest" traces)
NFEEDBACK=$(kv "$DATA/manifest" feedback)
NEXEC=$(kv "$DATA/manifest" executions)
NRECORDS=$((NTRACES + NFEEDBACK + NEXEC))

# ---- ingestion ----

RUN=$WORK/run
USE_IMPORT=no
if "$BIN" help import >/dev/null 2>&1; then USE_IMPORT=yes; fi
IMPORT_RATES=() TRACE_RATES=() REF_RATES=()
for r in $(seq "$RUNS"); do
  rm -rf "$RUN" && mkdir -p "$RUN"
  KEY=$("$BIN" init --db "$RUN/db.sqlite" --no-config 2>/dev/null | grep -oE 'rf_[a-z0-9]+' | head -1)
  start_refold "$RUN" "$RUN/db.sqlite"
  if [ "$USE_IMPORT" = yes ]; then
    log "ingestion $r/$RUNS: refold import"
    t0=$(date +%s.%N)
    REFOLD_DB=$RUN/db.sqlite REFOLD_URL=$SRV_URL REFOLD_API_KEY=$KEY \
      "$BIN" import "$DATA/data.jsonl" >"$RUN/import.out" 2>&1
    t1=$(date +%s.%N)
    IMPORT_RATES+=("$(awk -v n="$NRECORDS" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')")
  else
    log "ingestion $r/$RUNS: API batches (bench_load)"
    "$TOOLS/bench_load" --url "$SRV_URL" --key "$KEY" --file "$DATA/data.jsonl" --conns 4 \
      >"$RUN/load.out"
    IMPORT_RATES+=("$(awk '$1 == "phase=total" {sub(/rate=/, "", $4); print $4}' "$RUN/load.out")")
    TRACE_RATES+=("$(awk '$1 == "phase=traces" {sub(/rate=/, "", $4); print $4}' "$RUN/load.out")")
  fi
  LOAD_RSS=$(rss_kib "$SRV_PID" VmHWM)
  stop_pid "$SRV_PID"

  log "ingestion $r/$RUNS: reference, sqlite3 .import of traces.csv"
  rm -f "$WORK/ref.db" "$WORK/ref.db-wal" "$WORK/ref.db-shm"
  t0=$(date +%s.%N)
  sqlite3 "$WORK/ref.db" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE traces (
    id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, agent_id TEXT NOT NULL,
    agent_version_id TEXT NOT NULL, source TEXT NOT NULL, external_id TEXT,
    "timestamp" BIGINT NOT NULL, input TEXT NOT NULL, output TEXT NOT NULL, steps TEXT,
    metadata TEXT, created_at BIGINT NOT NULL, UNIQUE (workspace_id, source, external_id));
.import --csv $DATA/traces.csv traces
SQL
  t1=$(date +%s.%N)
  REF_RATES+=("$(awk -v n="$NTRACES" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')")
done
rm -f "$WORK/ref.db" "$WORK/ref.db-wal" "$WORK/ref.db-shm"
DB=$RUN/db.sqlite

STORE_RATES=()
for r in $(seq "$RUNS"); do
  log "ingestion $r/$RUNS: store level (bench_ingest)"
  rm -rf "$WORK/ingest" && mkdir -p "$WORK/ingest"
  "$BIN" init --db "$WORK/ingest/db.sqlite" --no-config >/dev/null 2>&1
  "$TOOLS/bench_ingest" --db "$WORK/ingest/db.sqlite" "$DATA/data.jsonl" >"$WORK/ingest.out"
  STORE_RATES+=("$(awk '$1 == "phase=total" {sub(/rate=/, "", $4); print $4}' "$WORK/ingest.out")")
done
rm -rf "$WORK/ingest"
STORE_RATE=$(printf '%s\n' "${STORE_RATES[@]}" | median)
IMPORT_RATE=$(printf '%s\n' "${IMPORT_RATES[@]}" | median)
TRACE_RATE=$([ ${#TRACE_RATES[@]} -gt 0 ] && printf '%s\n' "${TRACE_RATES[@]}" | median || echo "")
REF_RATE=$(printf '%s\n' "${REF_RATES[@]}" | median)

log "counters after loading: recount"
MISMATCH_LOAD=$(sqlite3 "$DB" <"$RECOUNT" | wc -l)

# ---- store-level queries ----

log "store-level queries ($RUNS runs)"
for r in $(seq "$RUNS"); do
  "$TOOLS/bench_query" --db "$DB" --runs 2000 --ref-runs 5 >"$WORK/query-$r.out"
done
q() { for r in $(seq "$RUNS"); do kv "$WORK/query-$r.out" "$1"; done | median; }
C_P50=$(q contradictions.p50_ms) C_P99=$(q contradictions.p99_ms)
J_P50=$(q ref_join.p50_ms) J_P99=$(q ref_join.p99_ms)
A_P50=$(q agent_get.p50_ms) A_P99=$(q agent_get.p99_ms)
N_P50=$(q ref_count.p50_ms)
AGENT=$(kv "$WORK/query-1.out" agent)

# ---- HTTP ----

start_refold "$RUN" "$DB"
curl -sf "$SRV_URL/healthz" >/dev/null
sleep 1
RSS_IDLE=$(rss_kib "$SRV_PID" VmRSS)
AUTH="Authorization: Bearer $KEY"

log "GET /v1/agents/{id}: latency on one connection ($RUNS runs)"
GET1_P50=()
for r in $(seq "$RUNS"); do
  wrk -t1 -c1 -d5s --latency -H "$AUTH" "$SRV_URL/v1/agents/$AGENT" >"$WORK/get1-$r.out"
  GET1_P50+=("$(wrk_pct "$WORK/get1-$r.out" 50)")
done

log "GET /v1/agents/{id} vs hello under wrk -t$WRK_THREADS -c$WRK_CONNS ($RUNS runs each, interleaved)"
rm -f "$WORK/hello.port"
"$TOOLS/bench_hello" --port-file "$WORK/hello.port" &
HELLO_PID=$!
PIDS+=("$HELLO_PID")
for _ in $(seq 100); do [ -s "$WORK/hello.port" ] && break; sleep 0.05; done
HELLO_URL=http://127.0.0.1:$(cat "$WORK/hello.port")/
HELLO_RPS=() GET_RPS=() GET_P99=()
for r in $(seq "$RUNS"); do
  wrk -t$WRK_THREADS -c$WRK_CONNS -d"${DURATION}s" --latency "$HELLO_URL" >"$WORK/hello-$r.out"
  HELLO_RPS+=("$(wrk_rps "$WORK/hello-$r.out")")
  wrk -t$WRK_THREADS -c$WRK_CONNS -d"${DURATION}s" --latency -H "$AUTH" \
    "$SRV_URL/v1/agents/$AGENT" >"$WORK/get-$r.out"
  GET_RPS+=("$(wrk_rps "$WORK/get-$r.out")")
  GET_P99+=("$(wrk_pct "$WORK/get-$r.out" 99)")
done
stop_pid "$HELLO_PID"

sqlite3 "$DB" "SELECT id FROM traces ORDER BY id" | shuf --random-source=<(yes) >"$WORK/ids.txt"
PUT_ACKED=0 PUT_MISSING=0 PUT_ERRORS=0
# One PUT run: put_run TAG THREADS CONNS; sets PR_RPS, PR_P50, PR_P99 and adds to the totals.
put_run() {
  local tag=$1 threads=$2 conns=$3 out=$WORK/put-$1.out acked missing
  rm -rf "$WORK/acks" && mkdir -p "$WORK/acks"
  BENCH_IDS=$WORK/ids.txt BENCH_THREADS=$threads BENCH_TAG=$tag BENCH_ACKS=$WORK/acks \
    wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency \
    -s "$ROOT/bench/wrk/put_feedback.lua" -H "$AUTH" "$SRV_URL" >"$out"
  PUT_ERRORS=$((PUT_ERRORS + $(awk '/Non-2xx/ {print $NF}' "$out" | grep . || echo 0)))
  # Every acknowledged write must be in the database: the last one acknowledged for each
  # trace, unless a later write of this run replaced it (the id list is walked round again
  # when a run makes more writes than there are traces, and the writes in flight when wrk
  # stops are applied without being acknowledged).
  cat "$WORK"/acks/acks-*.txt >"$WORK/acks.txt"
  read -r acked missing < <(sqlite3 -separator ' ' "$DB" <<SQL
CREATE TEMP TABLE acks (trace_id TEXT, rating TEXT, note TEXT, at TEXT);
.import $WORK/acks.txt acks
CREATE INDEX temp.acks_trace ON acks (trace_id, at);
WITH last AS (SELECT a.*, CAST(strftime('%s', substr(a.at, 1, 19)) AS INTEGER) * 1000
                          + CAST(substr(a.at, 21, 3) AS INTEGER) AS at_ms
                FROM acks a WHERE a.at = (SELECT MAX(b.at) FROM acks b
                                           WHERE b.trace_id = a.trace_id))
SELECT (SELECT COUNT(*) FROM acks),
       (SELECT COUNT(*) FROM last l LEFT JOIN main.feedback f ON f.trace_id = l.trace_id
         WHERE f.trace_id IS NULL
            OR NOT ((f.rating = l.rating AND f.note = l.note)
                    OR (f.updated_at > l.at_ms AND f.note LIKE '$tag-%')));
SQL
  )
  PUT_ACKED=$((PUT_ACKED + acked))
  PUT_MISSING=$((PUT_MISSING + missing))
  PR_RPS=$(wrk_rps "$out") PR_P50=$(wrk_pct "$out" 50) PR_P99=$(wrk_pct "$out" 99)
}
log "PUT /v1/traces/{id}/feedback under wrk -t$WRK_THREADS -c$WRK_CONNS ($RUNS runs)"
PUT_RPS=() PUT_P50=() PUT_P99=()
for r in $(seq "$RUNS"); do
  put_run "run$r" "$WRK_THREADS" "$WRK_CONNS"
  PUT_RPS+=("$PR_RPS") PUT_P50+=("$PR_P50") PUT_P99+=("$PR_P99")
done
# The same at half the connections: wrk's p99 at -c64 is mostly queueing (64 requests in
# flight on 2 cores that also run wrk), which fewer connections show apart.
PUT_CONNS2=$((WRK_CONNS / 2))
log "PUT /v1/traces/{id}/feedback under wrk -t1 -c$PUT_CONNS2 ($RUNS runs)"
PUT2_RPS=() PUT2_P50=() PUT2_P99=()
for r in $(seq "$RUNS"); do
  put_run "half$r" 1 "$PUT_CONNS2"
  PUT2_RPS+=("$PR_RPS") PUT2_P50+=("$PR_P50") PUT2_P99+=("$PR_P99")
done
# The server's own view of PUT latency (from the arrival of the request to the end of the
# response, /metrics histogram): the bucket bound under which 99 % of them finished.
PUT_SERVER_P99=$(curl -sf "$SRV_URL/metrics" | awk '
  /^refold_http_request_duration_seconds_bucket/ && index($0, "method=\"PUT\",route=\"/v1/traces/{id}/feedback\"") {
    match($0, /le="[^"]*"/); n++; bound[n] = substr($0, RSTART + 4, RLENGTH - 5); count[n] = $NF }
  END { for (i = 1; i <= n; i++) if (count[i] >= 0.99 * count[n]) {
          print (bound[i] == "+Inf" ? "+Inf" : bound[i] * 1000 " ms"); exit } }')
RSS_AFTER=$(rss_kib "$SRV_PID" VmRSS)
RSS_PEAK=$(rss_kib "$SRV_PID" VmHWM)
stop_pid "$SRV_PID"

log "GET /v1/agents/{id} with every response rendered (REFOLD_HTTP_MEMO=0, $RUNS runs)"
REFOLD_HTTP_MEMO=0 start_refold "$RUN" "$DB"
NOMEMO_RPS=()
for r in $(seq "$RUNS"); do
  wrk -t$WRK_THREADS -c$WRK_CONNS -d"${DURATION}s" --latency -H "$AUTH" \
    "$SRV_URL/v1/agents/$AGENT" >"$WORK/get-nomemo-$r.out"
  NOMEMO_RPS+=("$(wrk_rps "$WORK/get-nomemo-$r.out")")
done
stop_pid "$SRV_PID"

log "counters after the writes: recount"
MISMATCH_PUT=$(sqlite3 "$DB" <"$RECOUNT" | wc -l)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ----

med() { printf '%s\n' "$@" | median; }
GET1=$(med "${GET1_P50[@]}")
HELLO=$(med "${HELLO_RPS[@]}")
GET=$(med "${GET_RPS[@]}")
NOMEMO=$(med "${NOMEMO_RPS[@]}")
NOMEMO_RATIO=$(awk -v a="$NOMEMO" -v b="$HELLO" 'BEGIN {printf "%.0f", 100 * a / b}')
GETP99=$(med "${GET_P99[@]}")
PUT=$(med "${PUT_RPS[@]}")
PUTP50=$(med "${PUT_P50[@]}")
PUTP99=$(med "${PUT_P99[@]}")
PUT2=$(med "${PUT2_RPS[@]}")
PUT2P50=$(med "${PUT2_P50[@]}")
PUT2P99=$(med "${PUT2_P99[@]}")
RATIO=$(awk -v a="$GET" -v b="$HELLO" 'BEGIN {printf "%.0f", 100 * a / b}')
ok() { if awk "BEGIN {exit !($1)}"; then echo "yes"; else echo "**no**"; fi; }
# 1234567.8 -> 1,234,568
fmt() {
  awk -v v="$1" 'BEGIN {s = sprintf("%.0f", v); o = "";
    while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
    print s o}'
}
INGEST_HOW=$([ "$USE_IMPORT" = yes ] && echo '`refold import data.jsonl`' ||
  echo 'HTTP API batches of 1,000 on 4 keep-alive connections (`bench_load`; `refold import` does not exist yet)')
list() { local IFS=', '; echo "$*"; }

{
  echo "# refold benchmarks, $(date -u +%Y-%m-%d)"
  echo
  echo "Data set: scale 1/$SCALE of issue 9's full size (seed $SEED): $(fmt "$NTRACES") traces"
  echo "over 10 agents (the largest holds $(fmt "$(kv "$DATA/manifest" largest_agent_traces)")),"
  echo "$(fmt "$NFEEDBACK") ratings, $(fmt "$NEXEC") eval executions. Every figure is the median of"
  echo "$RUNS runs; wrk runs last ${DURATION} s."
  echo
  echo "Machine: $(nproc) CPUs ($CPU_MODEL), $MEM_TOTAL memory, Linux $(uname -r);"
  echo "load average $LOAD_START at the start, $LOAD_END at the end (other work on the machine"
  echo "shows there). SQLite $(sqlite3 --version | cut -d' ' -f1), libmicrohttpd"
  echo "$(pkg-config --modversion libmicrohttpd), refold $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')."
  echo
  echo "| what | target | refold | met | reference | reference figure |"
  echo "|---|---|---|---|---|---|"
  echo "| top 20 contradictions of the largest agent, the job's query (store level), p50 / p99 | < 2 ms / < 10 ms | $C_P50 ms / $C_P99 ms | $(ok "$C_P50 < 2 && $C_P99 < 10") | the same query as a plain 4-table join ordered by feedback time | $J_P50 ms / $J_P99 ms |"
  echo "| \`GET /v1/agents/{id}\` with stats, largest agent, p50 (HTTP, one connection) | < 5 ms | $GET1 ms | $(ok "$GET1 < 5") | \`COUNT(*)\` over the agent's rated executions | $N_P50 ms |"
  echo "| … the same read at store level (\`store_agent_get\` with stats), p50 / p99 | — | $A_P50 ms / $A_P99 ms | | | |"
  echo "| ingestion, records/s (traces, then ratings, then executions; $([ "$USE_IMPORT" = yes ] && echo '`refold import`' || echo 'HTTP batches')) | ≥ 100,000 (\`refold import\`) | $(fmt "$IMPORT_RATE") | $([ "$USE_IMPORT" = yes ] && ok "$IMPORT_RATE >= 100000" || echo "n/a: API batches, no \`refold import\` yet") | \`sqlite3\` \`.import\` of the same traces as CSV into a table with the same keys, rows/s | $(fmt "$REF_RATE") |"
  if [ -n "$TRACE_RATE" ]; then
    echo "| … traces alone, records/s | — | $(fmt "$TRACE_RATE") | | (same reference) | $(fmt "$REF_RATE") |"
  fi
  echo "| … the store's batch calls without HTTP (\`bench_ingest\`: one thread, JSON parsing included), records/s | — | $(fmt "$STORE_RATE") | | | |"
  echo "| \`GET /v1/agents/{id}\` under \`wrk -t$WRK_THREADS -c$WRK_CONNS\`, requests/s | ≥ 50 % of hello | $(fmt "$GET") ($RATIO %, p99 $GETP99 ms) | $(ok "$RATIO >= 50") | libmicrohttpd hello-JSON handler (\`bench/hello.c\`), same wrk | $(fmt "$HELLO") |"
  echo "| … every response rendered (\`REFOLD_HTTP_MEMO=0\`), requests/s | — | $(fmt "$NOMEMO") ($NOMEMO_RATIO %) | | (same reference) | $(fmt "$HELLO") |"
  echo "| \`PUT /v1/traces/{id}/feedback\` under \`wrk -t$WRK_THREADS -c$WRK_CONNS\` | ≥ 10,000 req/s, p99 < 20 ms, every write present | $(fmt "$PUT") req/s, p50 $PUTP50 ms, p99 $PUTP99 ms; $(fmt "$PUT_ACKED") writes acknowledged, $PUT_MISSING missing, $PUT_ERRORS non-2xx | $(ok "$PUT >= 10000 && $PUTP99 < 20 && $PUT_MISSING == 0 && $PUT_ERRORS == 0") | — | |"
  echo "| … under \`wrk -t1 -c$PUT_CONNS2\` | ≥ 10,000 req/s, p99 < 20 ms | $(fmt "$PUT2") req/s, p50 $PUT2P50 ms, p99 $PUT2P99 ms (acknowledged writes counted above) | $(ok "$PUT2 >= 10000 && $PUT2P99 < 20 && $PUT_MISSING == 0 && $PUT_ERRORS == 0") | — | |"
  echo "| server RSS idle / after the wrk runs | < 16 MiB / < 64 MiB | $(mib "$RSS_IDLE") MiB / $(mib "$RSS_AFTER") MiB (peak $(mib "$RSS_PEAK") MiB) | $(ok "$RSS_IDLE < 16384 && $RSS_AFTER < 65536") | — | |"
  echo
  echo "PUT latency as the server sees it (request arrival to response end, \`/metrics\`"
  echo "histogram over all PUT runs): 99 % within ${PUT_SERVER_P99:-?}; wrk's p99 also counts the"
  echo "time requests and responses wait for a CPU on this machine, where wrk, the server and"
  echo "anything else running share the cores."
  echo
  echo "Counters (\`agent_stats\`) and denormalised \`agent_id\` columns against a recount"
  echo "(\`tests/data/recount.sql\`): $MISMATCH_LOAD mismatches after loading, $MISMATCH_PUT after the"
  echo "PUT runs. Server peak RSS while loading: $(mib "$LOAD_RSS") MiB."
  echo
  echo "## Runs"
  echo
  echo "- ingestion ($INGEST_HOW), records/s: $(list "${IMPORT_RATES[@]}")"
  [ ${#TRACE_RATES[@]} -gt 0 ] && echo "- … traces phase, records/s: $(list "${TRACE_RATES[@]}")"
  echo "- sqlite3 \`.import\`, rows/s: $(list "${REF_RATES[@]}")"
  echo "- store level (\`bench_ingest\`), records/s: $(list "${STORE_RATES[@]}")"
  echo "- contradictions p50 / p99 (ms), 2,000 calls per run: $(for r in $(seq "$RUNS"); do printf '%s / %s; ' "$(kv "$WORK/query-$r.out" contradictions.p50_ms)" "$(kv "$WORK/query-$r.out" contradictions.p99_ms)"; done)"
  echo "- plain join p50 / p99 (ms), 5 calls per run: $(for r in $(seq "$RUNS"); do printf '%s / %s; ' "$(kv "$WORK/query-$r.out" ref_join.p50_ms)" "$(kv "$WORK/query-$r.out" ref_join.p99_ms)"; done)"
  echo "- GET one connection p50 (ms): $(list "${GET1_P50[@]}")"
  echo "- hello requests/s: $(list "${HELLO_RPS[@]}")"
  echo "- GET requests/s: $(list "${GET_RPS[@]}"); p99 (ms): $(list "${GET_P99[@]}")"
  echo "- GET with REFOLD_HTTP_MEMO=0, requests/s: $(list "${NOMEMO_RPS[@]}")"
  echo "- PUT requests/s: $(list "${PUT_RPS[@]}"); p50 (ms): $(list "${PUT_P50[@]}"); p99 (ms): $(list "${PUT_P99[@]}")"
  echo "- PUT at -t1 -c$PUT_CONNS2, requests/s: $(list "${PUT2_RPS[@]}"); p50 (ms): $(list "${PUT2_P50[@]}"); p99 (ms): $(list "${PUT2_P99[@]}")"
  echo
  echo "## Plans (EXPLAIN QUERY PLAN)"
  echo
  echo "- contradictions (the store's query): \`$(kv "$WORK/query-1.out" plan.contradictions)\`"
  echo "- plain join (reference): \`$(kv "$WORK/query-1.out" plan.ref_join)\`"
  echo "- agent with stats (the store's query): \`$(kv "$WORK/query-1.out" plan.agent_get)\`"
  echo "- COUNT(*) (reference): \`$(kv "$WORK/query-1.out" plan.ref_count)\`"
  echo
  echo "The store query and the plain join returned the same traces in the same order:"
  echo "$(kv "$WORK/query-1.out" contradictions.same_as_ref); the agent's contradiction counter"
  echo "equals a recount: $(kv "$WORK/query-1.out" counters.match)."
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
