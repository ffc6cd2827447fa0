/*
 * jobview - the live view of a job's events shared by `refold improve` and `refold demo`.
 *
 * In TTY mode one status line (spinner, stage, progress bar, tokens received during LLM
 * calls) is redrawn in place with \r and erase-to-end-of-line, and each finished stage
 * is written above it as a permanent line with what it found; retries and warnings get
 * permanent lines too. Otherwise every event is one plain line ("[ 30%] analyzing
 * failures: 43 contradictions (32 missed failures, 11 false alarms)"), good for logs and
 * pipes. Stages are shown by name with underscores as spaces, in the order they arrive.
 *
 * While the stream reconnects, a notice takes the status line's place (job_view_link).
 * Feed it with follow_job (job_view_event is a follow_event_fn); call job_view_end before
 * printing anything else. One view per stream, one thread.
 */
#ifndef REFOLD_CMD_JOBVIEW_H
#define REFOLD_CMD_JOBVIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cmd/follow.h"

struct job_view {
    FILE *out;
    bool tty, color, utf8;
    int width;
    char stage[64];   /* the stage in progress ("" before the first event) */
    int progress;     /* its percentage */
    char detail[256]; /* what the stage found, shown when it ends */
    char step[32];    /* LLM step streaming now ("" when none) */
    int64_t tokens;   /* output tokens received in that step */
    bool live;        /* the status line is on screen (TTY) */
    int spin;         /* spinner frame */
    json_t *result;   /* the completed event's result (owned) */
};

/* Caller-owned struct writing to out. Release with job_view_end. */
void job_view_init(struct job_view *v, FILE *out, bool tty, bool color);
/* One job event (a follow_event_fn; ud is the view). */
void job_view_event(void *ud, int64_t seq, const char *type, const json_t *data);
/* The stream's connection (a follow_link_fn; ud is the view): in TTY mode "connection
 * lost, reconnecting… (12 s)" takes the status line's place until the server answers
 * again, then the status line comes back; otherwise follow_link_stderr's lines. */
void job_view_link(void *ud, enum follow_link state, int64_t away_ms, const char *why);
/* Take the status line off the screen and free what the view holds. Idempotent. */
void job_view_end(struct job_view *v);

#endif
