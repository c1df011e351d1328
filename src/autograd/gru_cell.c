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
 */
#include "../tensor/vmath.h"
#include "autograd.h"

#include <math.h>
#include <string.h>

static inline double sigmoid_d(double x)
{
    return 1 / (1 + exp(-x));
}

#define GRU_KERNELS(T, SIG, TANH)                                                                  \
    /* s: [N][4H] saved r, z, n, gh_n + b_n */                                                     \
    LGT_VECTOR_CLONES static void gru_fw_##T(int64_t N, int64_t H, const T *restrict gi,           \
                                             const T *restrict gh, const T *restrict b,            \
                                             const T *restrict h, T *restrict y, T *restrict s)    \
    {                                                                                              \
        for (int64_t i = 0; i < N; i++) {                                                          \
            const T *restrict xi = gi + i * 3 * H, *restrict hi = gh + i * 3 * H,                  \
                              *restrict hp = h + i * H;                                            \
            T *restrict yi = y + i * H, *restrict si = s + i * 4 * H;                              \
            for (int64_t j = 0; j < H; j++) {                                                      \
                T r = SIG(xi[j] + (hi[j] + b[j]));                                                 \
                T z = SIG(xi[H + j] + (hi[H + j] + b[H + j]));                                     \
                T hn = hi[2 * H + j] + b[2 * H + j];                                               \
                T n = TANH(xi[2 * H + j] + r * hn);                                                \
                yi[j] = (1 - z) * n + z * hp[j];                                                   \
                si[j] = r, si[H + j] = z, si[2 * H + j] = n, si[3 * H + j] = hn;                   \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    /* dgi, dgh: [N][3H]; dh: [N][H]; db: [3H] (set, not added) */                                 \
    LGT_VECTOR_CLONES static void gru_bw_##T(                                                      \
        int64_t N, int64_t H, const T *restrict g, const T *restrict h, const T *restrict s,       \
        T *restrict dgi, T *restrict dgh, T *restrict dh, T *restrict db)                          \
    {                                                                                              \
        for (int64_t k = 0; k < 3 * H; k++)                                                        \
            db[k] = 0;                                                                             \
        for (int64_t i = 0; i < N; i++) {                                                          \
            const T *restrict gy = g + i * H, *restrict hp = h + i * H,                            \
                              *restrict si = s + i * 4 * H;                                        \
            T *restrict xi = dgi + i * 3 * H, *restrict hi = dgh + i * 3 * H;                      \
            for (int64_t j = 0; j < H; j++) {                                                      \
                T r = si[j], z = si[H + j], n = si[2 * H + j], hn = si[3 * H + j];                 \
                T dn = gy[j] * (1 - z) * (1 - n * n);                                              \
                T dr = dn * hn * r * (1 - r);                                                      \
                T dz = (gy[j] * hp[j] - gy[j] * n) * z * (1 - z);                                  \
                xi[j] = hi[j] = dr;                                                                \
                xi[H + j] = hi[H + j] = dz;                                                        \
                xi[2 * H + j] = dn;                                                                \
                hi[2 * H + j] = dn * r;                                                            \
                dh[i * H + j] = gy[j] * z;                                                         \
            }                                                                                      \
            for (int64_t k = 0; k < 3 * H; k++)                                                    \
                db[k] += hi[k];                                                                    \
        }                                                                                          \
    }

GRU_KERNELS(float, lgV_sigmoidf, lgV_tanhf)
GRU_KERNELS(double, sigmoid_d, tanh)

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
        gru_fw_float(N, H, LGT_F(gi), LGT_F(gh), b_hh ? LGT_F(b_hh) : zero, LGT_F(h), LGT_F(y),
                     saved);
    else
        gru_fw_double(N, H, LGT_D(gi), LGT_D(gh), b_hh ? LGT_D(b_hh) : zero, LGT_D(h), LGT_D(y),
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
        gru_bw_float(N, H, LGT_F(y->grad), LGT_F(h), y->aux, LGT_F(dgi), LGT_F(dgh), LGT_F(dh),
                     LGT_F(db));
    else
        gru_bw_double(N, H, LGT_D(y->grad), LGT_D(h), y->aux, LGT_D(dgi), LGT_D(dgh), LGT_D(dh),
                      LGT_D(db));
    lg_tensor *grads[4] = { dgi, dgh, dh, db };
    for (int k = 0; k < (bias ? 4 : 3); k++)
        if (lgA_needs(y, k) && lgA_accum(ctx, y->in[k], grads[k]) != LG_OK)
            return ctx->status;
    return LG_OK;
}
