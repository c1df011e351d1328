/* gru_cell.c: the GRU cell's gates as one primitive, lg_gru_gates.
 *
 * With gi = x W_ih^T + b_ih and gh = h W_hh^T ([N, 3H], blocks r, z, n),
 * b = b_hh ([3H], or 0), and PyTorch's equations:
 *   r = s(gi_r + (gh_r + b_r)),  z = s(gi_z + (gh_z + b_z)),
 *   n = tanh(gi_n + r (gh_n + b_n)),  h' = (1 - z) n + z h
 * and with g = dL/dh':
 *   dn = g (1 - z) (1 - n^2)                 d gi_n = dn,  d gh_n = dn r
 *   dr = dn (gh_n + b_n) r (1 - r)           d gi_r = d gh_r = dr
 *   dz = (g h - g n) z (1 - z)               d gi_z = d gh_z = dz
 *   dh = g z,   db = d gh summed over the batch.
 * Built from primitives the step records about 25 ops (slices of the gate
 * blocks, adds, sigmoid, tanh, products), each with a result and a
 * backward; the GRU training step spent most of its time there. Fused,
 * the forward keeps r, z, n and gh_n + b_n for the backward, which makes
 * every gradient in one pass. Float32 uses the vector sigmoid and tanh of
 * tensor/vmath.h, float64 libm as the composite; tests/test_nn.c checks it
 * against that composite and rnn.txt against PyTorch's GRU. An autograd
 * primitive (nn's rnn.c calls it through the public API, as DESIGN.md asks
 * of nn).
 *
 * The taped backwards (lg_grad, taped.def) of both ops rebuild the forward
 * from the recorded inputs with public ops (the slices of the gate blocks,
 * sigmoid, tanh, products; for the sequence one lg_matmul_bias per step,
 * lg_where past a row's length, a stack) and differentiate that with
 * lgA_taped_by_rebuild: the same values (float64 exactly, float32 to
 * rounding), every gradient twice differentiable. tests/test_higher.c
 * checks them against the fused backwards and with lg_gradgradcheck.
 */
#include "../tensor/vmath.h"
#include "autograd.h"

#include <limits.h>
#include <math.h>
#include <string.h>

static inline double sigmoid_d(double x)
{
    return 1 / (1 + exp(-x));
}

/* The sequence's saved state (see lg_gru_sequence below). */
typedef struct gru_seq {
    void *gates;     /* [T][N][4H]: each run step's r, z, n, gh_n + b_n */
    void *states;    /* [T + 1][N][H]: h_0 .. h_T in run order */
    int64_t *length; /* a copy of lengths, or NULL */
    bool reverse;
} gru_seq;

/* The cells of a step are split over the ctx's threads in blocks of ROWS
 * samples once N H ROW_COST reaches LGC_PAR_MIN (a cell costs
 * about as much as several elementwise ops: two sigmoids and a tanh). */
enum { ROWS = 8, ROW_COST = 8 };

/* One step's cells, for the range functions of gru_kernel.h; the pointers
 * have the call's dtype. */
struct gru_fw_step {
    int64_t N, H;
    const void *xt, *gh, *b, *hp;
    void *hn, *gs;
};
struct gru_bw_step {
    int64_t N, H;
    const void *carry, *hs, *gs;
    void *dxt, *dgs, *next;
};

#define T float
#define FN(name) name##_f32
#define SIG lgV_sigmoidf
#define TANH lgV_tanhf
#define DT LG_F32
#include "gru_kernel.h"
#undef T
#undef FN
#undef SIG
#undef TANH
#undef DT
#define T double
#define FN(name) name##_f64
#define SIG sigmoid_d
#define TANH tanh
#define DT LG_F64
#include "gru_kernel.h"
#undef T
#undef FN
#undef SIG
#undef TANH
#undef DT

/* in: gi, gh, h[, b_hh] */
lg_tensor *lg_gru_gates(lg_ctx *ctx, lg_tensor *gi, lg_tensor *gh, lg_tensor *b_hh, lg_tensor *h)
{
    static const char who[] = "lg_gru_gates";
    if (!ctx || !lgT_ok_float(ctx, gi, who, "gi") || !lgT_ok_float(ctx, gh, who, "gh") ||
        !lgT_ok_float(ctx, h, who, "h") || (b_hh && !lgT_ok_float(ctx, b_hh, who, "b_hh")))
        return NULL;
    int64_t N = h->ndim == 2 ? h->shape[0] : -1, H = h->ndim == 2 ? h->shape[1] : -1;
    const lg_tensor *args[4] = { gi, gh, h, b_hh };
    static const char *const names[4] = { "gi", "gh", "h", "b_hh" };
    for (int k = 0; k < 4; k++) {
        const lg_tensor *t = args[k];
        if (!t)
            continue;
        bool ok =
            h->ndim == 2 && t->dtype == h->dtype &&
            (k == 3 ? t->ndim == 1 && t->shape[0] == 3 * H
                    : t->ndim == 2 && t->shape[0] == N && t->shape[1] == (k == 2 ? H : 3 * H));
        if (!ok) {
            char sh[160], hs[160];
            lgT_shape_str(t, sh, sizeof sh);
            lgT_shape_str(h, hs, sizeof hs);
            return lgC_error(ctx, t->dtype == h->dtype ? LG_ERR_SHAPE : LG_ERR_DTYPE,
                             "%s: %s is %s %s; with h %s %s, expected gi and gh [N, 3H], h [N, H] "
                             "and b_hh [3H] of one dtype",
                             who, names[k], lgT_dtype_name(t->dtype), sh, lgT_dtype_name(h->dtype),
                             hs);
        }
    }
    lg_tensor *y = lgT_new(ctx, (lg_dtype)h->dtype, 2, h->shape, who);
    size_t es = lgT_dtype_size((lg_dtype)h->dtype);
    void *saved = y ? lgC_salloc(ctx, (size_t)(N * 4 * H) * es, who) : NULL;
    void *zero = saved && !b_hh ? lgC_salloc(ctx, (size_t)(3 * H) * es, who) : NULL;
    if (!saved || (!b_hh && !zero))
        return NULL;
    if (zero)
        memset(zero, 0, (size_t)(3 * H) * es);
    if (h->dtype == LG_F32)
        gru_fw_f32(N, H, LGT_F(gi), LGT_F(gh), b_hh ? LGT_F(b_hh) : zero, LGT_F(h), LGT_F(y),
                   saved);
    else
        gru_fw_f64(N, H, LGT_D(gi), LGT_D(gh), b_hh ? LGT_D(b_hh) : zero, LGT_D(h), LGT_D(y),
                   saved);
    y->aux = saved;
    return lgA_record(ctx, LGA_OP_gru_cell, y, b_hh ? 4 : 3, (lg_tensor *[]){ gi, gh, h, b_hh });
}

lg_status lgA_bw_gru_cell(lg_ctx *ctx, lg_tensor *y)
{
    static const char who[] = "lg_backward";
    lg_tensor *gi = y->in[0], *gh = y->in[1], *h = y->in[2];
    bool bias = y->nin == 4;
    int64_t N = h->shape[0], H = h->shape[1], G = 3 * H;
    lg_tensor *dgi = lgT_new_like(ctx, gi, who), *dgh = lgT_new_like(ctx, gh, who),
              *dh = lgT_new_like(ctx, h, who), *db = lgT_new(ctx, (lg_dtype)h->dtype, 1, &G, who);
    if (!dgi || !dgh || !dh || !db)
        return ctx->status;
    if (h->dtype == LG_F32)
        gru_bw_f32(N, H, LGT_F(y->grad), LGT_F(h), y->aux, LGT_F(dgi), LGT_F(dgh), LGT_F(dh),
                   LGT_F(db));
    else
        gru_bw_f64(N, H, LGT_D(y->grad), LGT_D(h), y->aux, LGT_D(dgi), LGT_D(dgh), LGT_D(dh),
                   LGT_D(db));
    lg_tensor *grads[4] = { dgi, dgh, dh, db };
    for (int k = 0; k < (bias ? 4 : 3); k++)
        if (lgA_needs(y, k) && lgA_accum(ctx, y->in[k], grads[k]) != LG_OK)
            return ctx->status;
    return LG_OK;
}

/* The cell's equations with public ops (recorded): gi and ghb = gh + b_hh
 * [N, 3H] in blocks r, z, n, h [N, H]; returns h'. */
static lg_tensor *cell_ops(lg_ctx *ctx, lg_tensor *gi, lg_tensor *ghb, lg_tensor *h, int64_t H)
{
    lg_tensor *rz = lg_sigmoid(
        ctx, lg_add(ctx, lg_narrow(ctx, gi, 1, 0, 2 * H), lg_narrow(ctx, ghb, 1, 0, 2 * H)));
    lg_tensor *r = lg_narrow(ctx, rz, 1, 0, H), *z = lg_narrow(ctx, rz, 1, H, H);
    lg_tensor *hn = lg_mul(ctx, r, lg_narrow(ctx, ghb, 1, 2 * H, H));
    lg_tensor *n = lg_tanh(ctx, lg_add(ctx, lg_narrow(ctx, gi, 1, 2 * H, H), hn));
    lg_tensor *keep = z ? lg_sub(ctx, lgA_const(ctx, z, 1), z) : NULL; /* 1 - z */
    return lg_add(ctx, lg_mul(ctx, keep, n), lg_mul(ctx, z, h));
}

/* The cell rebuilt from y->in (gi, gh, h[, b_hh]) for its taped backward. */
static lg_tensor *rebuild_cell(lg_ctx *ctx, lg_tensor *y, void *arg)
{
    (void)arg;
    lg_tensor *gi = y->in[0], *gh = y->in[1], *h = y->in[2];
    lg_tensor *ghb = y->nin == 4 ? lg_add(ctx, gh, y->in[3]) : gh;
    return cell_ops(ctx, gi, ghb, h, h->shape[1]);
}

/* The taped backward: the cell's composite rebuilt and walked (grad.c). */
lg_status lgA_tbw_gru_cell(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return lgA_taped_by_rebuild(ctx, y, g, rebuild_cell, NULL);
}

/* lg_gru_sequence: the recurrence over a whole sequence as one primitive.
 *
 * Step by step (s the run step, t = s forward, T - 1 - s reverse):
 *   gh = h_s W_hh^T, h_{s+1} = cell(xw[t], gh, b_hh, h_s), out[t] = h_{s+1}
 * with h_0 = h0, and where t >= lengths[b], h_{s+1} = h_s for that row.
 * As steps on the tape (a slice of xw, a product, the cell, a stack at the
 * end) the GRU training step moved every step's tensors several times: the
 * slices, the stacked output, the zero-filled slice gradients, the sum of
 * h's two gradients. Here the forward keeps the states h_0..h_T in run
 * order and each step's gates; the backward runs the steps in reverse,
 * carrying dL/dh_s:
 *   g = dL/dout[t] + carry;  cell backward -> d xw[t], dgh_s, g z
 *   carry = g z + dgh_s W_hh  (g itself where the row is past its length)
 * and after the loop makes dW_hh = sum_s dgh_s^T h_s as one product
 * ([3H, T N] by [T N, H]), db_hh as the column sums of dgh, dh0 = carry. */
static bool seq_arg_ok(lg_ctx *ctx, const lg_tensor *t, const char *name, int ndim,
                       const int64_t *shape, lg_dtype dt, const char *who)
{
    bool ok = t->dtype == dt && t->ndim == ndim;
    for (int k = 0; ok && k < ndim; k++)
        ok = t->shape[k] == shape[k];
    if (ok)
        return true;
    char sh[160], want[160] = "[";
    lgT_shape_str(t, sh, sizeof sh);
    for (int k = 0; k < ndim; k++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? ", " : "",
                 (long long)shape[k]);
    lgC_error(ctx, t->dtype == dt ? LG_ERR_SHAPE : LG_ERR_DTYPE,
              "%s: %s is %s %s, expected %s %s] (xw [T, N, 3H] and w_hh [3H, H] set T, N and H)",
              who, name, lgT_dtype_name(t->dtype), sh, lgT_dtype_name(dt), want);
    return false;
}

/* in: xw, w_hh, then h0 and b_hh where given (aux says which) */
lg_tensor *lg_gru_sequence(lg_ctx *ctx, lg_tensor *xw, lg_tensor *w_hh, lg_tensor *b_hh,
                           lg_tensor *h0, lg_tensor *lengths, bool reverse)
{
    static const char who[] = "lg_gru_sequence";
    if (!ctx || !lgT_ok_float(ctx, xw, who, "xw") || !lgT_ok_float(ctx, w_hh, who, "w_hh") ||
        (b_hh && !lgT_ok_float(ctx, b_hh, who, "b_hh")) ||
        (h0 && !lgT_ok_float(ctx, h0, who, "h0")) ||
        (lengths && !lgT_ok(ctx, lengths, who, "lengths")))
        return NULL;
    lg_dtype dt = (lg_dtype)xw->dtype;
    if (xw->ndim != 3 || xw->shape[2] % 3 || xw->shape[0] < 1 || xw->shape[1] < 1 ||
        xw->shape[2] < 3) {
        char sh[160];
        lgT_shape_str(xw, sh, sizeof sh);
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: xw is %s, expected [T, N, 3H] with T, N, H >= 1",
                         who, sh);
    }
    int64_t T = xw->shape[0], N = xw->shape[1], H = xw->shape[2] / 3;
    if (!seq_arg_ok(ctx, w_hh, "w_hh", 2, (int64_t[]){ 3 * H, H }, dt, who) ||
        (b_hh && !seq_arg_ok(ctx, b_hh, "b_hh", 1, (int64_t[]){ 3 * H }, dt, who)) ||
        (h0 && !seq_arg_ok(ctx, h0, "h0", 2, (int64_t[]){ N, H }, dt, who)) ||
        (lengths && !seq_arg_ok(ctx, lengths, "lengths", 1, (int64_t[]){ N }, LG_I64, who)))
        return NULL;
    for (int64_t i = 0; lengths && i < N; i++)
        if (LGT_I(lengths)[i] < 1 || LGT_I(lengths)[i] > T)
            return lgC_error(ctx, LG_ERR_VALUE, "%s: lengths[%lld] = %lld, expected in [1, %lld]",
                             who, (long long)i, (long long)LGT_I(lengths)[i], (long long)T);
    size_t es = lgT_dtype_size(dt);
    lg_tensor *y = lgT_new(ctx, dt, 3, (int64_t[]){ T, N, H }, who);
    gru_seq *q = y ? lgC_salloc(ctx, sizeof *q, who) : NULL;
    void *gh = q ? lgC_salloc(ctx, (size_t)(N * 3 * H) * es, who) : NULL;
    void *zero = gh && !b_hh ? lgC_salloc(ctx, (size_t)(3 * H) * es, who) : NULL;
    if (!gh || (!b_hh && !zero))
        return NULL;
    *q = (gru_seq){ .gates = lgC_salloc(ctx, (size_t)(T * N * 4 * H) * es, who),
                    .states = lgC_salloc(ctx, (size_t)((T + 1) * N * H) * es, who),
                    .length = lengths ? lgC_salloc(ctx, (size_t)N * sizeof(int64_t), who) : NULL,
                    .reverse = reverse };
    if (!q->gates || !q->states || (lengths && !q->length))
        return NULL;
    if (lengths)
        memcpy(q->length, lengths->data, (size_t)N * sizeof(int64_t));
    if (zero)
        memset(zero, 0, (size_t)(3 * H) * es);
    if (h0)
        memcpy(q->states, h0->data, (size_t)(N * H) * es);
    else
        memset(q->states, 0, (size_t)(N * H) * es);
    if (dt == LG_F32)
        gru_seq_fw_f32(ctx, q, T, N, H, LGT_F(xw), LGT_F(w_hh), b_hh ? LGT_F(b_hh) : zero, gh,
                       LGT_F(y));
    else
        gru_seq_fw_f64(ctx, q, T, N, H, LGT_D(xw), LGT_D(w_hh), b_hh ? LGT_D(b_hh) : zero, gh,
                       LGT_D(y));
    y->aux = q;
    y->attr.gru.has_h0 = h0 != NULL, y->attr.gru.has_b_hh = b_hh != NULL;
    lg_tensor *ins[4] = { xw, w_hh };
    int nin = 2;
    if (h0)
        ins[nin++] = h0;
    if (b_hh)
        ins[nin++] = b_hh;
    return lgA_record(ctx, LGA_OP_gru_sequence, y, nin, ins);
}

lg_status lgA_bw_gru_sequence(lg_ctx *ctx, lg_tensor *y)
{
    static const char who[] = "lg_backward";
    const gru_seq *q = y->aux;
    lg_tensor *xw = y->in[0], *w = y->in[1];
    bool has_h0 = y->attr.gru.has_h0, has_b = y->attr.gru.has_b_hh;
    int ih0 = has_h0 ? 2 : -1, ib = has_b ? 2 + has_h0 : -1;
    int64_t T = xw->shape[0], N = xw->shape[1], H = w->shape[1];
    lg_dtype dt = (lg_dtype)xw->dtype;
    size_t es = lgT_dtype_size(dt);
    lg_tensor *dxw = lgT_new_like(ctx, xw, who);
    lg_tensor *dh0 = lgT_new(ctx, dt, 2, (int64_t[]){ N, H }, who);
    lg_tensor *dgh = lgT_new(ctx, dt, 2, (int64_t[]){ T * N, 3 * H }, who); /* run order */
    void *carry = lgC_salloc(ctx, (size_t)(N * H) * es, who);
    if (!dxw || !dh0 || !dgh || !carry)
        return ctx->status;
    if (dt == LG_F32)
        gru_seq_bw_f32(ctx, q, T, N, H, LGT_F(w), LGT_F(y->grad), LGT_F(dxw), LGT_F(dgh), carry,
                       LGT_F(dh0));
    else
        gru_seq_bw_f64(ctx, q, T, N, H, LGT_D(w), LGT_D(y->grad), LGT_D(dxw), LGT_D(dgh), carry,
                       LGT_D(dh0));
    if (lgA_needs(y, 0) && lgA_accum(ctx, xw, dxw) != LG_OK)
        return ctx->status;
    if (lgA_needs(y, 1)) {
        /* dW_hh [3H, H] = dgh^T [3H, T N] h_0..h_{T-1} [T N, H]; as matmul's
         * backward, straight into a gradient that exists (a parameter's) */
        bool direct = w->grad || w->persistent;
        lg_tensor *dw = direct ? lgA_grad_buffer(ctx, w) : lgT_new_like(ctx, w, who);
        if (!dw)
            return ctx->status;
        lgT_gemm(ctx, dt, true, false, 3 * H, H, T * N, 1, dgh->data, 3 * H, q->states, H,
                 direct ? 1 : 0, dw->data, H);
        if (!direct && lgA_accum(ctx, w, dw) != LG_OK)
            return ctx->status;
    }
    if (has_h0 && lgA_needs(y, ih0) && lgA_accum(ctx, y->in[ih0], dh0) != LG_OK)
        return ctx->status;
    /* db_hh: dgh summed over its rows (the broadcast undone by accum) */
    if (has_b && lgA_needs(y, ib) && lgA_accum(ctx, y->in[ib], dgh) != LG_OK)
        return ctx->status;
    return LG_OK;
}

/* Step t's mask of the rows still running (int64 [N, 1], t < lengths),
 * or NULL (no error) when every row is. */
static lg_tensor *step_mask(lg_ctx *ctx, const gru_seq *q, int64_t N, int64_t t, bool *err)
{
    bool all = true;
    for (int64_t i = 0; q->length && i < N; i++)
        all &= t < q->length[i];
    *err = false;
    if (all)
        return NULL;
    lg_tensor *m = lg_zeros(ctx, LG_I64, 2, (int64_t[]){ N, 1 });
    if (!m) {
        *err = true;
        return NULL;
    }
    for (int64_t i = 0; i < N; i++)
        LGT_I(m)[i] = t < q->length[i];
    return m;
}

/* The recurrence rebuilt from y->in (xw, w_hh[, h0][, b_hh]) with public
 * ops, step by step in run order: gh + b_hh as one lg_matmul_bias, the
 * cell's ops, lg_where keeping h past a row's length, a stack at the end. */
static lg_tensor *rebuild_sequence(lg_ctx *ctx, lg_tensor *y, void *arg)
{
    (void)arg;
    const gru_seq *q = y->aux;
    lg_tensor *xw = y->in[0], *w = y->in[1];
    bool has_h0 = y->attr.gru.has_h0, has_b = y->attr.gru.has_b_hh;
    lg_tensor *b = has_b ? y->in[2 + has_h0] : NULL;
    int64_t T = xw->shape[0], N = xw->shape[1], H = w->shape[1];
    if (T > INT_MAX) /* the steps are stacked as an int count */
        return lgC_error(ctx, LG_ERR_SHAPE, "lg_grad: gru_sequence has T = %lld, at most %d",
                         (long long)T, INT_MAX);
    lg_tensor **out = lgC_salloc(ctx, (size_t)T * sizeof *out, "lg_grad");
    lg_tensor *h = has_h0 ? y->in[2] : lg_zeros(ctx, (lg_dtype)xw->dtype, 2, (int64_t[]){ N, H });
    if (!out || !h)
        return NULL;
    for (int64_t s = 0; s < T; s++) {
        int64_t t = q->reverse ? T - 1 - s : s;
        lg_tensor *xt = lg_reshape(ctx, lg_narrow(ctx, xw, 0, t, 1), 2, (int64_t[]){ N, 3 * H });
        lg_tensor *ghb = lg_matmul_bias(ctx, h, w, b, false, true);
        lg_tensor *hn = cell_ops(ctx, xt, ghb, h, H);
        bool err;
        lg_tensor *m = step_mask(ctx, q, N, t, &err);
        if (err || !hn)
            return NULL;
        h = out[t] = m ? lg_where(ctx, m, hn, h) : hn;
    }
    return lg_stack(ctx, (int)T, out, 0);
}

/* The taped backward: the recurrence rebuilt and walked (grad.c). */
lg_status lgA_tbw_gru_sequence(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return lgA_taped_by_rebuild(ctx, y, g, rebuild_sequence, NULL);
}
