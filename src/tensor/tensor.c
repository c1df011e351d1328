/* tensor.c: making tensors, checking them, reading them.
 *
 * Step tensors: header in ctx->headers[step parity], data in ctx->arena,
 * both freed by lg_step_end. Parameters: header, data and gradient in
 * persistent memory, listed in ctx->params. A tensor is usable when its
 * magic is intact and it is persistent or was made in the current step.
 */
#include "tensor.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h> /* _mm_stream_si128 */
#endif

size_t lgT_dtype_size(lg_dtype dt)
{
    return dt == LG_F32 ? 4 : 8;
}

const char *lgT_dtype_name(lg_dtype dt)
{
    switch (dt) {
    case LG_F32: return "float32";
    case LG_F64: return "float64";
    case LG_I64: return "int64";
    }
    return "invalid";
}

bool lgT_is_float(lg_dtype dt)
{
    return dt == LG_F32 || dt == LG_F64;
}

_Static_assert(sizeof(struct lg_tensor) == LGC_HEADER_BYTES,
               "LGC_HEADER_BYTES (core.h) must be sizeof(struct lg_tensor)");
_Static_assert(offsetof(struct lg_tensor, magic) == offsetof(lgC_hdr, magic) &&
                   offsetof(struct lg_tensor, self) == offsetof(lgC_hdr, self),
               "a tensor header starts with lgC_hdr's fields");

/* A header that is what it says: magic and self intact. A stale handle
 * points at a dead header of an earlier step, or (the pools rotate) into
 * the middle of a newer one, where self cannot match. Header memory is
 * never freed before the ctx, so reading this much is always safe. */
static bool intact(const lg_tensor *t)
{
    return lgC_hdr_intact(t);
}

static bool usable(const lg_ctx *ctx, const lg_tensor *t)
{
    return intact(t) && t->ctx == ctx && (t->persistent || t->step == ctx->step_id);
}

/* For calls that take no ctx: the handle's own owner decides. */
bool lgT_live(const lg_tensor *t)
{
    return t && intact(t) && (t->persistent || t->step == t->ctx->step_id);
}

bool lgT_ok(lg_ctx *ctx, const lg_tensor *t, const char *who, const char *arg)
{
    if (!t) {
        lgC_error(ctx, LG_ERR_NULL, "%s: %s is NULL", who, arg);
        return false;
    }
    if (!usable(ctx, t)) {
        if (intact(t) && t->ctx != ctx)
            lgC_error(ctx, LG_ERR_STATE, "%s: %s belongs to another lg_ctx", who, arg);
        else
            lgC_error(ctx, LG_ERR_STALE,
                      "%s: %s is a stale tensor (its step ended with lg_step_end, or the scope "
                      "or gradcheck that made it finished)",
                      who, arg);
        return false;
    }
    return true;
}

bool lgT_ok_float(lg_ctx *ctx, const lg_tensor *t, const char *who, const char *arg)
{
    if (!lgT_ok(ctx, t, who, arg))
        return false;
    if (!lgT_is_float(t->dtype)) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: %s has dtype %s, expected float32 or float64", who, arg,
                  lgT_dtype_name(t->dtype));
        return false;
    }
    return true;
}

bool lgT_same_dtype(lg_ctx *ctx, const lg_tensor *a, const lg_tensor *b, const char *who)
{
    if (a->dtype == b->dtype)
        return true;
    lgC_error(ctx, LG_ERR_DTYPE, "%s: operands have dtypes %s and %s, expected the same", who,
              lgT_dtype_name(a->dtype), lgT_dtype_name(b->dtype));
    return false;
}

bool lgT_shape_ok(lg_ctx *ctx, int ndim, const int64_t *shape, const char *who, int64_t *numel)
{
    if (ndim < 0 || ndim > LG_MAX_DIMS) {
        lgC_error(ctx, LG_ERR_SHAPE, "%s: ndim = %d, expected 0..%d", who, ndim, LG_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !shape) {
        lgC_error(ctx, LG_ERR_NULL, "%s: shape is NULL", who);
        return false;
    }
    /* The dims other than 0 must multiply to at most INT64_MAX / 8 even
     * when a 0 makes the tensor empty: then every product of a tensor's
     * dims (the outer and inner blocks of an axis, strides, rows) and its
     * size in bytes fit in int64_t, and no kernel has to check its own. */
    int64_t nz = 1;
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            lgC_error(ctx, LG_ERR_SHAPE, "%s: shape[%d] = %lld, expected >= 0", who, i,
                      (long long)shape[i]);
            return false;
        }
        if (shape[i] == 0) {
            empty = true;
            continue;
        }
        if (nz > (INT64_MAX / 8) / shape[i]) {
            lgC_error(ctx, LG_ERR_SHAPE,
                      "%s: shape has too many elements (overflow): its nonzero dims multiply "
                      "past %lld",
                      who, (long long)(INT64_MAX / 8));
            return false;
        }
        nz *= shape[i];
    }
    *numel = empty ? 0 : nz;
    return true;
}

static lg_tensor *new_header(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape,
                             int64_t numel, const char *who)
{
    if (lgC_failed(ctx, who))
        return NULL;
    lg_tensor *t = lgC_arena_alloc(ctx, lgC_header_pool(ctx), sizeof *t, who);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->magic = LGT_MAGIC;
    t->self = t;
    t->dtype = (uint8_t)dt;
    t->ndim = (uint8_t)ndim;
    t->step = ctx->step_id;
    t->ctx = ctx;
    t->numel = numel;
    if (ndim > 0)
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->op = LGT_LEAF;
    t->in = t->in_inline;
    return t;
}

lg_tensor *lgT_new(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape, const char *who)
{
    int64_t numel;
    if ((unsigned)dt > LG_I64)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: dtype %d is not a lossgrad dtype", who, (int)dt);
    if (!lgT_shape_ok(ctx, ndim, shape, who, &numel))
        return NULL;
    lg_tensor *t = new_header(ctx, dt, ndim, shape, numel, who);
    if (!t)
        return NULL;
    t->data = lgC_salloc(ctx, (size_t)numel * lgT_dtype_size(dt), who);
    return t->data ? t : NULL;
}

lg_tensor *lgT_new_like(lg_ctx *ctx, const lg_tensor *t, const char *who)
{
    return lgT_new(ctx, (lg_dtype)t->dtype, t->ndim, t->shape, who);
}

/* Large fills are split over the ctx's threads, in pieces of PIECE bytes:
 * one core stores only about half of what two reach here. Fills of
 * NT_BYTES or more (a dense gradient larger than a quarter of a typical
 * last-level cache: it will not stay there) use non-temporal stores on
 * x86-64, which do not read each line before writing it: a 16 MiB fill
 * took 0.5-0.9 ms this way, 0.9-1.5 ms with memset, on the machine
 * the benchmarks ran on. */
enum { PIECE = 1 << 18, PAR_BYTES = 1 << 21, NT_BYTES = 1 << 23 };
struct zero_args {
    unsigned char *p;
    size_t n; /* bytes */
    bool stream;
};

static void zero_piece(unsigned char *p, size_t n, bool stream)
{
#if defined(__x86_64__) && defined(__SSE2__)
    if (stream) {
        size_t head = (size_t)(-(uintptr_t)p & 15);
        head = head < n ? head : n;
        memset(p, 0, head);
        p += head, n -= head;
        __m128i z = _mm_setzero_si128();
        size_t k = n / 16;
        for (size_t i = 0; i < k; i++)
            _mm_stream_si128((__m128i *)(void *)(p + 16 * i), z);
        _mm_sfence();
        memset(p + 16 * k, 0, n - 16 * k);
        return;
    }
#endif
    (void)stream;
    memset(p, 0, n);
}

static void zero_range(void *arg, int64_t lo, int64_t hi)
{
    const struct zero_args *a = arg;
    for (int64_t b = lo; b < hi; b++) {
        size_t off = (size_t)b * PIECE;
        zero_piece(a->p + off, a->n - off < PIECE ? a->n - off : PIECE, a->stream);
    }
}

static void zero_data(lg_ctx *ctx, lg_tensor *t)
{
    size_t n = (size_t)t->numel * lgT_dtype_size((lg_dtype)t->dtype);
    int64_t pieces = (int64_t)((n + PIECE - 1) / PIECE);
    struct zero_args a = { .p = t->data, .n = n, .stream = n >= NT_BYTES };
    lgC_parallel(ctx, n >= PAR_BYTES ? LGC_PAR_MIN : 0, pieces, zero_range, &a);
}

lg_tensor *lgT_zeros_like(lg_ctx *ctx, const lg_tensor *t, const char *who)
{
    lg_tensor *z = lgT_new_like(ctx, t, who);
    if (z)
        zero_data(ctx, z);
    return z;
}

lg_tensor *lgT_view(lg_ctx *ctx, lg_tensor *t, int ndim, const int64_t *shape, const char *who)
{
    lg_tensor *v = new_header(ctx, (lg_dtype)t->dtype, ndim, shape, t->numel, who);
    if (v)
        v->data = t->data;
    return v;
}

bool lgT_same_shape(const lg_tensor *a, const lg_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

void lgT_shape_str(const lg_tensor *t, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

double lgT_get(const lg_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case LG_F32: return LGT_F(t)[i];
    case LG_F64: return LGT_D(t)[i];
    default: return (double)LGT_I(t)[i];
    }
}

void lgT_set(lg_tensor *t, int64_t i, double v)
{
    switch (t->dtype) {
    case LG_F32: LGT_F(t)[i] = (float)v; break;
    case LG_F64: LGT_D(t)[i] = v; break;
    default: LGT_I(t)[i] = (int64_t)v; break;
    }
}

void lgT_fill(lg_tensor *t, double v)
{
    if (v == 0.0) {
        zero_data(t->ctx, t);
        return;
    }
    for (int64_t i = 0; i < t->numel; i++)
        lgT_set(t, i, v);
}

bool lgT_axis(lg_ctx *ctx, int axis, int ndim, const char *who, int *out)
{
    int lo = ndim > 0 ? -ndim : -1, hi = ndim > 0 ? ndim - 1 : 0;
    if (axis < lo || axis > hi) {
        lgC_error(ctx, LG_ERR_AXIS, "%s: axis %d is out of range for %d dims (expected %d..%d)",
                  who, axis, ndim, lo, hi);
        return false;
    }
    *out = axis < 0 ? axis + (ndim > 0 ? ndim : 1) : axis;
    return true;
}

bool lgT_axes_mask(lg_ctx *ctx, int naxes, const int *axes, int ndim, const char *who,
                   bool mask[LG_MAX_DIMS])
{
    memset(mask, 0, LG_MAX_DIMS * sizeof *mask);
    if (naxes < 0 || naxes > LG_MAX_DIMS) {
        lgC_error(ctx, LG_ERR_AXIS, "%s: naxes = %d, expected 0..%d", who, naxes, LG_MAX_DIMS);
        return false;
    }
    if (naxes == 0) {
        for (int i = 0; i < ndim; i++)
            mask[i] = true;
        return true;
    }
    if (!axes) {
        lgC_error(ctx, LG_ERR_NULL, "%s: axes is NULL with naxes = %d", who, naxes);
        return false;
    }
    for (int i = 0; i < naxes; i++) {
        int a;
        if (!lgT_axis(ctx, axes[i], ndim, who, &a))
            return false;
        if (ndim == 0)
            continue;
        if (mask[a]) {
            lgC_error(ctx, LG_ERR_AXIS, "%s: axis %d appears twice in axes", who, axes[i]);
            return false;
        }
        mask[a] = true;
    }
    return true;
}

/* Public: creation -------------------------------------------------------- */

/* v converts to int64_t without overflow (NaN does not; a fraction is cut, as PyTorch). */
static bool fits_int64(double v)
{
    return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
}

static lg_tensor *filled(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape, double value,
                         const char *who)
{
    if (!ctx)
        return NULL;
    if (dt == LG_I64 && !fits_int64(value))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: value = %g does not fit an int64", who, value);
    lg_tensor *t = lgT_new(ctx, dt, ndim, shape, who);
    if (t)
        lgT_fill(t, value);
    return t;
}

lg_tensor *lg_zeros(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape)
{
    return filled(ctx, dt, ndim, shape, 0.0, "lg_zeros");
}

lg_tensor *lg_ones(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape)
{
    return filled(ctx, dt, ndim, shape, 1.0, "lg_ones");
}

lg_tensor *lg_full(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape, double value)
{
    return filled(ctx, dt, ndim, shape, value, "lg_full");
}

lg_tensor *lg_scalar(lg_ctx *ctx, lg_dtype dt, double value)
{
    return filled(ctx, dt, 0, NULL, value, "lg_scalar");
}

lg_tensor *lg_arange(lg_ctx *ctx, lg_dtype dt, double start, double stop, double step)
{
    if (!ctx)
        return NULL;
    if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(stop))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "lg_arange: start, stop and step must be finite and step nonzero");
    double n = ceil((stop - start) / step);
    if (n < 0)
        n = 0;
    if (n > 1e15)
        return lgC_error(ctx, LG_ERR_VALUE, "lg_arange: %.0f elements is too many", n);
    if (dt == LG_I64 && n > 0 && !(fits_int64(start) && fits_int64(start + (n - 1) * step)))
        return lgC_error(ctx, LG_ERR_VALUE, "lg_arange: values from %g on do not fit an int64",
                         start);
    lg_tensor *t = lgT_new(ctx, dt, 1, (int64_t[]){ (int64_t)n }, "lg_arange");
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            lgT_set(t, i, start + (double)i * step);
    return t;
}

lg_tensor *lg_tensor_from(lg_ctx *ctx, lg_dtype dt, const void *data, int ndim,
                          const int64_t *shape)
{
    if (!ctx)
        return NULL;
    lg_tensor *t = lgT_new(ctx, dt, ndim, shape, "lg_tensor_from");
    if (!t)
        return NULL;
    if (t->numel > 0 && !data)
        return lgC_error(ctx, LG_ERR_NULL, "lg_tensor_from: data is NULL");
    if (t->numel > 0)
        memcpy(t->data, data, (size_t)t->numel * lgT_dtype_size(dt));
    return t;
}

lg_tensor *lg_rand(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape, double low,
                   double high)
{
    if (!ctx)
        return NULL;
    if (!lgT_is_float(dt))
        return lgC_error(ctx, LG_ERR_DTYPE, "lg_rand: dtype %s, expected float32 or float64",
                         lgT_dtype_name(dt));
    if (!(low <= high) || !isfinite(low) || !isfinite(high))
        return lgC_error(ctx, LG_ERR_VALUE, "lg_rand: need finite low <= high, got %g, %g", low,
                         high);
    lg_tensor *t = lgT_new(ctx, dt, ndim, shape, "lg_rand");
    if (!t)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = low + (high - low) * lg_rand_uniform(ctx);
        if (dt == LG_F32 && (float)v >= (float)high && low < high)
            v = nextafterf((float)high, -INFINITY); /* rounding must not reach high */
        lgT_set(t, i, v);
    }
    return t;
}

lg_tensor *lg_randn(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape)
{
    if (!ctx)
        return NULL;
    if (!lgT_is_float(dt))
        return lgC_error(ctx, LG_ERR_DTYPE, "lg_randn: dtype %s, expected float32 or float64",
                         lgT_dtype_name(dt));
    lg_tensor *t = lgT_new(ctx, dt, ndim, shape, "lg_randn");
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            lgT_set(t, i, lg_rand_normal(ctx));
    return t;
}

/* Public: parameters ------------------------------------------------------ */

/* A name another parameter or buffer has: -1 if none, else its index in
 * its list (*buffer says which). */
static int name_taken(const lg_ctx *ctx, const char *name, bool *buffer)
{
    for (int i = 0; i < ctx->nparams; i++)
        if (ctx->params[i]->name && strcmp(ctx->params[i]->name, name) == 0)
            return *buffer = false, i;
    for (int i = 0; i < ctx->nbuffers; i++)
        if (ctx->buffers[i]->name && strcmp(ctx->buffers[i]->name, name) == 0)
            return *buffer = true, i;
    return -1;
}

/* Makes room for one more entry in a persistent list. */
static bool list_grow(lg_ctx *ctx, lg_tensor ***list, int n, int *cap, const char *who)
{
    if (n < *cap)
        return true;
    if (n == INT_MAX)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: the ctx holds %d of them already", who, INT_MAX);
    int c = *cap > INT_MAX / 2 ? INT_MAX : (*cap ? 2 * *cap : 16);
    lg_tensor **p = lgC_palloc(ctx, (size_t)c * sizeof *p, who);
    if (!p)
        return false;
    if (n)
        memcpy(p, *list, (size_t)n * sizeof *p);
    lgC_pfree(ctx, *list);
    *list = p;
    *cap = c;
    return true;
}

/* A zeroed persistent tensor in the parameter store (buffer false) or the
 * buffer store. */
static lg_tensor *persistent_new(lg_ctx *ctx, const char *who, bool buffer, const char *name,
                                 lg_dtype dt, int ndim, const int64_t *shape)
{
    int64_t numel;
    if (!ctx)
        return NULL;
    if (!lgT_is_float(dt) && !(buffer && dt == LG_I64))
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: dtype %s, expected float32 or float64%s", who,
                         lgT_dtype_name(dt), buffer ? " (or int64)" : "");
    if (!lgT_shape_ok(ctx, ndim, shape, who, &numel) || lgC_failed(ctx, who))
        return NULL;
    bool in_buffers = false;
    int other = name ? name_taken(ctx, name, &in_buffers) : -1;
    if (other >= 0)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: name \"%.120s%s\" is taken by %s %d (names must be unique: "
                         "checkpoints save by name)",
                         who, name, strlen(name) > 120 ? "..." : "",
                         in_buffers ? "buffer" : "parameter", other);
    if (buffer ? !list_grow(ctx, &ctx->buffers, ctx->nbuffers, &ctx->buffers_cap, who)
               : !list_grow(ctx, &ctx->params, ctx->nparams, &ctx->params_cap, who))
        return NULL;
    size_t bytes = (size_t)numel * lgT_dtype_size(dt);
    size_t name_len = name ? strlen(name) + 1 : 0;
    lg_tensor *t = lgC_palloc(ctx, sizeof *t, who);
    void *data = t ? lgC_palloc(ctx, bytes, who) : NULL;
    char *nm = (data && name) ? lgC_palloc(ctx, name_len, who) : NULL;
    if (!t || !data || (name && !nm)) {
        lgC_pfree(ctx, t);
        lgC_pfree(ctx, data);
        return NULL;
    }
    t->magic = LGT_MAGIC;
    t->self = t;
    t->dtype = (uint8_t)dt;
    t->ndim = (uint8_t)ndim;
    t->persistent = true;
    t->ctx = ctx;
    t->requires_grad = !buffer;
    t->is_buffer = buffer;
    t->numel = numel;
    if (ndim > 0)
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->data = data;
    if (nm)
        memcpy(nm, name, name_len);
    t->name = nm;
    t->op = LGT_LEAF;
    t->in = t->in_inline;
    if (buffer)
        ctx->buffers[ctx->nbuffers++] = t;
    else
        t->param_index = ctx->nparams, ctx->params[ctx->nparams++] = t;
    return t;
}

lg_tensor *lg_param_new(lg_ctx *ctx, const char *name, lg_dtype dt, int ndim, const int64_t *shape)
{
    return persistent_new(ctx, "lg_param_new", false, name, dt, ndim, shape);
}

lg_tensor *lg_buffer_new(lg_ctx *ctx, const char *name, lg_dtype dt, int ndim, const int64_t *shape)
{
    return persistent_new(ctx, "lg_buffer_new", true, name, dt, ndim, shape);
}

static void persistent_free(lg_ctx *ctx, lg_tensor *p)
{
    if (p->grad) {
        lgC_pfree(ctx, p->grad->data);
        lgC_pfree(ctx, p->grad);
    }
    lgC_pfree(ctx, p->data);
    lgC_pfree(ctx, (void *)p->name);
    lgC_pfree(ctx, p);
}

void lgC_params_drop(lg_ctx *ctx, int n)
{
    while (ctx->nparams > n)
        persistent_free(ctx, ctx->params[--ctx->nparams]);
}

void lgC_buffers_drop(lg_ctx *ctx, int n)
{
    while (ctx->nbuffers > n)
        persistent_free(ctx, ctx->buffers[--ctx->nbuffers]);
}

int lg_buffer_count(const lg_ctx *ctx)
{
    return ctx ? ctx->nbuffers : 0;
}

lg_tensor *lg_buffer_at(lg_ctx *ctx, int i)
{
    if (!ctx || i < 0 || i >= ctx->nbuffers)
        return NULL;
    return ctx->buffers[i];
}

int lg_param_count(const lg_ctx *ctx)
{
    return ctx ? ctx->nparams : 0;
}

lg_tensor *lg_param_at(lg_ctx *ctx, int i)
{
    if (!ctx || i < 0 || i >= ctx->nparams)
        return NULL;
    return ctx->params[i];
}

const char *lg_tensor_name(const lg_tensor *t)
{
    return lgT_live(t) ? t->name : NULL;
}

void lg_zero_grad(lg_ctx *ctx)
{
    if (!ctx)
        return;
    for (int i = 0; i < ctx->nparams; i++)
        if (ctx->params[i]->grad)
            lgT_fill(ctx->params[i]->grad, 0.0);
}

/* Public: queries --------------------------------------------------------- */

int lg_tensor_ndim(const lg_tensor *t)
{
    return lgT_live(t) ? t->ndim : 0;
}

const int64_t *lg_tensor_shape(const lg_tensor *t)
{
    return lgT_live(t) ? t->shape : NULL;
}

int64_t lg_tensor_dim(const lg_tensor *t, int axis)
{
    if (!lgT_live(t) || axis < -(int)t->ndim || axis >= (int)t->ndim)
        return -1;
    return t->shape[axis < 0 ? axis + t->ndim : axis];
}

int64_t lg_tensor_numel(const lg_tensor *t)
{
    return lgT_live(t) ? t->numel : 0;
}

lg_dtype lg_tensor_dtype(const lg_tensor *t)
{
    return lgT_live(t) ? (lg_dtype)t->dtype : LG_F32;
}

void *lg_tensor_data(lg_tensor *t)
{
    return lgT_live(t) ? t->data : NULL;
}

bool lg_tensor_requires_grad(const lg_tensor *t)
{
    return lgT_live(t) && t->requires_grad;
}

lg_tensor *lg_tensor_grad(lg_tensor *t)
{
    return lgT_live(t) ? t->grad : NULL;
}

double lg_item(lg_ctx *ctx, lg_tensor *t)
{
    if (!ctx || !lgT_ok(ctx, t, "lg_item", "t"))
        return NAN;
    if (t->numel != 1) {
        lgC_error(ctx, LG_ERR_SHAPE, "lg_item: t has %lld elements, expected exactly 1",
                  (long long)t->numel);
        return NAN;
    }
    return lgT_get(t, 0);
}

lg_status lg_tensor_check(lg_ctx *ctx, const lg_tensor *t)
{
    if (!ctx)
        return LG_ERR_NULL;
    return lgT_ok(ctx, t, "lg_tensor_check", "t") ? LG_OK : ctx->status;
}

lg_status lg_requires_grad(lg_ctx *ctx, lg_tensor *t, bool on)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!lgT_ok_float(ctx, t, "lg_requires_grad", "t"))
        return ctx->status;
    if (t->op != LGT_LEAF)
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "lg_requires_grad: t is the result of an op, expected a leaf (a step "
                          "leaf tensor or a parameter)");
    if (t->is_buffer && on)
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "lg_requires_grad: t is the buffer '%s' (state that is not trained: "
                          "make a parameter to train it)",
                          t->name ? t->name : "");
    /* A parameter switched off is frozen (PyTorch's requires_grad_(False)):
     * backward gives it no gradient and optimizers skip it; its gradient so
     * far is kept, as PyTorch. */
    t->requires_grad = on;
    return LG_OK;
}

lg_status lg_tensor_print(lg_ctx *ctx, const lg_tensor *t, FILE *f, int64_t max_elems)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!lgT_ok(ctx, t, "lg_tensor_print", "t"))
        return ctx->status;
    if (!f)
        return lgC_errorf(ctx, LG_ERR_NULL, "lg_tensor_print: f is NULL");
    char shape[160];
    lgT_shape_str(t, shape, sizeof shape);
    int64_t n = (max_elems > 0 && max_elems < t->numel) ? max_elems : t->numel;
    int ok = fprintf(f, "tensor(%s, shape=%s", lgT_dtype_name((lg_dtype)t->dtype), shape) >= 0;
    if (t->name)
        ok &= fprintf(f, ", name=%s", t->name) >= 0;
    ok &= fputs(", data=[", f) >= 0;
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == LG_I64)
            ok &= fprintf(f, i ? ", %lld" : "%lld", (long long)LGT_I(t)[i]) >= 0;
        else
            ok &=
                fprintf(f, i ? ", %.*g" : "%.*g", t->dtype == LG_F32 ? 8 : 17, lgT_get(t, i)) >= 0;
    }
    ok &= fputs(n < t->numel ? ", ...])\n" : "])\n", f) >= 0;
    if (!ok)
        return lgC_errorf(ctx, LG_ERR_IO, "lg_tensor_print: writing to f failed");
    return LG_OK;
}

lg_status lg_copy_into(lg_ctx *ctx, lg_tensor *dst, const lg_tensor *src)
{
    static const char who[] = "lg_copy_into";
    if (!ctx)
        return LG_ERR_NULL;
    if (!lgT_ok(ctx, dst, who, "dst") || !lgT_ok(ctx, src, who, "src"))
        return ctx->status;
    if (!lgT_same_shape(dst, src)) {
        char a[160], b[160];
        lgT_shape_str(dst, a, sizeof a);
        lgT_shape_str(src, b, sizeof b);
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: dst has shape %s but src has shape %s", who, a,
                          b);
    }
    if (dst->dtype == src->dtype)
        memmove(dst->data, src->data, (size_t)dst->numel * lgT_dtype_size((lg_dtype)dst->dtype));
    else
        for (int64_t i = 0; i < dst->numel; i++)
            lgT_set(dst, i, lgT_get(src, i));
    return LG_OK;
}
