/* interpolate_kernel.h: resampling over planes for one element type,
 * included twice by interpolate.c (T float with FN suffix f32, T double
 * with f64). Expects T, FN(name), interp_plan and struct interp_args.
 * Range functions over planes [lo, hi): a plane's outputs and its input
 * gradient are its own, so the split does not change the bits. The
 * weights are doubles; each output is summed in double and rounded once. */

static void FN(interp_fw)(void *arg, int64_t lo, int64_t hi)
{
    const struct interp_args *a = arg;
    const interp_plan *p = a->p;
    const interp_dim *dh = &p->dim[0], *dw = &p->dim[1];
    int64_t H = dh->in, W = dw->in, OH = dh->out, OW = dw->out;
    for (int64_t pl = lo; pl < hi; pl++) {
        const T *x = (const T *)a->x + pl * H * W;
        T *y = (T *)a->y + pl * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            const T *r0 = x + dh->i0[oh] * W, *r1 = x + dh->i1[oh] * W;
            T *yr = y + oh * OW;
            if (!p->bilinear) {
                for (int64_t ow = 0; ow < OW; ow++)
                    yr[ow] = r0[dw->i0[ow]];
                continue;
            }
            double a0 = dh->l0[oh], a1 = dh->l1[oh];
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = dw->i0[ow], w1 = dw->i1[ow];
                double b0 = dw->l0[ow], b1 = dw->l1[ow];
                yr[ow] = (T)(a0 * (b0 * r0[w0] + b1 * r0[w1]) + a1 * (b0 * r1[w0] + b1 * r1[w1]));
            }
        }
    }
}

/* The adjoint: each output's gradient goes back to the inputs it read,
 * with the weights it read them with. */
static void FN(interp_bw)(void *arg, int64_t lo, int64_t hi)
{
    const struct interp_args *a = arg;
    const interp_plan *p = a->p;
    const interp_dim *dh = &p->dim[0], *dw = &p->dim[1];
    int64_t H = dh->in, W = dw->in, OH = dh->out, OW = dw->out;
    for (int64_t pl = lo; pl < hi; pl++) {
        T *dx = (T *)a->x + pl * H * W;
        const T *g = (const T *)a->y + pl * OH * OW;
        for (int64_t i = 0; i < H * W; i++)
            dx[i] = 0;
        for (int64_t oh = 0; oh < OH; oh++) {
            T *r0 = dx + dh->i0[oh] * W, *r1 = dx + dh->i1[oh] * W;
            const T *gr = g + oh * OW;
            if (!p->bilinear) {
                for (int64_t ow = 0; ow < OW; ow++)
                    r0[dw->i0[ow]] += gr[ow];
                continue;
            }
            double a0 = dh->l0[oh], a1 = dh->l1[oh];
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = dw->i0[ow], w1 = dw->i1[ow];
                double b0 = dw->l0[ow], b1 = dw->l1[ow], gv = gr[ow];
                r0[w0] += (T)(a0 * b0 * gv);
                r0[w1] += (T)(a0 * b1 * gv);
                r1[w0] += (T)(a1 * b0 * gv);
                r1[w1] += (T)(a1 * b1 * gv);
            }
        }
    }
}
