/*
 * embed - files compiled into the binary: SQL migrations, the web UI, the
 * meta-prompt templates, the demo's sample data.
 *
 * The table is generated at build time by cmake/embed.cmake; each file's
 * bytes are followed by a NUL so text files can be used as C strings.
 * Read-only after start, thread-safe.
 */
#ifndef REFOLD_EMBED_H
#define REFOLD_EMBED_H

#include <stddef.h>

struct embed_file {
    const char *path; /* relative to the repository root, e.g. "web/app.js" */
    const unsigned char *data;
    size_t len;
};

/* The generated table, terminated by an entry with path == NULL. */
const struct embed_file *embed_table(void);
/* The file at path, or NULL. */
const struct embed_file *embed_find(const char *path);
/* The file's contents as a NUL-terminated string, or NULL when absent. */
const char *embed_text(const char *path);

#endif
