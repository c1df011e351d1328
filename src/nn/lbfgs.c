/* lbfgs.c: L-BFGS as torch.optim.LBFGS (1.13, itself after minFunc): up
 * to max_iter iterations per step, each a two-loop recursion over the last
 * history_size correction pairs (s, y) for the direction d, then a fixed
 * step lr (lr min(1, 1 / ||g||_1) at the very first iteration) or a
 * strong-Wolfe line search by cubic interpolation (More and Thuente's
 * conditions, c1 1e-4, c2 0.9, 25 evaluations at most).
 *
 * The parameters are one flat vector in the order given; the vectors of
 * the method (d, the previous gradient, the pairs) are doubles held in
 * persistent memory, so the history costs 2 history_size P doubles at
 * most. A parameter without a gradient counts as a zero gradient, as
 * PyTorch's. Parameters are written in their dtype: p + t d rounded once.
 */
#include "optim.h"

#include <math.h>
#include <string.h>

struct lgN_lbfgs {
    int64_t P;                       /* the flat size */
    double *d, *g, *prev_g, *x0, *q; /* direction, gradient, previous one, a copy, work */
    double *gbest;                   /* the line search's gradient at its best point */
    double *bracket_g[2];            /* its brackets' gradients */
    double **dirs, **stps, *ro, *al; /* the pairs y, s, 1 / y.s, the recursion's alphas */
    int hist, nold, first;           /* history_size, pairs held, the oldest's index (a ring) */
    double t, H_diag, prev_loss;
    int64_t n_iter, func_evals;
};

static double *vec(lg_ctx *ctx, int64_t n, const char *who)
{
    return lgC_palloc(ctx, (size_t)n * sizeof(double), who);
}

/* Frees a state and every vector it holds (s may be NULL or half made). */
void lgN_lbfgs_free(lg_optim *o, struct lgN_lbfgs *s)
{
    if (!s)
        return;
    lg_ctx *ctx = o->ctx;
    double *vs[] = { s->d,  s->g,     s->prev_g,       s->x0,
                     s->q,  s->gbest, s->bracket_g[0], s->bracket_g[1],
                     s->ro, s->al };
    for (size_t k = 0; k < sizeof vs / sizeof *vs; k++)
        lgC_pfree(ctx, vs[k]);
    for (int k = 0; k < s->hist; k++) {
        lgC_pfree(ctx, s->dirs ? s->dirs[k] : NULL);
        lgC_pfree(ctx, s->stps ? s->stps[k] : NULL);
    }
    lgC_pfree(ctx, s->dirs);
    lgC_pfree(ctx, s->stps);
    lgC_pfree(ctx, s);
}

/* A fresh state for P parameters' elements (P doubles x 8, and the
 * history's pointers; the pairs' vectors as they come), or NULL with the
 * ctx error set and nothing kept. */
static struct lgN_lbfgs *new_state(lg_optim *o, int64_t P, const char *who)
{
    lg_ctx *ctx = o->ctx;
    const int h = o->groups[0].history_size;
    struct lgN_lbfgs *s = lgC_palloc(ctx, sizeof *s, who);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->P = P, s->hist = h;
    size_t pb = (size_t)P * sizeof(double), hb = (size_t)h * sizeof(double);
    if (!(s->d = lgC_palloc(ctx, pb, who)) || !(s->g = lgC_palloc(ctx, pb, who)) ||
        !(s->prev_g = lgC_palloc(ctx, pb, who)) || !(s->x0 = lgC_palloc(ctx, pb, who)) ||
        !(s->q = lgC_palloc(ctx, pb, who)) || !(s->gbest = lgC_palloc(ctx, pb, who)) ||
        !(s->bracket_g[0] = lgC_palloc(ctx, pb, who)) ||
        !(s->bracket_g[1] = lgC_palloc(ctx, pb, who)) || !(s->ro = lgC_palloc(ctx, hb, who)) ||
        !(s->al = lgC_palloc(ctx, hb, who)) ||
        !(s->dirs = lgC_palloc(ctx, (size_t)h * sizeof *s->dirs, who)) ||
        !(s->stps = lgC_palloc(ctx, (size_t)h * sizeof *s->stps, who))) {
        lgN_lbfgs_free(o, s);
        return NULL;
    }
    memset(s->dirs, 0, (size_t)h * sizeof *s->dirs);
    memset(s->stps, 0, (size_t)h * sizeof *s->stps);
    s->H_diag = 1;
    return s;
}

/* The parameters' elements in all (false with the ctx error set when the
 * vectors' size would overflow). */
static bool flat_size(lg_optim *o, const char *who, int64_t *P)
{
    *P = 0;
    for (int i = 0; i < o->n; i++) {
        int64_t k = lg_tensor_numel(o->params[i]);
        if (k > INT64_MAX / 8 - *P) {
            lgC_errorf(o->ctx, LG_ERR_VALUE,
                       "%s: the parameters hold too many elements for LBFGS's vectors", who);
            return false;
        }
        *P += k;
    }
    return true;
}

/* The state, made at the first step. */
static struct lgN_lbfgs *state(lg_optim *o)
{
    int64_t P;
    if (!o->lbfgs && flat_size(o, "lg_optim_step_closure", &P))
        o->lbfgs = new_state(o, P, "lg_optim_step_closure");
    return o->lbfgs;
}

static double dot(const double *a, const double *b, int64_t n)
{
    double r = 0;
    for (int64_t j = 0; j < n; j++)
        r += a[j] * b[j];
    return r;
}

static double abs_max(const double *a, int64_t n)
{
    double m = 0;
    for (int64_t j = 0; j < n; j++) {
        double v = fabs(a[j]);
        m = v > m || v != v ? v : m;
    }
    return m;
}

/* The flat gradient (zeros for a parameter without one). */
static void gather_grad(const lg_optim *o, double *g)
{
    int64_t at = 0;
    for (int i = 0; i < o->n; i++) {
        lg_tensor *p = o->params[i], *gr = lg_tensor_grad(p);
        int64_t k = lg_tensor_numel(p);
        for (int64_t j = 0; j < k; j++)
            g[at + j] = gr ? lgN_get(gr, j) : 0;
        at += k;
    }
}

/* p += t d, in the parameters' dtype. */
static void add_dir(const lg_optim *o, double t, const double *d)
{
    int64_t at = 0;
    for (int i = 0; i < o->n; i++) {
        lg_tensor *p = o->params[i];
        int64_t k = lg_tensor_numel(p);
        if (lg_tensor_dtype(p) == LG_F32) {
            float *v = lg_tensor_data(p);
            for (int64_t j = 0; j < k; j++)
                v[j] = v[j] + (float)t * (float)d[at + j];
        } else {
            double *v = lg_tensor_data(p);
            for (int64_t j = 0; j < k; j++)
                v[j] = v[j] + t * d[at + j];
        }
        at += k;
    }
}

static void get_params(const lg_optim *o, double *x)
{
    int64_t at = 0;
    for (int i = 0; i < o->n; i++) {
        lg_tensor *p = o->params[i];
        for (int64_t j = 0; j < lg_tensor_numel(p); j++)
            x[at + j] = lgN_get(p, j);
        at += lg_tensor_numel(p);
    }
}

static void set_params(const lg_optim *o, const double *x)
{
    int64_t at = 0;
    for (int i = 0; i < o->n; i++) {
        lg_tensor *p = o->params[i];
        for (int64_t j = 0; j < lg_tensor_numel(p); j++)
            lgN_set(p, j, x[at + j]);
        at += lg_tensor_numel(p);
    }
}

typedef struct call {
    lg_optim *o;
    lg_closure_fn fn;
    void *user;
    lg_status st;
} call;

/* One evaluation: the closure's loss and the flat gradient into g; false
 * (c->st set) when the closure fails. */
static bool evaluate(call *c, double *loss, double *g)
{
    lg_ctx *ctx = c->o->ctx;
    double v = c->fn(ctx, c->user);
    if (lg_ctx_status(ctx) != LG_OK) {
        c->st = lg_ctx_status(ctx);
        return false;
    }
    if (isnan(v)) {
        c->st = lgC_errorf(ctx, LG_ERR_VALUE, "lg_optim_step_closure: the closure returned NaN");
        return false;
    }
    *loss = v;
    gather_grad(c->o, g);
    return true;
}

/* The loss and gradient at x + t d; the parameters are x again after. */
static bool directional(call *c, const double *x, double t, const double *d, double *loss,
                        double *g)
{
    add_dir(c->o, t, d);
    bool ok = evaluate(c, loss, g);
    set_params(c->o, x);
    return ok;
}

/* The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2) within
 * the bounds (the interval's ends when lo > hi is not given: has_bounds). */
static double cubic(double x1, double f1, double g1, double x2, double f2, double g2,
                    bool has_bounds, double lo, double hi)
{
    if (!has_bounds)
        lo = x1 <= x2 ? x1 : x2, hi = x1 <= x2 ? x2 : x1;
    double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
    double d2_square = d1 * d1 - g1 * g2;
    if (d2_square >= 0) {
        double d2 = sqrt(d2_square), min_pos;
        if (x1 <= x2)
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2));
        else
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
        double m = min_pos > lo ? min_pos : lo; /* Python's min(max(m, lo), hi) */
        return m < hi ? m : hi;
    }
    return (lo + hi) / 2.;
}

/* The strong-Wolfe search from x along d with step t: *f and g (in s->g)
 * become the chosen point's, *t its step; *evals the closure calls. */
static bool strong_wolfe(call *c, struct lgN_lbfgs *s, const double *x, double *t, double *f,
                         double gtd, double tol_change, int *evals)
{
    const double c1 = 1e-4, c2 = 0.9;
    const int max_ls = 25;
    const int64_t P = s->P;
    double *d = s->d, *g = s->g, *gnew = s->gbest;
    double d_norm = abs_max(d, P), f0 = *f, gtd0 = gtd;
    memcpy(s->q, g, (size_t)P * sizeof *g); /* g at t = 0 */
    double f_new, gtd_new;
    if (!directional(c, x, *t, d, &f_new, gnew))
        return false;
    *evals = 1;
    gtd_new = dot(gnew, d, P);
    double t_prev = 0, f_prev = f0, gtd_prev = gtd0;
    double *g_prev = s->bracket_g[0]; /* the previous point's gradient */
    memcpy(g_prev, s->q, (size_t)P * sizeof *g);
    bool done = false;
    int ls_iter = 0, nb = 0;
    double br[2] = { 0, 0 }, bf[2] = { 0, 0 }, bgtd[2] = { 0, 0 };
    double *bg[2] = { s->bracket_g[0], s->bracket_g[1] };
    while (ls_iter < max_ls) {
        if (f_new > f0 + c1 * *t * gtd0 || (ls_iter > 1 && f_new >= f_prev)) {
            nb = 2, br[0] = t_prev, br[1] = *t, bf[0] = f_prev, bf[1] = f_new;
            bgtd[0] = gtd_prev, bgtd[1] = gtd_new;
            memcpy(bg[1], gnew, (size_t)P * sizeof *g); /* bg[0] is g_prev already */
            break;
        }
        if (fabs(gtd_new) <= -c2 * gtd0) {
            nb = 1, br[0] = *t, bf[0] = f_new;
            memcpy(bg[0], gnew, (size_t)P * sizeof *g);
            done = true;
            break;
        }
        if (gtd_new >= 0) {
            nb = 2, br[0] = t_prev, br[1] = *t, bf[0] = f_prev, bf[1] = f_new;
            bgtd[0] = gtd_prev, bgtd[1] = gtd_new;
            memcpy(bg[1], gnew, (size_t)P * sizeof *g);
            break;
        }
        double min_step = *t + 0.01 * (*t - t_prev), max_step = *t * 10, tmp = *t;
        *t = cubic(t_prev, f_prev, gtd_prev, *t, f_new, gtd_new, true, min_step, max_step);
        t_prev = tmp, f_prev = f_new, gtd_prev = gtd_new;
        memcpy(g_prev, gnew, (size_t)P * sizeof *g);
        if (!directional(c, x, *t, d, &f_new, gnew))
            return false;
        ++*evals;
        gtd_new = dot(gnew, d, P);
        ls_iter++;
    }
    if (ls_iter == max_ls) { /* the bracket [0, t] */
        nb = 2, br[0] = 0, br[1] = *t, bf[0] = f0, bf[1] = f_new;
        memcpy(bg[0], s->q, (size_t)P * sizeof *g);
        memcpy(bg[1], gnew, (size_t)P * sizeof *g);
    }
    bool insuf = false;
    int low = bf[0] <= bf[nb - 1] ? 0 : 1, high = 1 - low;
    while (!done && ls_iter < max_ls) {
        if (fabs(br[1] - br[0]) * d_norm < tol_change)
            break;
        *t = cubic(br[0], bf[0], bgtd[0], br[1], bf[1], bgtd[1], false, 0, 0);
        double bmax = br[0] > br[1] ? br[0] : br[1], bmin = br[0] < br[1] ? br[0] : br[1];
        double eps = 0.1 * (bmax - bmin);
        if ((bmax - *t < *t - bmin ? bmax - *t : *t - bmin) < eps) {
            if (insuf || *t >= bmax || *t <= bmin) {
                *t = fabs(*t - bmax) < fabs(*t - bmin) ? bmax - eps : bmin + eps;
                insuf = false;
            } else {
                insuf = true;
            }
        } else {
            insuf = false;
        }
        if (!directional(c, x, *t, d, &f_new, gnew))
            return false;
        ++*evals;
        gtd_new = dot(gnew, d, P);
        ls_iter++;
        if (f_new > f0 + c1 * *t * gtd0 || f_new >= bf[low]) {
            br[high] = *t, bf[high] = f_new, bgtd[high] = gtd_new;
            memcpy(bg[high], gnew, (size_t)P * sizeof *g);
            low = bf[0] <= bf[1] ? 0 : 1, high = 1 - low;
        } else {
            if (fabs(gtd_new) <= -c2 * gtd0) {
                done = true;
            } else if (gtd_new * (br[high] - br[low]) >= 0) {
                br[high] = br[low], bf[high] = bf[low], bgtd[high] = bgtd[low];
                memcpy(bg[high], bg[low], (size_t)P * sizeof *g);
            }
            br[low] = *t, bf[low] = f_new, bgtd[low] = gtd_new;
            memcpy(bg[low], gnew, (size_t)P * sizeof *g);
        }
    }
    if (nb == 1)
        low = 0;
    *t = br[low], *f = bf[low];
    memcpy(g, bg[low], (size_t)P * sizeof *g);
    return true;
}

/* The pair (y, s) into the ring (the oldest dropped when it is full). */
static bool push_pair(lg_optim *o, struct lgN_lbfgs *s, const double *y, const double *st,
                      double ys)
{
    const int h = o->groups[0].history_size;
    int slot;
    if (s->nold == h) {
        slot = s->first;
        s->first = (s->first + 1) % h;
    } else {
        slot = (s->first + s->nold) % h;
        if (!s->dirs[slot] && (!(s->dirs[slot] = vec(o->ctx, s->P, "lg_optim_step_closure")) ||
                               !(s->stps[slot] = vec(o->ctx, s->P, "lg_optim_step_closure"))))
            return false;
        s->nold++;
    }
    memcpy(s->dirs[slot], y, (size_t)s->P * sizeof *y);
    memcpy(s->stps[slot], st, (size_t)s->P * sizeof *st);
    s->ro[slot] = 1. / ys;
    return true;
}

lg_status lgN_lbfgs_step(lg_optim *o, lg_closure_fn closure, void *user, double *out)
{
    const lgN_hyper *h = &o->groups[0];
    struct lgN_lbfgs *s = state(o);
    if (!s)
        return o->ctx->status;
    const int64_t P = s->P;
    const int hist = h->history_size;
    call c = { o, closure, user, LG_OK };
    double loss;
    if (!evaluate(&c, &loss, s->g))
        return c.st;
    if (out)
        *out = loss;
    int current_evals = 1;
    s->func_evals++;
    if (abs_max(s->g, P) <= h->tolerance_grad)
        return LG_OK;
    double *d = s->d, *g = s->g, *q = s->q;
    for (int n_iter = 1; n_iter <= h->max_iter; n_iter++) {
        s->n_iter++;
        if (s->n_iter == 1) {
            for (int64_t j = 0; j < P; j++)
                d[j] = -g[j];
            s->nold = 0, s->first = 0, s->H_diag = 1;
        } else {
            /* y = g - g_prev into x0 (free here), s = d t into q */
            double *y = s->x0, *st = q;
            for (int64_t j = 0; j < P; j++)
                y[j] = g[j] - s->prev_g[j], st[j] = d[j] * s->t;
            double ys = dot(y, st, P);
            if (ys > 1e-10) {
                if (!push_pair(o, s, y, st, ys))
                    return o->ctx->status;
                s->H_diag = ys / dot(y, y, P);
            }
            /* two-loop recursion: q = -g, newest to oldest; d = H_diag q;
             * oldest to newest */
            for (int64_t j = 0; j < P; j++)
                q[j] = -g[j];
            for (int k = s->nold - 1; k >= 0; k--) {
                int at = (s->first + k) % hist;
                s->al[at] = dot(s->stps[at], q, P) * s->ro[at];
                for (int64_t j = 0; j < P; j++)
                    q[j] += -s->al[at] * s->dirs[at][j];
            }
            for (int64_t j = 0; j < P; j++)
                d[j] = q[j] * s->H_diag;
            for (int k = 0; k < s->nold; k++) {
                int at = (s->first + k) % hist;
                double be = dot(s->dirs[at], d, P) * s->ro[at];
                for (int64_t j = 0; j < P; j++)
                    d[j] += (s->al[at] - be) * s->stps[at][j];
            }
        }
        memcpy(s->prev_g, g, (size_t)P * sizeof *g);
        s->prev_loss = loss;
        if (s->n_iter == 1) {
            double l1 = 0;
            for (int64_t j = 0; j < P; j++)
                l1 += fabs(g[j]);
            s->t = (1. / l1 < 1. ? 1. / l1 : 1.) * h->lr; /* Python's min(1., x): 1 for NaN */
        } else {
            s->t = h->lr;
        }
        double gtd = dot(g, d, P);
        if (gtd > -h->tolerance_change)
            break;
        int ls_evals = 0;
        bool opt_cond = false;
        if (h->line_search == LG_LINE_SEARCH_STRONG_WOLFE) {
            get_params(o, s->x0);
            /* PyTorch's step passes _strong_wolfe no tolerance_change: its 1e-9 */
            if (!strong_wolfe(&c, s, s->x0, &s->t, &loss, gtd, 1e-9, &ls_evals))
                return c.st;
            add_dir(o, s->t, d);
            opt_cond = abs_max(g, P) <= h->tolerance_grad;
        } else {
            add_dir(o, s->t, d);
            if (n_iter != h->max_iter) {
                if (!evaluate(&c, &loss, g))
                    return c.st;
                opt_cond = abs_max(g, P) <= h->tolerance_grad;
                ls_evals = 1;
            }
        }
        current_evals += ls_evals;
        s->func_evals += ls_evals;
        if (n_iter == h->max_iter || current_evals >= h->max_eval || opt_cond)
            break;
        double change = 0;
        for (int64_t j = 0; j < P; j++) {
            double v = fabs(d[j] * s->t);
            change = v > change || v != v ? v : change;
        }
        if (change <= h->tolerance_change || fabs(loss - s->prev_loss) < h->tolerance_change)
            break;
    }
    return LG_OK;
}

/* ------------------------------------------------------------------ */
/* The state in checkpoints                                             */
/* ------------------------------------------------------------------ */

bool lgN_lbfgs_saved_dims(const lg_optim *o, int64_t *P, int *nold)
{
    const struct lgN_lbfgs *s = o->lbfgs;
    if (!s)
        return false;
    *P = s->P, *nold = s->nold;
    return true;
}

void lgN_lbfgs_export(const lg_optim *o, lgN_lbfgs_saved *v)
{
    const struct lgN_lbfgs *s = o->lbfgs;
    const size_t pb = (size_t)s->P * sizeof(double);
    v->P = s->P, v->nold = s->nold;
    memcpy(v->d, s->d, pb);
    memcpy(v->prev_flat_grad, s->prev_g, pb);
    for (int k = 0; k < s->nold; k++) { /* oldest first, as PyTorch's lists */
        int at = (s->first + k) % s->hist;
        memcpy(v->old_dirs + (size_t)k * (size_t)s->P, s->dirs[at], pb);
        memcpy(v->old_stps + (size_t)k * (size_t)s->P, s->stps[at], pb);
        v->ro[k] = s->ro[at];
    }
    v->t = s->t, v->H_diag = s->H_diag;
    v->n_iter = s->n_iter, v->func_evals = s->func_evals;
}

int64_t lgN_lbfgs_flat_size(const lg_optim *o)
{
    int64_t P = 0;
    for (int i = 0; i < o->n; i++)
        P += lg_tensor_numel(o->params[i]); /* the tensors exist: no overflow */
    return P;
}

struct lgN_lbfgs *lgN_lbfgs_build(lg_optim *o, const lgN_lbfgs_saved *v, const char *who)
{
    struct lgN_lbfgs *s = new_state(o, v->P, who);
    if (!s)
        return NULL;
    const size_t pb = (size_t)v->P * sizeof(double);
    for (int k = 0; k < v->nold; k++) {
        if (!(s->dirs[k] = vec(o->ctx, v->P, who)) || !(s->stps[k] = vec(o->ctx, v->P, who))) {
            lgN_lbfgs_free(o, s);
            return NULL;
        }
        memcpy(s->dirs[k], v->old_dirs + (size_t)k * (size_t)v->P, pb);
        memcpy(s->stps[k], v->old_stps + (size_t)k * (size_t)v->P, pb);
        s->ro[k] = v->ro[k];
    }
    memcpy(s->d, v->d, pb);
    memcpy(s->prev_g, v->prev_flat_grad, pb);
    s->nold = v->nold, s->first = 0;
    s->t = v->t, s->H_diag = v->H_diag;
    s->n_iter = v->n_iter, s->func_evals = v->func_evals;
    return s;
}
