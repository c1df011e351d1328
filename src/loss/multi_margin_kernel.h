/* multi_margin_kernel.h: the class-hinge row kernels for one float type,
 * included twice by multi_margin.c (T = float, T = double). Expects T,
 * FN(name) (a name with the type's suffix) and hinge_saved.
 *
 * x is [rows, C]. Each hinge term z is rounded to T as the composite
 * rounds it, then summed in double; a row's value is rounded to T once.
 * A term counts only where z > 0 (NaN dropped). The gradients start at
 * zero (sparse_grads): each kept term adds c dz to one element and takes
 * it from another, every sum rounded to T as it is stored.
 */

/* The loops below select instead of branching: whether a term counts is
 * data (about half the terms of random logits), and a mispredicted branch
 * a term cost a third of a small case's time. Adding a dropped term as 0
 * leaves every sum's bits as skipping it did. */

/* multi margin, one row: sum_{j != y, z_j > 0} z_j^p, z_j = margin - x_y + x_j */
static double FN(mm_row)(const T *x, int64_t C, int64_t y, int64_t p, double margin)
{
    T xy = x[y];
    double s = 0;
    for (int64_t j = 0; j < C; j++) {
        double z = (double)(T)((T)(x[j] - xy) + (T)margin);
        bool keep = (j != y) & (z > 0);
        s += keep ? (p == 2 ? z * z : z) : 0.0;
    }
    return s;
}

/* its gradient times c into the row dx: + c dz at j, - sum at y */
static void FN(mm_row_grad)(T *dx, const T *x, int64_t C, int64_t y, int64_t p, double margin,
                            double c)
{
    T xy = x[y];
    double back = 0;
    for (int64_t j = 0; j < C; j++) {
        double z = (double)(T)((T)(x[j] - xy) + (T)margin);
        bool keep = (j != y) & (z > 0);
        double cdz = c * (p == 2 ? 2 * z : 1);
        dx[j] = keep ? (T)((double)dx[j] + cdz) : dx[j];
        back += keep ? cdz : 0.0;
    }
    dx[y] = (T)((double)dx[y] - back);
}

/* multilabel margin, one row: sum_{jj < len} sum_{k not labelled, z > 0} z,
 * z = 1 - x_j + x_k, j = row[jj] (a repeated label counts again) */
static double FN(mlm_row)(const T *x, int64_t C, const int64_t *row, int64_t len, const bool *lab)
{
    double s = 0;
    for (int64_t jj = 0; jj < len; jj++) {
        T xj = x[row[jj]];
        for (int64_t k = 0; k < C; k++) {
            double z = (double)(T)((T)(-xj + 1) + x[k]);
            s += !lab[k] & (z > 0) ? z : 0.0;
        }
    }
    return s;
}

/* its gradient times c into the row dx: + c at k, - c at j, per term (j
 * is a label and k is not, so the two never meet; x_j's share is summed
 * in T as it goes, as storing it each term did) */
static void FN(mlm_row_grad)(T *dx, const T *x, int64_t C, const int64_t *row, int64_t len,
                             const bool *lab, double c)
{
    for (int64_t jj = 0; jj < len; jj++) {
        int64_t j = row[jj];
        T xj = x[j], dj = dx[j];
        for (int64_t k = 0; k < C; k++) {
            double z = (double)(T)((T)(-xj + 1) + x[k]);
            bool keep = !lab[k] & (z > 0);
            dx[k] = keep ? (T)((double)dx[k] + c) : dx[k];
            dj = keep ? (T)((double)dj - c) : dj;
        }
        dx[j] = dj;
    }
}

/* The weight of row i's class (1 without weight). */
static inline double FN(class_weight)(const lgL_fused *f, int64_t y)
{
    const T *w = f->in[1] ? (const T *)f->in[1]->data : NULL;
    return w ? (double)w[y] : 1.0;
}

/* The driver's row kernels (fused.h). Row i's value is (w[y_i] / C)
 * times its hinge sum; its gradient's factor c the same times the row's
 * upstream g. */
static double FN(mm_value)(const lgL_fused *f, int64_t i)
{
    const hinge_saved *h = f->saved;
    const T *x = f->in[0]->data;
    int64_t C = h->C, y = h->y[i];
    return (double)(T)(FN(mm_row)(x + i * C, C, y, h->p, h->margin) * (1.0 / (double)C) *
                       FN(class_weight)(f, y));
}

static void FN(mm_grad)(const lgL_fused *f, int64_t i, double g, void *const *d)
{
    const hinge_saved *h = f->saved;
    const T *x = f->in[0]->data;
    T *dx = d[0];
    int64_t C = h->C, y = h->y[i];
    if (dx)
        FN(mm_row_grad)
        (dx + i * C, x + i * C, C, y, h->p, h->margin,
         g * (1.0 / (double)C) * FN(class_weight)(f, y));
}

static double FN(mlm_value)(const lgL_fused *f, int64_t i)
{
    const hinge_saved *h = f->saved;
    const T *x = f->in[0]->data;
    int64_t C = h->C;
    return (double)(T)(FN(mlm_row)(x + i * C, C, h->y + i * C, h->len[i], h->lab + i * C) *
                       (1.0 / (double)C));
}

static void FN(mlm_grad)(const lgL_fused *f, int64_t i, double g, void *const *d)
{
    const hinge_saved *h = f->saved;
    const T *x = f->in[0]->data;
    T *dx = d[0];
    int64_t C = h->C;
    if (dx)
        FN(mlm_row_grad)
        (dx + i * C, x + i * C, C, h->y + i * C, h->len[i], h->lab + i * C, g * (1.0 / (double)C));
}
