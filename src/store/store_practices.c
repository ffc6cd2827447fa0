/*
 * store_practices - prompt-engineering best practices: the built-in rows
 * (workspace_id NULL, seeded by migration 001) and each workspace's own
 * (source "custom"). Built-in rows are read-only.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/jsonx.h"
#include "store/store_internal.h"
#include "core/banned.h"

#define PRACTICE_COLS "id, workspace_id, source, category, title, content, url, created_at"

static const char *SQL_PRACTICE_LIST =
    "SELECT " PRACTICE_COLS " FROM prompt_best_practices "
    "WHERE (workspace_id IS NULL OR workspace_id = ?) AND id < ? "
    "AND (CAST(? AS TEXT) IS NULL OR category = ?) ORDER BY id DESC LIMIT ?";
static const char *SQL_PRACTICE_INSERT =
    "INSERT INTO prompt_best_practices (id, workspace_id, source, category, title, content, "
    "url, created_at) VALUES (?, ?, 'custom', ?, ?, ?, ?, ?)";
static const char *SQL_PRACTICE_GET =
    "SELECT " PRACTICE_COLS " FROM prompt_best_practices WHERE id = ? AND "
    "(workspace_id IS NULL OR workspace_id = ?)";
static const char *SQL_PRACTICE_DELETE =
    "DELETE FROM prompt_best_practices WHERE id = ? AND workspace_id = ?";
static const char *SQL_PRACTICE_SELECT =
    "SELECT " PRACTICE_COLS " FROM prompt_best_practices "
    "WHERE (workspace_id IS NULL OR workspace_id = ?) "
    "AND category IN ('clarity', 'structure', 'reasoning', 'general') "
    "ORDER BY CASE WHEN workspace_id IS NULL THEN 1 ELSE 0 END, created_at DESC, id DESC LIMIT ?";

static json_t *practice_from_row(struct db_stmt *s)
{
    json_t *p = json_object();
    json_object_set_new(p, "id", col_str(s, 0));
    json_object_set_new(p, "builtin", json_boolean(db_is_null(s, 1)));
    json_object_set_new(p, "source", col_str(s, 2));
    json_object_set_new(p, "category", col_str(s, 3));
    json_object_set_new(p, "title", col_str(s, 4));
    json_object_set_new(p, "content", col_str(s, 5));
    json_object_set_new(p, "url", col_str(s, 6));
    json_object_set_new(p, "created_at", col_time(s, 7));
    return p;
}

enum rf_status store_practice_list(struct store *st, const char *ws, const char *category,
                                   const struct store_page *page, struct store_list *out,
                                   struct rf_err *err)
{
    char bound[ID_MAX];
    enum rf_status rc = page_id_cursor(page, "bp_", bound, err);
    if (rc)
        return rc;
    struct db_stmt *s;
    rc = db_query(st->db, SQL_PRACTICE_LIST,
                  DB_ARGS(DB_T(ws), DB_T(bound), DB_T(category), DB_T(category),
                          DB_I(page->limit + 1)),
                  &s, err);
    if (rc)
        return rc;
    return page_collect(s, practice_from_row, page->limit, "id", out, err);
}

enum rf_status store_practice_create(struct store *st, const char *ws, const char *category,
                                     const char *title, const char *content, const char *url,
                                     json_t **out, struct rf_err *err)
{
    char id[ID_MAX];
    id_new("bp_", id);
    enum rf_status rc = db_begin(st->db, err);
    if (rc)
        return rc;
    rc = db_run(st->db, SQL_PRACTICE_INSERT,
                DB_ARGS(DB_T(id), DB_T(ws), DB_T(category), DB_T(title), DB_T(content), DB_T(url),
                        DB_I(clock_now_ms())),
                NULL, err);
    rc = db_end(st->db, rc, err);
    if (rc || !out)
        return rc;
    struct db_stmt *s;
    bool found;
    rc = db_row(st->db, SQL_PRACTICE_GET, DB_ARGS(DB_T(id), DB_T(ws)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        *out = practice_from_row(s);
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_INTERNAL, "best practice %s vanished", id);
}

enum rf_status store_practice_delete(struct store *st, const char *ws, const char *id,
                                     struct rf_err *err)
{
    int64_t changes = 0;
    enum rf_status rc = db_begin(st->db, err);
    if (rc)
        return rc;
    rc = db_run(st->db, SQL_PRACTICE_DELETE, DB_ARGS(DB_T(id), DB_T(ws)), &changes, err);
    if (rc == RF_OK && changes == 0)
        rc = rf_fail(err, RF_NOT_FOUND, "best practice %s not found among this workspace's own",
                     id);
    return db_end(st->db, rc, err);
}

enum rf_status store_practice_select(struct store *st, const char *ws, int limit, json_t **out,
                                     struct rf_err *err)
{
    struct db_stmt *s;
    enum rf_status rc =
        db_query(st->db, SQL_PRACTICE_SELECT, DB_ARGS(DB_T(ws), DB_I(limit)), &s, err);
    if (rc)
        return rc;
    return rows_collect(s, practice_from_row, out, err);
}
