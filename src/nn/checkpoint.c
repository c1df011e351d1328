/* checkpoint.c: safetensors checkpoints of a ctx's parameters, an
 * optimizer's state and the RNG, written atomically, read with full
 * validation (the rules and the reasons: docs/checkpoints.md).
 *
 * File: 8-byte little-endian header length n, n bytes of JSON (cJSON)
 *   { "<name>": {"dtype": "F32"|"F64"|"I64", "shape": [...],
 *                "data_offsets": [begin, end]}, ...,
 *     "__metadata__": {"format": "lossgrad", ...strings...} }
 * padded with spaces to a multiple of 8, then the little-endian data: the
 * tensors back to back, and nothing after them.
 * Optimizer state: "__optim__.<param>.<slot>" (the parameter's dtype and
 * shape) and "__optim__.<param>.step" (I64, 0-d); the optimizer kind, lr
 * and the RNG state go in the metadata.
 *
 * Invariants: a load checks the whole file, and reads every byte it will
 * write, before it changes anything. The scratch memory of a save or a load
 * is a private arena freed before the call returns, so the ctx keeps
 * nothing of a file's size. cJSON allocates with the C library's allocator
 * (its hooks are process-wide), not the ctx hook.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* flock */
#include "optim.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB of JSON is not a checkpoint */
#define MAX_STEP ((int64_t)1 << 53)      /* step counts are used as doubles */
#define OPT_PREFIX "__optim__."
#define TMP_INFIX ".tmp-"
#define TMP_LETTERS 6

static const char *const kind_names[] = { "sgd", "adam", "adamw", "rmsprop" };
static const char save_who[] = "lg_checkpoint_save";
static const char load_who[] = "lg_checkpoint_load";

/* What a loaded tensor is for. */
typedef enum role { SKIP, PARAM, SLOT, STEP } role;

typedef struct entry {
    const char *name; /* saving: built in scratch; loading: the key in the header */
    lg_dtype dt;
    int ndim;
    int64_t shape[LG_MAX_DIMS];
    uint64_t begin, end;
    const void *src; /* saving: the bytes to write */
    role role;       /* loading: */
    lg_tensor *param;
    int opt_index, slot; /* SLOT and STEP: the parameter's index in opt; SLOT: its slot */
    uint8_t *staged;     /* the file's bytes, read before anything is written */
    void *dst;
    bool fresh; /* dst is a slot allocated by this load */
} entry;

static size_t dt_size(lg_dtype dt)
{
    return dt == LG_F32 ? 4 : 8;
}

static const char *dt_tag(lg_dtype dt)
{
    return dt == LG_F32 ? "F32" : (dt == LG_F64 ? "F64" : "I64");
}

static bool little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void from_le(void *data, size_t es, size_t n)
{
    if (little_endian())
        return;
    uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < es / 2; k++) {
            uint8_t t = p[i * es + k];
            p[i * es + k] = p[i * es + es - 1 - k];
            p[i * es + es - 1 - k] = t;
        }
}

static uint64_t nbytes(const entry *e)
{
    uint64_t n = dt_size(e->dt);
    for (int d = 0; d < e->ndim; d++)
        n *= (uint64_t)e->shape[d];
    return n;
}

static size_t param_bytes(lg_tensor *p)
{
    return (size_t)lg_tensor_numel(p) * dt_size(lg_tensor_dtype(p));
}

/* Scratch memory of one call: chunks of 64 KiB, a big request gets its own. */
static lgC_arena scratch_arena(void)
{
    return (lgC_arena){ .chunk_size = (size_t)64 << 10 };
}

/* A path as a message shows it: a long one keeps its head and tail, so the
 * rule written after it still fits in the ctx's message. */
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

/* "<who>: path '<path>': <rule>", the form of every message about a file. */
LG_PRINTF(5, 6)
static lg_status file_error(lg_ctx *ctx, lg_status st, const char *who, const char *path,
                            const char *fmt, ...)
{
    char rule[LG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    return lgC_errorf(ctx, st, "%s: path '%s': %s", who, show(path).s, rule);
}

static lg_status io_error(lg_ctx *ctx, const char *who, const char *what, const char *path)
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

/* Metadata numbers are written and read in the C locale whatever the
 * program's LC_NUMERIC says (a decimal comma would make files another
 * locale misreads). uselocale is per thread: other threads are untouched. */
typedef struct c_numeric {
    locale_t c, old;
} c_numeric;

static bool c_numeric_begin(c_numeric *l)
{
    l->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (l->c == (locale_t)0)
        return false;
    l->old = uselocale(l->c);
    return true;
}

static void c_numeric_end(c_numeric *l)
{
    uselocale(l->old);
    freelocale(l->c);
}

/* ------------------------------------------------------------------ */
/* The list of entries a ctx (and optimizer) has                        */
/* ------------------------------------------------------------------ */

static bool check_param_name(lg_ctx *ctx, int i, const char *name)
{
    if (!name || !*name)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: parameter %d has no name", save_who, i), false;
    if (!strncmp(name, OPT_PREFIX, strlen(OPT_PREFIX)) || !strcmp(name, "__metadata__"))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: parameter name '%s' is reserved", save_who, name),
               false;
    for (int j = 0; j < i; j++)
        if (!strcmp(lg_tensor_name(lg_param_at(ctx, j)), name))
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: two parameters are named '%s'", save_who,
                              name),
                   false;
    return true;
}

static bool check_opt_param(lg_ctx *ctx, const lg_optim *opt, int i)
{
    const char *name = lg_tensor_name(opt->params[i]);
    if (!name || !*name)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: opt's parameter %d has no name", save_who, i),
               false;
    for (int j = 0; j < i; j++)
        if (opt->params[j] == opt->params[i])
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: opt optimizes parameter '%s' twice", save_who,
                              name),
                   false;
    return true;
}

/* One entry for saving; its name is formatted into scratch. */
static bool add_entry(lg_ctx *ctx, lgC_arena *scratch, entry *e, lg_tensor *p, const char *slot,
                      const void *src)
{
    const char *pname = lg_tensor_name(p);
    size_t len = strlen(OPT_PREFIX) + strlen(pname) + (slot ? strlen(slot) + 1 : 0) + 1;
    char *name = lgC_arena_alloc(ctx, scratch, len, save_who);
    if (!name)
        return false;
    if (slot)
        snprintf(name, len, OPT_PREFIX "%s.%s", pname, slot);
    else
        snprintf(name, len, "%s", pname);
    bool is_step = slot && !strcmp(slot, "step");
    *e = (entry){ .name = name, .src = src };
    e->dt = is_step ? LG_I64 : lg_tensor_dtype(p);
    e->ndim = is_step ? 0 : lg_tensor_ndim(p);
    memcpy(e->shape, lg_tensor_shape(p), (size_t)e->ndim * sizeof(int64_t));
    return true;
}

/* Fills es[] (if not NULL) and returns how many entries there are, or -1
 * with the ctx error set. */
static int collect(lg_ctx *ctx, const lg_optim *opt, lgC_arena *scratch, entry *es)
{
    int n = 0;
    for (int i = 0; i < lg_param_count(ctx); i++) {
        lg_tensor *p = lg_param_at(ctx, i);
        if (!check_param_name(ctx, i, lg_tensor_name(p)))
            return -1;
        if (es && !add_entry(ctx, scratch, &es[n], p, NULL, lg_tensor_data(p)))
            return -1;
        n++;
    }
    for (int i = 0; opt && i < opt->n; i++) {
        if (!check_opt_param(ctx, opt, i))
            return -1;
        for (int s = 0; s <= LGN_SLOTS; s++) {
            bool is_step = s == LGN_SLOTS;
            if (!is_step && !opt->slot[s][i])
                continue;
            const char *slot = is_step ? "step" : lgN_slot_name(opt, s);
            const void *src = is_step ? (const void *)&opt->steps[i] : opt->slot[s][i];
            if (es && !add_entry(ctx, scratch, &es[n], opt->params[i], slot, src))
                return -1;
            n++;
        }
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* Saving                                                               */
/* ------------------------------------------------------------------ */

static bool add_metadata(lg_ctx *ctx, cJSON *root, const lg_optim *opt)
{
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    char buf[128];
    bool ok = meta && cJSON_AddStringToObject(meta, "format", "lossgrad");
    snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, ctx->rng[0],
             ctx->rng[1], ctx->rng[2], ctx->rng[3]);
    ok = ok && cJSON_AddStringToObject(meta, "rng", buf);
    snprintf(buf, sizeof buf, "%d %.17g", ctx->has_spare ? 1 : 0, ctx->spare_normal);
    ok = ok && cJSON_AddStringToObject(meta, "rng_spare", buf);
    if (ok && opt) {
        snprintf(buf, sizeof buf, "%.17g", opt->lr);
        ok = cJSON_AddStringToObject(meta, "optim", kind_names[opt->kind]) &&
             cJSON_AddStringToObject(meta, "optim_lr", buf);
    }
    return ok;
}

static bool add_tensor(cJSON *root, entry *e)
{
    cJSON *t = cJSON_AddObjectToObject(root, e->name);
    cJSON *shape = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
    cJSON *offs = shape ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
    bool ok = offs && cJSON_AddStringToObject(t, "dtype", dt_tag(e->dt));
    for (int d = 0; ok && d < e->ndim; d++)
        ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
    return ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)e->begin)) &&
           cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)e->end));
}

/* The header JSON (cJSON_free it), or NULL with the ctx error set. */
static char *header_json(lg_ctx *ctx, const lg_optim *opt, entry *es, int n)
{
    c_numeric loc;
    if (!c_numeric_begin(&loc))
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory building the header", save_who);
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    uint64_t off = 0;
    for (int i = 0; i < n && ok; i++) {
        es[i].begin = off;
        es[i].end = off += nbytes(&es[i]);
        ok = add_tensor(root, &es[i]);
    }
    char *json = ok && add_metadata(ctx, root, opt) ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    c_numeric_end(&loc);
    if (!json)
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory building the header", save_who);
    if ((strlen(json) + 7) / 8 * 8 > MAX_HEADER) {
        lgC_errorf(ctx, LG_ERR_VALUE, "%s: the header would be %zu bytes, more than a load accepts",
                   save_who, strlen(json));
        cJSON_free(json);
        return NULL;
    }
    return json;
}

/* The file a save replaces: path itself, or the target of the symbolic
 * link path names (written through, as open() would). */
typedef struct target {
    char path[PATH_MAX];
    bool exists;
    mode_t mode; /* an existing file's permission bits, kept by the save */
} target;

static lg_status resolve_target(lg_ctx *ctx, const char *path, target *t)
{
    struct stat st;
    if (strlen(path) + strlen(TMP_INFIX) + TMP_LETTERS >= sizeof t->path)
        return file_error(ctx, LG_ERR_VALUE, save_who, path, "the path is too long");
    snprintf(t->path, sizeof t->path, "%s", path);
    t->exists = lstat(path, &st) == 0;
    if (!t->exists && errno != ENOENT)
        return io_error(ctx, save_who, "cannot look up", path);
    if (t->exists && S_ISLNK(st.st_mode)) {
        if (!realpath(path, t->path) || stat(t->path, &st) != 0)
            return errno == ENOENT
                       ? file_error(ctx, LG_ERR_IO, save_who, path,
                                    "is a symbolic link to a missing file; nothing was written")
                       : io_error(ctx, save_who, "cannot follow the symbolic link", path);
        if (strlen(t->path) + strlen(TMP_INFIX) + TMP_LETTERS >= sizeof t->path)
            return file_error(ctx, LG_ERR_VALUE, save_who, path, "the link's target is too long");
    }
    if (t->exists && !S_ISREG(st.st_mode))
        return file_error(ctx, LG_ERR_IO, save_who, path,
                          "is a %s, not a regular file; it was left untouched",
                          file_kind(st.st_mode));
    const char *slash = strrchr(t->path, '/');
    if (!*(slash ? slash + 1 : t->path))
        return file_error(ctx, LG_ERR_VALUE, save_who, path,
                          "names no file (empty or ending in '/')");
    t->mode = t->exists ? st.st_mode & 0777 : 0;
    return LG_OK;
}

/* The folder of path ("." for a bare name) and where its last part starts. */
static const char *split_dir(const char *path, char dir[PATH_MAX])
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, PATH_MAX, ".");
        return path;
    }
    snprintf(dir, PATH_MAX, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return slash + 1;
}

static const char temp_letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Is name "<base>.tmp-" and six letters or digits, the temporary files
 * saves of base make (mkstemp's alphabet: older versions used mkstemp)? */
static bool is_temp_name(const char *name, const char *base)
{
    size_t b = strlen(base), k = strlen(TMP_INFIX);
    if (strncmp(name, base, b) || strncmp(name + b, TMP_INFIX, k) ||
        strlen(name + b + k) != TMP_LETTERS)
        return false;
    for (const char *c = name + b + k; *c; c++)
        if (!strchr(temp_letters, *c))
            return false;
    return true;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Removes one temporary file if no live save holds its lock: every save
 * holds an flock on its temporary file until the rename, and a crashed
 * process holds none. Only regular files of this user are considered. */
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
 * RNG (a save must not move it). O_EXCL makes the names safe anyway. */
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
 * umask for a new file (the kernel applies it, as for fopen), the existing
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
        snprintf(tmp, PATH_MAX, "%s" TMP_INFIX "%s", t->path, letters);
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
            errno = saved;
            return -1;
        }
        return fd;
    }
    errno = EEXIST;
    return -1;
}

static bool write_all(int fd, const void *data, size_t n)
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

/* Writes n elements of size es, little-endian whatever the host. */
static bool write_le(int fd, const void *data, size_t es, size_t n)
{
    if (little_endian())
        return write_all(fd, data, es * n);
    const uint8_t *p = data;
    uint8_t buf[4096];
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (; i < n && m + es <= sizeof buf; i++, m += es)
            for (size_t k = 0; k < es; k++)
                buf[m + k] = p[i * es + es - 1 - k];
        if (!write_all(fd, buf, m))
            return false;
    }
    return true;
}

static bool write_file(int fd, const char *json, const entry *es, int n)
{
    size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8;
    uint8_t len8[8];
    for (int k = 0; k < 8; k++)
        len8[k] = (uint8_t)((uint64_t)hlen >> (8 * k));
    bool ok = write_all(fd, len8, 8) && write_all(fd, json, jlen) &&
              write_all(fd, "       ", hlen - jlen);
    for (int i = 0; ok && i < n; i++)
        ok = write_le(fd, es[i].src, dt_size(es[i].dt),
                      (size_t)(nbytes(&es[i]) / dt_size(es[i].dt)));
    return ok && fsync(fd) == 0;
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

/* Temporary file, fsync, rename over the target. The temporary file stays
 * locked (open) until after the rename, so no other save removes it. */
static lg_status write_atomically(lg_ctx *ctx, const target *t, const char *path, const char *json,
                                  const entry *es, int n)
{
    remove_abandoned_temps(t);
    char tmp[PATH_MAX];
    int fd = create_temp(t, tmp);
    if (fd < 0)
        return io_error(ctx, save_who, "cannot create a temporary file next to", path);
    const char *what = "writing failed for";
    bool ok = write_file(fd, json, es, n);
    if (ok && rename(tmp, t->path) != 0) {
        what = "cannot rename the temporary file onto";
        ok = false;
    }
    int saved_errno = errno;
    if (!ok)
        unlink(tmp);
    close(fd);
    if (!ok) {
        errno = saved_errno;
        return io_error(ctx, save_who, what, path);
    }
    sync_dir(t->path);
    return LG_OK;
}

static lg_status save(lg_ctx *ctx, lgC_arena *scratch, const char *path, const lg_optim *opt)
{
    int n = collect(ctx, opt, scratch, NULL);
    if (n < 0)
        return ctx->status;
    entry *es = lgC_arena_alloc(ctx, scratch, (size_t)(n ? n : 1) * sizeof *es, save_who);
    if (!es)
        return LG_ERR_OOM;
    if (collect(ctx, opt, scratch, es) != n)
        return ctx->status;
    target t;
    lg_status st = resolve_target(ctx, path, &t);
    if (st != LG_OK)
        return st;
    char *json = header_json(ctx, opt, es, n);
    if (!json)
        return ctx->status;
    st = write_atomically(ctx, &t, path, json, es, n);
    cJSON_free(json);
    return st;
}

lg_status lg_checkpoint_save(lg_ctx *ctx, const char *path, const lg_optim *opt)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!path)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: path is NULL", save_who);
    if (opt && opt->ctx != ctx)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: opt was made with another ctx", save_who);
    lgC_arena scratch = scratch_arena();
    lg_status st = save(ctx, &scratch, path, opt);
    lgC_arena_free(ctx, &scratch);
    return st;
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */
/* ------------------------------------------------------------------ */

typedef struct loader {
    lg_ctx *ctx;
    const char *path;
    lg_optim *opt;
    lgC_arena scratch;
    int fd;
    uint64_t size, hlen, data_size; /* the file, its header, the data after it */
    char *hdr;
    cJSON *root;
    entry *es;
    int n;
    /* metadata */
    uint64_t rng[4];
    bool has_spare;
    double spare;
    int kind; /* the file's optimizer kind, -1 if it holds none */
    double lr;
} loader;

LG_PRINTF(3, 4)
static lg_status fail(loader *L, lg_status st, const char *fmt, ...)
{
    char rule[LG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    return file_error(L->ctx, st, load_who, L->path, "%s", rule);
}

/* Reads n bytes at off: 1 done, 0 the file ended first, -1 error (errno). */
static int read_at(int fd, void *buf, uint64_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)n, (off_t)off);
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

static lg_status read_failed(loader *L, int r)
{
    return r < 0 ? io_error(L->ctx, load_who, "cannot read", L->path)
                 : fail(L, LG_ERR_IO, "the file ended early (did it change during the load?)");
}

/* Only a regular file is read: a FIFO or a device could block or never
 * end. The type is checked before the open (nothing special is opened) and
 * again after it, on what was opened, without blocking in between. */
static lg_status open_regular(loader *L)
{
    struct stat st;
    if (stat(L->path, &st) != 0)
        return io_error(L->ctx, load_who, "cannot open", L->path);
    if (!S_ISREG(st.st_mode))
        return fail(L, LG_ERR_IO, "is a %s, not a regular file", file_kind(st.st_mode));
    L->fd = open(L->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (L->fd < 0)
        return io_error(L->ctx, load_who, "cannot open", L->path);
    if (fstat(L->fd, &st) != 0)
        return io_error(L->ctx, load_who, "cannot stat", L->path);
    if (!S_ISREG(st.st_mode))
        return fail(L, LG_ERR_IO, "is a %s, not a regular file", file_kind(st.st_mode));
    int flags = fcntl(L->fd, F_GETFL);
    if (flags != -1)
        fcntl(L->fd, F_SETFL, flags & ~O_NONBLOCK);
    L->size = (uint64_t)st.st_size;
    return LG_OK;
}

static lg_status read_header(loader *L)
{
    uint8_t len8[8];
    if (L->size < 8)
        return fail(L, LG_ERR_VALUE, "is shorter than a safetensors header (%" PRIu64 " bytes)",
                    L->size);
    int r = read_at(L->fd, len8, 8, 0);
    if (r != 1)
        return read_failed(L, r);
    L->hlen = 0;
    for (int k = 0; k < 8; k++)
        L->hlen |= (uint64_t)len8[k] << (8 * k);
    if (L->hlen > L->size - 8 || L->hlen > MAX_HEADER)
        return fail(L, LG_ERR_VALUE,
                    "declares a %" PRIu64 "-byte header but has %" PRIu64
                    " bytes after the length (and at most %" PRIu64 " are accepted)",
                    L->hlen, L->size - 8, MAX_HEADER);
    L->data_size = L->size - 8 - L->hlen;
    L->hdr = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)L->hlen + 1, load_who);
    if (!L->hdr)
        return LG_ERR_OOM;
    r = read_at(L->fd, L->hdr, L->hlen, 8);
    if (r != 1)
        return read_failed(L, r);
    L->hdr[L->hlen] = '\0';
    return LG_OK;
}

static bool is_hex4(const char *s)
{
    for (int k = 0; k < 4; k++)
        if (!strchr("0123456789abcdefABCDEF", s[k]) || !s[k])
            return false;
    return true;
}

/* cJSON accepts more than JSON: control bytes as whitespace and inside
 * strings, and \u0000 (or a malformed \u, read as 0), which ends a C
 * string early: "w\u0000x" would load as "w". The first such byte's offset,
 * or n. The text is valid to cJSON, so quotes and backslashes delimit the
 * strings reliably. */
static size_t first_bad_byte(const char *s, size_t n)
{
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!in_string) {
            in_string = c == '"';
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return i;
        } else if (c == '"') {
            in_string = false;
        } else if (c < 0x20) {
            return i;
        } else if (c == '\\') {
            if (i + 1 < n && s[i + 1] == 'u' &&
                (i + 5 >= n || !is_hex4(s + i + 2) || !strncmp(s + i + 2, "0000", 4)))
                return i;
            i++;
        }
    }
    return n;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* cJSON keeps every member of an object and a lookup finds the first, while
 * other readers take the last: a repeated key is rejected. Sets *dup to
 * the repeated key or NULL; false only when out of memory. */
static bool find_duplicate(loader *L, const cJSON *obj, const char **dup)
{
    int n = cJSON_GetArraySize(obj);
    *dup = NULL;
    if (n < 2)
        return true;
    const char **keys = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)n * sizeof *keys, load_who);
    if (!keys)
        return false;
    int k = 0;
    for (const cJSON *it = obj->child; it; it = it->next)
        keys[k++] = it->string;
    qsort(keys, (size_t)n, sizeof *keys, by_string);
    for (int i = 1; i < n && !*dup; i++)
        if (!strcmp(keys[i - 1], keys[i]))
            *dup = keys[i];
    return true;
}

static lg_status check_unique(loader *L, const cJSON *obj, const char *what)
{
    const char *dup;
    if (!find_duplicate(L, obj, &dup))
        return LG_ERR_OOM;
    if (dup)
        return fail(L, LG_ERR_VALUE, "%s has the key '%.60s' twice", what, dup);
    return LG_OK;
}

/* The header: one JSON object, then only spaces (safetensors pads with
 * 0x20). A failed parse is out of memory when malloc said so (errno is per
 * thread; POSIX malloc sets ENOMEM), malformed JSON otherwise. */
static lg_status parse_header(loader *L)
{
    if (L->hlen == 0 || L->hdr[0] != '{')
        return fail(L, LG_ERR_VALUE,
                    "has a header that is not a JSON object (it must start with '{')");
    const char *end = NULL;
    errno = 0;
    L->root = cJSON_ParseWithLengthOpts(L->hdr, (size_t)L->hlen, &end, 0);
    if (!L->root && errno == ENOMEM)
        return fail(L, LG_ERR_OOM, "out of memory parsing the %" PRIu64 "-byte header", L->hlen);
    if (!cJSON_IsObject(L->root))
        return fail(L, LG_ERR_VALUE,
                    "has a header that is not a JSON object (bad JSON at byte %zu)",
                    end ? (size_t)(end - L->hdr) : (size_t)0);
    size_t json_len = (size_t)(end - L->hdr), bad = first_bad_byte(L->hdr, json_len);
    if (bad < json_len)
        return fail(L, LG_ERR_VALUE,
                    "has a control byte or a \\u0000 escape at byte %zu of the header (neither is "
                    "allowed in a name or value)",
                    bad);
    for (size_t i = json_len; i < L->hlen; i++)
        if (L->hdr[i] != ' ')
            return fail(L, LG_ERR_VALUE,
                        "has byte 0x%02x after the header's JSON object, at byte %zu (only space "
                        "padding may follow it)",
                        (unsigned char)L->hdr[i], i);
    return check_unique(L, L->root, "the header");
}

/* A decimal as %.17g writes one, [-]d+[.d+][e[+-]d+], read whole by strtod
 * (in the C locale, see c_numeric), and finite. */
static bool parse_decimal(const char *s, double *out)
{
    const char *p = s + (*s == '-');
    size_t d = strspn(p, "0123456789");
    if (d == 0)
        return false;
    p += d;
    if (*p == '.') {
        d = strspn(++p, "0123456789");
        if (d == 0)
            return false;
        p += d;
    }
    if (*p == 'e' || *p == 'E') {
        p += 1 + (p[1] == '+' || p[1] == '-');
        d = strspn(p, "0123456789");
        if (d == 0)
            return false;
        p += d;
    }
    char *end;
    *out = strtod(s, &end);
    return *p == '\0' && end == p && isfinite(*out);
}

/* "rng": 64 hex digits, four words, not all zero (xoshiro256** never leaves
 * the zero state: every draw would be 0). */
static lg_status parse_rng(loader *L, const char *s)
{
    if (strlen(s) != 64 || strspn(s, "0123456789abcdefABCDEF") != 64)
        return fail(L, LG_ERR_VALUE, "metadata rng = '%.70s' is not 64 hex digits", s);
    uint64_t any = 0;
    for (int k = 0; k < 4; k++) {
        uint64_t w = 0;
        for (int j = 0; j < 16; j++) {
            char c = s[16 * k + j];
            w = w << 4 | (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        L->rng[k] = w;
        any |= w;
    }
    if (!any)
        return fail(L, LG_ERR_VALUE,
                    "metadata rng is all zeros, a state the generator never leaves");
    return LG_OK;
}

/* "rng_spare": "0 <x>" or "1 <x>", x finite (the cached normal draw). */
static lg_status parse_spare(loader *L, const char *s)
{
    if ((s[0] != '0' && s[0] != '1') || s[1] != ' ' || !parse_decimal(s + 2, &L->spare))
        return fail(L, LG_ERR_VALUE,
                    "metadata rng_spare = '%.40s' is not '0 <x>' or '1 <x>' with x finite", s);
    L->has_spare = s[0] == '1';
    return LG_OK;
}

/* "optim" and "optim_lr", both or neither: a kind name and lr >= 0 finite
 * (0 is legal, as in PyTorch). */
static lg_status parse_optim(loader *L, const cJSON *kind, const cJSON *lr)
{
    L->kind = -1;
    if (!kind && !lr)
        return LG_OK;
    if (!kind || !lr)
        return fail(L, LG_ERR_VALUE, "metadata has %s without %s", kind ? "optim" : "optim_lr",
                    kind ? "optim_lr" : "optim");
    for (int k = 0; k < 4 && L->kind < 0; k++)
        if (!strcmp(kind->valuestring, kind_names[k]))
            L->kind = k;
    if (L->kind < 0)
        return fail(L, LG_ERR_VALUE, "metadata optim = '%.40s' is not sgd, adam, adamw or rmsprop",
                    kind->valuestring);
    if (!parse_decimal(lr->valuestring, &L->lr) || L->lr < 0)
        return fail(L, LG_ERR_VALUE, "metadata optim_lr = '%.40s' is not a finite number >= 0",
                    lr->valuestring);
    return LG_OK;
}

static const cJSON *meta_item(const cJSON *meta, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(meta, key);
}

/* Every value of the metadata, checked whatever the call asks for. */
static lg_status parse_meta(loader *L)
{
    const cJSON *meta = meta_item(L->root, "__metadata__");
    if (!cJSON_IsObject(meta))
        return fail(
            L, LG_ERR_VALUE,
            "lacks lossgrad's metadata (a __metadata__ object with format, rng, rng_spare)");
    lg_status st = check_unique(L, meta, "__metadata__");
    if (st != LG_OK)
        return st;
    for (const cJSON *it = meta->child; it; it = it->next)
        if (!cJSON_IsString(it))
            return fail(L, LG_ERR_VALUE,
                        "metadata '%.40s' is not a string (safetensors metadata "
                        "maps strings to strings)",
                        it->string);
    const cJSON *format = meta_item(meta, "format"), *rng = meta_item(meta, "rng");
    const cJSON *spare = meta_item(meta, "rng_spare");
    if (!format || strcmp(format->valuestring, "lossgrad"))
        return fail(L, LG_ERR_VALUE, "metadata format is '%.40s', 'lossgrad' expected",
                    format ? format->valuestring : "(missing)");
    if (!rng || !spare)
        return fail(L, LG_ERR_VALUE, "lacks lossgrad's metadata (rng and rng_spare)");
    if ((st = parse_rng(L, rng->valuestring)) != LG_OK ||
        (st = parse_spare(L, spare->valuestring)) != LG_OK)
        return st;
    return parse_optim(L, meta_item(meta, "optim"), meta_item(meta, "optim_lr"));
}

/* The file's optimizer state matches opt's kind, or opt is NULL. */
static lg_status check_optim_kind(loader *L)
{
    if (!L->opt || L->kind == (int)L->opt->kind)
        return LG_OK;
    const char *want = kind_names[L->opt->kind];
    if (L->kind < 0)
        return fail(L, LG_ERR_VALUE,
                    "holds no optimizer state, but opt is an %s optimizer (pass opt = NULL to "
                    "load the parameters only)",
                    want);
    return fail(L, LG_ERR_VALUE, "holds %s optimizer state, but opt is an %s optimizer",
                kind_names[L->kind], want);
}

static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

static lg_status parse_dtype(loader *L, entry *e, const char *tag)
{
    static const lg_dtype dts[] = { LG_F32, LG_F64, LG_I64 };
    for (int k = 0; k < 3; k++)
        if (!strcmp(tag, dt_tag(dts[k]))) {
            e->dt = dts[k];
            return LG_OK;
        }
    return fail(L, LG_ERR_DTYPE, "tensor '%s' has dtype %.20s (F32, F64 or I64 expected)", e->name,
                tag);
}

static lg_status parse_shape(loader *L, entry *e, const cJSON *shape)
{
    e->ndim = cJSON_GetArraySize(shape);
    if (e->ndim > LG_MAX_DIMS)
        return fail(L, LG_ERR_SHAPE, "tensor '%s' has %d dims (at most %d)", e->name, e->ndim,
                    LG_MAX_DIMS);
    uint64_t bytes = dt_size(e->dt);
    for (int d = 0; d < e->ndim; d++) {
        uint64_t s;
        if (!json_uint(cJSON_GetArrayItem(shape, d), &s) || (s && bytes > UINT64_MAX / s))
            return fail(L, LG_ERR_SHAPE, "tensor '%s' has a bad or overflowing shape", e->name);
        e->shape[d] = (int64_t)s;
        bytes *= s;
    }
    return LG_OK;
}

/* Parses one header entry into e (name already set). */
static lg_status parse_entry(loader *L, const cJSON *t, entry *e)
{
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsObject(t) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) ||
        !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return fail(L, LG_ERR_VALUE,
                    "tensor '%s' needs \"dtype\", \"shape\" and two \"data_offsets\"", e->name);
    lg_status st;
    if ((st = check_unique(L, t, "a tensor entry")) != LG_OK ||
        (st = parse_dtype(L, e, dt->valuestring)) != LG_OK ||
        (st = parse_shape(L, e, shape)) != LG_OK)
        return st;
    if (!json_uint(cJSON_GetArrayItem(offs, 0), &e->begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &e->end) || e->begin > e->end ||
        e->end > L->data_size)
        return fail(L, LG_ERR_VALUE,
                    "tensor '%s' has data_offsets outside the %" PRIu64 "-byte data", e->name,
                    L->data_size);
    if (e->end - e->begin != nbytes(e))
        return fail(L, LG_ERR_VALUE,
                    "tensor '%s' spans %" PRIu64 " bytes but its dtype and shape need %" PRIu64,
                    e->name, e->end - e->begin, nbytes(e));
    return LG_OK;
}

/* e's dtype and shape are those of the model's tensor p. */
static lg_status check_like(loader *L, const entry *e, lg_tensor *p)
{
    if (e->dt != lg_tensor_dtype(p))
        return fail(L, LG_ERR_DTYPE, "tensor '%s' is %s in the file, %s in the model", e->name,
                    dt_tag(e->dt), dt_tag(lg_tensor_dtype(p)));
    if (e->ndim != lg_tensor_ndim(p) ||
        memcmp(e->shape, lg_tensor_shape(p), (size_t)e->ndim * sizeof(int64_t)))
        return fail(L, LG_ERR_SHAPE, "tensor '%s' has another shape in the file than in the model",
                    e->name);
    return LG_OK;
}

/* "__optim__.<param>.<leaf>": the step count or a slot of opt's kind. */
static lg_status bind_optim(loader *L, entry *e)
{
    const lg_optim *opt = L->opt;
    const char *rest = e->name + strlen(OPT_PREFIX), *leaf = strrchr(rest, '.');
    size_t plen = leaf ? (size_t)(leaf - rest) : 0;
    for (int i = 0; leaf && i < opt->n; i++) {
        const char *q = lg_tensor_name(opt->params[i]);
        if (!q || strlen(q) != plen || strncmp(q, rest, plen))
            continue;
        e->param = opt->params[i];
        e->opt_index = i;
        if (!strcmp(leaf + 1, "step")) {
            e->role = STEP;
            if (e->dt != LG_I64 || e->ndim != 0)
                return fail(L, LG_ERR_SHAPE, "tensor '%s' must be a 0-d I64", e->name);
            return LG_OK;
        }
        for (int s = 0; s < LGN_SLOTS; s++)
            if (lgN_slot_name(opt, s) && !strcmp(lgN_slot_name(opt, s), leaf + 1)) {
                e->role = SLOT;
                e->slot = s;
                return check_like(L, e, e->param);
            }
        return fail(L, LG_ERR_VALUE, "tensor '%s': an %s optimizer has no state '%.40s'", e->name,
                    kind_names[opt->kind], leaf + 1);
    }
    return fail(L, LG_ERR_VALUE,
                "tensor '%s' is optimizer state of a parameter opt does not optimize", e->name);
}

/* Where the loaded entry goes: a parameter, opt's state, or nowhere. */
static lg_status bind(loader *L, entry *e)
{
    if (!strncmp(e->name, OPT_PREFIX, strlen(OPT_PREFIX))) {
        e->role = SKIP; /* optimizer state, not asked for */
        return L->opt ? bind_optim(L, e) : LG_OK;
    }
    lg_tensor *p = lg_param_find(L->ctx, e->name);
    if (!p)
        return fail(L, LG_ERR_VALUE, "the file has tensor '%s', the model has no such parameter",
                    e->name);
    e->role = PARAM;
    e->param = p;
    e->dst = lg_tensor_data(p);
    return check_like(L, e, p);
}

static lg_status parse_entries(loader *L)
{
    L->n = cJSON_GetArraySize(L->root) - (meta_item(L->root, "__metadata__") ? 1 : 0);
    L->es =
        lgC_arena_alloc(L->ctx, &L->scratch, (size_t)(L->n ? L->n : 1) * sizeof *L->es, load_who);
    if (!L->es)
        return LG_ERR_OOM;
    int k = 0;
    for (const cJSON *it = L->root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__"))
            continue;
        entry *e = &L->es[k++];
        *e = (entry){ .name = it->string };
        lg_status st = parse_entry(L, it, e);
        if (st != LG_OK || (st = bind(L, e)) != LG_OK)
            return st;
    }
    return LG_OK;
}

/* Every parameter has its tensor, and every parameter of opt its step
 * count (a save writes both; state for a part of opt would mix two runs). */
static lg_status check_complete(loader *L)
{
    for (int i = 0; i < lg_param_count(L->ctx); i++) {
        lg_tensor *p = lg_param_at(L->ctx, i);
        bool found = false;
        for (int j = 0; j < L->n && !found; j++)
            found = L->es[j].role == PARAM && L->es[j].param == p;
        if (!found)
            return fail(L, LG_ERR_VALUE, "has no tensor for parameter '%s'", lg_tensor_name(p));
    }
    for (int i = 0; L->opt && i < L->opt->n; i++) {
        bool found = false;
        for (int j = 0; j < L->n && !found; j++)
            found = L->es[j].role == STEP && L->es[j].opt_index == i;
        if (!found)
            return fail(L, LG_ERR_VALUE, "has no optimizer state for opt's parameter '%s'",
                        lg_tensor_name(L->opt->params[i]));
    }
    return LG_OK;
}

static int by_offsets(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin)
        return (x->begin > y->begin) - (x->begin < y->begin);
    return (x->end > y->end) - (x->end < y->end);
}

/* The tensors tile the data from byte 0 to its end, as safetensors requires:
 * no overlap, no gap, and nothing after the last one (writers do not
 * append; a tail would only be memory a load reads for nothing). */
static lg_status check_layout(loader *L)
{
    qsort(L->es, (size_t)L->n, sizeof *L->es, by_offsets);
    uint64_t at = 0;
    for (int i = 0; i < L->n; i++) {
        const entry *e = &L->es[i];
        if (e->begin < at)
            return fail(L, LG_ERR_VALUE, "tensors '%s' and '%s' overlap in the data",
                        L->es[i - 1].name, e->name);
        if (e->begin > at)
            return fail(L, LG_ERR_VALUE,
                        "has %" PRIu64 " unused bytes before tensor '%s' (the data must be "
                        "contiguous)",
                        e->begin - at, e->name);
        at = e->end;
    }
    if (at != L->data_size)
        return fail(L, LG_ERR_VALUE,
                    "is %" PRIu64 " bytes, but its header names 8 + %" PRIu64 " + %" PRIu64
                    " (bytes after the last tensor are rejected)",
                    L->size, L->hlen, at);
    return LG_OK;
}

/* Reads the bytes of every entry that goes somewhere into scratch: as much
 * memory as the model's tensors take, whatever the file's size. */
static lg_status stage_data(loader *L)
{
    uint64_t total = 0;
    for (int i = 0; i < L->n; i++)
        if (L->es[i].role != SKIP)
            total += L->es[i].end - L->es[i].begin; /* <= data_size: the tensors tile it */
    if (total > SIZE_MAX - 64)
        return fail(L, LG_ERR_OOM, "the tensors (%" PRIu64 " bytes) do not fit in memory", total);
    uint8_t *buf = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)total, load_who);
    if (!buf)
        return LG_ERR_OOM;
    for (int i = 0; i < L->n; i++) {
        entry *e = &L->es[i];
        if (e->role == SKIP)
            continue;
        uint64_t bytes = e->end - e->begin;
        e->staged = buf;
        buf += bytes;
        int r = read_at(L->fd, e->staged, bytes, 8 + L->hlen + e->begin);
        if (r != 1)
            return read_failed(L, r);
        from_le(e->staged, dt_size(e->dt), (size_t)(bytes / dt_size(e->dt)));
    }
    return LG_OK;
}

static lg_status check_steps(loader *L)
{
    for (int i = 0; i < L->n; i++) {
        int64_t v;
        if (L->es[i].role != STEP)
            continue;
        memcpy(&v, L->es[i].staged, sizeof v);
        if (v < 0 || v > MAX_STEP)
            return fail(L, LG_ERR_VALUE,
                        "tensor '%s' = %" PRId64 " is not a step count in [0, 2^53]", L->es[i].name,
                        v);
    }
    return LG_OK;
}

/* opt's slots the file fills but opt has not made yet are allocated now,
 * before anything is written; if one allocation fails, those made here are
 * freed again, so opt is as it was. */
static lg_status prepare_slots(loader *L)
{
    for (int i = 0; i < L->n; i++) {
        entry *e = &L->es[i];
        if (e->role == STEP)
            e->dst = &L->opt->steps[e->opt_index];
        if (e->role != SLOT)
            continue;
        void **slot = &L->opt->slot[e->slot][e->opt_index];
        e->fresh = *slot == NULL;
        if (e->fresh && !(*slot = lgC_palloc(L->ctx, param_bytes(e->param), load_who))) {
            for (int j = 0; j < i; j++)
                if (L->es[j].fresh) {
                    lgC_pfree(L->ctx, L->es[j].dst);
                    L->opt->slot[L->es[j].slot][L->es[j].opt_index] = NULL;
                }
            return LG_ERR_OOM;
        }
        e->dst = *slot;
    }
    return LG_OK;
}

/* opt's slots the file does not fill restart from zero, as a fresh slot
 * (the file's state replaces opt's, as PyTorch's load_state_dict). */
static void clear_unfilled_slots(loader *L)
{
    for (int i = 0; i < L->opt->n; i++)
        for (int s = 0; s < LGN_SLOTS; s++) {
            void *slot = L->opt->slot[s][i];
            bool filled = false;
            for (int j = 0; j < L->n && slot && !filled; j++)
                filled = L->es[j].dst == slot;
            if (slot && !filled)
                memset(slot, 0, param_bytes(L->opt->params[i]));
        }
}

/* Everything checked and read: now write. */
static void commit(loader *L)
{
    for (int i = 0; i < L->n; i++)
        if (L->es[i].role != SKIP)
            memcpy(L->es[i].dst, L->es[i].staged, (size_t)(L->es[i].end - L->es[i].begin));
    memcpy(L->ctx->rng, L->rng, sizeof L->rng);
    L->ctx->has_spare = L->has_spare;
    L->ctx->spare_normal = L->spare;
    if (L->opt) {
        clear_unfilled_slots(L);
        L->opt->lr = L->lr;
    }
}

static lg_status load(loader *L)
{
    static lg_status (*const stages[])(loader *) = {
        open_regular,  read_header,    parse_header, parse_meta, check_optim_kind,
        parse_entries, check_complete, check_layout, stage_data, check_steps,
    };
    for (size_t i = 0; i < sizeof stages / sizeof *stages; i++) {
        lg_status st = stages[i](L);
        if (st != LG_OK)
            return st;
    }
    lg_status st = L->opt ? prepare_slots(L) : LG_OK;
    if (st == LG_OK)
        commit(L);
    return st;
}

lg_status lg_checkpoint_load(lg_ctx *ctx, const char *path, lg_optim *opt)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!path)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: path is NULL", load_who);
    if (opt && opt->ctx != ctx)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: opt was made with another ctx", load_who);
    c_numeric loc;
    if (!c_numeric_begin(&loc))
        return lgC_errorf(ctx, LG_ERR_OOM, "%s: out of memory (locale)", load_who);
    loader L = { .ctx = ctx, .path = path, .opt = opt, .scratch = scratch_arena(), .fd = -1 };
    lg_status st = load(&L);
    if (L.fd >= 0)
        close(L.fd);
    cJSON_Delete(L.root);
    lgC_arena_free(ctx, &L.scratch);
    c_numeric_end(&loc);
    return st;
}
