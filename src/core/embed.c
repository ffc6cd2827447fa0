/*
 * embed - lookups in the generated table; see embed.h.
 */
#include "core/embed.h"

#include <string.h>

#include "core/banned.h"

const struct embed_file *embed_find(const char *path)
{
    for (const struct embed_file *f = embed_table(); f->path; f++)
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

const char *embed_text(const char *path)
{
    const struct embed_file *f = embed_find(path);
    return f ? (const char *)f->data : NULL;
}
