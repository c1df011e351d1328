/* checkpoint_load.c: lg_checkpoint_load(_optims), a safetensors file
 * (format: checkpoint.h) read into a ctx's parameters, optimizers' state
 * and the RNG, with every byte of the header and every value checked
 * first (the metadata's values: checkpoint_meta.c).
 *
 * Invariants: nothing in the ctx changes until every check has passed and
 * every byte to be written has been read (into a private scratch arena, as
 * much as the model's tensors take, whatever the file's size); on any
 * error the ctx, the optimizer and the RNG are as they were. The header is
 * parsed by cJSON with the C library's allocator (its hooks are
 * process-wide), not the ctx hook.
 */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint_load.h"
#include "sched.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void from_le(void *data, size_t es, size_t n)
{
    if (lgN_little_endian())
        return;
    uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < es / 2; k++) {
            uint8_t t = p[i * es + k];
            p[i * es + k] = p[i * es + es - 1 - k];
            p[i * es + es - 1 - k] = t;
        }
}

static size_t param_bytes(lg_tensor *p)
{
    return (size_t)lg_tensor_numel(p) * lgN_dt_size(lg_tensor_dtype(p));
}

lg_status lgN_load_fail(loader *L, lg_status st, const char *fmt, ...)
{
    char rule[LG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    return lgN_file_error(L->ctx, st, L->who, L->path, "%s", rule);
}

static lg_status read_failed(loader *L, int r)
{
    return r < 0 ? lgN_io_error(L->ctx, L->who, "cannot read", L->path)
                 : lgN_load_fail(L, LG_ERR_IO,
                                 "the file ended early (did it change during the load?)");
}

/* Only a regular file is read: a FIFO or a device could block or never end. */
static lg_status open_regular(loader *L)
{
    L->fd = lgN_open_regular(L->ctx, L->who, L->path, &L->size);
    return L->fd < 0 ? LG_ERR_IO : LG_OK; /* every error there is LG_ERR_IO */
}

static lg_status read_header(loader *L)
{
    uint8_t len8[8];
    if (L->size < 8)
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "is shorter than a safetensors header (%" PRIu64 " bytes)", L->size);
    int r = lgN_read_at(L->fd, len8, 8, 0);
    if (r != 1)
        return read_failed(L, r);
    L->hlen = 0;
    for (int k = 0; k < 8; k++)
        L->hlen |= (uint64_t)len8[k] << (8 * k);
    if (L->hlen > L->size - 8 || L->hlen > LGN_MAX_HEADER)
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "declares a %" PRIu64 "-byte header but has %" PRIu64
                             " bytes after the length (and at most %" PRIu64 " are accepted)",
                             L->hlen, L->size - 8, LGN_MAX_HEADER);
    L->data_size = L->size - 8 - L->hlen;
    L->hdr = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)L->hlen + 1, L->who);
    if (!L->hdr)
        return LG_ERR_OOM;
    r = lgN_read_at(L->fd, L->hdr, L->hlen, 8);
    if (r != 1)
        return read_failed(L, r);
    L->hdr[L->hlen] = '\0';
    return LG_OK;
}

static bool is_hex4(const char *s)
{
    for (int k = 0; k < 4; k++)
        if (!s[k] || !strchr("0123456789abcdefABCDEF", s[k]))
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
    const char **keys = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)n * sizeof *keys, L->who);
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

lg_status lgN_check_unique(loader *L, const cJSON *obj, const char *what)
{
    const char *dup;
    if (!find_duplicate(L, obj, &dup))
        return LG_ERR_OOM;
    if (dup)
        return lgN_load_fail(L, LG_ERR_VALUE, "%s has the key '%.60s' twice", what, dup);
    return LG_OK;
}

/* The header: one JSON object, then only spaces (safetensors pads with
 * 0x20). A failed parse is out of memory when malloc said so (errno is per
 * thread; POSIX malloc sets ENOMEM), malformed JSON otherwise. */
static lg_status parse_header(loader *L)
{
    if (L->hlen == 0 || L->hdr[0] != '{')
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "has a header that is not a JSON object (it must start with '{')");
    const char *end = NULL;
    errno = 0;
    L->root = cJSON_ParseWithLengthOpts(L->hdr, (size_t)L->hlen, &end, 0);
    if (!L->root && errno == ENOMEM)
        return lgN_load_fail(L, LG_ERR_OOM, "out of memory parsing the %" PRIu64 "-byte header",
                             L->hlen);
    if (!cJSON_IsObject(L->root))
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "has a header that is not a JSON object (bad JSON at byte %zu)",
                             end ? (size_t)(end - L->hdr) : (size_t)0);
    size_t json_len = (size_t)(end - L->hdr), bad = first_bad_byte(L->hdr, json_len);
    if (bad < json_len && L->hdr[bad] == '\\')
        return lgN_load_fail(
            L, LG_ERR_VALUE,
            "has a \\u0000 (or malformed \\u) escape at byte %zu of the header: names "
            "and values are C strings",
            bad);
    if (bad < json_len)
        return lgN_load_fail(L, LG_ERR_VALUE, "has control byte 0x%02x at byte %zu of the header",
                             (unsigned char)L->hdr[bad], bad);
    for (size_t i = json_len; i < L->hlen; i++)
        if (L->hdr[i] != ' ')
            return lgN_load_fail(
                L, LG_ERR_VALUE,
                "has byte 0x%02x after the header's JSON object, at byte %zu (only space "
                "padding may follow it)",
                (unsigned char)L->hdr[i], i);
    return lgN_check_unique(L, L->root, "the header");
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
        if (!strcmp(tag, lgN_dt_tag(dts[k]))) {
            e->dt = dts[k];
            return LG_OK;
        }
    return lgN_load_fail(L, LG_ERR_DTYPE, "tensor '%s' has dtype %.20s (F32, F64 or I64 expected)",
                         e->name, tag);
}

static lg_status parse_shape(loader *L, entry *e, const cJSON *shape)
{
    e->ndim = cJSON_GetArraySize(shape);
    if (e->ndim > LG_MAX_DIMS)
        return lgN_load_fail(L, LG_ERR_SHAPE, "tensor '%s' has %d dims (at most %d)", e->name,
                             e->ndim, LG_MAX_DIMS);
    uint64_t bytes = lgN_dt_size(e->dt);
    for (int d = 0; d < e->ndim; d++) {
        uint64_t s;
        if (!json_uint(cJSON_GetArrayItem(shape, d), &s) || (s && bytes > UINT64_MAX / s))
            return lgN_load_fail(L, LG_ERR_SHAPE, "tensor '%s' has a bad or overflowing shape",
                                 e->name);
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
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "tensor '%s' needs \"dtype\", \"shape\" and two \"data_offsets\"",
                             e->name);
    char what[80];
    snprintf(what, sizeof what, "tensor '%.60s'", e->name);
    lg_status st;
    if ((st = lgN_check_unique(L, t, what)) != LG_OK ||
        (st = parse_dtype(L, e, dt->valuestring)) != LG_OK ||
        (st = parse_shape(L, e, shape)) != LG_OK)
        return st;
    if (!json_uint(cJSON_GetArrayItem(offs, 0), &e->begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &e->end) || e->begin > e->end ||
        e->end > L->data_size)
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "tensor '%s' has data_offsets outside the %" PRIu64 "-byte data",
                             e->name, L->data_size);
    if (e->end - e->begin != lgN_entry_bytes(e))
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "tensor '%s' spans %" PRIu64
                             " bytes but its dtype and shape need %" PRIu64,
                             e->name, e->end - e->begin, lgN_entry_bytes(e));
    return LG_OK;
}

/* e's dtype and shape are those of the model's tensor p. */
static lg_status check_like(loader *L, const entry *e, lg_tensor *p)
{
    if (e->dt != lg_tensor_dtype(p))
        return lgN_load_fail(L, LG_ERR_DTYPE, "tensor '%s' is %s in the file, %s in the model",
                             e->name, lgN_dt_tag(e->dt), lgN_dt_tag(lg_tensor_dtype(p)));
    if (e->ndim != lg_tensor_ndim(p) ||
        memcmp(e->shape, lg_tensor_shape(p), (size_t)e->ndim * sizeof(int64_t)))
        return lgN_load_fail(L, LG_ERR_SHAPE,
                             "tensor '%s' has another shape in the file than in the model",
                             e->name);
    return LG_OK;
}

/* "__optim__.<param>.<leaf>" (or "__optim__#k.<param>.<leaf>"): the step
 * count, a slot or scalar state of optimizer o's kind. */
static lg_status bind_optim(loader *L, entry *e, const char *rest, int which)
{
    const lg_optim *opt = L->of[which].opt;
    const char *leaf = strrchr(rest, '.');
    size_t plen = leaf ? (size_t)(leaf - rest) : 0;
    e->which = which;
    for (int i = 0; leaf && i < opt->n; i++) {
        const char *q = lg_tensor_name(opt->params[i]);
        if (!q || strlen(q) != plen || strncmp(q, rest, plen))
            continue;
        e->param = opt->params[i];
        e->opt_index = i;
        if (!strcmp(leaf + 1, "step")) {
            e->role = LGN_STEP;
            if (e->dt != LG_I64 || e->ndim != 0)
                return lgN_load_fail(L, LG_ERR_SHAPE, "tensor '%s' must be a 0-d I64", e->name);
            return LG_OK;
        }
        for (int s = 0; s < LGN_SLOTS; s++)
            if (lgN_slot_name(opt, s) && !strcmp(lgN_slot_name(opt, s), leaf + 1)) {
                e->role = LGN_SLOT;
                e->slot = s;
                return check_like(L, e, e->param);
            }
        for (int s = 0; s < LGN_SCALARS; s++)
            if (lgN_scalar_name(opt, s) && !strcmp(lgN_scalar_name(opt, s), leaf + 1)) {
                e->role = LGN_SCALAR;
                e->slot = s;
                if (e->dt != LG_F64 || e->ndim != 0)
                    return lgN_load_fail(L, LG_ERR_SHAPE, "tensor '%s' must be a 0-d F64", e->name);
                return LG_OK;
            }
        for (int j = 0; opt->kind == LG_LBFGS && j < LGN_LBFGS_ENTRIES; j++)
            if (!strcmp(lgN_lbfgs_entry_name(j), leaf + 1))
                return lgN_bind_lbfgs(L, e, j);
        return lgN_load_fail(L, LG_ERR_VALUE, "tensor '%s': an %s optimizer has no state '%.40s'",
                             e->name, lgN_kind_name(opt->kind), leaf + 1);
    }
    return lgN_load_fail(L, LG_ERR_VALUE,
                         "tensor '%s' is optimizer state of a parameter %s does not optimize",
                         e->name, L->of[which].arg);
}

/* Which optimizer a "__optim__..." name is state of: 0 for "__optim__.",
 * k for "__optim__#k." (k in [1, nfile)); *rest is what follows. */
static lg_status optim_of(loader *L, const entry *e, int *which, const char **rest)
{
    const char *p = e->name + strlen(LGN_OPT_BASE);
    if (*p == '.') {
        *which = 0;
        *rest = p + 1;
    } else {
        size_t d = *p == '#' ? strspn(p + 1, "0123456789") : 0;
        long k = d > 0 && d < 8 && p[1] != '0' && p[1 + d] == '.' ? strtol(p + 1, NULL, 10) : -1;
        if (k < 0)
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "tensor '%s' has the reserved prefix " LGN_OPT_BASE
                                 " but is not optimizer state (" LGN_OPT_PREFIX
                                 "<param>.<state> or " LGN_OPT_BASE "#<k>.<param>.<state>)",
                                 e->name);
        *which = (int)k;
        *rest = p + 2 + d;
    }
    if (*which >= L->nfile)
        return lgN_load_fail(
            L, LG_ERR_VALUE,
            "tensor '%s' is state of optimizer %d, but the metadata names %d optimizer(s)", e->name,
            *which, L->nfile);
    return LG_OK;
}

/* Where the loaded entry goes: a parameter, an optimizer's state, or nowhere. */
static lg_status bind(loader *L, entry *e)
{
    if (!strncmp(e->name, LGN_OPT_BASE, strlen(LGN_OPT_BASE))) {
        int which = 0;
        const char *rest = NULL;
        lg_status st = optim_of(L, e, &which, &rest);
        e->role = LGN_SKIP; /* optimizer state, not asked for */
        return st != LG_OK ? st : L->of[which].opt ? bind_optim(L, e, rest, which) : LG_OK;
    }
    lg_tensor *p = lg_param_find(L->ctx, e->name);
    if (!p)
        p = lg_buffer_find(L->ctx, e->name);
    if (!p)
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "the file has tensor '%s', the model has no such parameter or buffer",
                             e->name);
    e->role = LGN_PARAM;
    e->param = p;
    e->dst = lg_tensor_data(p);
    return check_like(L, e, p);
}

static lg_status parse_entries(loader *L)
{
    L->n = cJSON_GetArraySize(L->root) - (meta_item(L->root, "__metadata__") ? 1 : 0);
    L->es = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)(L->n ? L->n : 1) * sizeof *L->es, L->who);
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

/* Every parameter has its tensor, and every parameter of each opt its step
 * count (a save writes both; state for a part of opt would mix two runs). */
static bool has_state(const loader *L, lgN_role role, int which, int i, int slot)
{
    for (int j = 0; j < L->n; j++) {
        const entry *e = &L->es[j];
        if (e->role == role && e->which == which && e->opt_index == i &&
            (role == LGN_STEP || e->slot == slot))
            return true;
    }
    return false;
}

static lg_status check_complete(loader *L)
{
    int np = lg_param_count(L->ctx), nb = lg_buffer_count(L->ctx);
    for (int i = 0; i < np + nb; i++) {
        lg_tensor *p = i < np ? lg_param_at(L->ctx, i) : lg_buffer_at(L->ctx, i - np);
        bool found = false;
        for (int j = 0; j < L->n && !found; j++)
            found = L->es[j].role == LGN_PARAM && L->es[j].param == p;
        if (!found)
            return lgN_load_fail(L, LG_ERR_VALUE, "has no tensor for %s '%s'",
                                 i < np ? "parameter" : "buffer", lg_tensor_name(p));
    }
    for (int k = 0; k < L->nfile; k++) {
        const lg_optim *opt = L->of[k].opt;
        for (int i = 0; opt && i < opt->n; i++) {
            if (!has_state(L, LGN_STEP, k, i, 0))
                return lgN_load_fail(L, LG_ERR_VALUE,
                                     "has no optimizer state for %s's parameter '%s'", L->of[k].arg,
                                     lg_tensor_name(opt->params[i]));
            /* a parameter with state has its scalar state too (NAdam, ASGD) */
            for (int s = 0; has_state(L, LGN_SLOT, k, i, 0) && s < LGN_SCALARS; s++)
                if (lgN_scalar_name(opt, s) && !has_state(L, LGN_SCALAR, k, i, s))
                    return lgN_load_fail(L, LG_ERR_VALUE, "has %s state for '%s' without its %s",
                                         lgN_kind_name(opt->kind), lg_tensor_name(opt->params[i]),
                                         lgN_scalar_name(opt, s));
        }
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
            return lgN_load_fail(L, LG_ERR_VALUE, "tensors '%s' and '%s' overlap in the data",
                                 L->es[i - 1].name, e->name);
        if (e->begin > at)
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "has %" PRIu64
                                 " unused bytes before tensor '%s' (the data must be "
                                 "contiguous)",
                                 e->begin - at, e->name);
        at = e->end;
    }
    if (at != L->data_size)
        return lgN_load_fail(L, LG_ERR_VALUE,
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
        if (L->es[i].role != LGN_SKIP)
            total += (L->es[i].end - L->es[i].begin + 7) / 8 * 8; /* <= data_size + 7 n */
    if (total > SIZE_MAX - 64)
        return lgN_load_fail(L, LG_ERR_OOM, "the tensors (%" PRIu64 " bytes) do not fit in memory",
                             total);
    uint8_t *buf = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)total, L->who);
    if (!buf)
        return LG_ERR_OOM;
    for (int i = 0; i < L->n; i++) {
        entry *e = &L->es[i];
        if (e->role == LGN_SKIP)
            continue;
        uint64_t bytes = e->end - e->begin;
        e->staged = buf;
        buf += (bytes + 7) / 8 * 8; /* each tensor 8-byte aligned: LBFGS's are read as doubles */
        int r = lgN_read_at(L->fd, e->staged, bytes, 8 + L->hlen + e->begin);
        if (r != 1)
            return read_failed(L, r);
        from_le(e->staged, lgN_dt_size(e->dt), (size_t)(bytes / lgN_dt_size(e->dt)));
    }
    return LG_OK;
}

static lg_status check_steps(loader *L)
{
    for (int i = 0; i < L->n; i++) {
        int64_t v;
        if (L->es[i].role == LGN_SCALAR) {
            double d;
            memcpy(&d, L->es[i].staged, sizeof d);
            if (!isfinite(d))
                return lgN_load_fail(L, LG_ERR_VALUE, "tensor '%s' = %g is not finite",
                                     L->es[i].name, d);
            continue;
        }
        if (L->es[i].role != LGN_STEP)
            continue;
        memcpy(&v, L->es[i].staged, sizeof v);
        if (v < 0 || v > LGN_MAX_STEP)
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "tensor '%s' = %" PRId64 " is not a step count in [0, 2^53]",
                                 L->es[i].name, v);
    }
    return LG_OK;
}

/* The optimizers' slots the file fills but they have not made yet are
 * allocated now, before anything is written; if one allocation fails,
 * those made here are freed again, so every opt is as it was. */
static lg_status prepare_slots(loader *L)
{
    for (int i = 0; i < L->n; i++) {
        entry *e = &L->es[i];
        lg_optim *opt = e->role == LGN_SKIP || e->role == LGN_PARAM ? NULL : L->of[e->which].opt;
        if (e->role == LGN_STEP)
            e->dst = &opt->steps[e->opt_index];
        if (e->role == LGN_SCALAR)
            e->dst = &opt->scalar[e->slot][e->opt_index];
        if (e->role != LGN_SLOT)
            continue;
        void **slot = &opt->slot[e->slot][e->opt_index];
        e->fresh = *slot == NULL;
        if (e->fresh && !(*slot = lgC_palloc(L->ctx, param_bytes(e->param), L->who))) {
            for (int j = 0; j < i; j++)
                if (L->es[j].fresh) {
                    lgC_pfree(L->ctx, L->es[j].dst);
                    L->of[L->es[j].which].opt->slot[L->es[j].slot][L->es[j].opt_index] = NULL;
                }
            return LG_ERR_OOM;
        }
        e->dst = *slot;
    }
    return LG_OK;
}

/* opt's slots the file does not fill restart from zero, as a fresh slot
 * (the file's state replaces opt's, as PyTorch's load_state_dict); an SGD
 * momentum buffer the file lacks is absent in PyTorch, so its next update
 * starts it afresh. */
static void clear_unfilled_slots(loader *L, lg_optim *opt)
{
    for (int i = 0; i < opt->n; i++)
        for (int s = 0; s < LGN_SLOTS; s++) {
            void *slot = opt->slot[s][i];
            bool filled = false;
            for (int j = 0; j < L->n && slot && !filled; j++)
                filled = L->es[j].dst == slot;
            if (slot && !filled)
                memset(slot, 0, param_bytes(opt->params[i]));
            if (s == 0) /* a slot never updated (steps 0) starts afresh too */
                opt->fresh[i] = !filled || opt->steps[i] == 0;
        }
}

/* Everything checked and read: now write. */
static void commit(loader *L)
{
    for (int i = 0; i < L->n; i++)
        if (L->es[i].role != LGN_SKIP && L->es[i].role != LGN_LBFGS)
            memcpy(L->es[i].dst, L->es[i].staged, (size_t)(L->es[i].end - L->es[i].begin));
    memcpy(L->ctx->rng, L->rng, sizeof L->rng);
    L->ctx->has_spare = L->has_spare;
    L->ctx->spare_normal = L->spare;
    for (int k = 0; k < L->nfile; k++)
        if (L->of[k].opt) {
            lg_optim *opt = L->of[k].opt;
            clear_unfilled_slots(L, opt);
            lgN_commit_groups(&L->of[k]);
            if (opt->kind == LG_LBFGS) { /* the file's state, or none */
                lgN_lbfgs_free(opt, opt->lbfgs);
                opt->lbfgs = L->of[k].lbfgs;
            }
        }
}

static lg_status load(loader *L)
{
    static lg_status (*const stages[])(loader *) = {
        open_regular,
        read_header,
        parse_header,
        lgN_parse_meta,
        lgN_check_optim_kind,
        lgN_check_group_lrs,
        parse_entries,
        check_complete,
        lgN_check_lbfgs,
        check_layout,
        stage_data,
        check_steps,
        lgN_check_lbfgs_values,
        lgN_check_group_momenta,
        lgN_load_scheds,
    };
    for (size_t i = 0; i < sizeof stages / sizeof *stages; i++) {
        lg_status st = stages[i](L);
        if (st != LG_OK)
            return st;
    }
    lg_status st = L->nopts ? lgN_build_lbfgs(L) : LG_OK;
    if (st == LG_OK && L->nopts && (st = prepare_slots(L)) != LG_OK)
        lgN_free_built_lbfgs(L);
    if (st == LG_OK)
        commit(L);
    else
        lgN_restore_scheds(L, L->nfile);
    return st;
}

static lg_status load_file(lg_ctx *ctx, const char *who, const char *path, lg_optim *const *opts,
                           int nopts, bool many)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return LG_ERR_STATE;
    lg_status st = lgN_check_call(ctx, who, path, opts, nopts, many);
    if (st != LG_OK)
        return st;
    lgN_c_numeric loc;
    if (!lgN_c_numeric_begin(&loc))
        return lgC_errorf(ctx, LG_ERR_OOM, "%s: out of memory (locale)", who);
    loader L = { .ctx = ctx,
                 .who = who,
                 .path = path,
                 .opts = opts,
                 .nopts = nopts,
                 .scratch = lgN_scratch(),
                 .fd = -1 };
    st = load(&L);
    if (L.fd >= 0)
        close(L.fd);
    cJSON_Delete(L.root);
    lgC_arena_free(ctx, &L.scratch);
    lgN_c_numeric_end(&loc);
    return st;
}

lg_status lg_checkpoint_load(lg_ctx *ctx, const char *path, lg_optim *opt)
{
    return load_file(ctx, "lg_checkpoint_load", path, opt ? &opt : NULL, opt ? 1 : 0, false);
}

lg_status lg_checkpoint_load_optims(lg_ctx *ctx, const char *path, lg_optim *const *opts, int nopts)
{
    return load_file(ctx, "lg_checkpoint_load_optims", path, opts, nopts, true);
}
