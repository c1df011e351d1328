/* ctc_kernel.h: the CTC recursions for one floating type, included twice
 * by ctc.c: R = float with the branch-free exp and log of vmath.h (PyTorch's
 * CPU kernel also works in the input's float32), R = double with libm.
 * Expects R, EXP, LOG and FN(name) (a name with the type's suffix).
 *
 * A sample's rows hold its S' = 2L + 1 states after two -inf pads (alpha:
 * pads before, so s - 1 and s - 2 need no test; beta: pads after), and the
 * loops over states have no branches, so they vectorise. They run over
 * S' rounded up to 8 states (rows are W = width long): a scalar remainder
 * loop cost more than the vector part for short targets. The states past
 * S' hold values no real state reads (beta's two pads are reset to -inf).
 * exp's argument is clamped at -87 and its result flushed to 0 below:
 * a denormal result costs a microcode assist per lane, and next to the 1
 * of the sum it cannot count. */

/* exp(x), 0 below -87 (where float32 results turn denormal; in double too,
 * where such a term is below the sum's rounding); NaN stays. */
static inline R FN(exp_term)(R x)
{
    return x < -87 ? 0 : EXP(x < -87 ? -87 : x);
}

/* log(exp(x0) + exp(x1) + exp(x2)) = m + log(1 + exp(lo - m) + exp(mid - m))
 * with m the largest: two exps. -inf when all are -inf; NaN when one is
 * (the comparisons put a NaN in m or in a term). */
static inline R FN(lse3)(R x0, R x1, R x2)
{
    R hi = x0 > x1 ? x0 : x1, lo = x0 > x1 ? x1 : x0;
    R m = x2 > hi ? x2 : hi, mid = x2 > hi ? hi : x2;
    R r = LOG(1 + FN(exp_term)(lo - m) + FN(exp_term)(mid - m)) + m;
    return m == -INFINITY ? m + lo + mid : r;
}

/* One frame of the recursions, over states 0..S-1 (restrict, no gathers,
 * no branches: so that the loops vectorise); em holds the frame's
 * emissions lp[l'_s], pen[s] is 0 where s - 2 -> s is allowed, else -inf. */
static inline void FN(alpha_step)(R *restrict cur, const R *restrict prev, const float *pen,
                                  const R *em, int64_t S)
{
    LGC_SIMD
    for (int64_t s = 0; s < S; s++)
        cur[s] = FN(lse3)(prev[s], prev[s - 1], prev[s - 2] + (R)pen[s]) + em[s];
}

static inline void FN(beta_step)(R *restrict cur, const R *restrict next, const float *pen,
                                 const R *em, int64_t S)
{
    LGC_SIMD
    for (int64_t s = 0; s < S; s++)
        cur[s] = FN(lse3)(next[s], next[s + 1], next[s + 2] + (R)pen[s + 2]) + em[s];
}

static inline void FN(emissions)(R *em, const R *lpt, const int64_t *lab, int64_t S)
{
    for (int64_t s = 0; s < S; s++)
        em[s] = lpt[lab[s]];
}

/* S' rounded up to the vector loops' 8 states */
static inline int64_t FN(lanes)(int64_t S)
{
    return (S + 7) & ~(int64_t)7;
}

/* Sample b's nll from its alpha a: the last valid row's two final states. */
static inline R FN(ctc_nll)(const ctc_data *d, int64_t b, const R *a)
{
    int64_t S = 2 * d->tgt_len[b] + 1;
    const R *last = a + (d->in_len[b] - 1) * d->width + 2;
    return -FN(lse3)(last[S - 1], S > 1 ? last[S - 2] : -INFINITY, -INFINITY);
}

/* alpha of sample b into a ([T][W]); returns its nll. em: scratch of W values. */
LGC_VECTOR_CLONES
static R FN(ctc_forward)(const R *lp, const ctc_data *d, int64_t b, R *a, R *em)
{
    int64_t Tb = d->in_len[b], S = 2 * d->tgt_len[b] + 1, V = FN(lanes)(S), W = d->width, C = d->C,
            N = d->N;
    const int64_t *lab = d->ext + b * W;
    const float *pen = d->pen + b * W;
    for (int64_t s = 0; s < W; s++)
        a[s] = -INFINITY;
    a[2] = lp[b * C + d->blank];
    if (S > 1)
        a[3] = lp[b * C + lab[1]];
    for (int64_t t = 1; t < Tb; t++) {
        R *cur = a + t * W + 2;
        cur[-2] = cur[-1] = -INFINITY;
        FN(emissions)(em, lp + (t * N + b) * C, lab, V);
        FN(alpha_step)(cur, cur - W, pen, em, V);
    }
    return FN(ctc_nll)(d, b, a);
}

/* Writes g * d nll_b / d lp[t, b, :] into dlp (zeros) for every t < T_b.
 * scratch holds 4 W values. */
LGC_VECTOR_CLONES
static void FN(ctc_backward)(const R *lp, const ctc_data *d, int64_t b, const R *a, R g, R *scratch,
                             R *dlp)
{
    R nll = FN(ctc_nll)(d, b, a); /* before zero_infinity */
    if (d->zero_infinity && isinf(nll))
        return; /* a zeroed sample keeps a zero gradient */
    int64_t Tb = d->in_len[b], S = 2 * d->tgt_len[b] + 1, V = FN(lanes)(S), W = d->width, C = d->C,
            N = d->N;
    const int64_t *lab = d->ext + b * W;
    const float *pen = d->pen + b * W;
    R *beta = scratch, *next = scratch + W, *e = scratch + 2 * W, *em = scratch + 3 * W;
    for (int64_t s = 0; s < 2 * W; s++)
        scratch[s] = -INFINITY;
    for (int64_t t = Tb - 1; t >= 0; t--) {
        const R *lpt = lp + (t * N + b) * C, *at = a + t * W + 2;
        R *row = dlp + (t * N + b) * C;
        if (!isfinite(nll)) { /* infeasible (not zeroed) or NaN: NaN, as PyTorch */
            for (int64_t c = 0; c < C; c++)
                row[c] = NAN;
            continue;
        }
        FN(emissions)(em, lpt, lab, V);
        if (t == Tb - 1)
            for (int64_t s = 0; s < S; s++)
                beta[s] = (s >= S - 2 ? 0 : -INFINITY) + em[s];
        else
            FN(beta_step)(beta, next, pen, em, V);
        beta[S] = beta[S + 1] = -INFINITY;
        /* occupancy of state s: exp(alpha + beta - lp + nll), added per class */
        for (int64_t s = 0; s < V; s++)
            e[s] = FN(exp_term)(at[s] + beta[s] - em[s] + nll);
        R blank = 0; /* the even states are all blank: one sum, not a chain of stores */
        for (int64_t s = 0; s < S; s += 2)
            blank += e[s];
        row[d->blank] -= g * blank;
        for (int64_t s = 1; s < S; s += 2)
            row[lab[s]] -= g * e[s];
        for (int64_t c = 0; c < C;
             c++) /* exp(-inf + nll - lp) with lp -inf or NaN: NaN, as PyTorch */
            row[c] = lpt[c] > -INFINITY ? row[c] : NAN;
        R *swap = beta;
        beta = next, next = swap;
    }
}

/* The driver's kernels (fused.h), over samples [lo, hi). Sample b's alpha
 * rows start at alpha + b T W, its scratch (4 W values: the forward's
 * emissions, the backward's beta, next, occupancies and emissions) at
 * scratch + 4 b W. */
static inline R FN(ctc_inv_len)(const ctc_data *d, int64_t b)
{
    return (R)(1.0 / (double)(d->tgt_len[b] > 1 ? d->tgt_len[b] : 1));
}

/* Each nll (0 for an infinite one under zero_infinity): NONE writes them,
 * SUM and MEAN return their sum, MEAN with each over its target length. */
static double FN(ctc_fw)(const lgL_fused *f, int64_t lo, int64_t hi, void *l, void *gx,
                         double gscale)
{
    (void)gx, (void)gscale; /* no eager gradient */
    const ctc_data *d = f->saved;
    const R *lp = f->in[0]->data;
    R *out = l, *alpha = d->alpha, *scratch = d->scratch;
    int64_t W = d->width;
    bool mean = f->r == LG_REDUCTION_MEAN;
    double s = 0;
    for (int64_t b = lo; b < hi; b++) {
        R v = FN(ctc_forward)(lp, d, b, alpha + b * d->T * W, scratch + 4 * b * W);
        if (d->zero_infinity && isinf(v))
            v = 0;
        if (out)
            out[b] = v;
        else
            s += mean ? (double)(R)(v * FN(ctc_inv_len)(d, b)) : (double)v;
    }
    return s;
}

/* The upstream of each sample (MEAN: over its target length too) times
 * d nll_b / d lp into the (zeroed) gradient d[0]. */
static void FN(ctc_bw)(const lgL_fused *f, int64_t lo, int64_t hi, const void *upv, double scale,
                       void *const *dd)
{
    const ctc_data *d = f->saved;
    const R *lp = f->in[0]->data, *up = upv, *alpha = d->alpha;
    R *scratch = d->scratch, *dlp = dd[0];
    int64_t W = d->width;
    bool mean = f->r == LG_REDUCTION_MEAN;
    if (!dlp)
        return;
    for (int64_t b = lo; b < hi; b++) {
        R g = up ? up[b] : (R)scale;
        if (mean)
            g = (R)(g * FN(ctc_inv_len)(d, b));
        FN(ctc_backward)(lp, d, b, alpha + b * d->T * W, g, scratch + 4 * b * W, dlp);
    }
}
