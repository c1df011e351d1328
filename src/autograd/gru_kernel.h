/* gru_kernel.h: the GRU cell and sequence kernels of gru_cell.c for one
 * element type, included twice (T float with FN suffix f32, SIG and TANH
 * the vector lgV_sigmoidf and lgV_tanhf, DT LG_F32; T double with f64,
 * libm, LG_F64). Expects T, FN(name), SIG, TANH, DT, ROWS and the step
 * structs gru_fw_step and gru_bw_step. */

/* The cell forward over N rows. s: [N][4H] saved r, z, n, gh_n + b_n */
LGC_VECTOR_CLONES static void FN(gru_fw)(int64_t N, int64_t H, const T *restrict gi,
                                         const T *restrict gh, const T *restrict b,
                                         const T *restrict h, T *restrict y, T *restrict s)
{
    for (int64_t i = 0; i < N; i++) {
        const T *restrict xi = gi + i * 3 * H, *restrict hi = gh + i * 3 * H,
                          *restrict hp = h + i * H;
        T *restrict yi = y + i * H, *restrict si = s + i * 4 * H;
        for (int64_t j = 0; j < H; j++) {
            T r = SIG(xi[j] + (hi[j] + b[j]));
            T z = SIG(xi[H + j] + (hi[H + j] + b[H + j]));
            T hn = hi[2 * H + j] + b[2 * H + j];
            T n = TANH(xi[2 * H + j] + r * hn);
            yi[j] = (1 - z) * n + z * hp[j];
            si[j] = r, si[H + j] = z, si[2 * H + j] = n, si[3 * H + j] = hn;
        }
    }
}

/* The cell backward over N rows. dgi, dgh: [N][3H]; dh: [N][H]; db: [3H]
 * (set, not added) or NULL */
LGC_VECTOR_CLONES static void FN(gru_bw)(int64_t N, int64_t H, const T *restrict g,
                                         const T *restrict h, const T *restrict s, T *restrict dgi,
                                         T *restrict dgh, T *restrict dh, T *restrict db)
{
    for (int64_t k = 0; db && k < 3 * H; k++)
        db[k] = 0;
    for (int64_t i = 0; i < N; i++) {
        const T *restrict gy = g + i * H, *restrict hp = h + i * H, *restrict si = s + i * 4 * H;
        T *restrict xi = dgi + i * 3 * H, *restrict hi = dgh + i * 3 * H;
        for (int64_t j = 0; j < H; j++) {
            T r = si[j], z = si[H + j], n = si[2 * H + j], hn = si[3 * H + j];
            T dn = gy[j] * (1 - z) * (1 - n * n);
            T dr = dn * hn * r * (1 - r);
            T dz = (gy[j] * hp[j] - gy[j] * n) * z * (1 - z);
            xi[j] = hi[j] = dr;
            xi[H + j] = hi[H + j] = dz;
            xi[2 * H + j] = dn;
            hi[2 * H + j] = dn * r;
            dh[i * H + j] = gy[j] * z;
        }
        for (int64_t k = 0; db && k < 3 * H; k++)
            db[k] += hi[k];
    }
}

/* lgC_parallel range functions over blocks of ROWS samples of one step. */
static void FN(gru_fw_blocks)(void *arg, int64_t lo, int64_t hi)
{
    const struct gru_fw_step *a = arg;
    int64_t N = a->N, H = a->H;
    const T *xt = a->xt, *gh = a->gh, *b = a->b, *hp = a->hp;
    T *hn = a->hn, *gs = a->gs;
    for (int64_t blk = lo; blk < hi; blk++) {
        int64_t r0 = blk * ROWS, m = N - r0 < ROWS ? N - r0 : ROWS;
        FN(gru_fw)
        (m, H, xt + r0 * 3 * H, gh + r0 * 3 * H, b, hp + r0 * H, hn + r0 * H, gs + r0 * 4 * H);
    }
}

static void FN(gru_bw_blocks)(void *arg, int64_t lo, int64_t hi)
{
    const struct gru_bw_step *a = arg;
    int64_t N = a->N, H = a->H;
    const T *carry = a->carry, *hs = a->hs, *gs = a->gs;
    T *dxt = a->dxt, *dgs = a->dgs, *next = a->next;
    for (int64_t blk = lo; blk < hi; blk++) {
        int64_t r0 = blk * ROWS, m = N - r0 < ROWS ? N - r0 : ROWS;
        FN(gru_bw)
        (m, H, carry + r0 * H, hs + r0 * H, gs + r0 * 4 * H, dxt + r0 * 3 * H, dgs + r0 * 3 * H,
         next + r0 * H, NULL);
    }
}

/* The sequence forward: out [T][N][H]; gh [N][3H] scratch. */
static void FN(gru_seq_fw)(lg_ctx *ctx, const gru_seq *q, int64_t TT, int64_t N, int64_t H,
                           const T *xw, const T *w, const T *b, T *gh, T *out)
{
    T *st = q->states;
    int64_t blocks = (N + ROWS - 1) / ROWS;
    for (int64_t s = 0; s < TT; s++) {
        int64_t t = q->reverse ? TT - 1 - s : s;
        T *hp = st + s * N * H, *hn = hp + N * H;
        lgT_gemm(ctx, DT, false, true, N, 3 * H, H, 1, hp, H, w, H, 0, gh, 3 * H);
        struct gru_fw_step a = { .N = N,
                                 .H = H,
                                 .xt = xw + t * N * 3 * H,
                                 .gh = gh,
                                 .b = b,
                                 .hp = hp,
                                 .hn = hn,
                                 .gs = (T *)q->gates + s * N * 4 * H };
        lgC_parallel(ctx, N * H * ROW_COST, blocks, FN(gru_fw_blocks), &a);
        for (int64_t i = 0; q->length && i < N; i++)
            if (t >= q->length[i])
                memcpy(hn + i * H, hp + i * H, (size_t)H * sizeof(T));
        memcpy(out + t * N * H, hn, (size_t)(N * H) * sizeof(T));
    }
}

/* The sequence backward: dxw [T][N][3H] (every element written), dgh
 * [T][N][3H] in run order, tmp and out [N][H]; out gets dL/dh0 */
static void FN(gru_seq_bw)(lg_ctx *ctx, const gru_seq *q, int64_t TT, int64_t N, int64_t H,
                           const T *w, const T *g, T *dxw, T *dgh, T *tmp, T *out)
{
    const T *st = q->states;
    T *carry = tmp, *next = out;
    int64_t blocks = (N + ROWS - 1) / ROWS;
    memset(carry, 0, (size_t)(N * H) * sizeof(T));
    for (int64_t s = TT - 1; s >= 0; s--) {
        int64_t t = q->reverse ? TT - 1 - s : s;
        const T *gt = g + t * N * H;
        for (int64_t k = 0; k < N * H; k++)
            carry[k] += gt[k];
        T *dxt = dxw + t * N * 3 * H, *dgs = dgh + s * N * 3 * H;
        struct gru_bw_step a = { .N = N,
                                 .H = H,
                                 .carry = carry,
                                 .hs = st + s * N * H,
                                 .gs = (const T *)q->gates + s * N * 4 * H,
                                 .dxt = dxt,
                                 .dgs = dgs,
                                 .next = next };
        lgC_parallel(ctx, N * H * ROW_COST, blocks, FN(gru_bw_blocks), &a);
        for (int64_t i = 0; q->length && i < N; i++)
            if (t >= q->length[i]) { /* h passes this step unchanged */
                memset(dxt + i * 3 * H, 0, (size_t)(3 * H) * sizeof(T));
                memset(dgs + i * 3 * H, 0, (size_t)(3 * H) * sizeof(T));
                memcpy(next + i * H, carry + i * H, (size_t)H * sizeof(T));
            }
        lgT_gemm(ctx, DT, false, false, N, H, 3 * H, 1, dgs, 3 * H, w, H, 1, next, H);
        T *swap = carry;
        carry = next, next = swap;
    }
    if (carry != out)
        memcpy(out, carry, (size_t)(N * H) * sizeof(T));
}
