/* checkpoint_file.c: the filesystem's part of checkpoints. A save writes a
 * temporary file "<target>.tmp-XXXXXX" next to its target, fsyncs it and
 * renames it over the target; a load opens only regular files, never
 * blocking. Also the wording of every message about a file.
 *
 * Invariant: a save's temporary file is locked (flock) from its creation
 * until after the rename, so the next save of the same path can tell a
 * crashed save's file (unlocked: removed) from a live one (kept).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* flock */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_INFIX ".tmp-"
#define TMP_LETTERS 6

/* ------------------------------------------------------------------ */
/* Messages                                                             */
/* ------------------------------------------------------------------ */

/* A path as a message shows it: a long one keeps its head and tail. */
typedef struct shown {
    char s[100];
} shown;

static shown show(const char *path)
{
    shown r;
    size_t n = strlen(path);
    if (n < sizeof r.s)
        snprintf(r.s, sizeof r.s, "%s", path);
    else
        snprintf(r.s, sizeof r.s, "%.40s...%s", path, path + n - 55);
    return r;
}

lg_status lgN_file_error(lg_ctx *ctx, lg_status st, const char *who, const char *path,
                         const char *fmt, ...)
{
    char rule[LG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    return lgC_errorf(ctx, st, "%s: path '%s': %s", who, show(path).s, rule);
}

lg_status lgN_io_error(lg_ctx *ctx, const char *who, const char *what, const char *path)
{
    return lgC_errorf(ctx, LG_ERR_IO, "%s: %s path '%s': %s", who, what, show(path).s,
                      strerror(errno));
}

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "directory";
    if (S_ISFIFO(m))
        return "FIFO";
    if (S_ISCHR(m))
        return "character device";
    if (S_ISBLK(m))
        return "block device";
    if (S_ISSOCK(m))
        return "socket";
    return "special file";
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */
/* ------------------------------------------------------------------ */

/* The type is checked before the open (nothing special is ever opened)
 * and again on what was opened (the name may have changed in between);
 * O_NONBLOCK makes even that open of a FIFO return at once. */
int lgN_open_regular(lg_ctx *ctx, const char *who, const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return lgN_io_error(ctx, who, "cannot open", path), -1;
    if (!S_ISREG(st.st_mode))
        return lgN_file_error(ctx, LG_ERR_IO, who, path, "is a %s, not a regular file",
                              file_kind(st.st_mode)),
               -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return lgN_io_error(ctx, who, "cannot open", path), -1;
    if (fstat(fd, &st) != 0) {
        lgN_io_error(ctx, who, "cannot stat", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        lgN_file_error(ctx, LG_ERR_IO, who, path, "is a %s, not a regular file",
                       file_kind(st.st_mode));
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags != -1)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    *size = (uint64_t)st.st_size;
    return fd;
}

int lgN_read_at(int fd, void *buf, uint64_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        size_t part = n > ((uint64_t)1 << 30) ? (size_t)1 << 30 : (size_t)n;
        ssize_t r = pread(fd, p, part, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -1 : 0;
        p += r;
        n -= (uint64_t)r;
        off += (uint64_t)r;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* The file a save replaces                                             */
/* ------------------------------------------------------------------ */

/* path itself, or the target of the symbolic link path names: written
 * through, as open() would, so the link stays a link. */
typedef struct target {
    char path[PATH_MAX];
    bool exists;
    mode_t mode; /* an existing file's permission bits, kept by the save */
} target;

static bool fits_temp_name(const char *path)
{
    return strlen(path) + strlen(TMP_INFIX) + TMP_LETTERS < PATH_MAX;
}

static lg_status resolve_target(lg_ctx *ctx, const char *who, const char *path, target *t)
{
    struct stat st;
    if (!fits_temp_name(path))
        return lgN_file_error(ctx, LG_ERR_VALUE, who, path, "the path is too long");
    snprintf(t->path, sizeof t->path, "%s", path);
    t->exists = lstat(path, &st) == 0;
    if (!t->exists && errno != ENOENT)
        return lgN_io_error(ctx, who, "cannot look up", path);
    if (t->exists && S_ISLNK(st.st_mode)) {
        if (!realpath(path, t->path) || stat(t->path, &st) != 0)
            return errno == ENOENT
                       ? lgN_file_error(ctx, LG_ERR_IO, who, path,
                                        "is a symbolic link to a missing file; nothing was written")
                       : lgN_io_error(ctx, who, "cannot follow the symbolic link", path);
        if (!fits_temp_name(t->path))
            return lgN_file_error(ctx, LG_ERR_VALUE, who, path, "the link's target is too long");
    }
    if (t->exists && !S_ISREG(st.st_mode))
        return lgN_file_error(ctx, LG_ERR_IO, who, path,
                              "is a %s, not a regular file; it was left untouched",
                              file_kind(st.st_mode));
    const char *slash = strrchr(t->path, '/');
    if (!*(slash ? slash + 1 : t->path))
        return lgN_file_error(ctx, LG_ERR_VALUE, who, path,
                              "names no file (empty, or ending in '/')");
    t->mode = t->exists ? st.st_mode & 0777 : 0;
    return LG_OK;
}

/* The folder of path ("." for a bare name); returns where its last part
 * starts. */
static const char *split_dir(const char *path, char dir[PATH_MAX])
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, PATH_MAX, ".");
        return path;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return slash + 1;
}

/* ------------------------------------------------------------------ */
/* Temporary files                                                      */
/* ------------------------------------------------------------------ */

/* mkstemp's alphabet: the files of older versions (made by mkstemp) match. */
static const char temp_letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Is name "<base>.tmp-" and six letters or digits? */
static bool is_temp_name(const char *name, const char *base)
{
    size_t b = strlen(base), k = strlen(TMP_INFIX);
    if (strncmp(name, base, b) || strncmp(name + b, TMP_INFIX, k) ||
        strlen(name + b + k) != TMP_LETTERS)
        return false;
    return strspn(name + b + k, temp_letters) == TMP_LETTERS;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Removes one temporary file if no live save holds its lock (a crashed
 * process holds none). Only regular files of this user are considered,
 * and only the file that was locked is unlinked. */
static void remove_if_abandoned(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st, now;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        flock(fd, LOCK_EX | LOCK_NB) == 0 && fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
        same_file(&st, &now))
        unlinkat(dfd, name, 0);
    close(fd);
}

/* Each crashed save of the target left a full-size temporary file; the
 * next save of the same path removes them. Best effort: a folder that
 * cannot be listed does not fail the save. */
static void remove_abandoned_temps(const target *t)
{
    char dir[PATH_MAX];
    const char *base = split_dir(t->path, dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (is_temp_name(de->d_name, base))
            remove_if_abandoned(dirfd(d), de->d_name);
    closedir(d);
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Seed for temporary names: time, process and stack address, not the ctx
 * RNG (a save must not move it). O_EXCL makes any name safe. */
static uint64_t name_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int local = 0;
    return mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 17) ^
                 (uint64_t)(uintptr_t)&local);
}

/* Takes the lock of a temporary file just created; false if a cleaner
 * removed it between the open and the lock (the name no longer names it).
 * Where flock is unsupported (ENOLCK) the save goes on unlocked: cleaners
 * cannot lock there either, so they remove nothing. */
static bool lock_new_temp(int fd, const char *tmp)
{
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
        ;
    struct stat mine, named;
    return fstat(fd, &mine) == 0 && lstat(tmp, &named) == 0 && same_file(&mine, &named);
}

/* Creates "<target>.tmp-XXXXXX" exclusively and locked: mode 0666 less the
 * umask for a new file (the kernel applies it, as for fopen), the replaced
 * file's mode otherwise. Returns the fd, or -1 with errno set. */
static int create_temp(const target *t, char tmp[PATH_MAX])
{
    uint64_t seed = name_seed();
    for (int attempt = 0; attempt < 100; attempt++) {
        char letters[TMP_LETTERS + 1];
        seed = mix64(seed + 0x9e3779b97f4a7c15ULL);
        for (int k = 0; k < TMP_LETTERS; k++)
            letters[k] = temp_letters[(seed >> (8 * k)) % (sizeof temp_letters - 1)];
        letters[TMP_LETTERS] = '\0';
        if (snprintf(tmp, PATH_MAX, "%s" TMP_INFIX "%s", t->path, letters) >= PATH_MAX)
            return errno = ENAMETOOLONG, -1; /* not reached: resolve_target checked */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      t->exists ? 0600 : 0666);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -1;
        if (!lock_new_temp(fd, tmp)) {
            close(fd); /* not ours any more: never unlink it */
            continue;
        }
        if (t->exists && fchmod(fd, t->mode) != 0) {
            int saved = errno;
            unlink(tmp);
            close(fd);
            return errno = saved, -1;
        }
        return fd;
    }
    return errno = EEXIST, -1;
}

bool lgN_write_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* fsync the folder holding path, so the rename itself is durable. */
static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    split_dir(path, dir);
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* The temporary file stays open (locked) until after the rename, so no
 * other save removes it first. */
lg_status lgN_replace_file(lg_ctx *ctx, const char *who, const char *path, lgN_writer write,
                           void *user)
{
    target t;
    lg_status st = resolve_target(ctx, who, path, &t);
    if (st != LG_OK)
        return st;
    remove_abandoned_temps(&t);
    char tmp[PATH_MAX];
    int fd = create_temp(&t, tmp);
    if (fd < 0)
        return lgN_io_error(ctx, who, "cannot create a temporary file next to", path);
    const char *what = "writing failed for";
    bool ok = write(fd, user) && fsync(fd) == 0;
    if (ok && rename(tmp, t.path) != 0) {
        what = "cannot rename the temporary file onto";
        ok = false;
    }
    int saved_errno = errno;
    if (!ok)
        unlink(tmp);
    close(fd);
    if (!ok) {
        errno = saved_errno;
        return lgN_io_error(ctx, who, what, path);
    }
    sync_dir(t.path);
    return LG_OK;
}

lg_status lgN_check_call(lg_ctx *ctx, const char *who, const char *path, lg_optim *const *opts,
                         int nopts, bool many)
{
    if (!path)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: path is NULL", who);
    if (nopts < 0 || (nopts > 0 && !opts))
        return lgC_errorf(ctx, nopts < 0 ? LG_ERR_VALUE : LG_ERR_NULL,
                          "%s: nopts = %d with opts %s (expected nopts >= 0, and opts not NULL "
                          "when nopts > 0)",
                          who, nopts, opts ? "given" : "NULL");
    for (int k = 0; k < nopts; k++) {
        char arg[24];
        snprintf(arg, sizeof arg, many ? "opts[%d]" : "opt", k);
        if (!opts[k])
            return lgC_errorf(ctx, LG_ERR_NULL, "%s: %s is NULL", who, arg);
        if (opts[k]->ctx != ctx)
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: %s was made with another ctx", who, arg);
        for (int j = 0; j < k; j++)
            if (opts[j] == opts[k])
                return lgC_errorf(ctx, LG_ERR_VALUE,
                                  "%s: opts[%d] and opts[%d] are the same optimizer", who, j, k);
    }
    return LG_OK;
}
