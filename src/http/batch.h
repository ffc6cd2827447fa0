/*
 * batch - the shared shape of batch endpoints (traces, feedback, executions):
 * validate every item, pass the valid ones to the store in one call (one
 * transaction), and report one outcome per input item, in order. An invalid
 * item is rejected alone; the rest are stored.
 */
#ifndef REFOLD_HTTP_BATCH_H
#define REFOLD_HTTP_BATCH_H

#include "http/http.h"

/* Heap strings made while parsing items, freed after the store call. */
struct batch_scratch {
    char **v;
    int n, cap;
};

/* Keep s (heap) until the batch ends; returns s. */
char *batch_keep(struct batch_scratch *sc, char *s);

struct batch_spec {
    size_t item_size;
    /* Fill *item from one JSON object; RF_INVALID/RF_TOO_LARGE reject the item. */
    enum rf_status (*parse)(const json_t *obj, void *item, struct batch_scratch *sc,
                            struct rf_err *err);
    /* Store n valid items; results has n slots. */
    enum rf_status (*store)(struct req *req, void *ctx, const void *items, int n,
                            struct store_item_result *results, struct rf_err *err);
};

/* Run a batch over the JSON array `items` (size checked against LIMIT_BATCH_ITEMS).
 * *results (caller frees) gets one entry per element. */
enum rf_status batch_run(struct req *req, const json_t *items, const struct batch_spec *spec,
                         void *ctx, struct store_item_result **results, struct rf_err *err);

/* The array under key in body, required, with the batch size limit applied. */
enum rf_status batch_items(const json_t *body, const char *key, json_t **items,
                           struct rf_err *err);

#endif
