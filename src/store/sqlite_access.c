/*
 * sqlite_access - why SQLite cannot open or write a database file, in words that name
 * the file or directory at fault and the cause.
 *
 * DESIGN. SQLite reports a file it may not create or write as "unable to open database
 * file" or "attempt to write a readonly database", naming neither the file nor why. A
 * database in WAL mode is three files side by side - the database, its -wal and its -shm
 * - and SQLite creates the last two in the database's directory when it first reads, so
 * a database file that is writable in a directory that is not fails as "readonly" with
 * nothing saying that the directory is the cause. After an open fails,
 * sqlite_access_explain looks, with the process's effective IDs, at the directory, then
 * the database, the -wal and the -shm file, and names the first that stops SQLite: one
 * it must create but cannot (directory not writable, filesystem mounted read-only), or
 * one it cannot read or write. It runs on the error path only, so its stat calls cost
 * nothing on the way to a working database. A database file that is readable but not
 * writable is no cause by itself: refold then runs read-only (writes answer 503).
 *
 * sqlite_access_unwritable classifies a failed write (read-only, disk full) for the 503
 * answers and /healthz.
 *
 * No state; thread-safe.
 */
#include "store/sqlite_access.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/banned.h"

const char *sqlite_access_unwritable(sqlite3 *h)
{
    int ext = sqlite3_extended_errcode(h);
    int prim = ext & 0xff, sys = sqlite3_system_errno(h);
    bool io = prim == SQLITE_IOERR || prim == SQLITE_CANTOPEN;
    const char *file = sqlite3_db_filename(h, "main");
    if (io && sys == 0 && file && *file) {
        /* SQLite lost the errno (0 after a pwrite failed EROFS on an ext4 remounted
         * read-only): open the WAL for writing. Never the database file: closing a
         * descriptor of it would drop the POSIX locks SQLite holds on it. */
        char wal[PATH_MAX];
        snprintf(wal, sizeof wal, "%s-wal", file);
        int fd = open(wal, O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
        else
            sys = errno;
    }
    if (prim == SQLITE_FULL || (io && (sys == ENOSPC || sys == EDQUOT)))
        return "storage_full";
    if (prim == SQLITE_READONLY || (io && (sys == EROFS || sys == EACCES || sys == EPERM)))
        return "read_only";
    return NULL;
}

static bool may(const char *path, int mode)
{
    return faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0;
}

bool sqlite_access_explain(const char *path, int rc, char *out, size_t n)
{
    int prim = rc & 0xff;
    if (prim != SQLITE_CANTOPEN && prim != SQLITE_READONLY && prim != SQLITE_IOERR &&
        prim != SQLITE_PERM)
        return false;
    if (!*path || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return false;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        slash[slash == dir ? 1 : 0] = '\0';
    unsigned uid = (unsigned)geteuid();
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        snprintf(out, n, "directory %s: %s", dir, strerror(errno));
        return true;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(out, n, "%s is not a directory", dir);
        return true;
    }
    struct statvfs vfs;
    bool ro_fs = statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
    bool dir_ok = may(dir, W_OK | X_OK);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        char f[PATH_MAX + 8];
        snprintf(f, sizeof f, "%s%s", path, suffixes[i]);
        if (stat(f, &sb) != 0) {
            if (errno != ENOENT)
                snprintf(out, n, "cannot use %s: %s", f, strerror(errno));
            else if (ro_fs)
                snprintf(out, n, "cannot create %s: the filesystem of %s is mounted read-only",
                         f, dir);
            else if (!dir_ok)
                snprintf(out, n, "cannot create %s: directory %s is not writable by uid %u", f,
                         dir, uid);
            else
                continue;
            return true;
        }
        if (S_ISDIR(sb.st_mode)) {
            snprintf(out, n, "%s is a directory", f);
            return true;
        }
        /* The database may be read-only (refold runs, refusing writes); not the others. */
        int need = i == 0 ? R_OK : R_OK | W_OK;
        if (!may(f, need)) {
            snprintf(out, n, "%s is not %s by uid %u (owner uid %u, mode %03o)", f,
                     need == R_OK ? "readable" : "readable and writable", uid,
                     (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 0777));
            return true;
        }
    }
    return false;
}
