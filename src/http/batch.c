/*
 * batch - see batch.h.
 */
#include "http/batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/jsonx.h"
#include "core/xalloc.h"
#include "core/banned.h"

char *batch_keep(struct batch_scratch *sc, char *s)
{
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 16;
        sc->v = xrealloc(sc->v, sizeof *sc->v * (size_t)sc->cap);
    }
    sc->v[sc->n++] = s;
    return s;
}

enum rf_status batch_items(const json_t *body, const char *key, json_t **items,
                           struct rf_err *err)
{
    enum rf_status rc = jx_typed(body, key, JX_REQUIRED, JSON_ARRAY, items, err);
    if (rc == RF_OK && json_array_size(*items) > LIMIT_BATCH_ITEMS)
        rc = rf_fail_field(err, RF_TOO_LARGE, key, "a batch holds at most %d items",
                           LIMIT_BATCH_ITEMS);
    return rc;
}

enum rf_status batch_run(struct req *req, const json_t *items, const struct batch_spec *spec,
                         void *ctx, struct store_item_result **results, struct rf_err *err)
{
    int n = (int)json_array_size(items), nvalid = 0;
    struct store_item_result *res = xcalloc((size_t)n + 1, sizeof *res);
    struct store_item_result *valid_res = xcalloc((size_t)n + 1, sizeof *valid_res);
    char *valid = xcalloc((size_t)n + 1, spec->item_size);
    int *map = xcalloc((size_t)n + 1, sizeof *map);
    struct batch_scratch sc = {0};
    for (int i = 0; i < n; i++) {
        const json_t *obj = json_array_get(items, (size_t)i);
        void *slot = valid + (size_t)nvalid * spec->item_size;
        enum rf_status prc;
        if (!json_is_object(obj))
            prc = rf_fail(&res[i].err, RF_INVALID, "item %d is not a JSON object", i);
        else
            prc = spec->parse(obj, slot, &sc, &res[i].err);
        if (prc) {
            res[i].outcome = OUTCOME_REJECTED;
            res[i].err.code = prc;
            continue;
        }
        map[nvalid++] = i;
    }
    enum rf_status rc = RF_OK;
    if (nvalid > 0)
        rc = spec->store(req, ctx, valid, nvalid, valid_res, err);
    for (int k = 0; rc == RF_OK && k < nvalid; k++)
        res[map[k]] = valid_res[k];
    for (int i = 0; i < sc.n; i++)
        free(sc.v[i]);
    free(sc.v);
    free(valid);
    free(valid_res);
    free(map);
    if (rc) {
        free(res);
        return rc;
    }
    *results = res;
    return RF_OK;
}

enum rf_status batch_rejected_only(struct req *req, bool *out, struct rf_err *err)
{
    static const char *const values[] = {"all", "rejected", NULL};
    const char *v = NULL;
    enum rf_status rc = req_query_enum(req, "outcomes", values, &v, err);
    *out = rc == RF_OK && v && strcmp(v, "rejected") == 0;
    return rc;
}
