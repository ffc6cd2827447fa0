/*
 * bench_query - store-level timings on a loaded database, each beside its
 * reference query run on the same data.
 *
 *   contradictions   store_contradictions(largest agent, limit 20), the job's
 *                    query (SPEC §7 step 2), --runs times: p50 and p99
 *   ref_join         the same result written as a plain 4-table join
 *                    (traces, feedback, eval_executions, evals) ordered by
 *                    feedback time, run with sqlite3 directly --ref-runs times
 *   agent_get        store_agent_get(with stats), what GET /v1/agents/{id}
 *                    reads, --runs times
 *   ref_count        COUNT(*) over the agent's rated executions (executions
 *                    joined to feedback), --ref-runs times
 *
 * The largest agent is the one with the most traces. The program checks that
 * the store query and the reference return the same traces in the same order
 * and that the agent's contradiction counter equals a recount, and prints the
 * EXPLAIN QUERY PLAN of each query. Output: key=value lines.
 *
 * usage: bench_query --db PATH [--runs N] [--ref-runs N] [--workspace NAME]
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "store/store.h"
#include "core/banned.h"

#define LIMIT 20

static const char *REF_JOIN =
    "SELECT f.trace_id, x.eval_id, e.name, f.rating, f.note, x.predicted_result, "
    "x.predicted_reason, f.updated_at, t.input, t.output "
    "FROM traces t JOIN feedback f ON f.trace_id = t.id "
    "JOIN eval_executions x ON x.trace_id = t.id JOIN evals e ON e.id = x.eval_id "
    "WHERE t.agent_id = ?1 AND ((f.rating = 'positive' AND x.predicted_result = 0) "
    "OR (f.rating = 'negative' AND x.predicted_result = 1)) "
    "ORDER BY f.updated_at DESC, f.trace_id DESC LIMIT ?2";
static const char *REF_COUNT =
    "SELECT COUNT(*) FROM feedback f JOIN eval_executions x ON x.trace_id = f.trace_id "
    "WHERE f.agent_id = ?1";
static const char *CONTRADICTIONS_RECOUNT =
    "SELECT COUNT(*) FROM feedback f JOIN eval_executions x ON x.trace_id = f.trace_id "
    "WHERE f.agent_id = ?1 AND ((f.rating = 'positive' AND x.predicted_result = 0) "
    "OR (f.rating = 'negative' AND x.predicted_result = 1))";

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_query: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Percentile p (0..100) of n sorted microsecond samples, nearest rank. */
static int64_t pct(const int64_t *v, int n, int p)
{
    int k = (n * p + 99) / 100;
    if (k < 1)
        k = 1;
    return v[k - 1];
}

static void report(const char *name, int64_t *us, int n)
{
    qsort(us, (size_t)n, sizeof *us, cmp_i64);
    printf("%s.runs=%d\n%s.p50_ms=%.3f\n%s.p99_ms=%.3f\n%s.max_ms=%.3f\n", name, n, name,
           (double)pct(us, n, 50) / 1000.0, name, (double)pct(us, n, 99) / 1000.0, name,
           (double)us[n - 1] / 1000.0);
}

static void plan(sqlite3 *db, const char *name, const char *sql)
{
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK)
        die("explain", sqlite3_errmsg(db));
    printf("plan.%s=", name);
    int first = 1;
    while (sqlite3_step(s) == SQLITE_ROW) {
        printf("%s%s", first ? "" : " | ", (const char *)sqlite3_column_text(s, 3));
        first = 0;
    }
    printf("\n");
    sqlite3_finalize(s);
    sqlite3_free(q);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *wsname = "default";
    int runs = 2000, ref_runs = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--ref-runs") == 0 && i + 1 < argc)
            ref_runs = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--workspace") == 0 && i + 1 < argc)
            wsname = argv[++i];
        else
            die("usage", "bench_query --db PATH [--runs N] [--ref-runs N] [--workspace NAME]");
    }
    if (!path || runs < 1 || ref_runs < 1)
        die("usage", "bench_query --db PATH [--runs N] [--ref-runs N] [--workspace NAME]");

    struct store *st = NULL;
    struct rf_err err;
    json_t *ws = NULL, *stats = NULL;
    if (store_open(path, &st, &err) || store_workspace_find(st, wsname, &ws, &err))
        die("open", err.message);
    char wsid[ID_MAX], agent[ID_MAX] = "";
    snprintf(wsid, sizeof wsid, "%s", json_string_value(json_object_get(ws, "id")));
    json_decref(ws);

    /* The largest agent by trace count. */
    struct store_page page = {.limit = STORE_LIMIT_MAX};
    struct store_list agents = {0};
    if (store_agent_list(st, wsid, NULL, NULL, &page, &agents, &err))
        die("agents", err.message);
    json_int_t best = -1;
    size_t i;
    json_t *a;
    json_array_foreach(agents.data, i, a)
    {
        const char *id = json_string_value(json_object_get(a, "id"));
        if (store_agent_stats(st, wsid, id, &stats, &err))
            die("stats", err.message);
        json_int_t n = json_integer_value(json_object_get(stats, "traces"));
        if (n > best) {
            best = n;
            snprintf(agent, sizeof agent, "%s", id);
        }
        json_decref(stats);
    }
    store_list_release(&agents);
    if (!agent[0])
        die("no agents", wsname);
    printf("agent=%s\nagent.traces=%lld\n", agent, (long long)best);

    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die("sqlite3_open", sqlite3_errmsg(db));

    /* Store query: warm up, check against the reference, then time. */
    json_t *res = NULL;
    if (store_contradictions(st, wsid, agent, NULL, LIMIT, 0, true, NULL, NULL, &res, &err))
        die("contradictions", err.message);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, REF_JOIN, -1, &s, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    size_t k = 0;
    int same = 1;
    int64_t *us = calloc((size_t)(runs > ref_runs ? runs : ref_runs), sizeof *us);
    for (int r = 0; r < ref_runs; r++) {
        int64_t t0 = clock_mono_us();
        sqlite3_bind_text(s, 1, agent, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, LIMIT);
        k = 0;
        while (sqlite3_step(s) == SQLITE_ROW) {
            const char *tid = (const char *)sqlite3_column_text(s, 0);
            const char *mine =
                json_string_value(json_object_get(json_array_get(res, k), "trace_id"));
            if (!mine || strcmp(mine, tid) != 0)
                same = 0;
            k++;
        }
        sqlite3_reset(s);
        us[r] = clock_mono_us() - t0;
    }
    sqlite3_finalize(s);
    if (k != json_array_size(res))
        same = 0;
    printf("contradictions.rows=%zu\nref_join.rows=%zu\ncontradictions.same_as_ref=%s\n",
           json_array_size(res), k, same ? "yes" : "no");
    json_decref(res);
    report("ref_join", us, ref_runs);

    for (int r = 0; r < runs; r++) {
        int64_t t0 = clock_mono_us();
        if (store_contradictions(st, wsid, agent, NULL, LIMIT, 0, true, NULL, NULL, &res, &err))
            die("contradictions", err.message);
        us[r] = clock_mono_us() - t0;
        json_decref(res);
    }
    report("contradictions", us, runs);

    /* Agent with stats, and the COUNT(*) reference. */
    json_t *ag = NULL;
    for (int r = 0; r < runs; r++) {
        int64_t t0 = clock_mono_us();
        if (store_agent_get(st, wsid, agent, true, &ag, &err))
            die("agent_get", err.message);
        us[r] = clock_mono_us() - t0;
        if (r + 1 < runs)
            json_decref(ag);
    }
    report("agent_get", us, runs);
    json_t *sj = json_object_get(ag, "stats");
    long long counter = (long long)json_integer_value(json_object_get(sj, "contradictions"));
    printf("agent.executions=%lld\nagent.contradictions=%lld\n",
           (long long)json_integer_value(json_object_get(sj, "executions")), counter);
    json_decref(ag);

    if (sqlite3_prepare_v2(db, REF_COUNT, -1, &s, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    int64_t count = 0;
    for (int r = 0; r < ref_runs; r++) {
        int64_t t0 = clock_mono_us();
        sqlite3_bind_text(s, 1, agent, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            count = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        us[r] = clock_mono_us() - t0;
    }
    sqlite3_finalize(s);
    printf("ref_count.value=%" PRId64 "\n", count);
    report("ref_count", us, ref_runs);

    if (sqlite3_prepare_v2(db, CONTRADICTIONS_RECOUNT, -1, &s, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    sqlite3_bind_text(s, 1, agent, -1, SQLITE_STATIC);
    int64_t recount = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    printf("agent.contradictions_recount=%" PRId64 "\ncounters.match=%s\n", recount,
           counter == recount ? "yes" : "no");

    plan(db, "contradictions", store_query_sql("contradictions"));
    plan(db, "ref_join", REF_JOIN);
    plan(db, "agent_get", store_query_sql("agent_get"));
    plan(db, "ref_count", REF_COUNT);
    sqlite3_close(db);
    store_close(st);
    free(us);
    return 0;
}
