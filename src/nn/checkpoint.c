/* checkpoint.c: safetensors checkpoints of a ctx's parameters, an
 * optimizer's state and the RNG, written atomically, read with full
 * validation.
 *
 * File: 8-byte little-endian header length n, n bytes of JSON (cJSON)
 *   { "<name>": {"dtype": "F32"|"F64"|"I64", "shape": [...],
 *                "data_offsets": [begin, end]}, ...,
 *     "__metadata__": {"format": "lossgrad", ...strings...} }
 * padded with spaces to a multiple of 8, then the little-endian data.
 * Optimizer state: "__optim__.<param>.<slot>" (the parameter's dtype and
 * shape) and "__optim__.<param>.step" (I64, 0-d); the optimizer kind, lr
 * and the RNG state go in the metadata. Loading checks everything before
 * it changes anything. cJSON allocates with its own (process-wide)
 * allocator, not the ctx hook.
 */
#define _POSIX_C_SOURCE 200809L
#include "optim.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB of JSON is not a checkpoint */
#define OPT_PREFIX "__optim__."

static const char *const kind_names[] = { "sgd", "adam", "adamw", "rmsprop" };

typedef struct entry {
    char name[320];
    lg_dtype dt;
    int ndim;
    int64_t shape[LG_MAX_DIMS];
    uint64_t begin, end;
    void *src; /* saving: the bytes to write */
    void *dst; /* loading: where the bytes go (NULL: skip) */
    int64_t *dst_step;
    lg_tensor *param;
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

/* Writes n elements of size es, little-endian whatever the host. */
static bool write_le(FILE *f, const void *data, size_t es, size_t n)
{
    if (little_endian())
        return fwrite(data, es, n, f) == n;
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        uint8_t b[8];
        for (size_t k = 0; k < es; k++)
            b[k] = p[i * es + es - 1 - k];
        if (fwrite(b, 1, es, f) != es)
            return false;
    }
    return true;
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

/* ------------------------------------------------------------------ */
/* The list of entries a ctx (and optimizer) has                        */
/* ------------------------------------------------------------------ */

/* Fills es[] (if not NULL) and returns how many entries there are, or -1
 * with the ctx error set. */
static int collect(lg_ctx *ctx, const lg_optim *opt, entry *es, const char *who)
{
    int n = 0;
    for (int i = 0; i < lg_param_count(ctx); i++) {
        lg_tensor *p = lg_param_at(ctx, i);
        const char *name = lg_tensor_name(p);
        if (!name || !*name)
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: parameter %d has no name", who, i), -1;
        if (strlen(name) + 40 > sizeof es[0].name)
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: parameter name '%s' is too long", who, name),
                   -1;
        if (!strncmp(name, OPT_PREFIX, strlen(OPT_PREFIX)) || !strcmp(name, "__metadata__"))
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: parameter name '%s' is reserved", who, name),
                   -1;
        for (int j = 0; j < i; j++)
            if (!strcmp(lg_tensor_name(lg_param_at(ctx, j)), name))
                return lgC_errorf(ctx, LG_ERR_VALUE, "%s: two parameters are named '%s'", who,
                                  name),
                       -1;
        if (es) {
            entry *e = &es[n];
            memset(e, 0, sizeof *e);
            snprintf(e->name, sizeof e->name, "%s", name);
            e->dt = lg_tensor_dtype(p);
            e->ndim = lg_tensor_ndim(p);
            memcpy(e->shape, lg_tensor_shape(p), (size_t)e->ndim * sizeof(int64_t));
            e->src = lg_tensor_data(p);
            e->param = p;
        }
        n++;
    }
    if (!opt)
        return n;
    for (int i = 0; i < opt->n; i++) {
        lg_tensor *p = opt->params[i];
        const char *name = lg_tensor_name(p);
        if (!name)
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: an optimized parameter has no name", who), -1;
        for (int s = 0; s <= LGN_SLOTS; s++) {
            bool is_step = s == LGN_SLOTS;
            if (!is_step && !opt->slot[s][i])
                continue;
            if (es) {
                entry *e = &es[n];
                memset(e, 0, sizeof *e);
                snprintf(e->name, sizeof e->name, OPT_PREFIX "%s.%s", name,
                         is_step ? "step" : lgN_slot_name(opt, s));
                e->dt = is_step ? LG_I64 : lg_tensor_dtype(p);
                e->ndim = is_step ? 0 : lg_tensor_ndim(p);
                if (!is_step)
                    memcpy(e->shape, lg_tensor_shape(p), (size_t)e->ndim * sizeof(int64_t));
                e->src = is_step ? (void *)&opt->steps[i] : opt->slot[s][i];
                e->param = p;
            }
            n++;
        }
    }
    return n;
}

static uint64_t nbytes(const entry *e)
{
    uint64_t n = dt_size(e->dt);
    for (int d = 0; d < e->ndim; d++)
        n *= (uint64_t)e->shape[d];
    return n;
}

/* ------------------------------------------------------------------ */
/* Saving                                                               */
/* ------------------------------------------------------------------ */

static char *header_json(lg_ctx *ctx, const lg_optim *opt, entry *es, int n, const char *who)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory building the header", who);
    uint64_t off = 0;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        es[i].begin = off;
        es[i].end = off += nbytes(&es[i]);
        cJSON *t = cJSON_AddObjectToObject(root, es[i].name);
        cJSON *shape = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
        cJSON *offs = shape ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
        ok = offs && cJSON_AddStringToObject(t, "dtype", dt_tag(es[i].dt));
        for (int d = 0; ok && d < es[i].ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)es[i].shape[d]));
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)es[i].begin)) &&
             cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)es[i].end));
    }
    cJSON *meta = ok ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
    char buf[128];
    ok = meta && cJSON_AddStringToObject(meta, "format", "lossgrad");
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
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        lgC_error(ctx, LG_ERR_OOM, "%s: out of memory building the header", who);
    return json;
}

static lg_status io_error(lg_ctx *ctx, const char *who, const char *what, const char *path)
{
    return lgC_errorf(ctx, LG_ERR_IO, "%s: %s '%s': %s", who, what, path, strerror(errno));
}

/* fsync the folder holding path, so the rename itself is durable. */
static void sync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

lg_status lg_checkpoint_save(lg_ctx *ctx, const char *path, const lg_optim *opt)
{
    static const char who[] = "lg_checkpoint_save";
    if (!ctx)
        return LG_ERR_NULL;
    if (!path)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: path is NULL", who);
    int n = collect(ctx, opt, NULL, who);
    if (n < 0)
        return ctx->status;
    entry *es = lgC_salloc(ctx, (size_t)(n ? n : 1) * sizeof *es, who);
    if (!es || collect(ctx, opt, es, who) != n)
        return ctx->status;
    char *json = header_json(ctx, opt, es, n, who);
    if (!json)
        return ctx->status;
    size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8;
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp) {
        cJSON_free(json);
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: path is too long", who);
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        cJSON_free(json);
        return io_error(ctx, who, "cannot create a temporary file next to", path);
    }
    FILE *f = fdopen(fd, "wb");
    uint8_t len8[8];
    for (int k = 0; k < 8; k++)
        len8[k] = (uint8_t)((uint64_t)hlen >> (8 * k));
    bool ok = f && fwrite(len8, 1, 8, f) == 8 && fwrite(json, 1, jlen, f) == jlen;
    for (size_t k = jlen; ok && k < hlen; k++)
        ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < n; i++)
        ok =
            write_le(f, es[i].src, dt_size(es[i].dt), (size_t)(nbytes(&es[i]) / dt_size(es[i].dt)));
    cJSON_free(json);
    ok = ok && fflush(f) == 0 && fsync(fd) == 0;
    int saved_errno = errno;
    if (f)
        ok = (fclose(f) == 0) && ok;
    else
        close(fd);
    if (!ok) {
        unlink(tmp);
        errno = saved_errno;
        return io_error(ctx, who, "writing failed for", path);
    }
    if (rename(tmp, path) != 0) {
        saved_errno = errno;
        unlink(tmp);
        errno = saved_errno;
        return io_error(ctx, who, "cannot rename the temporary file onto", path);
    }
    sync_dir(path);
    return LG_OK;
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */
/* ------------------------------------------------------------------ */

static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

/* Parses one header entry into e (name already set). */
static bool parse_entry(lg_ctx *ctx, const cJSON *t, entry *e, uint64_t data_size, const char *who)
{
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsObject(t) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) ||
        !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return lgC_errorf(ctx, LG_ERR_VALUE,
                          "%s: tensor '%s' needs \"dtype\", \"shape\" and two \"data_offsets\"",
                          who, e->name),
               false;
    if (!strcmp(dt->valuestring, "F32"))
        e->dt = LG_F32;
    else if (!strcmp(dt->valuestring, "F64"))
        e->dt = LG_F64;
    else if (!strcmp(dt->valuestring, "I64"))
        e->dt = LG_I64;
    else
        return lgC_errorf(ctx, LG_ERR_DTYPE,
                          "%s: tensor '%s' has dtype %s (F32, F64 or I64 expected)", who, e->name,
                          dt->valuestring),
               false;
    e->ndim = cJSON_GetArraySize(shape);
    if (e->ndim > LG_MAX_DIMS)
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: tensor '%s' has %d dims (at most %d)", who,
                          e->name, e->ndim, LG_MAX_DIMS),
               false;
    uint64_t bytes = dt_size(e->dt);
    for (int d = 0; d < e->ndim; d++) {
        uint64_t s;
        if (!json_uint(cJSON_GetArrayItem(shape, d), &s) || (s && bytes > UINT64_MAX / s))
            return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: tensor '%s' has a bad or overflowing shape",
                              who, e->name),
                   false;
        e->shape[d] = (int64_t)s;
        bytes *= s;
    }
    if (!json_uint(cJSON_GetArrayItem(offs, 0), &e->begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &e->end) || e->begin > e->end || e->end > data_size)
        return lgC_errorf(ctx, LG_ERR_VALUE,
                          "%s: tensor '%s' has data_offsets outside the %" PRIu64 "-byte data", who,
                          e->name, data_size),
               false;
    if (e->end - e->begin != bytes)
        return lgC_errorf(ctx, LG_ERR_VALUE,
                          "%s: tensor '%s' spans %" PRIu64
                          " bytes but its dtype and shape need %" PRIu64,
                          who, e->name, e->end - e->begin, bytes),
               false;
    return true;
}

static int by_begin(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Where the loaded entry goes: a parameter or an optimizer slot. Sets
 * e->dst (or e->dst_step). false with the error set on a mismatch. */
static bool bind(lg_ctx *ctx, lg_optim *opt, entry *e, const char *who)
{
    const char *name = e->name;
    lg_tensor *p = NULL;
    const char *leaf = NULL;
    if (!strncmp(name, OPT_PREFIX, strlen(OPT_PREFIX))) {
        if (!opt)
            return true; /* optimizer state, not asked for */
        const char *rest = name + strlen(OPT_PREFIX);
        leaf = strrchr(rest, '.');
        if (!leaf)
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: bad optimizer entry '%s'", who, name), false;
        char pname[320];
        snprintf(pname, sizeof pname, "%.*s", (int)(leaf - rest), rest);
        leaf++;
        for (int i = 0; i < opt->n && !p; i++)
            if (lg_tensor_name(opt->params[i]) && !strcmp(lg_tensor_name(opt->params[i]), pname)) {
                p = opt->params[i];
                if (!strcmp(leaf, "step")) {
                    if (e->dt != LG_I64 || e->ndim != 0)
                        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: '%s' must be a 0-d I64", who,
                                          name),
                               false;
                    e->dst_step = &opt->steps[i];
                    return true;
                }
                for (int s = 0; s < LGN_SLOTS; s++)
                    if (lgN_slot_name(opt, s) && !strcmp(lgN_slot_name(opt, s), leaf)) {
                        e->param = p;
                        e->dst = (void *)(intptr_t)(s + 1); /* slot s + 1: resolved later */
                    }
            }
        if (!p || !e->dst)
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: '%s' does not match this optimizer (%s)", who,
                              name, kind_names[opt->kind]),
                   false;
    } else {
        p = lg_param_find(ctx, name);
        if (!p)
            return lgC_errorf(ctx, LG_ERR_VALUE,
                              "%s: the file has tensor '%s', the model has no such parameter", who,
                              name),
                   false;
        e->param = p;
        e->dst = lg_tensor_data(p);
    }
    if (e->dt != lg_tensor_dtype(p))
        return lgC_errorf(ctx, LG_ERR_DTYPE, "%s: tensor '%s' is %s in the file, %s in the model",
                          who, name, dt_tag(e->dt), dt_tag(lg_tensor_dtype(p))),
               false;
    if (e->ndim != lg_tensor_ndim(p) ||
        memcmp(e->shape, lg_tensor_shape(p), (size_t)e->ndim * sizeof(int64_t)))
        return lgC_errorf(ctx, LG_ERR_SHAPE,
                          "%s: tensor '%s' has another shape in the file than in the model", who,
                          name),
               false;
    return true;
}

static bool parse_rng(const cJSON *meta, uint64_t rng[4], bool *has_spare, double *spare)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(meta, "rng");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(meta, "rng_spare");
    if (!cJSON_IsString(r) || strlen(r->valuestring) != 64 || !cJSON_IsString(s))
        return false;
    for (int k = 0; k < 4; k++) {
        char part[17];
        memcpy(part, r->valuestring + 16 * k, 16);
        part[16] = '\0';
        char *end;
        rng[k] = strtoull(part, &end, 16);
        if (*end)
            return false;
    }
    int flag;
    if (sscanf(s->valuestring, "%d %lf", &flag, spare) != 2)
        return false;
    *has_spare = flag != 0;
    return true;
}

static lg_status load(lg_ctx *ctx, FILE *f, const char *path, lg_optim *opt, const char *who)
{
    struct stat st;
    uint8_t len8[8];
    if (fstat(fileno(f), &st) != 0)
        return io_error(ctx, who, "cannot stat", path);
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8 || fread(len8, 1, 8, f) != 8)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: '%s' is shorter than a safetensors header", who,
                          path);
    uint64_t hlen = 0;
    for (int k = 0; k < 8; k++)
        hlen |= (uint64_t)len8[k] << (8 * k);
    if (hlen > size - 8 || hlen > MAX_HEADER)
        return lgC_errorf(ctx, LG_ERR_VALUE,
                          "%s: '%s' declares a %" PRIu64 "-byte header but has %" PRIu64
                          " bytes after the length",
                          who, path, hlen, size - 8);
    uint64_t data_size = size - 8 - hlen;
    char *hdr = lgC_salloc(ctx, (size_t)hlen + 1, who);
    uint8_t *data = hdr ? lgC_salloc(ctx, (size_t)data_size + 1, who) : NULL;
    if (!data)
        return ctx->status;
    if (fread(hdr, 1, (size_t)hlen, f) != hlen || fread(data, 1, (size_t)data_size, f) != data_size)
        return io_error(ctx, who, "cannot read", path);
    hdr[hlen] = '\0';
    cJSON *root = cJSON_ParseWithLength(hdr, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: '%s' has a header that is not a JSON object", who,
                          path);
    }
    int n = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        n += strcmp(it->string, "__metadata__") != 0;
    entry *es = lgC_salloc(ctx, (size_t)(n ? n : 1) * sizeof *es, who);
    lg_status status = es ? LG_OK : ctx->status;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    int k = 0;
    for (const cJSON *it = root->child; it && status == LG_OK; it = it->next) {
        if (!strcmp(it->string, "__metadata__"))
            continue;
        entry *e = &es[k++];
        memset(e, 0, sizeof *e);
        if (strlen(it->string) >= sizeof e->name)
            status = lgC_errorf(ctx, LG_ERR_VALUE, "%s: a tensor name is too long", who);
        else {
            snprintf(e->name, sizeof e->name, "%s", it->string);
            if (!parse_entry(ctx, it, e, data_size, who) || !bind(ctx, opt, e, who))
                status = ctx->status;
        }
    }
    /* every parameter present, no overlap */
    for (int i = 0; i < lg_param_count(ctx) && status == LG_OK; i++) {
        bool found = false;
        for (int j = 0; j < n && !found; j++)
            found = es[j].param == lg_param_at(ctx, i) && es[j].dst == lg_tensor_data(es[j].param);
        if (!found)
            status = lgC_errorf(ctx, LG_ERR_VALUE, "%s: '%s' has no tensor for parameter '%s'", who,
                                path, lg_tensor_name(lg_param_at(ctx, i)));
    }
    if (status == LG_OK) {
        qsort(es, (size_t)n, sizeof *es, by_begin);
        for (int i = 1; i < n && status == LG_OK; i++)
            if (es[i].begin < es[i - 1].end)
                status =
                    lgC_errorf(ctx, LG_ERR_VALUE, "%s: tensors '%s' and '%s' overlap in the data",
                               who, es[i - 1].name, es[i].name);
    }
    uint64_t rng[4];
    bool has_spare = false;
    double spare = 0;
    if (status == LG_OK && (!cJSON_IsObject(meta) || !parse_rng(meta, rng, &has_spare, &spare)))
        status =
            lgC_errorf(ctx, LG_ERR_VALUE, "%s: '%s' lacks lossgrad's metadata (rng)", who, path);
    double lr = opt ? opt->lr : 0;
    if (status == LG_OK && opt) {
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(meta, "optim");
        const cJSON *olr = cJSON_GetObjectItemCaseSensitive(meta, "optim_lr");
        if (!cJSON_IsString(ok) || !cJSON_IsString(olr) ||
            strcmp(ok->valuestring, kind_names[opt->kind]))
            status = lgC_errorf(ctx, LG_ERR_VALUE, "%s: '%s' holds no %s optimizer state", who,
                                path, kind_names[opt->kind]);
        else
            lr = strtod(olr->valuestring, NULL);
    }
    /* Allocate missing optimizer slots before touching anything. */
    for (int i = 0; i < n && status == LG_OK; i++) {
        if (es[i].param && es[i].dst && (uintptr_t)es[i].dst <= LGN_SLOTS && opt) {
            int s = (int)(uintptr_t)es[i].dst - 1, pi = 0;
            while (opt->params[pi] != es[i].param)
                pi++;
            if (!(es[i].dst = lgN_slot(opt, pi, s)))
                status = ctx->status;
        }
    }
    cJSON_Delete(root);
    if (status != LG_OK)
        return status;
    /* Everything checked: now write. */
    for (int i = 0; i < n; i++) {
        void *src = data + es[i].begin;
        size_t bytes = (size_t)(es[i].end - es[i].begin), esz = dt_size(es[i].dt);
        from_le(src, esz, bytes / esz);
        if (es[i].dst_step)
            memcpy(es[i].dst_step, src, 8);
        else if (es[i].dst)
            memcpy(es[i].dst, src, bytes);
    }
    memcpy(ctx->rng, rng, sizeof rng);
    ctx->has_spare = has_spare;
    ctx->spare_normal = spare;
    if (opt)
        opt->lr = lr;
    return LG_OK;
}

lg_status lg_checkpoint_load(lg_ctx *ctx, const char *path, lg_optim *opt)
{
    static const char who[] = "lg_checkpoint_load";
    if (!ctx)
        return LG_ERR_NULL;
    if (!path)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: path is NULL", who);
    FILE *f = fopen(path, "rb");
    if (!f)
        return io_error(ctx, who, "cannot open", path);
    lgC_mark m = lgC_arena_mark(&ctx->arena);
    lg_status st = load(ctx, f, path, opt, who);
    fclose(f);
    lgC_arena_release(&ctx->arena, m); /* the file's bytes were scratch */
    return st;
}
