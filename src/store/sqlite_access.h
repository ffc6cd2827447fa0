/*
 * sqlite_access - why SQLite cannot open or write a database file, for store_sqlite.c's
 * error messages (sqlite_access.c). Private to src/store/.
 */
#ifndef REFOLD_STORE_SQLITE_ACCESS_H
#define REFOLD_STORE_SQLITE_ACCESS_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/* "read_only" (file, directory or filesystem) or "storage_full" (disk, quota) when that
 * is why h's last statement failed, else NULL: the code, else the failed call's errno. */
const char *sqlite_access_unwritable(sqlite3 *h);
/* After opening the database file path failed with rc (a SQLite result code): when the
 * cause is a directory or file this process cannot create, read or write - the database,
 * its -wal or its -shm - write one line naming it into out ("cannot create /x/a.db-wal:
 * directory /x is not writable by uid 65534") and return true; else false. */
bool sqlite_access_explain(const char *path, int rc, char *out, size_t n);

#endif
