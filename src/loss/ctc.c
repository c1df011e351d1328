/* ctc.c: connectionist temporal classification, a fused primitive.
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
 * departure). A primitive because the recursion as a composite records
 * O(T S') small ops per sample; its composite oracle lives in tests/.
 * Arithmetic is in the input's dtype (ctc_kernel.h), as PyTorch's kernel.
 */
#include "../autograd/autograd.h"
#include "../tensor/vmath.h"
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
    void *alpha; /* [N][T][width] in log_probs' dtype */
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

/* Sample b's nll from its alpha (before zero_infinity); em: W values. */
static double ctc_sample(const lg_tensor *lp, const ctc_data *d, int64_t b, void *em)
{
    size_t at = (size_t)(b * d->T * d->width);
    if (lp->dtype == LG_F32)
        return ctc_forward_f(LGT_F(lp), d, b, (float *)d->alpha + at, em);
    return ctc_forward_d(LGT_D(lp), d, b, (double *)d->alpha + at, em);
}

static lg_tensor *ctc_primitive(lg_ctx *ctx, lg_tensor *lp, ctc_data *d)
{
    static const char who[] = "lg_ctc_loss";
    size_t esize = lp->dtype == LG_F32 ? sizeof(float) : sizeof(double);
    lg_tensor *nll = lgT_new(ctx, (lg_dtype)lp->dtype, 1, &d->N, who);
    ctc_data *saved = nll ? lgC_salloc(ctx, sizeof *saved, who) : NULL;
    int64_t W = d->width;
    void *alpha = saved ? lgC_salloc(ctx, (size_t)(d->N * d->T * W) * esize, who) : NULL;
    char *em = alpha ? lgC_salloc(ctx, (size_t)(d->N * W) * esize, who) : NULL;
    if (!em)
        return NULL;
    *saved = *d;
    saved->alpha = alpha;
    /* samples are independent: in parallel when the batch's work is large */
    LGT_FOR(
        ctx, d->N * d->T * d->smax, for (int64_t b = 0; b < d->N; b++) {
            double v = ctc_sample(lp, saved, b, em + (size_t)(b * W) * esize);
            if (d->zero_infinity && isinf(v))
                v = 0;
            lgT_set(nll, b, v);
        });
    nll->aux = saved;
    return lgA_record(ctx, LGA_OP_ctc_loss, nll, 1, &lp);
}

lg_status lgA_bw_ctc_loss(lg_ctx *ctx, lg_tensor *nll)
{
    lg_tensor *lp = nll->in[0];
    const ctc_data *d = nll->aux;
    lg_tensor *dlp = lgT_zeros_like(ctx, lp, "lg_backward");
    if (!dlp)
        return ctx->status;
    bool f32 = lp->dtype == LG_F32;
    int64_t W = d->width, per = 4 * W; /* beta, next, occupancies and emissions of one sample */
    void *scratch =
        lgC_salloc(ctx, (size_t)((d->N ? d->N : 1) * per) * (f32 ? sizeof(float) : sizeof(double)),
                   "lg_backward");
    if (!scratch)
        return ctx->status;
    LGT_FOR(
        ctx, d->N * d->T * d->smax, for (int64_t b = 0; b < d->N; b++) {
            const size_t at = (size_t)(b * d->T * W);
            double g = lgT_get(nll->grad, b);
            if (f32)
                ctc_backward_f(LGT_F(lp), d, b, (const float *)d->alpha + at, (float)g,
                               (float *)scratch + b * per, LGT_F(dlp));
            else
                ctc_backward_d(LGT_D(lp), d, b, (const double *)d->alpha + at, g,
                               (double *)scratch + b * per, LGT_D(dlp));
        });
    return lgA_accum(ctx, lp, dlp);
}

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

static const lg_ctc_opts ctc_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc ctc_desc = LGC_DESC0(lg_ctc_opts, ctc_defaults);

lg_ctc_opts lg_ctc_opts_default(void)
{
    return ctc_defaults;
}

static lg_tensor *ctc_loss_body(lg_ctx *ctx, lg_tensor *log_probs, lg_tensor *targets,
                                lg_tensor *input_lengths, lg_tensor *target_lengths,
                                const lg_ctc_opts *opts)
{
    ctc_data d;
    bool unbatched;
    lg_ctc_opts o;
    if (!ctx || !lgC_opts(ctx, "lg_ctc_loss", &ctc_desc, opts, &o) ||
        !ctc_setup(ctx, log_probs, targets, input_lengths, target_lengths, &o, &d, &unbatched))
        return NULL;
    lg_tensor *nll = ctc_primitive(ctx, log_probs, &d);
    lg_reduction r = o.reduction;
    if (r == LG_REDUCTION_MEAN) {
        lg_tensor *inv = lgT_new(ctx, (lg_dtype)log_probs->dtype, 1, &d.N, "lg_ctc_loss");
        if (!inv)
            return NULL;
        for (int64_t b = 0; b < d.N; b++)
            lgT_set(inv, b, 1.0 / (double)(d.tgt_len[b] > 1 ? d.tgt_len[b] : 1));
        nll = lg_mul(ctx, nll, inv);
    }
    if (unbatched)
        nll = lg_reshape(ctx, nll, 0, NULL);
    return lgL_reduce(ctx, nll, r);
}

lg_tensor *lg_ctc_loss(lg_ctx *ctx, lg_tensor *log_probs, lg_tensor *targets,
                       lg_tensor *input_lengths, lg_tensor *target_lengths, const lg_ctc_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_ctc_loss");
    lg_tensor *res = ctc_loss_body(ctx, log_probs, targets, input_lengths, target_lengths, opts);
    lgC_api_leave(ctx, outer);
    return res;
}
