/*
 * store_internal - what the store_*.c files share: the connection struct,
 * the column lists and row readers that turn result rows into API objects,
 * and the page/cursor helpers. Private to src/store/.
 */
#ifndef REFOLD_STORE_INTERNAL_H
#define REFOLD_STORE_INTERNAL_H

#include <jansson.h>

#include "store/db.h"
#include "store/store.h"

struct store {
    struct db *db;
};

/* The 16 columns of agent_versions, aliased v, in the order version_from_row reads. */
#define VERSION_COLS                                                                               \
    "v.id, v.agent_id, v.version, v.prompt_template, v.variables, v.source, "                      \
    "v.parent_version_id, v.status, v.accuracy, v.change_summary, v.changes, "                     \
    "v.failure_patterns, v.created_by_job_id, v.review_note, v.created_at, v.decided_at"
#define VERSION_NCOLS 16

/* The Version object from columns col..col+15 of the current row. */
json_t *version_from_row(struct db_stmt *s, int col);

/* Text column or JSON null. */
json_t *col_str(struct db_stmt *s, int col);
/* Millisecond column as an RFC 3339 string, or null. */
json_t *col_time(struct db_stmt *s, int col);
/* Stored JSON text column parsed, or null. */
json_t *col_json(struct db_stmt *s, int col);

/* The bound value meaning "no cursor": sorts after every id. */
#define CURSOR_END "~"
/* Validate an id cursor; RF_INVALID (field "cursor") when malformed. */
enum rf_status page_id_cursor(const struct store_page *p, const char **bound, struct rf_err *err);
/* Finish a list fetched with limit+1 rows: trims the extra row and sets next_cursor from
 * key_field of the last kept element. */
void page_finish(struct store_list *out, int limit, const char *key_field);

/* Apply deltas to an agent's counters (creating the row when missing). */
enum rf_status stats_add(struct db *db, const char *agent_id, int64_t traces, int64_t positive,
                         int64_t negative, int64_t neutral, int64_t executions, int64_t pos_pass,
                         int64_t pos_fail, int64_t neg_pass, int64_t neg_fail, struct rf_err *err);

/* Resolve a trace reference inside workspace ws to (trace id, agent id). */
enum rf_status trace_resolve(struct db *db, const char *ws, const struct trace_ref *ref,
                             char trace_id[ID_MAX], char agent_id[ID_MAX], struct rf_err *err);

/* The SQL of named queries, for store_query_sql. */
const char *contradictions_sql(void);
const char *agent_stats_sql(void);
const char *agent_get_stats_sql(void);

#endif
