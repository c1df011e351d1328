/* unary_kernel.h: the loops of the unary.def primitives for one element
 * type, included twice by unary.c (T float with FN suffix f32, T double
 * with f64). Expects T, FN(name) and struct unary_args.
 *
 * A row's f(x) and f'(g, x, y) become one case each of unary_fw and
 * unary_bw; the loops are always inlined into one switch case per op
 * with the op a constant, so each op gets its own vectorised loop and
 * the switch runs once per range, not per element. Math functions
 * resolve through <tgmath.h> by T (expf for float, exp for double).
 */

static inline __attribute__((always_inline)) T FN(unary_fw)(int op, T x, T a, T b)
{
    switch (op) {
        /* clang-format off */
#define LG_UNARY(name, fwd, bwd) case LGA_OP_##name: return (T)(fwd);
#include "unary.def"
#undef LG_UNARY
    /* clang-format on */
    default: return x;
    }
}

static inline __attribute__((always_inline)) T FN(unary_bw)(int op, T g, T x, T y, T a, T b)
{
    switch (op) {
        /* clang-format off */
#define LG_UNARY(name, fwd, bwd) case LGA_OP_##name: return (T)(bwd);
#include "unary.def"
#undef LG_UNARY
    /* clang-format on */
    default: return g;
    }
}

/* y[i] = f(x[i]) over [lo, hi) for a constant op. */
static inline __attribute__((always_inline)) void
FN(unary_fw_loop)(int op, const struct unary_args *p, int64_t lo, int64_t hi)
{
    T *restrict yv = p->y;
    const T *restrict xv = p->x;
    T a = (T)p->a, b = (T)p->b;
    for (int64_t i = lo; i < hi; i++)
        yv[i] = FN(unary_fw)(op, xv[i], a, b);
}

/* dx[i] = f'(g[i], x[i], y[i]) over [lo, hi) for a constant op. */
static inline __attribute__((always_inline)) void
FN(unary_bw_loop)(int op, const struct unary_args *p, int64_t lo, int64_t hi)
{
    T *restrict dx = p->dx;
    const T *restrict gv = p->g, *restrict xv = p->x, *restrict yv = p->y;
    T a = (T)p->a, b = (T)p->b;
    for (int64_t i = lo; i < hi; i++)
        dx[i] = FN(unary_bw)(op, gv[i], xv[i], yv[i], a, b);
}

/* The forward or backward loop of a constant op. */
static inline __attribute__((always_inline)) void FN(unary_loop)(int op, const struct unary_args *p,
                                                                 int64_t lo, int64_t hi)
{
    if (p->backward)
        FN(unary_bw_loop)(op, p, lo, hi);
    else
        FN(unary_fw_loop)(op, p, lo, hi);
}

/* The lgC_parallel range function: one loop per op, chosen once per range. */
LGC_VECTOR_CLONES static void FN(unary_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct unary_args *p = arg;
    switch (p->op) {
        /* clang-format off */
#define LG_UNARY(name, fwd, bwd) case LGA_OP_##name: FN(unary_loop)(LGA_OP_##name, p, lo, hi); break;
#include "unary.def"
#undef LG_UNARY
    /* clang-format on */
    default: break;
    }
}
