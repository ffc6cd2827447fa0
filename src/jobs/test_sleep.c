/*
 * test_sleep - a job type for tests and benchmarks, registered only with
 * REFOLD_TEST_JOBS=1. It exercises every path of the machinery:
 *
 *   params {sleep_ms: 0,            sleep this long, waking at once on cancel
 *           progress: 0,            emit that many `progress` events spread over the
 *                                   sleep, each with t_us (wall clock, microseconds)
 *           log: false,             emit a `log` event "started" first
 *           fail: null,             "transient" | "permanent": fail instead of completing
 *           fail_attempts: all,     ... only on attempts <= this
 *           retry_after_ms: 0,      with fail=transient, ask for at least this delay
 *           crash: null,            "during" | "before_commit": _exit(137) mid-sleep, or
 *                                   inside the completing transaction before it commits
 *           crash_attempts: 1,      ... only on attempts <= this
 *           ignore_cancel: false,   sleep through cancels and lease loss, then write a
 *                                   `log` event anyway (to prove fencing refuses it)
 *           block: false,           instead of sleeping, block in poll(2) on a pipe for
 *                                   sleep_ms that only the job_on_abort() hook can wake
 *                                   (how a blocking LLM call is cut short)
 *           commit_row: false}      complete with an llm_calls row (provider "test")
 *                                   written by the completion callback
 *
 * Every finished run appends one JSON line {job, attempt, owner, pid, start_us, end_us,
 * outcome} to the file named by REFOLD_TEST_JOBS_LOG (one write(2) with O_APPEND, so
 * lines from threads and processes never interleave): tests check from it that no two
 * runs of a job overlapped. The result is {attempt, pid, start_us, end_us, slept_ms}.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/jsonx.h"
#include "jobs/jobs.h"
#include "jobs/types.h"
#include "core/banned.h"

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t param_int(const json_t *p, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(p, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static const char *param_str(const json_t *p, const char *key)
{
    return json_string_value(json_object_get(p, key));
}

static void record_run(struct job_ctx *ctx, int64_t start, int64_t end, const char *outcome)
{
    const char *path = getenv("REFOLD_TEST_JOBS_LOG");
    if (!path || !*path)
        return;
    char line[512];
    int n = snprintf(line, sizeof line,
                     "{\"job\":\"%s\",\"attempt\":%d,\"pid\":%d,\"start_us\":%lld,"
                     "\"end_us\":%lld,\"outcome\":\"%s\"}\n",
                     job_id(ctx), job_attempt(ctx), (int)getpid(), (long long)start, (long long)end,
                     outcome);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (n > 0 && write(fd, line, (size_t)n) < 0)
        n = 0;
    close(fd);
}

static bool crashes_now(const json_t *p, int attempt, const char *where)
{
    const char *crash = param_str(p, "crash");
    return crash && strcmp(crash, where) == 0 && attempt <= param_int(p, "crash_attempts", 1);
}

/* The completion callback (ud is the ctx): runs inside the completing transaction. */
static enum rf_status commit_row(struct store *st, json_t *result, void *ud, struct rf_err *err)
{
    (void)st;
    struct job_ctx *ctx = ud;
    const json_t *p = job_params(ctx);
    if (json_is_true(json_object_get(p, "commit_row"))) {
        struct llm_call_new call = {.step = "analysis",
                                    .provider = "test",
                                    .model = "test_sleep",
                                    .request = "{}",
                                    .response_text = "ok",
                                    .latency_ms = 0};
        char id[ID_MAX];
        enum rf_status rc = job_record_llm_call(ctx, &call, id, err);
        if (rc)
            return rc;
        json_object_set_new(result, "llm_call_id", json_string(id));
    }
    if (crashes_now(p, job_attempt(ctx), "before_commit"))
        _exit(137); /* inside the completing transaction, before COMMIT */
    return RF_OK;
}

static void wake_pipe(void *ud)
{
    char c = 1;
    if (write(*(int *)ud, &c, 1) < 0)
        return; /* the pipe is ours and empty: cannot fail */
}

/* Block for up to ms in a call that nothing but the abort hook interrupts. */
static enum rf_status block_until_aborted(struct job_ctx *ctx, int64_t ms, struct rf_err *err)
{
    int fds[2];
    if (pipe(fds) != 0)
        return rf_fail(err, RF_TRANSIENT, "pipe failed");
    job_on_abort(ctx, wake_pipe, &fds[1]);
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    int n = poll(&pfd, 1, (int)ms);
    job_on_abort(ctx, NULL, NULL); /* after this the hook cannot run: fds may go */
    close(fds[0]);
    close(fds[1]);
    return n > 0 ? RF_CANCELLED : RF_OK;
}

enum rf_status job_test_sleep(struct job_ctx *ctx, struct rf_err *err)
{
    const json_t *p = job_params(ctx);
    int attempt = job_attempt(ctx);
    int64_t sleep_ms = param_int(p, "sleep_ms", 0);
    int64_t progress = param_int(p, "progress", 0);
    const char *fail = param_str(p, "fail");
    bool fails = fail && attempt <= param_int(p, "fail_attempts", JOB_MAX_ATTEMPTS_LIMIT);
    bool ignore_cancel = json_is_true(json_object_get(p, "ignore_cancel"));
    int64_t start = wall_us();
    enum rf_status rc = RF_OK;
    const char *outcome = "ok";

    if (json_is_true(json_object_get(p, "log"))) {
        char msg[96];
        snprintf(msg, sizeof msg, "started attempt %d in pid %d", attempt, (int)getpid());
        rc = job_log(ctx, "info", msg, err);
        if (rc)
            goto out;
    }
    if (json_is_true(json_object_get(p, "block"))) {
        rc = block_until_aborted(ctx, sleep_ms, err);
        if (rc)
            goto out;
    } else if (ignore_cancel) {
        clock_sleep_ms(sleep_ms);
        rc = job_log(ctx, "info", "slept through any cancel or lease loss", err);
        if (rc)
            goto out;
    } else {
        int64_t slices = progress + 1;
        for (int64_t i = 0; i < slices; i++) {
            int64_t part = sleep_ms / slices + (i < sleep_ms % slices ? 1 : 0);
            if (i == slices / 2 && crashes_now(p, attempt, "during"))
                _exit(137);
            if (part > 0 ? !job_sleep(ctx, part) : job_cancelled(ctx)) {
                rc = RF_CANCELLED;
                goto out;
            }
            if (i + 1 < slices) {
                json_t *extra = json_pack("{s:I, s:I}", "t_us", (json_int_t)wall_us(), "i",
                                          (json_int_t)(i + 1));
                rc = job_progress(ctx, "sleeping", (int)(100 * (i + 1) / slices), extra, err);
                json_decref(extra);
                if (rc)
                    goto out;
            }
        }
    }
    if (fails) {
        bool transient = strcmp(fail, "transient") == 0;
        if (transient)
            job_retry_after(ctx, param_int(p, "retry_after_ms", 0));
        rc = rf_fail_reason(err, transient ? RF_TRANSIENT : RF_PERMANENT,
                            transient ? "test_transient" : "test_permanent",
                            "test_sleep failed on attempt %d as asked", attempt);
        goto out;
    }
out:;
    int64_t end = wall_us();
    if (rc == RF_OK) {
        json_t *result = json_pack("{s:i, s:i, s:I, s:I, s:I}", "attempt", attempt, "pid",
                                   (int)getpid(), "start_us", (json_int_t)start, "end_us",
                                   (json_int_t)end, "slept_ms", (json_int_t)sleep_ms);
        job_succeed(ctx, result, commit_row, ctx);
    } else {
        outcome = rc == RF_CANCELLED ? "stopped" : rf_status_name(rc);
    }
    record_run(ctx, start, end, outcome);
    return rc;
}
