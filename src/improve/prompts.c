/*
 * prompts - see prompts.h. One pass over the template; values are copied
 * verbatim (they are never scanned for placeholders again).
 */
#include "improve/prompts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/embed.h"
#include "core/xalloc.h"
#include "core/banned.h"

enum rf_status prompt_render(const char *name, const json_t *vars, char **out,
                             struct rf_err *err)
{
    char path[128];
    snprintf(path, sizeof path, "src/improve/prompts/%s.md", name);
    const char *tmpl = embed_text(path);
    if (!tmpl)
        return rf_fail(err, RF_INTERNAL, "meta-prompt %s is missing", name);
    struct buf b;
    buf_init(&b, BUF_UNLIMITED);
    json_t *used = json_object();
    const char *p = tmpl;
    enum rf_status rc = RF_OK;
    while (rc == RF_OK) {
        const char *open = strstr(p, "{%");
        if (!open) {
            buf_puts(&b, p);
            break;
        }
        const char *close = strstr(open + 2, "%}");
        if (!close) {
            rc = rf_fail(err, RF_INTERNAL, "meta-prompt %s has an unclosed placeholder", name);
            break;
        }
        buf_append(&b, p, (size_t)(open - p));
        char *key = xstrndup(open + 2, (size_t)(close - open - 2));
        const char *value = json_string_value(json_object_get(vars, key));
        if (!value)
            rc = rf_fail(err, RF_INTERNAL, "meta-prompt %s needs a value for %s", name, key);
        else
            buf_puts(&b, value);
        json_object_set_new(used, key, json_true());
        free(key);
        p = close + 2;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)vars, key, v)
    {
        if (rc == RF_OK && !json_object_get(used, key))
            rc = rf_fail(err, RF_INTERNAL, "meta-prompt %s has no placeholder for %s", name, key);
    }
    json_decref(used);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    *out = buf_detach(&b, NULL);
    return RF_OK;
}
