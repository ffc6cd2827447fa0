/*
 * cmd_admin - commands that work directly on the database: init, migrate,
 * workspace and key. They need no running server.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/jsonx.h"
#include "core/utf8.h"
#include "store/store.h"
#include "core/banned.h"

#define NAME_MAX_CHARS 200

/* A workspace or key name: 1 to NAME_MAX_CHARS characters of UTF-8 without control
 * characters - C0, DEL or C1, utf8_control's set, as the API's names (the lists print
 * them one per line, tab-separated). False after printing why. */
static bool valid_name(const char *what, const char *name)
{
    bool ok = *name && utf8_valid(name) && jx_utf8_len(name) <= NAME_MAX_CHARS &&
              utf8_control(name, NULL) < 0;
    if (!ok)
        cmd_error("a %s name is 1 to %d characters of UTF-8 text without control characters",
                  what, NAME_MAX_CHARS);
    return ok;
}

struct store *cmd_open_store(const char *db, bool migrate)
{
    struct store *st = NULL;
    struct rf_err err;
    rf_err_clear(&err);
    if (store_open(db, &st, &err) != RF_OK) {
        cmd_fail(&err);
        return NULL;
    }
    if (migrate && store_migrate(st, NULL, &err) != RF_OK) {
        cmd_fail(&err);
        store_close(st);
        return NULL;
    }
    return st;
}

int cmd_migrate(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        if (c == 'd')
            cfg.db = optarg;
        else
            return cmd_usage("migrate");
    }
    if (optind != argc)
        return cmd_usage("migrate");
    struct store *st = cmd_open_store(cfg.db, false);
    if (!st)
        return 1;
    struct rf_err err;
    int applied = 0, version = 0;
    enum rf_status rc = store_migrate(st, &applied, &err);
    if (rc == RF_OK)
        rc = store_schema_version(st, &version, &err);
    store_close(st);
    if (rc)
        return cmd_fail(&err);
    printf("applied %d migration%s; schema version %d\n", applied, applied == 1 ? "" : "s",
           version);
    return 0;
}

int cmd_init(int argc, char **argv)
{
    struct config cfg;
    config_load(&cfg);
    const char *workspace = "default";
    bool save = true, db_flag = false;
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"workspace", required_argument, NULL, 'w'},
                                         {"no-config", no_argument, NULL, 'n'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        if (c == 'd')
            cfg.db = optarg, db_flag = true;
        else if (c == 'w')
            workspace = optarg;
        else if (c == 'n')
            save = false;
        else
            return cmd_usage("init");
    }
    if (optind != argc)
        return cmd_usage("init");
    if (!valid_name("workspace", workspace))
        return EXIT_USAGE;
    struct store *st = cmd_open_store(cfg.db, true);
    if (!st)
        return 1;
    struct rf_err err;
    json_t *ws = NULL, *key = NULL;
    char *secret = NULL;
    int status = 0;
    /* The commands suggested below work on the same database: --db, when it was given. */
    char db_word[4200] = "";
    if (db_flag) {
        memcpy(db_word, " --db ", 6);
        cmd_shell_word(cfg.db, db_word + 6, sizeof db_word - 6);
    }
    bool exists = store_workspace_find(st, workspace, &ws, &err) == RF_OK;
    enum rf_status rc = RF_OK;
    /* Another `init` on the same database (nodes started together) may create the
     * workspace between that look-up and this insert: then it already exists too. */
    if (!exists && (rc = store_workspace_create(st, workspace, &ws, &err)) == RF_CONFLICT)
        exists = store_workspace_find(st, workspace, &ws, &err) == RF_OK;
    if (exists) {
        char word[512];
        cmd_shell_word(workspace, word, sizeof word);
        printf("database %s is ready; workspace \"%s\" already exists.\n"
               "Create another API key with: refold key create --workspace %s%s\n",
               cfg.db, workspace, word, db_word);
        goto out;
    }
    if (rc != RF_OK ||
        store_key_create(st, json_string_value(json_object_get(ws, "id")), "default", &secret,
                         &key, &err) != RF_OK) {
        status = cmd_fail(&err);
        goto out;
    }
    printf("database %s is ready; workspace \"%s\" created.\n\n"
           "API key (shown once, store it safely):\n\n    %s\n\n",
           cfg.db, workspace, secret);
    if (save) {
        /* REFOLD_URL, else where `refold serve` will listen: never the URL of the config
         * file being replaced, which belongs to an earlier database. */
        char path[4096], url[600];
        const char *env_url = getenv("REFOLD_URL");
        if (env_url && *env_url)
            snprintf(url, sizeof url, "%s", env_url);
        else
            snprintf(url, sizeof url, "http://%s", cfg.listen);
        config_path(path, sizeof path);
        if (config_save(url, secret, &err) != RF_OK) {
            status = cmd_fail(&err);
            goto out;
        }
        printf("Saved the server URL (%s) and the key in %s.\n", url, path);
    }
    printf("Start the server with: refold serve%s\n", db_word);
out:
    free(secret);
    json_decref(ws);
    json_decref(key);
    store_close(st);
    return status;
}

/* Parse --db and --workspace (and --name for key create) after a subcommand: those that
 * the subcommand takes (the with_ flags), the others are bad usage, not ignored. */
struct admin_opts {
    const char *workspace;
    const char *name;
};

static int admin_options(int argc, char **argv, struct config *cfg, struct admin_opts *o,
                         const char *usage, bool with_workspace, bool with_name)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"workspace", required_argument, NULL, 'w'},
                                         {"name", required_argument, NULL, 'n'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = cmd_getopt(argc, argv, "", opts)) != -1) {
        if (c == 'd')
            cfg->db = optarg;
        else if (c == 'w' && with_workspace)
            o->workspace = optarg;
        else if (c == 'n' && with_name)
            o->name = optarg;
        else if (c == 'w' || c == 'n')
            return cmd_usage_error(usage, "%s %s takes no --%s", usage, argv[1],
                                   c == 'w' ? "workspace" : "name");
        else
            return cmd_usage(usage);
    }
    return 0;
}

int cmd_workspace(int argc, char **argv)
{
    struct config cfg;
    struct admin_opts o = {0};
    config_load(&cfg);
    bool create = argc > 1 && strcmp(argv[1], "create") == 0;
    bool list = argc > 1 && strcmp(argv[1], "list") == 0;
    if (!create && !list)
        return cmd_usage("workspace");
    if (admin_options(argc, argv, &cfg, &o, "workspace", false, false))
        return EXIT_USAGE;
    if ((create && optind != argc - 1) || (list && optind != argc))
        return cmd_usage("workspace");
    if (create && !valid_name("workspace", argv[optind]))
        return EXIT_USAGE;
    struct store *st = cmd_open_store(cfg.db, true);
    if (!st)
        return 1;
    struct rf_err err;
    json_t *out = NULL;
    enum rf_status rc = create ? store_workspace_create(st, argv[optind], &out, &err)
                               : store_workspace_list(st, &out, &err);
    store_close(st);
    if (rc)
        return cmd_fail(&err);
    if (create) {
        printf("%s\t%s\n", json_string_value(json_object_get(out, "id")),
               json_string_value(json_object_get(out, "name")));
    } else {
        size_t i;
        json_t *w;
        json_array_foreach(out, i, w)
        printf("%s\t%s\n", json_string_value(json_object_get(w, "id")),
               json_string_value(json_object_get(w, "name")));
    }
    json_decref(out);
    return 0;
}

int cmd_key(int argc, char **argv)
{
    struct config cfg;
    struct admin_opts o = {.workspace = "default", .name = "cli"};
    config_load(&cfg);
    const char *sub = argc > 1 ? argv[1] : "";
    bool revoke = strcmp(sub, "revoke") == 0;
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 && !revoke)
        return cmd_usage("key");
    if (admin_options(argc, argv, &cfg, &o, "key", true, strcmp(sub, "create") == 0))
        return EXIT_USAGE;
    if ((revoke && optind != argc - 1) || (!revoke && optind != argc))
        return cmd_usage("key");
    if (strcmp(sub, "create") == 0 && !valid_name("key", o.name))
        return EXIT_USAGE;
    struct store *st = cmd_open_store(cfg.db, true);
    if (!st)
        return 1;
    struct rf_err err;
    json_t *ws = NULL, *out = NULL;
    char *secret = NULL;
    enum rf_status rc = store_workspace_find(st, o.workspace, &ws, &err);
    const char *ws_id = json_string_value(json_object_get(ws, "id"));
    if (rc == RF_OK && strcmp(sub, "create") == 0)
        rc = store_key_create(st, ws_id, o.name, &secret, &out, &err);
    else if (rc == RF_OK && revoke)
        rc = store_key_revoke(st, ws_id, argv[optind], &out, &err);
    else if (rc == RF_OK)
        rc = store_key_list(st, ws_id, &out, &err);
    store_close(st);
    if (rc) {
        json_decref(ws);
        return cmd_fail(&err);
    }
    if (secret) {
        printf("%s\n", secret);
        fprintf(stderr, "API key %s created in workspace %s; it is shown only this once.\n",
                json_string_value(json_object_get(out, "id")), o.workspace);
    } else if (revoke) {
        printf("revoked %s (%s)\n", json_string_value(json_object_get(out, "id")),
               json_string_value(json_object_get(out, "prefix")));
    } else {
        size_t i;
        json_t *k;
        json_array_foreach(out, i, k)
        {
            printf("%s\t%s…\t%s\t%s\n", json_string_value(json_object_get(k, "id")),
                   json_string_value(json_object_get(k, "prefix")),
                   json_string_value(json_object_get(k, "name")),
                   json_is_null(json_object_get(k, "revoked_at")) ? "active" : "revoked");
        }
    }
    free(secret);
    json_decref(out);
    json_decref(ws);
    return 0;
}
