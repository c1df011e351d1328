/* ctc.c: connectionist temporal classification, a fused primitive on the
 * fused-loss driver (fused.h), with its composite oracle.
 *
 * Per sample b (T_b = input_lengths[b], labels l_1..l_L), the extended
 * label l' = blank, l_1, blank, ..., l_L, blank (S' = 2L + 1 states) and,
 * in log space with (+) = logsumexp and lp = log_probs[:, b, :]:
 *   alpha_0(0) = lp[0, blank], alpha_0(1) = lp[0, l_1], others -inf
 *   alpha_t(s) = lp[t, l'_s] + (alpha_{t-1}(s) (+) alpha_{t-1}(s-1)
 *                (+) alpha_{t-1}(s-2) if l'_s != blank and l'_s != l'_{s-2})
 *   nll_b = -(alpha_{T_b-1}(S'-1) (+) alpha_{T_b-1}(S'-2))
 * beta is the mirror recursion (it also includes the emission at t), and
 * the occupancy of class c at t is gamma_t(c) = exp(A_t(c) + nll_b - lp[t, c])
 * with A_t(c) = (+) over s with l'_s = c of alpha_t(s) + beta_t(s).
 * The gradient is the true derivative d nll_b / d lp[t, b, c] = -gamma_t(c)
 * for t < T_b and 0 after (PyTorch returns exp(lp) - gamma, the gradient
 * with respect to logits under a log_softmax; FIXTURES.md records the
 * departure), NaN (PyTorch's rule) at every t < T_b where lp is -inf or
 * NaN, and everywhere before T_b for a sample whose nll is not finite
 * (unless zero_infinity zeroed it: then 0).
 *
 * On the driver, rows are samples: NONE gives each nll (after
 * zero_infinity), SUM their sum, MEAN each over its target length (at
 * least 1) and the sum over N. The forward keeps each sample's alpha for
 * the backward, which runs the beta recursion. A primitive because the
 * recursion as a composite records O(T) ops of O(N S') elements and walks
 * them all again backward. Arithmetic is in the input's dtype
 * (ctc_kernel.h), as PyTorch's kernel.
 *
 * The composite (ctc_composite, lg_ctx_set_fused(ctx, false)) runs the
 * alpha recursion over the batch with lg_logsumexp, lg_slice, lg_concat
 * and lg_where, one step per time step. One departure: a NaN in lp on a
 * class the target does not use gives the kernel a NaN gradient there and
 * the composite 0 (no primitive passes a gradient to a NaN input that does
 * not reach its value).
 */
#include "../tensor/vmath.h"
#include "fused.h"
#include "loss.h"

#include <math.h>
#include <string.h>

typedef struct ctc_data {
    int64_t T, N, C, blank, smax; /* smax: the largest S' */
    int64_t width;                /* of a row of states: smax rounded up to 8, and 2 pads */
    const int64_t *in_len, *tgt_len, *tgt_off, *labels;
    int64_t *ext; /* [N][width]: l'_s of each sample (0 after S') */
    float *pen;   /* [N][width]: 0 where s - 2 -> s is allowed (l'_s != blank, != l'_{s-2}),
                   * -inf elsewhere and after S' */
    bool zero_infinity;
    void *alpha;   /* [N][T][width] in log_probs' dtype (prepare) */
    void *scratch; /* [N][4 width] in log_probs' dtype (prepare) */
} ctc_data;

#define R float
#define EXP lgV_expf
#define LOG lgV_logf
#define FN(name) name##_f
#include "ctc_kernel.h"
#undef R
#undef EXP
#undef LOG
#undef FN

#define R double
#define EXP exp
#define LOG log
#define FN(name) name##_d
#include "ctc_kernel.h"
#undef R
#undef EXP
#undef LOG
#undef FN

/* The saved state's arrays, once the driver runs the kernels. */
static bool ctc_prepare(lg_ctx *ctx, lgL_fused *f)
{
    ctc_data *d = f->saved;
    size_t esize = f->in[0]->dtype == LG_F32 ? sizeof(float) : sizeof(double);
    size_t n = (size_t)(d->N ? d->N : 1) * (size_t)d->width;
    d->alpha = lgC_salloc(ctx, n * (size_t)d->T * esize, "lg_ctc_loss");
    d->scratch = d->alpha ? lgC_salloc(ctx, 4 * n * esize, "lg_ctc_loss") : NULL;
    return d->scratch != NULL;
}

/* A constant of dtype dt and the given shape, its values from v. */
static lg_tensor *constant(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape,
                           const double *v)
{
    lg_tensor *t = lgT_new(ctx, dt, ndim, shape, "lg_ctc_loss");
    for (int64_t i = 0; t && i < t->numel; i++)
        lgT_set(t, i, v[i]);
    return t;
}

/* logsumexp over axis 0, with a zero gradient (not lg_logsumexp's NaN,
 * exp(-inf - -inf)) where every term is -inf: those columns are summed
 * from zeros and replaced by -inf, so no NaN reaches the gradient. */
static lg_tensor *lse_live(lg_ctx *ctx, lg_tensor *x, lg_tensor *ninf, lg_tensor *zero)
{
    lg_tensor *m = lg_max(ctx, lg_detach(ctx, x), 1, (int[]){ 0 }, false, NULL);
    lg_tensor *live = lg_gt(ctx, m, ninf);
    lg_tensor *l = lg_logsumexp(ctx, lg_where(ctx, live, x, zero), 1, (int[]){ 0 }, false);
    return lg_where(ctx, live, l, ninf);
}

/* A zero-valued [N] whose gradient with respect to x [T, N, C] is NaN
 * where mask is 1 and 0 elsewhere, for PyTorch's NaN rules (above), which
 * are not derivatives: sqrt(0 sigmoid(x)) is 0 for every x but NaN, and
 * its backward is 0 / 0. */
static lg_tensor *nan_gradient(lg_ctx *ctx, lg_tensor *x, lg_tensor *mask, lg_tensor *zero)
{
    lg_tensor *z = lg_mul_scalar(ctx, lg_sigmoid(ctx, lg_where(ctx, mask, x, zero)), 0);
    return lg_sum(ctx, lg_sqrt(ctx, z), 2, (int[]){ 0, 2 }, false);
}

/* The emissions lp[t, b, l'_s] for every state: [T, N, S'max], -inf past
 * each sample's S'. */
static lg_tensor *emissions(lg_ctx *ctx, lg_tensor *x, const ctc_data *d, lg_tensor *spen)
{
    int64_t T = d->T, N = d->N, C = d->C, S = d->smax, NS = N * S;
    int64_t *sel = lgC_salloc(ctx, (size_t)NS * sizeof *sel, "lg_ctc_loss");
    if (!sel)
        return NULL;
    for (int64_t b = 0; b < N; b++)
        for (int64_t s = 0; s < S; s++)
            sel[b * S + s] = b * C + d->ext[b * d->width + s];
    lg_tensor *E = lg_index_select(ctx, lg_reshape(ctx, x, 2, (int64_t[]){ T, N * C }), 1,
                                   lg_tensor_from(ctx, LG_I64, sel, 1, &NS));
    return lg_add(ctx, lg_reshape(ctx, E, 3, (int64_t[]){ T, N, S }), spen);
}

/* nll [N] by the alpha recursion over the batch, as the header. */
static lg_tensor *ctc_alpha_nll(lg_ctx *ctx, lg_tensor *x, const ctc_data *d)
{
    lg_dtype dt = (lg_dtype)x->dtype;
    int64_t N = d->N, S = d->smax, W = d->width, NS = N * S, tmax = 0;
    double *v = lgC_salloc(ctx, (size_t)(3 * NS + 2 * N) * sizeof *v, "lg_ctc_loss");
    int64_t *last = lgC_salloc(ctx, (size_t)(2 * N) * sizeof *last, "lg_ctc_loss");
    if (!v || !last)
        return NULL;
    double *spen = v, *init = v + NS, *skip = v + 2 * NS, *fpen = v + 3 * NS;
    for (int64_t b = 0; b < N; b++) {
        int64_t Sb = 2 * d->tgt_len[b] + 1;
        for (int64_t s = 0; s < S; s++) {
            spen[b * S + s] = s < Sb ? 0 : -INFINITY;
            init[b * S + s] = s < 2 ? 0 : -INFINITY;
            skip[b * S + s] = d->pen[b * W + s];
        }
        last[b] = Sb - 1, last[N + b] = Sb > 1 ? Sb - 2 : 0;
        fpen[b] = 0, fpen[N + b] = Sb > 1 ? 0 : -INFINITY;
        tmax = d->in_len[b] > tmax ? d->in_len[b] : tmax;
    }
    int64_t nsd[2] = { N, S }, n1[2] = { N, 1 };
    lg_tensor *ninf = lg_scalar(ctx, dt, -INFINITY), *zero = lg_scalar(ctx, dt, 0);
    lg_tensor *ninf2 = lg_full(ctx, dt, 2, (int64_t[]){ N, 2 }, -INFINITY);
    lg_tensor *E = emissions(ctx, x, d, constant(ctx, dt, 2, nsd, spen));
    lg_tensor *skipm = constant(ctx, dt, 2, nsd, skip);
    lg_tensor *alpha = lg_add(ctx, lg_reshape(ctx, lg_narrow(ctx, E, 0, 0, 1), 2, nsd),
                              constant(ctx, dt, 2, nsd, init));
    double *live = lgC_salloc(ctx, (size_t)(N ? N : 1) * sizeof *live, "lg_ctc_loss");
    if (!live)
        return NULL;
    for (int64_t t = 1; t < tmax; t++) {
        /* alpha_{t-1} at s - 1 and s - 2 (the skip's penalty added), -inf before 0 */
        lg_tensor *s1 = S > 1 ? lg_concat(ctx, 2,
                                          (lg_tensor *[]){ lg_narrow(ctx, ninf2, 1, 0, 1),
                                                           lg_slice(ctx, alpha, 1, 0, S - 1, 1) },
                                          1)
                              : lg_narrow(ctx, ninf2, 1, 0, 1);
        lg_tensor *s2 =
            S > 2 ? lg_concat(ctx, 2,
                              (lg_tensor *[]){ ninf2, lg_slice(ctx, alpha, 1, 0, S - 2, 1) }, 1)
                  : lg_narrow(ctx, ninf2, 1, 0, S);
        lg_tensor *terms =
            lg_stack(ctx, 3, (lg_tensor *[]){ alpha, s1, lg_add(ctx, s2, skipm) }, 0);
        lg_tensor *next = lg_add(ctx, lse_live(ctx, terms, ninf, zero),
                                 lg_reshape(ctx, lg_narrow(ctx, E, 0, t, 1), 2, nsd));
        for (int64_t b = 0; b < N; b++) /* samples past their T_b keep their last alpha */
            live[b] = t < d->in_len[b];
        alpha = lg_where(ctx, constant(ctx, dt, 2, n1, live), next, alpha);
    }
    /* -(alpha(S'-1) (+) alpha(S'-2)), the second -inf when S' = 1 */
    lg_tensor *ends[2];
    for (int k = 0; k < 2; k++)
        ends[k] = lg_add(
            ctx,
            lg_reshape(ctx,
                       lg_gather(ctx, alpha, 1, lg_tensor_from(ctx, LG_I64, last + k * N, 2, n1)),
                       1, &N),
            constant(ctx, dt, 1, &N, fpen + k * N));
    return lg_neg(ctx, lse_live(ctx, lg_stack(ctx, 2, ends, 0), ninf, zero));
}

/* The composite oracle: the recursion, PyTorch's NaN rules, zero_infinity
 * and the reduction, from public primitives (values read only to build
 * masks). */
static lg_tensor *ctc_composite(lg_ctx *ctx, const lgL_fused *f)
{
    const ctc_data *d = f->saved;
    lg_tensor *lp = f->in[0];
    lg_dtype dt = (lg_dtype)lp->dtype;
    int64_t T = d->T, N = d->N, C = d->C;
    lg_tensor *x = lg_reshape(ctx, lp, 3, (int64_t[]){ T, N, C });
    lg_tensor *nll = N ? ctc_alpha_nll(ctx, x, d)
                       : lg_mul_scalar(ctx, lg_sum(ctx, x, 2, (int[]){ 0, 2 }, false), 0);
    if (!nll)
        return NULL;
    double *m = lgC_salloc(ctx, (size_t)(T * N * C + 2 * N + 1) * sizeof *m, "lg_ctc_loss");
    if (!m)
        return NULL;
    double *keep = m + T * N * C, *inv = keep + N;
    for (int64_t b = 0; b < N; b++) {
        double v = lgT_get(nll, b);
        bool zeroed = d->zero_infinity && isinf(v), bad = !isfinite(v) && !zeroed;
        keep[b] = !zeroed;
        inv[b] = 1.0 / (double)(d->tgt_len[b] > 1 ? d->tgt_len[b] : 1);
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) {
                double e = lgT_get(x, (t * N + b) * C + c);
                m[(t * N + b) * C + c] =
                    t < d->in_len[b] && !zeroed && ((bad && e == e) || e == -INFINITY);
            }
    }
    lg_tensor *zero = lg_scalar(ctx, dt, 0);
    lg_tensor *l = lg_add(ctx, nll, nan_gradient(ctx, x, constant(ctx, dt, 3, x->shape, m), zero));
    l = lg_where(ctx, constant(ctx, dt, 1, &N, keep), l, zero);
    if (f->r == LG_REDUCTION_MEAN)
        l = lg_mul(ctx, l, constant(ctx, dt, 1, &N, inv));
    if (f->none_ndim == 0)
        l = lg_reshape(ctx, l, 0, NULL);
    return lgL_composite_reduce(ctx, f, l);
}

static const lgL_fused_desc ctc_fused = {
    .op = LGA_OP_ctc_loss,
    .k = { { ctc_fw_f, ctc_bw_f }, { ctc_fw_d, ctc_bw_d } },
    .sparse_grads = true, /* nothing after T_b; occupancies are added per class */
    .composite = ctc_composite,
    .prepare = ctc_prepare,
};

/* Argument checks; fills d (its arrays in the step arena). */
static bool ctc_setup(lg_ctx *ctx, lg_tensor *lp, lg_tensor *targets, lg_tensor *il, lg_tensor *tl,
                      const lg_ctc_opts *o, ctc_data *d, bool *unbatched)
{
    static const char who[] = "lg_ctc_loss";
    lg_reduction r = o->reduction;
    if (!lgT_ok_float(ctx, lp, who, "log_probs") || !lgL_int(ctx, targets, who, "targets") ||
        !lgL_int(ctx, il, who, "input_lengths") || !lgL_int(ctx, tl, who, "target_lengths") ||
        !lgL_reduction(ctx, r, false, who))
        return false;
    int nd = lp->ndim;
    if (nd != 2 && nd != 3) {
        lgC_error(ctx, LG_ERR_SHAPE, "%s: log_probs has %d dims, expected [T, N, C] or [T, C]", who,
                  nd);
        return false;
    }
    *unbatched = nd == 2;
    d->T = lp->shape[0];
    d->N = *unbatched ? 1 : lp->shape[1];
    d->C = lp->shape[nd - 1];
    d->blank = o->blank;
    d->zero_infinity = o->zero_infinity;
    if (d->T < 1 || d->C < 1) {
        lgC_error(ctx, LG_ERR_SHAPE, "%s: log_probs needs T >= 1 and C >= 1", who);
        return false;
    }
    if (d->blank < 0 || d->blank >= d->C) {
        lgC_error(ctx, LG_ERR_VALUE, "%s: blank = %lld, expected in [0, %lld)", who,
                  (long long)d->blank, (long long)d->C);
        return false;
    }
    const lg_tensor *lens[2] = { il, tl };
    static const char *const names[2] = { "input_lengths", "target_lengths" };
    for (int k = 0; k < 2; k++)
        if (lens[k]->numel != d->N || lens[k]->ndim > 1) {
            lgC_error(ctx, LG_ERR_SHAPE,
                      "%s: %s has %lld elements in %d dims, expected %lld in 1 dim%s", who,
                      names[k], (long long)lens[k]->numel, lens[k]->ndim, (long long)d->N,
                      *unbatched ? " (or 0-d)" : "");
            return false;
        }
    d->in_len = LGT_I(il);
    d->tgt_len = LGT_I(tl);
    bool padded = targets->ndim == 2; /* 1-D: concatenated (unbatched too) */
    int64_t width = padded ? targets->shape[1] : targets->numel;
    int64_t total = 0, maxl = 0;
    for (int64_t b = 0; b < d->N; b++) {
        if (d->in_len[b] < 1 || d->in_len[b] > d->T) {
            lgC_error(ctx, LG_ERR_VALUE, "%s: input_lengths[%lld] = %lld, expected in [1, %lld]",
                      who, (long long)b, (long long)d->in_len[b], (long long)d->T);
            return false;
        }
        if (d->tgt_len[b] < 0) {
            lgC_error(ctx, LG_ERR_VALUE, "%s: target_lengths[%lld] = %lld, expected >= 0", who,
                      (long long)b, (long long)d->tgt_len[b]);
            return false;
        }
        /* each length within what targets holds (a row, or the labels the
         * samples before left): then the sum, 2 L + 1 and the offsets
         * below cannot overflow, and no label is read past the end */
        int64_t room = padded ? width : targets->numel - total;
        if (d->tgt_len[b] > room) {
            char s[160];
            lgT_shape_str(targets, s, sizeof s);
            lgC_error(ctx, LG_ERR_SHAPE,
                      "%s: target_lengths[%lld] = %lld, but targets %s has %s %lld labels %s", who,
                      (long long)b, (long long)d->tgt_len[b], s, padded ? "rows of" : "only",
                      (long long)room, padded ? "(padded)" : "left for it (concatenated)");
            return false;
        }
        total += d->tgt_len[b];
        maxl = d->tgt_len[b] > maxl ? d->tgt_len[b] : maxl;
    }
    int64_t *off = lgC_salloc(ctx, (size_t)d->N * sizeof *off, who);
    if (!off)
        return false;
    if (targets->ndim > 2 || (padded && targets->ndim == 2 && targets->shape[0] != d->N) ||
        (padded && width < maxl) || (!padded && targets->numel != total)) {
        char s[160];
        lgT_shape_str(targets, s, sizeof s);
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: targets has shape %s, expected padded [%lld, S >= %lld] or concatenated "
                  "[%lld]",
                  who, s, (long long)d->N, (long long)maxl, (long long)total);
        return false;
    }
    for (int64_t b = 0, acc = 0; b < d->N; b++) {
        off[b] = padded ? b * width : acc;
        acc += d->tgt_len[b];
    }
    d->tgt_off = off;
    d->labels = LGT_I(targets);
    d->smax = 2 * maxl + 1;
    d->width = ((d->smax + 7) & ~(int64_t)7) + 2;
    int64_t W = d->width, states, bytes; /* alpha: N T W values of up to 8 bytes */
    if (__builtin_mul_overflow(d->N, W, &states) || __builtin_mul_overflow(states, d->T, &states) ||
        __builtin_mul_overflow(states, (int64_t)sizeof(double), &bytes)) {
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: T = %lld steps of N = %lld samples with 2 * %lld + 1 states each are too "
                  "many to hold (overflow)",
                  who, (long long)d->T, (long long)d->N, (long long)maxl);
        return false;
    }
    d->ext = lgC_salloc(ctx, (size_t)(d->N * W) * sizeof *d->ext, who);
    d->pen = d->ext ? lgC_salloc(ctx, (size_t)(d->N * W) * sizeof *d->pen, who) : NULL;
    if (!d->pen)
        return false;
    memset(d->ext, 0, (size_t)(d->N * W) * sizeof *d->ext);
    for (int64_t i = 0; i < d->N * W; i++)
        d->pen[i] = -INFINITY;
    for (int64_t b = 0; b < d->N; b++)
        for (int64_t j = 0; j < d->tgt_len[b]; j++) {
            int64_t v = d->labels[off[b] + j];
            if (v < 0 || v >= d->C || v == d->blank) {
                lgC_error(ctx, LG_ERR_INDEX,
                          "%s: targets[%lld][%lld] = %lld, expected a class in [0, %lld) other "
                          "than blank %lld",
                          who, (long long)b, (long long)j, (long long)v, (long long)d->C,
                          (long long)d->blank);
                return false;
            }
        }
    for (int64_t b = 0; b < d->N; b++) { /* the extended labels */
        int64_t *e = d->ext + b * W, S = 2 * d->tgt_len[b] + 1;
        for (int64_t s = 0; s < S; s++) {
            e[s] = (s & 1) ? d->labels[off[b] + (s - 1) / 2] : d->blank;
            d->pen[b * W + s] = s >= 2 && e[s] != d->blank && e[s] != e[s - 2] ? 0 : -INFINITY;
        }
    }
    return true;
}

static lg_tensor *ctc_loss_body(lg_ctx *ctx, lg_tensor *log_probs, lg_tensor *targets,
                                lg_tensor *input_lengths, lg_tensor *target_lengths,
                                const lg_ctc_opts *opts)
{
    static const char who[] = "lg_ctc_loss";
    bool unbatched;
    lg_ctc_opts o;
    ctc_data *d = ctx ? lgC_salloc(ctx, sizeof *d, who) : NULL;
    if (d)
        *d = (ctc_data){ 0 };
    if (!d || !lgC_opts(ctx, who, &lgL_desc_lg_ctc_opts, opts, &o) ||
        !ctc_setup(ctx, log_probs, targets, input_lengths, target_lengths, &o, d, &unbatched))
        return NULL;
    lgL_fused f = lgL_fused_init(&ctc_fused, 1, &log_probs, o.reduction);
    f.rows = d->N;
    f.width = d->T * d->smax;
    f.block = 1; /* each sample's value a block: the sum's order is fixed */
    f.none_ndim = unbatched ? 0 : 1;
    f.none_shape[0] = d->N;
    f.saved = d;
    return lgL_fused_run(ctx, &f, who);
}

lg_tensor *lg_ctc_loss(lg_ctx *ctx, lg_tensor *log_probs, lg_tensor *targets,
                       lg_tensor *input_lengths, lg_tensor *target_lengths, const lg_ctc_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_ctc_loss");
    return lgL_leave(
        ctx, outer,
        ctx ? ctc_loss_body(ctx, log_probs, targets, input_lengths, target_lengths, opts) : NULL);
}
