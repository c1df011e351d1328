/* binary_kernel.h: the broadcasting loops of the binary.def primitives for
 * one element type, included twice by binary.c (T float with FN suffix
 * f32, T double with f64). Expects T, FN(name) and struct binary_args.
 *
 * A row's f, f_a and f_b become one case each of binary_fw, binary_da and
 * binary_db; the loops are always inlined into one switch case per op with
 * the op a constant, so each op gets its own loop (vectorised over the
 * innermost axis) and the switch runs once per range of rows. */

static inline T FN(binary_fw)(int op, T a, T b)
{
    switch (op) {
        /* clang-format off */
#define LG_BINARY(name, fwd, da, db) case LGA_OP_##name: return (T)(fwd);
#include "binary.def"
#undef LG_BINARY
    /* clang-format on */
    default: return a;
    }
}

static inline T FN(binary_da)(int op, T g, T y, T a, T b)
{
    switch (op) {
        /* clang-format off */
#define LG_BINARY(name, fwd, da, db) case LGA_OP_##name: return (T)(da);
#include "binary.def"
#undef LG_BINARY
    /* clang-format on */
    default: return y;
    }
}

static inline T FN(binary_db)(int op, T g, T y, T a, T b)
{
    switch (op) {
        /* clang-format off */
#define LG_BINARY(name, fwd, da, db) case LGA_OP_##name: return (T)(db);
#include "binary.def"
#undef LG_BINARY
    /* clang-format on */
    default: return y;
    }
}

/* y[o] = f(a[ia], b[ib]) over output rows [lo, hi), for a constant op. */
static inline __attribute__((always_inline)) void
FN(binary_fw_loop)(int op, const struct binary_args *p, int64_t lo, int64_t hi)
{
    const lgT_iter *it = p->it;
    int64_t inner = it->inner, sa = it->stride[0][it->ndim - 1], sb = it->stride[1][it->ndim - 1];
    T *yv = p->out;
    const T *av = p->a, *bv = p->b;
    for (int64_t r = lo; r < hi; r++) {
        int64_t off[3];
        lgT_iter_row(it, r, off);
        for (int64_t j = 0; j < inner; j++) {
            int64_t o = r * inner + j, ia = off[0] + j * sa, ib = off[1] + j * sb;
            yv[o] = FN(binary_fw)(op, av[ia], bv[ib]);
        }
    }
}

/* da[o], db[o] (each if not NULL) at y's shape over output rows [lo, hi). */
static inline __attribute__((always_inline)) void
FN(binary_bw_loop)(int op, const struct binary_args *p, int64_t lo, int64_t hi)
{
    const lgT_iter *it = p->it;
    int64_t inner = it->inner, sa = it->stride[0][it->ndim - 1], sb = it->stride[1][it->ndim - 1];
    T *da = p->da, *db = p->db;
    const T *gv = p->g, *yv = p->y, *av = p->a, *bv = p->b;
    for (int64_t r = lo; r < hi; r++) {
        int64_t off[3];
        lgT_iter_row(it, r, off);
        for (int64_t j = 0; j < inner; j++) {
            int64_t o = r * inner + j, ia = off[0] + j * sa, ib = off[1] + j * sb;
            T a = av[ia], b = bv[ib], g = gv[o], y = yv[o];
            if (da)
                da[o] = FN(binary_da)(op, g, y, a, b);
            if (db)
                db[o] = FN(binary_db)(op, g, y, a, b);
        }
    }
}

/* The forward or backward loop of a constant op. */
static inline __attribute__((always_inline)) void
FN(binary_loop)(int op, const struct binary_args *p, int64_t lo, int64_t hi)
{
    if (p->backward)
        FN(binary_bw_loop)(op, p, lo, hi);
    else
        FN(binary_fw_loop)(op, p, lo, hi);
}

/* The lgC_parallel range function: one loop per op, chosen once per range. */
LGC_VECTOR_CLONES static void FN(binary_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct binary_args *p = arg;
    switch (p->op) {
        /* clang-format off */
#define LG_BINARY(name, fwd, da, db) case LGA_OP_##name: FN(binary_loop)(LGA_OP_##name, p, lo, hi); break;
#include "binary.def"
#undef LG_BINARY
    /* clang-format on */
    default: break;
    }
}
