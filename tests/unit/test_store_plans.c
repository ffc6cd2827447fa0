/*
 * test_store_plans - the queries that must stay fast at a million traces are
 * answered from indexes (issues 2 and 9; SPEC §3 and §7 step 2): EXPLAIN QUERY
 * PLAN of the contradiction query and of the agent-with-stats reads shows no
 * SCAN of traces, feedback, eval_executions or evals and no temporary b-tree
 * for ORDER BY, on a populated database both before and after ANALYZE (whose
 * statistics change SQLite's choices: with two agents it rightly scans the
 * agents table, which is why small tables are allowed).
 *
 * The SQL comes from store_query_sql(), the store's own text.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"
#include "core/banned.h"

static char dir[] = "/tmp/refold-plans-XXXXXX";
static char path[256];

static void must(enum rf_status rc, const struct rf_err *err)
{
    if (rc != RF_OK)
        fail_msg("store call failed: %s", err->message);
}

/* Two agents with traces, ratings and executions, written through the store. */
static int populate(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/plans.db", dir);
    struct store *st;
    struct rf_err err;
    json_t *ws = NULL, *agent = NULL, *eval = NULL;
    must(store_open(path, &st, &err), &err);
    must(store_migrate(st, NULL, &err), &err);
    must(store_workspace_create(st, "plans", &ws, &err), &err);
    const char *w = json_string_value(json_object_get(ws, "id"));
    static struct trace_new traces[200];
    static struct feedback_new fb[200];
    static struct execution_new ex[200];
    static struct store_item_result res[200];
    static char ext[200][16];
    static const char *const ratings[] = {"positive", "negative", "neutral"};
    for (int a = 0; a < 2; a++) {
        char name[16];
        snprintf(name, sizeof name, "agent-%d", a);
        struct agent_new in = {.name = name, .prompt_template = "Answer {{q}}"};
        must(store_agent_create(st, w, &in, &agent, &err), &err);
        const char *aid = json_string_value(json_object_get(agent, "id"));
        int n = a == 0 ? 200 : 40;
        for (int i = 0; i < n; i++) {
            snprintf(ext[i], sizeof ext[i], "a%d-%d", a, i);
            traces[i] = (struct trace_new){.agent_id = aid, .source = "test",
                                           .external_id = ext[i], .input = "q", .output = "a"};
            fb[i] = (struct feedback_new){.trace = {.source = "test", .external_id = ext[i]},
                                          .rating = ratings[i % 3]};
            ex[i] = (struct execution_new){.trace = {.source = "test", .external_id = ext[i]},
                                           .predicted_result = i % 4 != 0};
        }
        must(store_traces_put(st, w, traces, n, res, &err), &err);
        must(store_feedback_put(st, w, fb, n / 2, res, &err), &err);
        for (int e = 0; e < 2; e++) {
            snprintf(name, sizeof name, "eval-%d", e);
            must(store_eval_create(st, w, aid, name, NULL, &eval, &err), &err);
            must(store_executions_put(st, w, json_string_value(json_object_get(eval, "id")), ex, n,
                                      res, &err),
                 &err);
            json_decref(eval);
        }
        json_decref(agent);
    }
    json_decref(ws);
    store_close(st);
    return 0;
}

static int cleanup(void **state)
{
    (void)state;
    char p[300];
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

/* The big tables and the aliases the store's queries give them. */
static const char *const big[] = {"traces", "feedback", "eval_executions", "evals",
                                  "t", "f", "x", "e", NULL};

/* Fail when the plan of sql scans one of the big tables or sorts in a temporary b-tree. */
static void check_plan(sqlite3 *db, const char *name, const char *sql)
{
    assert_non_null(sql);
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", name, sqlite3_errmsg(db));
    char plan[2048] = "";
    size_t used = 0;
    bool bad = false;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 3);
        int w = snprintf(plan + used, sizeof plan - used, "%s\n", d);
        if (w > 0 && used + (size_t)w < sizeof plan)
            used += (size_t)w;
        if (strstr(d, "TEMP B-TREE"))
            bad = true;
        for (int i = 0; big[i] && strncmp(d, "SCAN ", 5) == 0; i++) {
            size_t n = strlen(big[i]);
            if (strncmp(d + 5, big[i], n) == 0 && (d[5 + n] == '\0' || d[5 + n] == ' '))
                bad = true;
        }
    }
    sqlite3_finalize(s);
    sqlite3_free(q);
    assert_true(used > 0);
    if (bad)
        fail_msg("%s is not answered from indexes:\n%s", name, plan);
    if (strcmp(name, "contradictions") == 0 && !strstr(plan, "feedback_agent_time"))
        fail_msg("contradictions does not walk feedback_agent_time:\n%s", plan);
}

static void check_all(bool analyze)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (analyze)
        assert_int_equal(sqlite3_exec(db, "ANALYZE", NULL, NULL, NULL), SQLITE_OK);
    check_plan(db, "contradictions", store_query_sql("contradictions"));
    check_plan(db, "agent_get", store_query_sql("agent_get"));
    check_plan(db, "agent_stats", store_query_sql("agent_stats"));
    sqlite3_close(db);
}

static void test_store_plans_without_statistics(void **state)
{
    (void)state;
    check_all(false);
}

static void test_store_plans_after_analyze(void **state)
{
    (void)state;
    check_all(true);
}

static void test_store_plans_unknown_name(void **state)
{
    (void)state;
    assert_null(store_query_sql("no such query"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_plans_without_statistics),
        cmocka_unit_test(test_store_plans_after_analyze),
        cmocka_unit_test(test_store_plans_unknown_name),
    };
    return cmocka_run_group_tests(tests, populate, cleanup);
}
