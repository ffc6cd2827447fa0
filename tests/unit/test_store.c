/*
 * test_store - the store on a temporary SQLite database: migrations are
 * idempotent, the hot queries are answered from indexes (EXPLAIN QUERY PLAN
 * must show no full scan of traces, feedback or eval_executions and no sort
 * for the contradiction query), the counters follow writes, a database or WAL file
 * deleted or replaced under the store refuses writes instead of losing them, and the
 * checkpointer outlives a failure to open its connection and idles behind a reader.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "store/db.h"
#include "store/store.h"
#include "store/store_internal.h"

struct fixture {
    char path[256];
    struct store *st;
    char ws[ID_MAX];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/refold-test-store-%d-%p.db", getpid(), (void *)f);
    unlink(f->path);
    struct rf_err err;
    assert_int_equal(store_open(f->path, &f->st, &err), RF_OK);
    assert_int_equal(store_migrate(f->st, NULL, &err), RF_OK);
    json_t *ws;
    assert_int_equal(store_workspace_create(f->st, "w", &ws, &err), RF_OK);
    snprintf(f->ws, sizeof f->ws, "%s", json_string_value(json_object_get(ws, "id")));
    json_decref(ws);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    char p[300];
    unlink(f->path);
    snprintf(p, sizeof p, "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->path);
    unlink(p);
    free(f);
    return 0;
}

/* Agent "a" (template "Hi {{x}}", so with an active version) in the fixture's workspace;
 * the caller decrefs it. */
static json_t *new_agent(struct fixture *f)
{
    struct rf_err err;
    json_t *agent = NULL;
    struct agent_new an = {.name = "a", .prompt_template = "Hi {{x}}"};
    assert_int_equal(store_agent_create(f->st, f->ws, &an, &agent, &err), RF_OK);
    return agent;
}

static void test_store_migrations_idempotent(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    int applied = -1, version = 0;
    assert_int_equal(store_migrate(f->st, &applied, &err), RF_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(store_schema_version(f->st, &version, &err), RF_OK);
    assert_int_equal(version, store_migrations_known());
    /* The seed holds at least 20 built-in best practices with source, category and url. */
    int64_t n = 0;
    static const char *sql = "SELECT COUNT(*) FROM prompt_best_practices WHERE workspace_id IS "
                             "NULL AND url LIKE 'https://%' AND source IN ('anthropic','openai',"
                             "'google')";
    assert_int_equal(db_scalar(f->st->db, sql, DB_NOARGS, &n, NULL, &err), RF_OK);
    assert_true(n >= 20);
}

/* EXPLAIN QUERY PLAN of sql as one string of detail lines. */
static void plan_of(struct store *st, const char *sql, char *out, size_t n)
{
    static char texts[8][4096];
    static int used;
    assert_true(used < 8);
    char *q = texts[used++]; /* kept alive: the statement cache is keyed by address */
    snprintf(q, 4096, "EXPLAIN QUERY PLAN %s", sql);
    struct db_stmt *s;
    struct rf_err err;
    bool row;
    assert_int_equal(db_query(st->db, q, NULL, 0, &s, &err), RF_OK);
    out[0] = '\0';
    while (db_next(s, &row, &err) == RF_OK && row) {
        strncat(out, db_text(s, 3), n - strlen(out) - 2);
        strncat(out, "\n", n - strlen(out) - 1);
    }
    db_done(s);
}

static void assert_no_scan(const char *plan, const char *table)
{
    char needle[64];
    snprintf(needle, sizeof needle, "SCAN %s", table);
    const char *p = plan;
    while ((p = strstr(p, needle)) != NULL) {
        char next = p[strlen(needle)];
        /* "SCAN t" alone is a full scan; "SCAN t USING ... INDEX" walks an index in order,
         * which for our queries is always behind an equality prefix, checked separately. */
        if (next == '\n' || next == '\0' || strncmp(p + strlen(needle), " AS", 3) == 0) {
            print_error("full scan of %s in plan:\n%s", table, plan);
            fail();
        }
        p += strlen(needle);
    }
}

static void test_store_contradiction_plan(void **state)
{
    struct fixture *f = *state;
    char plan[4096];
    plan_of(f->st, store_query_sql("contradictions"), plan, sizeof plan);
    assert_null(strstr(plan, "TEMP B-TREE"));
    assert_no_scan(plan, "f");
    assert_no_scan(plan, "x");
    assert_no_scan(plan, "t");
    assert_no_scan(plan, "feedback");
    assert_no_scan(plan, "eval_executions");
    assert_no_scan(plan, "traces");
    /* The walk is the agent's feedback in time order from the page's bound, executions
     * probed by trace. */
    assert_non_null(strstr(plan, "feedback_agent_time (agent_id=? AND updated_at<?)"));
    assert_non_null(strstr(plan, "eval_executions_trace (trace_id=? AND predicted_result=?)"));
}

static void test_store_stats_plan(void **state)
{
    struct fixture *f = *state;
    char plan[4096];
    plan_of(f->st, store_query_sql("agent_stats"), plan, sizeof plan);
    assert_null(strstr(plan, "TEMP B-TREE"));
    assert_no_scan(plan, "s");
    assert_no_scan(plan, "a");
    assert_no_scan(plan, "e");
    assert_no_scan(plan, "feedback");
    assert_no_scan(plan, "eval_executions");
    assert_no_scan(plan, "traces");
}

/* /metrics counts the queued and running jobs at every scrape: through their partial
 * indexes, never a scan of the whole jobs table (which keeps every finished job). */
static void test_store_job_counts_open_use_indexes(void **state)
{
    struct fixture *f = *state;
    char plan[4096];
    plan_of(f->st, store_query_sql("job_counts_open"), plan, sizeof plan);
    assert_no_scan(plan, "jobs");
    assert_non_null(strstr(plan, "jobs_due"));
    assert_non_null(strstr(plan, "jobs_leased"));
}

/* A full disk is 503-able (RF_UNAVAILABLE, reason storage_full), not an internal error,
 * and loses nothing committed before it: simulated with the writer's max_page_count. */
static void test_store_full_is_unavailable(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    json_t *stats;
    json_t *agent = new_agent(f);
    const char *aid = json_string_value(json_object_get(agent, "id"));
    struct db *db = f->st->db;
    assert_int_equal(db_begin(db, &err), RF_OK);
    assert_int_equal(db_exec_script(db, "PRAGMA max_page_count = 150", &err), RF_OK);
    assert_int_equal(db_end(db, RF_OK, &err), RF_OK);
    char *big = malloc(20001);
    memset(big, 'z', 20000);
    big[20000] = '\0';
    int stored = 0;
    enum rf_status rc = RF_OK;
    for (int i = 0; i < 100 && rc == RF_OK; i++) {
        char ext[16];
        snprintf(ext, sizeof ext, "t%d", i);
        struct trace_new tr = {.agent_id = aid, .external_id = ext, .input = big, .output = "o"};
        struct store_item_result res;
        rc = store_traces_put(f->st, f->ws, &tr, 1, &res, &err);
        if (rc == RF_OK)
            stored++;
    }
    free(big);
    assert_int_equal(rc, RF_UNAVAILABLE);
    assert_string_equal(err.reason, "storage_full");
    assert_true(stored > 0);
    assert_int_equal(store_agent_stats(f->st, f->ws, aid, &stats, &err), RF_OK);
    assert_int_equal(json_integer_value(json_object_get(stats, "traces")), stored);
    json_decref(stats);
    json_decref(agent);
}

/* Store one trace of agent aid; its status. */
static enum rf_status put_trace(struct fixture *f, const char *aid, struct rf_err *err)
{
    struct trace_new tr = {.agent_id = aid, .input = "i", .output = "o"};
    struct store_item_result res;
    return store_traces_put(f->st, f->ws, &tr, 1, &res, err);
}

enum moved_how { MOVED_DELETED, MOVED_REPLACED, MOVED_WAL_DELETED };

/* The database file is deleted, or replaced, or its -wal file deleted while the store has
 * them open. Its connections would go on writing into the unlinked file, acknowledged and
 * lost with the process (a WAL: at its next crash): writes and pings must fail as
 * unavailable (database_moved) instead. */
static void moved_file_refuses_writes(struct fixture *f, enum moved_how how)
{
    struct rf_err err;
    json_t *agent = new_agent(f);
    const char *aid = json_string_value(json_object_get(agent, "id"));
    assert_int_equal(put_trace(f, aid, &err), RF_OK);
    assert_int_equal(store_ping(f->st, &err), RF_OK);

    char other[300];
    switch (how) {
    case MOVED_DELETED: assert_int_equal(unlink(f->path), 0); break;
    case MOVED_REPLACED: {
        snprintf(other, sizeof other, "%s.new", f->path);
        FILE *fp = fopen(other, "w");
        assert_non_null(fp);
        fclose(fp);
        assert_int_equal(rename(other, f->path), 0);
        break;
    }
    case MOVED_WAL_DELETED:
        snprintf(other, sizeof other, "%s-wal", f->path);
        assert_int_equal(unlink(other), 0);
        break;
    }
    rf_err_clear(&err);
    assert_int_equal(put_trace(f, aid, &err), RF_UNAVAILABLE);
    assert_string_equal(err.reason, "database_moved");
    assert_non_null(strstr(err.message, "deleted or replaced"));
    rf_err_clear(&err);
    assert_int_equal(store_ping(f->st, &err), RF_UNAVAILABLE);
    assert_string_equal(err.reason, "database_moved");
    json_decref(agent);
}

static void test_store_deleted_file_refuses_writes(void **state)
{
    moved_file_refuses_writes(*state, MOVED_DELETED);
}

static void test_store_replaced_file_refuses_writes(void **state)
{
    moved_file_refuses_writes(*state, MOVED_REPLACED);
}

static void test_store_deleted_wal_refuses_writes(void **state)
{
    moved_file_refuses_writes(*state, MOVED_WAL_DELETED);
}

/* Frames in f's WAL file (4 KiB pages). */
static long wal_frames(struct fixture *f)
{
    char p[300];
    snprintf(p, sizeof p, "%s-wal", f->path);
    FILE *fp = fopen(p, "rb"); /* not stat(): store_internal.h has an enum stat */
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    fclose(fp);
    return size / (4096 + 24);
}

/* n batches of 20 traces of 64 KiB each (about 17 frames a trace). */
static void put_big_traces(struct fixture *f, const char *aid, int n)
{
    static char big[65537];
    static int seq;
    memset(big, 'b', sizeof big - 1);
    struct trace_new tr[20];
    struct store_item_result res[20];
    struct rf_err err;
    for (int b = 0; b < n; b++) {
        for (int i = 0; i < 20; i++) {
            tr[i] = (struct trace_new){.agent_id = aid, .input = big, .output = "o"};
            big[i] = (char)('a' + seq++ % 26); /* not all the same text */
        }
        assert_int_equal(store_traces_put(f->st, f->ws, tr, 20, res, &err), RF_OK);
    }
}

/* The checkpointer thread cannot open its connection when it starts (out of file
 * descriptors here): it must try again later, not give up and leave the WAL to grow for
 * the rest of the process's life. */
static void test_store_checkpointer_survives_open_failure(void **state)
{
    struct fixture *f = *state;
    json_t *agent = new_agent(f);
    const char *aid = json_string_value(json_object_get(agent, "id"));
    put_big_traces(f, aid, 1); /* the writer's connection and the WAL are open */

    /* No new file descriptor from here: the lowest free one is the limit. */
    struct rlimit saved, none;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    none = saved;
    none.rlim_cur = (rlim_t)lowest;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &none), 0);
    put_big_traces(f, aid, 4); /* past 1000 frames: the checkpointer starts, and fails */
    usleep(200 * 1000);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    usleep(1500 * 1000); /* its next try, a second later, succeeds */

    /* Keep writing (about 340 frames a batch) until a batch lands in a WAL that started
     * over: the file (cut back only past 64 MiB) then stops growing. Without a working
     * checkpointer nothing ever checkpoints and every batch makes the file longer. No
     * deadline in time: a loaded machine only delays the checkpointer's turn, and past
     * 8,000 frames it checkpoints under the write lock, so the WAL starts over within a
     * few batches of that. */
    bool restarted = false;
    for (int i = 0; i < 60 && !restarted; i++) {
        long before = wal_frames(f);
        put_big_traces(f, aid, 1);
        restarted = wal_frames(f) <= before;
        usleep(20 * 1000);
    }
    assert_true(restarted);
    json_decref(agent);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A reader holds a snapshot (a long read, a backup) while over 1,000 frames are written
 * after it: the checkpointer cannot copy them until the reader ends, and must wait
 * meanwhile, not try again and again at full speed. */
static void test_store_checkpointer_idles_behind_a_reader(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    json_t *agent = new_agent(f);
    const char *aid = json_string_value(json_object_get(agent, "id"));
    struct store *reader = NULL;
    int version = 0;
    assert_int_equal(store_open(f->path, &reader, &err), RF_OK);
    assert_int_equal(store_read_begin(reader, &err), RF_OK);
    assert_int_equal(store_schema_version(reader, &version, &err), RF_OK); /* the snapshot */
    put_big_traces(f, aid, 5);
    usleep(100 * 1000);
    double start = cpu_seconds();
    usleep(500 * 1000);
    double used = cpu_seconds() - start; /* the checkpointer spun: about 0.5 s */
    store_read_end(reader);
    store_close(reader);
    assert_true(used < 0.2);
    json_decref(agent);
}

/* A migration whose COMMIT fails (its pages go to the WAL then: a full disk, an I/O
 * error - here a file size limit) was not applied: store_migrate must neither count it
 * nor log it as applied. */
static void test_store_migration_commit_failure_not_counted(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/tmp/refold-test-store-%d-fsize.db", getpid());
    unlink(path);
    struct store *st = NULL;
    struct rf_err err;
    assert_int_equal(store_open(path, &st, &err), RF_OK);
    struct rlimit saved, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 64 * 1024; /* migration 001 needs a few hundred KiB */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int applied = -1;
    enum rf_status rc = store_migrate(st, &applied, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    assert_int_not_equal(rc, RF_OK);
    assert_non_null(strstr(err.message, "commit"));
    assert_int_equal(applied, 0);
    int version = -1;
    assert_int_equal(store_schema_version(st, &version, &err), RF_OK);
    assert_int_equal(version, 0);
    /* With room again, it applies. */
    assert_int_equal(store_migrate(st, &applied, &err), RF_OK);
    assert_int_equal(applied, store_migrations_known());
    store_close(st);
    char p[300];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

/* A small end-to-end store workload: the counters and the contradictions agree. */
static void test_store_counters_follow_writes(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    json_t *eval, *stats, *rows;
    json_t *agent = new_agent(f);
    const char *aid = json_string_value(json_object_get(agent, "id"));
    assert_int_equal(store_eval_create(f->st, f->ws, aid, "e1", NULL, &eval, &err), RF_OK);
    const char *eid = json_string_value(json_object_get(eval, "id"));
    struct trace_new tr[3] = {
        {.agent_id = aid, .external_id = "1", .input = "i", .output = "o"},
        {.agent_id = aid, .external_id = "2", .input = "i", .output = "o"},
        {.agent_id = aid, .external_id = "3", .input = "i", .output = "o"},
    };
    struct store_item_result res[3];
    assert_int_equal(store_traces_put(f->st, f->ws, tr, 3, res, &err), RF_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(res[i].outcome, OUTCOME_CREATED);
    /* Same batch again: unchanged. */
    assert_int_equal(store_traces_put(f->st, f->ws, tr, 3, res, &err), RF_OK);
    assert_int_equal(res[0].outcome, OUTCOME_UNCHANGED);
    struct feedback_new fb[3] = {
        {.trace = {.external_id = "1"}, .rating = "positive"},
        {.trace = {.external_id = "2"}, .rating = "negative"},
        {.trace = {.external_id = "3"}, .rating = "neutral"},
    };
    assert_int_equal(store_feedback_put(f->st, f->ws, fb, 3, res, &err), RF_OK);
    struct execution_new ex[3] = {
        {.trace = {.external_id = "1"}, .predicted_result = false}, /* false alarm */
        {.trace = {.external_id = "2"}, .predicted_result = true},  /* missed failure */
        {.trace = {.external_id = "3"}, .predicted_result = false}, /* neutral: never counts */
    };
    assert_int_equal(store_executions_put(f->st, f->ws, eid, ex, 3, res, &err), RF_OK);
    assert_int_equal(store_agent_stats(f->st, f->ws, aid, &stats, &err), RF_OK);
    assert_int_equal(json_integer_value(json_object_get(stats, "traces")), 3);
    assert_int_equal(json_integer_value(json_object_get(stats, "executions")), 3);
    assert_int_equal(json_integer_value(json_object_get(stats, "contradictions")), 2);
    assert_int_equal(json_integer_value(json_object_get(stats, "missed_failures")), 1);
    assert_int_equal(json_integer_value(json_object_get(stats, "false_alarms")), 1);
    json_decref(stats);
    assert_int_equal(
        store_contradictions(f->st, f->ws, aid, NULL, 20, 0, true, NULL, NULL, &rows, &err),
        RF_OK);
    assert_int_equal(json_array_size(rows), 2);
    assert_non_null(json_object_get(json_array_get(rows, 0), "input"));
    json_decref(rows);
    /* Without texts (the improvement job's read): the same rows, no input or output. */
    assert_int_equal(
        store_contradictions(f->st, f->ws, aid, NULL, 20, 0, false, NULL, NULL, &rows, &err),
        RF_OK);
    assert_int_equal(json_array_size(rows), 2);
    assert_non_null(json_object_get(json_array_get(rows, 0), "trace_id"));
    assert_null(json_object_get(json_array_get(rows, 0), "input"));
    assert_null(json_object_get(json_array_get(rows, 0), "output"));
    json_decref(rows);
    /* The human changes their mind on trace 1: the false alarm disappears. */
    fb[0].rating = "negative";
    assert_int_equal(store_feedback_put(f->st, f->ws, fb, 1, res, &err), RF_OK);
    assert_int_equal(res[0].outcome, OUTCOME_UPDATED);
    assert_int_equal(store_agent_stats(f->st, f->ws, aid, &stats, &err), RF_OK);
    assert_int_equal(json_integer_value(json_object_get(stats, "contradictions")), 1);
    assert_int_equal(json_integer_value(json_object_get(stats, "negative")), 2);
    json_decref(stats);
    assert_int_equal(
        store_contradictions(f->st, f->ws, aid, "false_alarm", 20, 0, true, NULL, NULL, &rows, &err),
        RF_OK);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    json_decref(eval);
    json_decref(agent);
}

/* The improvement job's read of a trace: input and output only, within the workspace. */
static void test_store_trace_texts(void **state)
{
    struct fixture *f = *state;
    struct rf_err err;
    json_t *other;
    json_t *agent = new_agent(f);
    const char *aid = json_string_value(json_object_get(agent, "id"));
    struct trace_new tr = {.agent_id = aid,
                           .external_id = "1",
                           .input = "the question",
                           .output = "the answer",
                           .steps = "[{\"tool\":\"search\"}]"};
    struct store_item_result res;
    assert_int_equal(store_traces_put(f->st, f->ws, &tr, 1, &res, &err), RF_OK);
    char *input = NULL, *output = NULL;
    assert_int_equal(store_trace_texts(f->st, f->ws, res.id, &input, &output, &err), RF_OK);
    assert_string_equal(input, "the question");
    assert_string_equal(output, "the answer");
    free(input);
    free(output);
    input = output = NULL;
    assert_int_equal(store_trace_texts(f->st, f->ws, "trace_nope", &input, &output, &err),
                     RF_NOT_FOUND);
    assert_null(input);
    assert_int_equal(store_workspace_create(f->st, "other", &other, &err), RF_OK);
    assert_int_equal(store_trace_texts(f->st, json_string_value(json_object_get(other, "id")),
                                       res.id, &input, &output, &err),
                     RF_NOT_FOUND);
    assert_null(input);
    json_decref(other);
    json_decref(agent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_migrations_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_contradiction_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_stats_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_counters_follow_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_job_counts_open_use_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_full_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_trace_texts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_deleted_file_refuses_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_replaced_file_refuses_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_deleted_wal_refuses_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_checkpointer_survives_open_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_checkpointer_idles_behind_a_reader, setup,
                                        teardown),
        cmocka_unit_test(test_store_migration_commit_failure_not_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
