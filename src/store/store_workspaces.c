/*
 * store_workspaces - workspaces and their API keys.
 *
 * A key is "rf_" followed by 40 random Crockford base32 characters (200
 * bits). Only its SHA-256 hex digest is stored, with the first 8 characters
 * as a display prefix; authentication hashes the presented key and looks the
 * digest up through the unique index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "store/store_internal.h"
#include "core/banned.h"

static const char *SQL_WS_INSERT =
    "INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)";
static const char *SQL_WS_FIND =
    "SELECT id, name, created_at FROM workspaces WHERE id = ? OR name = ?";
static const char *SQL_WS_LIST = "SELECT id, name, created_at FROM workspaces ORDER BY id";
static const char *SQL_KEY_INSERT =
    "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)";
#define KEY_COLS "id, workspace_id, name, prefix, created_at, revoked_at"
static const char *SQL_KEY_LIST =
    "SELECT " KEY_COLS " FROM api_keys WHERE workspace_id = ? ORDER BY id";
/* Active keys first: a prefix shared with a revoked key names the active one. */
static const char *SQL_KEY_FIND =
    "SELECT " KEY_COLS " FROM api_keys WHERE workspace_id = ? AND (id = ? OR prefix = ?) "
    "ORDER BY revoked_at IS NOT NULL, created_at DESC, id DESC";
static const char *SQL_KEY_PREFIX_ACTIVE =
    "SELECT count(*) FROM api_keys WHERE workspace_id = ? AND prefix = ? AND revoked_at IS NULL";
static const char *SQL_KEY_REVOKE =
    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL";
static const char *SQL_KEY_AUTH =
    "SELECT workspace_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL";

static const char *SQL_KEY_ID_AUTH =
    "SELECT id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL";
static const char *SQL_SESSION_INSERT =
    "INSERT INTO sessions (token_hash, key_id, created_at, expires_at) VALUES (?, ?, ?, ?)";
static const char *SQL_SESSION_AUTH =
    "SELECT k.workspace_id FROM sessions s JOIN api_keys k ON k.id = s.key_id "
    "WHERE s.token_hash = ? AND s.expires_at > ? AND k.revoked_at IS NULL";
static const char *SQL_SESSION_DELETE = "DELETE FROM sessions WHERE token_hash = ? OR expires_at <= ?";
/* Sign-ins prune the expired sessions too: browsers rarely sign out, and sign-outs were
 * the only thing that deleted them. */
static const char *SQL_SESSION_PRUNE = "DELETE FROM sessions WHERE expires_at <= ?";

static json_t *workspace_from_row(struct db_stmt *s)
{
    return json_pack("{s:o, s:o, s:o}", "id", col_str(s, 0), "name", col_str(s, 1),
                     "created_at", col_time(s, 2));
}

static json_t *key_from_row(struct db_stmt *s)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "id", col_str(s, 0), "workspace_id",
                     col_str(s, 1), "name", col_str(s, 2), "prefix", col_str(s, 3),
                     "created_at", col_time(s, 4), "revoked_at", col_time(s, 5));
}

enum rf_status store_workspace_create(struct store *st, const char *name, json_t **out,
                                      struct rf_err *err)
{
    char id[ID_MAX];
    id_new("ws_", id);
    int64_t now = clock_now_ms();
    enum rf_status rc = db_begin(st->db, err);
    if (rc)
        return rc;
    rc = db_run(st->db, SQL_WS_INSERT, DB_ARGS(DB_T(id), DB_T(name), DB_I(now)), NULL, err);
    if (rc) {
        db_rollback(st->db);
        if (rc == RF_CONFLICT)
            rf_fail_field(err, RF_CONFLICT, "name", "workspace \"%s\" already exists", name);
        return rc;
    }
    rc = db_commit(st->db, err);
    if (rc == RF_OK && out)
        *out = json_pack("{s:s, s:s, s:o}", "id", id, "name", name, "created_at", jx_time(now));
    return rc;
}

enum rf_status store_workspace_find(struct store *st, const char *name_or_id, json_t **out,
                                    struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc =
        db_row(st->db, SQL_WS_FIND, DB_ARGS(DB_T(name_or_id), DB_T(name_or_id)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        *out = workspace_from_row(s);
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_NOT_FOUND, "workspace %s not found", name_or_id);
}

enum rf_status store_workspace_list(struct store *st, json_t **out, struct rf_err *err)
{
    struct db_stmt *s;
    enum rf_status rc = db_query(st->db, SQL_WS_LIST, DB_NOARGS, &s, err);
    if (rc)
        return rc;
    return rows_collect(s, workspace_from_row, out, err);
}

static char *new_secret(void)
{
    /* 40 characters of a 32-letter alphabet: 200 random bits. */
    static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
    unsigned char rnd[40];
    crypto_random(rnd, sizeof rnd);
    char *s = xmalloc(3 + sizeof rnd + 1);
    memcpy(s, "rf_", 3);
    for (size_t i = 0; i < sizeof rnd; i++)
        s[3 + i] = alphabet[rnd[i] & 31];
    s[3 + sizeof rnd] = '\0';
    return s;
}

enum rf_status store_key_create(struct store *st, const char *workspace_id, const char *name,
                                char **secret, json_t **out, struct rf_err *err)
{
    char id[ID_MAX], hash[SHA256_HEX_LEN + 1], prefix[API_KEY_PREFIX_LEN + 1];
    id_new("key_", id);
    char *key = new_secret();
    crypto_sha256_hex(key, strlen(key), hash);
    memcpy(prefix, key, API_KEY_PREFIX_LEN);
    prefix[API_KEY_PREFIX_LEN] = '\0';
    int64_t now = clock_now_ms();
    enum rf_status rc = db_begin(st->db, err);
    if (rc == RF_OK) {
        rc = db_run(st->db, SQL_KEY_INSERT,
                    DB_ARGS(DB_T(id), DB_T(workspace_id), DB_T(name), DB_T(prefix), DB_T(hash),
                            DB_I(now)),
                    NULL, err);
        if (rc == RF_INVALID)
            rf_fail(err, RF_NOT_FOUND, "workspace %s not found", workspace_id);
        rc = db_end(st->db, rc, err);
    }
    if (rc) {
        free(key);
        return rc;
    }
    *secret = key;
    if (out)
        *out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:n}", "id", id, "workspace_id",
                         workspace_id, "name", name, "prefix", prefix, "created_at", jx_time(now),
                         "revoked_at");
    return RF_OK;
}

enum rf_status store_key_list(struct store *st, const char *workspace_id, json_t **out,
                              struct rf_err *err)
{
    struct db_stmt *s;
    enum rf_status rc = db_query(st->db, SQL_KEY_LIST, DB_ARGS(DB_T(workspace_id)), &s, err);
    if (rc)
        return rc;
    return rows_collect(s, key_from_row, out, err);
}

enum rf_status store_key_revoke(struct store *st, const char *workspace_id,
                                const char *id_or_prefix, json_t **out, struct rf_err *err)
{
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_begin(st->db, err);
    if (rc)
        return rc;
    rc = db_row(st->db, SQL_KEY_FIND,
                DB_ARGS(DB_T(workspace_id), DB_T(id_or_prefix), DB_T(id_or_prefix)), &s, &found,
                err);
    if (rc)
        goto out;
    if (!found) {
        db_done(s);
        rc = rf_fail(err, RF_NOT_FOUND, "API key %s not found", id_or_prefix);
        goto out;
    }
    char *id = db_strdup(s, 0);
    db_done(s);
    /* Prefixes are 5 random characters after "rf_": two keys may share one. Revoking
     * either of them then would be a guess, and may leave the leaked one active. */
    int64_t active = 0;
    rc = db_row(st->db, SQL_KEY_PREFIX_ACTIVE, DB_ARGS(DB_T(workspace_id), DB_T(id_or_prefix)),
                &s, &found, err);
    if (rc == RF_OK) {
        active = found ? db_int(s, 0) : 0;
        db_done(s);
    }
    if (rc == RF_OK && active > 1)
        rc = rf_fail(err, RF_CONFLICT,
                     "%lld active API keys start with %s: give the id of the one to revoke "
                     "(refold key list)",
                     (long long)active, id_or_prefix);
    if (rc) {
        free(id);
        goto out;
    }
    rc = db_run(st->db, SQL_KEY_REVOKE, DB_ARGS(DB_I(clock_now_ms()), DB_T(id)), NULL, err);
    if (rc == RF_OK)
        rc = db_row(st->db, SQL_KEY_FIND,
                    DB_ARGS(DB_T(workspace_id), DB_T(id), DB_T(id)), &s, &found, err);
    free(id);
    if (rc == RF_OK) {
        if (out && found)
            *out = key_from_row(s);
        db_done(s);
    }
out:
    return db_end(st->db, rc, err);
}

enum rf_status store_key_authenticate(struct store *st, const char *secret,
                                      char workspace_id[ID_MAX], struct rf_err *err)
{
    char hash[SHA256_HEX_LEN + 1];
    crypto_sha256_hex(secret, strlen(secret), hash);
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(st->db, SQL_KEY_AUTH, DB_ARGS(DB_T(hash)), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        snprintf(workspace_id, ID_MAX, "%s", db_text(s, 0));
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_UNAUTHORIZED, "invalid or revoked API key");
}

enum rf_status store_session_create(struct store *st, const char *api_key, int64_t ttl_ms,
                                    char **token, struct rf_err *err)
{
    char hash[SHA256_HEX_LEN + 1];
    crypto_sha256_hex(api_key, strlen(api_key), hash);
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_begin(st->db, err);
    if (rc)
        return rc;
    rc = db_row(st->db, SQL_KEY_ID_AUTH, DB_ARGS(DB_T(hash)), &s, &found, err);
    if (rc) {
        db_rollback(st->db);
        return rc;
    }
    char *key_id = found ? db_strdup(s, 0) : NULL;
    db_done(s);
    if (!found) {
        db_rollback(st->db);
        return rf_fail_field(err, RF_UNAUTHORIZED, "api_key", "invalid or revoked API key");
    }
    char *t = new_secret();
    char thash[SHA256_HEX_LEN + 1];
    crypto_sha256_hex(t, strlen(t), thash);
    int64_t now = clock_now_ms();
    rc = db_run(st->db, SQL_SESSION_PRUNE, DB_ARGS(DB_I(now)), NULL, err);
    if (rc == RF_OK)
        rc = db_run(st->db, SQL_SESSION_INSERT,
                    DB_ARGS(DB_T(thash), DB_T(key_id), DB_I(now), DB_I(now + ttl_ms)), NULL, err);
    free(key_id);
    rc = db_end(st->db, rc, err);
    if (rc) {
        free(t);
        return rc;
    }
    *token = t;
    return RF_OK;
}

enum rf_status store_session_authenticate(struct store *st, const char *token,
                                          char workspace_id[ID_MAX], struct rf_err *err)
{
    char hash[SHA256_HEX_LEN + 1];
    crypto_sha256_hex(token, strlen(token), hash);
    struct db_stmt *s;
    bool found;
    enum rf_status rc = db_row(st->db, SQL_SESSION_AUTH,
                               DB_ARGS(DB_T(hash), DB_I(clock_now_ms())), &s, &found, err);
    if (rc)
        return rc;
    if (found)
        snprintf(workspace_id, ID_MAX, "%s", db_text(s, 0));
    db_done(s);
    return found ? RF_OK : rf_fail(err, RF_UNAUTHORIZED, "session expired: sign in again");
}

enum rf_status store_session_delete(struct store *st, const char *token, struct rf_err *err)
{
    char hash[SHA256_HEX_LEN + 1];
    crypto_sha256_hex(token, strlen(token), hash);
    enum rf_status rc = db_begin(st->db, err);
    if (rc)
        return rc;
    rc = db_run(st->db, SQL_SESSION_DELETE, DB_ARGS(DB_T(hash), DB_I(clock_now_ms())), NULL, err);
    return db_end(st->db, rc, err);
}
