-- PUT /v1/traces/{id}/feedback under wrk (bench/run.sh).
--
-- Every wrk thread reads the same shuffled list of trace ids (BENCH_IDS, one
-- id a line) and takes every BENCH_THREADS-th id from its own offset, so
-- threads never write the same trace at the same time; ratings rotate through
-- positive, negative, neutral, and every note is unique ("<tag>-<thread>-<n>").
-- Each acknowledged write (status 200) is logged as "trace_id rating note
-- updated_at" to BENCH_ACKS/acks-<thread>.txt, so run.sh can check afterwards
-- that every acknowledged write is in the database.
local ids, nthreads, log
local n = 0
local ratings = { "positive", "negative", "neutral" }
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  ids = {}
  for line in io.lines(os.getenv("BENCH_IDS")) do
    ids[#ids + 1] = line
  end
  nthreads = tonumber(os.getenv("BENCH_THREADS"))
  tag = os.getenv("BENCH_TAG")
  log = io.open(os.getenv("BENCH_ACKS") .. "/acks-" .. tid .. ".txt", "w")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local i = (tid + n * nthreads) % #ids
  n = n + 1
  local body = string.format('{"rating":"%s","note":"%s-%d-%d"}', ratings[n % 3 + 1], tag, tid, n)
  return wrk.format("PUT", "/v1/traces/" .. ids[i + 1] .. "/feedback", nil, body)
end

function response(status, headers, body)
  if status == 200 then
    local t = body:match('"trace_id":"([^"]+)"')
    local r = body:match('"rating":"([^"]+)"')
    local note = body:match('"note":"([^"]+)"')
    local at = body:match('"updated_at":"([^"]+)"')
    log:write(t, " ", r, " ", note, " ", at, "\n")
  end
end

function done(summary, latency, requests)
end
