/* common.c: argument checks, options and reductions shared by the losses,
 * on the tensor and autograd helpers (loss.h). */
#include "fused.h"
#include "loss.h"

#include <string.h>

bool lgL_int(lg_ctx *ctx, lg_tensor *t, const char *who, const char *arg)
{
    if (!lgT_ok(ctx, t, who, arg))
        return false;
    if (lg_tensor_dtype(t) != LG_I64) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: %s has dtype %s, expected int64", who, arg,
                  lgT_dtype_name(lg_tensor_dtype(t)));
        return false;
    }
    return true;
}

/* Does any element fall outside [lo, hi] (or, with pm1, differ from both
 * -1 and 1)? A branch-free scan (vector clones), over pieces split among the
 * ctx's threads, so that checking a million targets costs about as much as
 * reading them, and does not hold the other threads back. */
/* lo and hi are exact in float for every caller: 0, 1, infinity */
LGC_VECTOR_CLONES static int any_bad_float(const float *v, int64_t n, double lo, double hi,
                                           bool pm1)
{
    int bad = 0;
    float l = (float)lo, h = (float)hi;
    if (pm1)
        for (int64_t i = 0; i < n; i++)
            bad |= (v[i] != 1) & (v[i] != -1);
    else
        for (int64_t i = 0; i < n; i++)
            bad |= !(v[i] >= l && v[i] <= h);
    return bad;
}

LGC_VECTOR_CLONES static int any_bad_double(const double *v, int64_t n, double lo, double hi,
                                            bool pm1)
{
    int bad = 0;
    if (pm1)
        for (int64_t i = 0; i < n; i++)
            bad |= (v[i] != 1) & (v[i] != -1);
    else
        for (int64_t i = 0; i < n; i++)
            bad |= !(v[i] >= lo && v[i] <= hi);
    return bad;
}

LGC_VECTOR_CLONES static int any_bad_int64(const int64_t *v, int64_t n, double lo, double hi,
                                           bool pm1)
{
    int bad = 0;
    if (pm1)
        for (int64_t i = 0; i < n; i++)
            bad |= (v[i] != 1) & (v[i] != -1);
    else
        for (int64_t i = 0; i < n; i++)
            bad |= !((double)v[i] >= lo && (double)v[i] <= hi);
    return bad;
}

static int any_bad_piece(lg_dtype dt, const char *d, int64_t n, double lo, double hi, bool pm1)
{
    switch (dt) {
    case LG_F32: return any_bad_float((const float *)d, n, lo, hi, pm1);
    case LG_F64: return any_bad_double((const double *)d, n, lo, hi, pm1);
    default: return any_bad_int64((const int64_t *)d, n, lo, hi, pm1);
    }
}

typedef struct scan_job {
    lg_dtype dt;
    const char *d;
    size_t es;
    int64_t n, first, piece; /* pieces first + [lo, hi) */
    double lo, hi;
    bool pm1;
    int *bad;
} scan_job;

static void scan_pieces(void *arg, int64_t lo, int64_t hi)
{
    const scan_job *j = arg;
    for (int64_t b = lo; b < hi; b++) {
        int64_t at = (j->first + b) * j->piece, m = j->n - at < j->piece ? j->n - at : j->piece;
        j->bad[b] = any_bad_piece(j->dt, j->d + (size_t)at * j->es, m, j->lo, j->hi, j->pm1);
    }
}

bool lgL_any_bad(lg_ctx *ctx, lg_tensor *t, double lo, double hi, bool pm1)
{
    enum { PIECE = 1 << 16, GROUP = 256 }; /* groups of pieces: the flags stay on the stack */
    int64_t n = t->numel, pieces = (n + PIECE - 1) / PIECE;
    int bad[GROUP];
    scan_job j = { (lg_dtype)t->dtype,
                   t->data,
                   lgT_dtype_size((lg_dtype)t->dtype),
                   n,
                   0,
                   PIECE,
                   lo,
                   hi,
                   pm1,
                   bad };
    for (int64_t g = 0; g < pieces; g += GROUP) {
        int64_t k = pieces - g < GROUP ? pieces - g : GROUP;
        j.first = g;
        lgC_parallel(ctx, k > 1 ? n : 0, k, scan_pieces, &j);
        for (int64_t b = 0; b < k; b++)
            if (bad[b])
                return true;
    }
    return false;
}

bool lgL_in_range(lg_ctx *ctx, lg_tensor *t, double lo, double hi, const char *who, const char *arg)
{
    if (!lgL_any_bad(ctx, t, lo, hi, false))
        return true;
    int64_t n = lg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) { /* the first offender, for the message */
        double v = lgT_get(t, i);
        if (!(v >= lo && v <= hi)) {
            lgC_error(ctx, LG_ERR_VALUE, "%s: %s[%lld] = %g, expected every element in [%g, %g]",
                      who, arg, (long long)i, v, lo, hi);
            return false;
        }
    }
    return true;
}

bool lgL_pair(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const char *who)
{
    if (!lgT_ok_float(ctx, input, who, "input") || !lgT_ok_float(ctx, target, who, "target"))
        return false;
    if (lg_tensor_dtype(input) != lg_tensor_dtype(target)) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: input is %s but target is %s, expected the same dtype",
                  who, lgT_dtype_name(lg_tensor_dtype(input)),
                  lgT_dtype_name(lg_tensor_dtype(target)));
        return false;
    }
    if (!lgT_same_shape(input, target)) {
        char a[160], b[160];
        lgT_shape_str(input, a, sizeof a);
        lgT_shape_str(target, b, sizeof b);
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: input has shape %s but target has shape %s, expected the same shape "
                  "(losses do not broadcast input against target)",
                  who, a, b);
        return false;
    }
    return true;
}

bool lgL_reduction(lg_ctx *ctx, lg_reduction r, bool batchmean_ok, const char *who)
{
    if (r == LG_REDUCTION_MEAN || r == LG_REDUCTION_SUM || r == LG_REDUCTION_NONE ||
        (r == LG_REDUCTION_BATCHMEAN && batchmean_ok))
        return true;
    lgC_error(ctx, LG_ERR_VALUE,
              "%s: reduction %d is not valid here (expected MEAN, SUM or NONE%s)", who, (int)r,
              batchmean_ok ? " or BATCHMEAN" : "");
    return false;
}

bool lgL_broadcasts_into(lg_ctx *ctx, lg_tensor *w, lg_tensor *input, const char *who,
                         const char *arg)
{
    if (!w)
        return true;
    if (!lgT_ok_float(ctx, w, who, arg))
        return false;
    if (lg_tensor_dtype(w) != lg_tensor_dtype(input)) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: %s is %s but input is %s, expected the same dtype", who,
                  arg, lgT_dtype_name(lg_tensor_dtype(w)), lgT_dtype_name(lg_tensor_dtype(input)));
        return false;
    }
    int wn = lg_tensor_ndim(w), xn = lg_tensor_ndim(input);
    bool ok = wn <= xn;
    for (int d = 0; ok && d < wn; d++) {
        int64_t ws = lg_tensor_shape(w)[wn - 1 - d], xs = lg_tensor_shape(input)[xn - 1 - d];
        ok = ws == 1 || ws == xs;
    }
    if (!ok) {
        char a[160], b[160];
        lgT_shape_str(w, a, sizeof a);
        lgT_shape_str(input, b, sizeof b);
        lgC_error(ctx, LG_ERR_SHAPE, "%s: %s of shape %s does not broadcast to input's shape %s",
                  who, arg, a, b);
    }
    return ok;
}

lg_tensor *lgL_reduce(lg_ctx *ctx, lg_tensor *l, lg_reduction r)
{
    switch (r) {
    case LG_REDUCTION_NONE: return l;
    case LG_REDUCTION_SUM: return lg_sum(ctx, l, 0, NULL, false);
    default: return lg_mean(ctx, l, 0, NULL, false);
    }
}

lg_tensor *lgL_composite_reduce(lg_ctx *ctx, const lgL_fused *f, lg_tensor *l)
{
    if (f->r == LG_REDUCTION_MEAN && f->denom_set)
        return lg_div(ctx, lg_sum(ctx, l, 0, NULL, false),
                      lg_scalar(ctx, lg_tensor_dtype(l), f->denom));
    return lgL_reduce(ctx, l, f->r);
}

typedef struct scale_job {
    void *v;
    double g;
} scale_job;

static void scale_f(void *arg, int64_t lo, int64_t hi)
{
    const scale_job *j = arg;
    float *v = j->v, gf = (float)j->g;
    for (int64_t i = lo; i < hi; i++)
        v[i] = v[i] * gf;
}

static void scale_d(void *arg, int64_t lo, int64_t hi)
{
    const scale_job *j = arg;
    double *v = j->v;
    for (int64_t i = lo; i < hi; i++)
        v[i] = v[i] * j->g;
}

lg_status lgL_adopt_scaled(lg_ctx *ctx, lg_tensor *x, lg_tensor *gx, double g)
{
    if (g != 1) { /* in place: the forward's tensor is used once */
        scale_job j = { gx->data, g };
        lgC_parallel(ctx, gx->numel, gx->numel, gx->dtype == LG_F32 ? scale_f : scale_d, &j);
    }
    return lgA_accum(ctx, x, gx);
}

bool lgL_opts_loss(lg_ctx *ctx, const char *who, const lg_loss_opts *user, lg_loss_opts *out)
{
    return lgC_opts(ctx, who, &lgL_desc_lg_loss_opts, user, out);
}

bool lgL_opts_margin(lg_ctx *ctx, const char *who, const lg_margin_opts *user, lg_margin_opts *out)
{
    return lgC_opts(ctx, who, &lgL_desc_lg_margin_opts, user, out);
}
