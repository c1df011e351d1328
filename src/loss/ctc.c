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
 * Arithmetic is in double for both dtypes.
 */
#include "../autograd/autograd.h"
#include "loss.h"

#include <math.h>
#include <string.h>

typedef struct ctc_data {
    int64_t T, N, C, blank, smax; /* smax: the largest S' */
    const int64_t *in_len, *tgt_len, *tgt_off, *labels;
    bool zero_infinity;
    double *alpha; /* [N][T][smax] */
} ctc_data;

static double lse(double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    if (a < b) {
        double t = a;
        a = b, b = t;
    }
    return a == -INFINITY ? -INFINITY : a + log1p(exp(b - a));
}

static double lp_at(const lg_tensor *lp, const ctc_data *d, int64_t t, int64_t b, int64_t c)
{
    int64_t i = (t * d->N + b) * d->C + c;
    return lp->dtype == LG_F32 ? (double)LGT_F(lp)[i] : LGT_D(lp)[i];
}

static int64_t ext(const ctc_data *d, int64_t b, int64_t s)
{
    return (s & 1) ? d->labels[d->tgt_off[b] + (s - 1) / 2] : d->blank;
}

static double forward_sample(const lg_tensor *lp, const ctc_data *d, int64_t b)
{
    int64_t Tb = d->in_len[b], L = d->tgt_len[b], S = 2 * L + 1;
    double *a = d->alpha + b * d->T * d->smax;
    for (int64_t s = 0; s < S; s++)
        a[s] = -INFINITY;
    a[0] = lp_at(lp, d, 0, b, d->blank);
    if (L > 0)
        a[1] = lp_at(lp, d, 0, b, ext(d, b, 1));
    for (int64_t t = 1; t < Tb; t++) {
        const double *prev = a + (t - 1) * d->smax;
        double *cur = a + t * d->smax;
        for (int64_t s = 0; s < S; s++) {
            int64_t c = ext(d, b, s);
            double v = prev[s];
            if (s >= 1)
                v = lse(v, prev[s - 1]);
            if (s >= 2 && c != d->blank && c != ext(d, b, s - 2))
                v = lse(v, prev[s - 2]);
            cur[s] = v + lp_at(lp, d, t, b, c);
        }
    }
    const double *last = a + (Tb - 1) * d->smax;
    double ll = S >= 2 ? lse(last[S - 1], last[S - 2]) : last[S - 1];
    return -ll;
}

/* Writes d nll_b / d lp[t, b, :] * g into dlp for every t < T_b. */
static void backward_sample(const lg_tensor *lp, const ctc_data *d, int64_t b, double nll, double g,
                            double *beta, lg_tensor *dlp)
{
    int64_t Tb = d->in_len[b], L = d->tgt_len[b], S = 2 * L + 1, C = d->C;
    const double *a = d->alpha + b * d->T * d->smax;
    double *next = beta + d->smax, *A = next + d->smax;
    for (int64_t t = Tb - 1; t >= 0; t--) {
        for (int64_t s = 0; s < S; s++) {
            int64_t c = ext(d, b, s);
            double v;
            if (t == Tb - 1) {
                v = (s == S - 1 || s == S - 2) ? 0.0 : -INFINITY;
            } else {
                v = next[s];
                if (s + 1 < S)
                    v = lse(v, next[s + 1]);
                if (s + 2 < S && c != d->blank && c != ext(d, b, s + 2))
                    v = lse(v, next[s + 2]);
            }
            beta[s] = v + lp_at(lp, d, t, b, c);
        }
        for (int64_t c = 0; c < C; c++)
            A[c] = -INFINITY;
        for (int64_t s = 0; s < S; s++) {
            int64_t c = ext(d, b, s);
            A[c] = lse(A[c], a[t * d->smax + s] + beta[s]);
        }
        int64_t row = (t * d->N + b) * C;
        for (int64_t c = 0; c < C; c++) {
            double v = -g * exp(A[c] + nll - lp_at(lp, d, t, b, c));
            if (dlp->dtype == LG_F32)
                LGT_F(dlp)[row + c] = (float)v;
            else
                LGT_D(dlp)[row + c] = v;
        }
        memcpy(next, beta, (size_t)S * sizeof(double));
    }
}

static lg_tensor *ctc_primitive(lg_ctx *ctx, lg_tensor *lp, ctc_data *d)
{
    static const char who[] = "lg_ctc_loss";
    lg_tensor *nll = lgT_new(ctx, (lg_dtype)lp->dtype, 1, &d->N, who);
    ctc_data *saved = nll ? lgC_salloc(ctx, sizeof *saved, who) : NULL;
    double *alpha =
        saved ? lgC_salloc(ctx, (size_t)(d->N * d->T * d->smax) * sizeof(double), who) : NULL;
    if (!alpha)
        return NULL;
    *saved = *d;
    saved->alpha = alpha;
    /* samples are independent: in parallel when the batch's work is large */
    LGT_FOR(
        ctx, d->N * d->T * d->smax, for (int64_t b = 0; b < d->N; b++) {
            double v = forward_sample(lp, saved, b);
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
    size_t per = (size_t)(2 * d->smax + d->C); /* beta, next and A of one sample */
    double *scratch =
        lgC_salloc(ctx, (size_t)(d->N ? d->N : 1) * per * sizeof(double), "lg_backward");
    if (!scratch)
        return ctx->status;
    LGT_FOR(
        ctx, d->N * d->T * d->smax, for (int64_t b = 0; b < d->N; b++) {
            /* recompute the unzeroed nll from alpha (cheap) */
            int64_t Tb = d->in_len[b], S = 2 * d->tgt_len[b] + 1;
            const double *last = d->alpha + (b * d->T + Tb - 1) * d->smax;
            double v = -(S >= 2 ? lse(last[S - 1], last[S - 2]) : last[S - 1]);
            if (!(d->zero_infinity && isinf(v))) /* a zeroed sample keeps a zero gradient */
                backward_sample(lp, d, b, v, lgT_get(nll->grad, b), scratch + (size_t)b * per, dlp);
        });
    return lgA_accum(ctx, lp, dlp);
}

/* Argument checks; fills d (its arrays in the step arena). */
static bool ctc_setup(lg_ctx *ctx, lg_tensor *lp, lg_tensor *targets, lg_tensor *il, lg_tensor *tl,
                      const lg_ctc_opts *o, ctc_data *d, bool *unbatched)
{
    static const char who[] = "lg_ctc_loss";
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    if (!lgL_float(ctx, lp, who, "log_probs") || !lgL_int(ctx, targets, who, "targets") ||
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
    d->blank = o ? o->blank : 0;
    d->zero_infinity = o && o->zero_infinity;
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
        total += d->tgt_len[b];
        maxl = d->tgt_len[b] > maxl ? d->tgt_len[b] : maxl;
    }
    int64_t *off = lgC_salloc(ctx, (size_t)d->N * sizeof *off, who);
    if (!off)
        return false;
    bool padded = targets->ndim == 2; /* 1-D: concatenated (unbatched too) */
    int64_t width = targets->ndim == 2 ? targets->shape[1] : targets->numel;
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
    return true;
}

lg_tensor *lg_ctc_loss(lg_ctx *ctx, lg_tensor *log_probs, lg_tensor *targets,
                       lg_tensor *input_lengths, lg_tensor *target_lengths, const lg_ctc_opts *o)
{
    ctc_data d;
    bool unbatched;
    if (!ctx ||
        !ctc_setup(ctx, log_probs, targets, input_lengths, target_lengths, o, &d, &unbatched))
        return NULL;
    lg_tensor *nll = ctc_primitive(ctx, log_probs, &d);
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
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
