/*
 * bench_gen - the benchmark data set, deterministic from a seed.
 *
 * Shape at full size (issue 9): 10 agents with 3 versions and 3 evals each,
 * 1,000,000 traces of which agent-00 holds half, 40 % of traces rated
 * (60 % positive, 30 % negative, 10 % neutral), every trace executed by its
 * agent's 3 evals, evals agreeing with the human 90 % of the time. --scale N
 * divides the trace count by N (default 20); --full is --scale 1.
 *
 * Each trace has a hidden quality (good with p = 2/3, matching the 60/30
 * split of positive and negative ratings); a rated trace is rated after its
 * quality (or neutral, 10 %), and every eval judges the quality correctly
 * with p = 0.9. So on positive and negative traces the evals agree with the
 * human 90 % of the time, and about 27 % of those traces carry at least one
 * contradiction.
 *
 * Writes into --out DIR:
 *   data.jsonl   the import file format of SPEC §9, in dependency order:
 *                agents, versions, evals, traces, feedback, executions
 *   traces.csv   the same traces as rows of the traces table (RFC 4180, no
 *                header) for the sqlite3 `.import` reference; the id columns
 *                are made-up ids of the right shape
 *   manifest     key=value counts
 *
 * The output depends only on the seed and the scale (no clock, no locale).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/banned.h"

#define AGENTS 10
#define VERSIONS 3
#define EVALS 3
#define FULL_TRACES 1000000
/* 2026-01-01T00:00:00Z; traces are spread over 30 days from here. */
#define T0_MS INT64_C(1767225600000)
#define SPAN_MS (INT64_C(30) * 24 * 3600 * 1000)

static const char *const words[] = {
    "refund",   "order",    "invoice",  "account",  "password", "shipping", "delivery", "late",
    "missing",  "charge",   "twice",    "card",     "update",   "address",  "cancel",   "policy",
    "warranty", "return",   "label",    "tracking", "support",  "agent",    "please",   "help",
    "urgent",   "today",    "week",     "customer", "premium",  "plan",     "upgrade",  "billing",
    "error",    "message",  "screen",   "login",    "reset",    "email",    "phone",    "number",
    "discount", "coupon",   "expired",  "product",  "damaged",  "replace",  "store",    "credit",
    "balance",  "monthly",  "annual",   "contract", "terms",    "privacy",  "data",     "export",
    "the",      "my",       "was",      "not",      "and",      "with",     "for",      "is",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char *const eval_names[EVALS] = {"correctness", "tone", "policy"};
static const char *const eval_desc[EVALS] = {
    "Judges whether the answer resolves the request correctly",
    "Judges whether the reply is polite and on brand",
    "Judges whether the reply follows the refund and privacy policy",
};
static const char *const good_reasons[] = {"answer matches the policy", "resolved the request",
                                           "clear and polite", "correct amount quoted"};
static const char *const bad_reasons[] = {"wrong refund amount", "ignored the question",
                                          "promised something off policy", "rude wording"};
static const char *const neg_notes[] = {"quoted the wrong refund window",
                                        "never answered the shipping question",
                                        "made up a discount code", NULL, NULL};

/* splitmix64: small, fast, and the same on every machine. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static unsigned rng_below(unsigned n)
{
    return (unsigned)(rng_next() % n);
}

struct trace_info {
    uint8_t agent;
    uint8_t version; /* 1..3 */
    uint8_t good;
    int8_t rating; /* -1 unrated, 0 positive, 1 negative, 2 neutral */
    uint8_t note;  /* index into neg_notes + 1, 0 none */
    uint8_t pred;  /* bit k: eval k predicted pass */
};

static void die(const char *what)
{
    fprintf(stderr, "bench_gen: %s: %s\n", what, strerror(errno));
    exit(1);
}

static FILE *open_out(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        die(path);
    static char *bufs[3];
    static int nb;
    if (nb < 3) {
        bufs[nb] = malloc(1 << 20);
        setvbuf(f, bufs[nb++], _IOFBF, 1 << 20);
    }
    return f;
}

/* n random words separated by spaces into out (no quotes, commas or backslashes). */
static size_t words_into(char *out, size_t cap, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const char *w = words[rng_below(NWORDS)];
        int k = snprintf(out + len, cap - len, "%s%s", i ? " " : "", w);
        if (k < 0 || (size_t)k >= cap - len)
            break;
        len += (size_t)k;
    }
    return len;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_gen --out DIR [--full | --scale N] [--seed S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    long scale = 20;
    uint64_t seed = 9;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--full") == 0)
            scale = 1;
        else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
            scale = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else
            usage();
    }
    if (!out || scale < 1)
        usage();
    rng_state = seed;
    long ntraces = FULL_TRACES / scale;

    FILE *jl = open_out(out, "data.jsonl");
    FILE *csv = open_out(out, "traces.csv");

    /* Agents with version 1 (active), versions 2 and 3 promoted in turn, and evals. */
    for (int a = 0; a < AGENTS; a++) {
        fprintf(jl,
                "{\"type\":\"agent\",\"name\":\"agent-%02d\",\"description\":\"Support agent %d "
                "of the benchmark\",\"prompt_template\":\"You are support agent %d. Answer "
                "{{customer_name}} about {{topic}}. Version 1.\"}\n",
                a, a, a);
    }
    for (int a = 0; a < AGENTS; a++)
        for (int v = 2; v <= VERSIONS; v++)
            fprintf(jl,
                    "{\"type\":\"version\",\"agent\":\"agent-%02d\",\"prompt_template\":\"You "
                    "are support agent %d. Answer {{customer_name}} about {{topic}} politely. "
                    "Version %d.\",\"status\":\"active\"}\n",
                    a, a, v);
    for (int a = 0; a < AGENTS; a++)
        for (int e = 0; e < EVALS; e++)
            fprintf(jl,
                    "{\"type\":\"eval\",\"agent\":\"agent-%02d\",\"name\":\"%s\","
                    "\"description\":\"%s\"}\n",
                    a, eval_names[e], eval_desc[e]);

    /* Traces. Agent 0 takes every even index, agents 1..9 share the odd ones; each agent's
     * traces move to the next version every third of the time span. */
    struct trace_info *info = calloc((size_t)ntraces, sizeof *info);
    if (!info)
        die("calloc");
    long per_agent[AGENTS] = {0};
    for (long i = 0; i < ntraces; i++)
        per_agent[i % 2 == 0 ? 0 : 1 + (i / 2) % (AGENTS - 1)]++;
    long seen[AGENTS] = {0}, rated = 0, counts[3] = {0};
    char input[1024], output[1024], ts[RFC3339_LEN];
    for (long i = 0; i < ntraces; i++) {
        struct trace_info *t = &info[i];
        t->agent = (uint8_t)(i % 2 == 0 ? 0 : 1 + (i / 2) % (AGENTS - 1));
        t->version = (uint8_t)(1 + seen[t->agent]++ * VERSIONS / per_agent[t->agent]);
        t->good = rng_unit() < 2.0 / 3.0;
        t->rating = -1;
        if (rng_unit() < 0.4) {
            t->rating = rng_unit() < 0.1 ? 2 : (t->good ? 0 : 1);
            rated++;
            counts[t->rating]++;
            if (t->rating == 1)
                t->note = (uint8_t)(1 + rng_below(5));
            if (t->note && !neg_notes[t->note - 1])
                t->note = 0;
        }
        for (int e = 0; e < EVALS; e++) {
            bool correct = rng_unit() < 0.9;
            bool pass = correct ? t->good : !t->good;
            t->pred |= (uint8_t)(pass << e);
        }
        int64_t when = T0_MS + (int64_t)((double)i * (double)SPAN_MS / (double)ntraces);
        clock_format(when, ts);
        int nin = snprintf(input, sizeof input, "Customer %ld writes: ", i);
        words_into(input + nin, sizeof input - (size_t)nin, 20 + (int)rng_below(20));
        int nout = snprintf(output, sizeof output, "Hello, thanks for reaching out about ");
        words_into(output + nout, sizeof output - (size_t)nout, 30 + (int)rng_below(30));
        fprintf(jl,
                "{\"type\":\"trace\",\"agent\":\"agent-%02d\",\"version\":%d,\"source\":\"bench\","
                "\"external_id\":\"t%07ld\",\"timestamp\":\"%s\",\"input\":\"%s\","
                "\"output\":\"%s\",\"metadata\":{\"channel\":\"%s\"}}\n",
                t->agent, t->version, i, ts, input, output, i % 3 ? "chat" : "email");
        /* id, workspace_id, agent_id, agent_version_id, source, external_id, timestamp,
         * input, output, steps, metadata, created_at */
        fprintf(csv,
                "trace_%026ld,ws_BENCH0000000000000000000000,agent_BENCH%021d,"
                "agv_BENCH%021d,bench,t%07ld,%" PRId64 ",\"%s\",\"%s\",,"
                "\"{\"\"channel\"\":\"\"%s\"\"}\",%" PRId64 "\n",
                i, t->agent, t->agent * VERSIONS + t->version, i, when, input, output,
                i % 3 ? "chat" : "email", when);
    }
    static const char *const rating_names[3] = {"positive", "negative", "neutral"};
    for (long i = 0; i < ntraces; i++) {
        const struct trace_info *t = &info[i];
        if (t->rating < 0)
            continue;
        if (t->note)
            fprintf(jl,
                    "{\"type\":\"feedback\",\"source\":\"bench\",\"external_id\":\"t%07ld\","
                    "\"rating\":\"%s\",\"note\":\"%s\"}\n",
                    i, rating_names[t->rating], neg_notes[t->note - 1]);
        else
            fprintf(jl,
                    "{\"type\":\"feedback\",\"source\":\"bench\",\"external_id\":\"t%07ld\","
                    "\"rating\":\"%s\"}\n",
                    i, rating_names[t->rating]);
    }
    /* Executions, grouped by eval so that a loader can batch them per eval. */
    long nexec = 0;
    for (int a = 0; a < AGENTS; a++) {
        for (int e = 0; e < EVALS; e++) {
            for (long i = 0; i < ntraces; i++) {
                const struct trace_info *t = &info[i];
                if (t->agent != a)
                    continue;
                bool pass = (t->pred >> e) & 1;
                const char *reason = pass ? good_reasons[(i + e) % 4] : bad_reasons[(i + e) % 4];
                fprintf(jl,
                        "{\"type\":\"eval_execution\",\"agent\":\"agent-%02d\",\"eval\":\"%s\","
                        "\"source\":\"bench\",\"external_id\":\"t%07ld\","
                        "\"predicted_result\":%s,\"predicted_reason\":\"%s\"}\n",
                        a, eval_names[e], i, pass ? "true" : "false", reason);
                nexec++;
            }
        }
    }
    if (fclose(jl) || fclose(csv))
        die("write");
    FILE *m = open_out(out, "manifest");
    fprintf(m,
            "seed=%" PRIu64 "\nscale=%ld\nagents=%d\nversions=%d\nevals=%d\ntraces=%ld\n"
            "largest_agent_traces=%ld\nfeedback=%ld\npositive=%ld\nnegative=%ld\nneutral=%ld\n"
            "executions=%ld\n",
            seed, scale, AGENTS, AGENTS * VERSIONS, AGENTS * EVALS, ntraces, per_agent[0], rated,
            counts[0], counts[1], counts[2], nexec);
    if (fclose(m))
        die("manifest");
    free(info);
    return 0;
}
