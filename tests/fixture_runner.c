/* lossgrad-fixtures: the loss conformance runner (../shared/FIXTURES.md).
 *
 *   lossgrad-fixtures [--second-order [--kinks FILE]] FILE...
 *   lossgrad-fixtures --hvp FILE...
 *
 * --second-order: also compares lg_grad's first-order gradients (the taped
 * backwards') with the case's, and runs lg_gradgradcheck (float64) on every case with
 * gradient lines, with respect to those inputs (each alone when moving one
 * leaves another's domain, a +-1 target): the loss's second derivatives
 * against central differences of its first gradients, at the fixture's
 * inputs and options. --kinks lists the cases where those differences
 * cannot judge (a kink, a non-finite value): there they must differ, so
 * the list stays exact.
 *
 * --hvp: the files are second-order fixtures (docs/second_order_fixtures.md,
 * tools/gen_second_order.py): each case also has, per graded role (each
 * grad line's), a `v ROLE` direction and an `hvp ROLE` line, PyTorch's
 * Hessian of f = sum(out * upstream) in the graded inputs times v. Besides
 * the first-order checks, in float64 only: the graded inputs require grad,
 * f is rebuilt (out itself when it has one element and no upstream), and
 * lg_hvp's result is compared with each hvp line by the float64 rule. A
 * case without those lines fails; outside --hvp they are unknown records.
 *
 * Reads every case of every file (fixture_read.c), evaluates it through the
 * public API in float64 and in float32, compares the output and every
 * listed gradient with PyTorch's float64 numbers, prints one line per
 * failed case and ends with "N passed, M failed". Exit status 1 if
 * anything failed, 2 if a file could not be read. Unknown losses, options
 * and roles fail the case. Which losses exist, their inputs and options:
 * src/loss/losses.def, through loss_table.h; nothing here names a loss. */
#include "fixture_read.h"
#include "loss_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Evaluation                                                           */
/* ------------------------------------------------------------------ */

typedef struct eval {
    lg_ctx *ctx;
    lg_dtype dt;
    const fcase *c;
    lg_tensor *in[MAX_TENSORS];
    char why[256];
} eval;

static const ftensor *find_in(const fcase *c, const char *role)
{
    for (int i = 0; i < c->nin; i++)
        if (!strcmp(c->in[i].role, role))
            return &c->in[i];
    return NULL;
}

static lg_tensor *input_tensor(eval *e, const char *role)
{
    for (int i = 0; i < e->c->nin; i++)
        if (!strcmp(e->c->in[i].role, role))
            return e->in[i];
    return NULL;
}

static lg_tensor *make_tensor(eval *e, const ftensor *t)
{
    if (t->is_int)
        return lg_tensor_from(e->ctx, LG_I64, t->iv, t->ndim, t->shape);
    lg_tensor *x = lg_zeros(e->ctx, e->dt, t->ndim, t->shape);
    if (!x)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        if (e->dt == LG_F32)
            ((float *)lg_tensor_data(x))[i] = (float)t->v[i];
        else
            ((double *)lg_tensor_data(x))[i] = t->v[i];
    }
    return x;
}

/* Options: the loss's option rows say which keys it takes and which field
 * each writes (lt_set_text). The struct starts as the loss's
 * lg_*_opts_default(), so an option the case does not give keeps PyTorch's
 * default; the last of a repeated key wins. */
static bool parse_opts(eval *e, const lt_loss *L, lt_any_opts *o)
{
    L->defaults(o);
    for (int i = 0; i < e->c->nopt; i++) {
        const char *k = e->c->opt_key[i], *v = e->c->opt_val[i];
        const lt_opt *r = lt_find_opt(L, k);
        if (!r || r->kind == LT_TENSOR) { /* tensor options come as inputs */
            snprintf(e->why, sizeof e->why, "unknown option '%s' for %s", k, e->c->loss);
            return false;
        }
        if (!lt_set_text(o, r, v)) {
            snprintf(e->why, sizeof e->why, "bad value '%s' for option '%s'", v, k);
            return false;
        }
    }
    return true;
}

/* A role the loss takes: one of its inputs, or a tensor option (weight). */
static bool takes_role(const lt_loss *L, const char *role)
{
    const lt_opt *r = lt_find_opt(L, role);
    return lt_role_index(L, role) >= 0 || (r && r->kind == LT_TENSOR);
}

static lg_tensor *call_loss(eval *e, const lt_loss *L, lt_any_opts *o)
{
    const lt_opt *r;
    lg_tensor *in[LT_MAX_IN] = { 0 };
    const lt_opt *clash[2];
    if (!lt_apply_flags(L, o, e->c->nopt, e->c->opt_key, e->c->opt_val, clash)) {
        snprintf(e->why, sizeof e->why, "%s: %s and %s both true", L->name, clash[0]->key,
                 clash[1]->key);
        return NULL;
    }
    for (int i = 0; (r = lt_opt_at(L, i)); i++)
        if (r->kind == LT_TENSOR)
            lt_set_tensor(o, r, input_tensor(e, r->key));
    for (int i = 0; i < L->nin && i < LT_MAX_IN; i++)
        in[i] = lt_role(L, i) ? input_tensor(e, lt_role(L, i)) : NULL;
    return L->call(e->ctx, in, o);
}

/* Compares a computed tensor with the fixture's float64 values. */
static bool compare(eval *e, lg_tensor *got, const ftensor *want, const char *what)
{
    if (lg_tensor_ndim(got) != want->ndim ||
        memcmp(lg_tensor_shape(got), want->shape, (size_t)want->ndim * sizeof(int64_t))) {
        snprintf(e->why, sizeof e->why, "%s: shape differs (ndim %d, expected %d)", what,
                 lg_tensor_ndim(got), want->ndim);
        return false;
    }
    double scale = 1;
    for (int64_t i = 0; i < want->numel; i++)
        if (isfinite(want->v[i]) && fabs(want->v[i]) > scale)
            scale = fabs(want->v[i]);
    for (int64_t i = 0; i < want->numel; i++) {
        double w = want->v[i];
        double g = e->dt == LG_F32 ? ((float *)lg_tensor_data(got))[i]
                                   : ((double *)lg_tensor_data(got))[i];
        bool ok;
        if (isnan(w))
            ok = isnan(g);
        else if (isinf(w))
            ok = g == w;
        else if (e->dt == LG_F64)
            ok = fabs(g - w) <= 1e-9 + 1e-7 * fabs(w);
        else
            ok = fabs(g - w) <= 1e-5 * scale + 1e-4 * fabs(w);
        if (!ok) {
            snprintf(e->why, sizeof e->why, "%s[%lld] = %.17g, expected %.17g", what, (long long)i,
                     g, w);
            return false;
        }
    }
    return true;
}

static bool second_order;
static char **kinks; /* --kinks: case ids, NULL-terminated */

static bool is_kink(const char *id)
{
    for (char **k = kinks; k && *k; k++)
        if (!strcmp(*k, id))
            return true;
    return false;
}

/* One id per line (then anything); '#' lines are comments. */
static bool read_kinks(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[512], id[256];
    size_t n = 0;
    while (fgets(line, sizeof line, f))
        if (line[0] != '#' && sscanf(line, "%255s", id) == 1) {
            char **k = realloc(kinks, (n + 2) * sizeof *k);
            if (!k || !(k[n] = strdup(id))) {
                fclose(f);
                return false;
            }
            kinks = k, kinks[++n] = NULL;
        }
    fclose(f);
    return true;
}

/* The loss as gradgradcheck's function of the graded inputs: the case's
 * other inputs stay as made. */
typedef struct graded {
    eval *e;
    const lt_loss *L;
    lt_any_opts *o;
    int n, slot[MAX_TENSORS]; /* e->in slots of the graded roles */
} graded;

static lg_tensor *graded_call(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)ctx;
    graded *g = user;
    lg_tensor *keep[MAX_TENSORS];
    for (int k = 0; k < g->n; k++)
        keep[k] = g->e->in[g->slot[k]], g->e->in[g->slot[k]] = xs[k];
    lt_any_opts o = *g->o;
    lg_tensor *out = call_loss(g->e, g->L, &o);
    for (int k = 0; k < g->n; k++)
        g->e->in[g->slot[k]] = keep[k];
    return out;
}

/* lg_grad's first-order gradients (the taped backwards') against
 * PyTorch's, as lg_backward's were; in a step of their own. */
static bool taped_first_order(eval *e, const lt_loss *L, const lt_any_opts *o, const graded *g,
                              lg_tensor *const *xs)
{
    lg_tensor *gr[MAX_TENSORS];
    lt_any_opts oc = *o;
    for (int k = 0; k < g->n; k++)
        lg_requires_grad(e->ctx, xs[k], true);
    lg_tensor *out = call_loss(e, L, &oc);
    if (!out)
        return false;
    lg_tensor *u = e->c->has_upstream
                       ? make_tensor(e, &e->c->upstream)
                       : lg_ones(e->ctx, LG_F64, lg_tensor_ndim(out), lg_tensor_shape(out));
    bool reached = lg_tensor_requires_grad(out);
    lg_grad_opts go = lg_grad_opts_default();
    go.allow_unused = true;
    if (reached && lg_grad(e->ctx, 1, &out, &u, g->n, xs, gr, &go) != LG_OK) {
        snprintf(e->why, sizeof e->why, "lg_grad: %s", lg_ctx_errmsg(e->ctx));
        return false;
    }
    for (int k = 0; k < g->n; k++) {
        lg_tensor *gk = reached ? gr[k] : NULL;
        if (!gk)
            gk = lg_zeros(e->ctx, LG_F64, lg_tensor_ndim(xs[k]), lg_tensor_shape(xs[k]));
        const char *role = e->c->in[g->slot[k]].role;
        for (int i = 0; i < e->c->ngrad; i++)
            if (!strcmp(e->c->grad[i].role, role)) {
                char what[64];
                snprintf(what, sizeof what, "lg_grad %s", role);
                if (!compare(e, gk, &e->c->grad[i], what))
                    return false;
            }
    }
    /* fresh inputs for what follows */
    lg_step_end(e->ctx);
    for (int k = 0; k < e->c->nin; k++)
        if (!(e->in[k] = make_tensor(e, &e->c->in[k])))
            return false;
    return true;
}

/* 1: the second derivatives match; 0: they differ (or cannot be judged:
 * every input at its domain's edge); -1: the case failed otherwise (its
 * first-order lg_grad included), e->why says how. */
static int second_check(eval *e, const lt_loss *L, lt_any_opts *o)
{
    graded g = { .e = e, .L = L, .o = o };
    lg_tensor *xs[MAX_TENSORS];
    for (int i = 0; i < e->c->ngrad; i++)
        for (int k = 0; k < e->c->nin; k++)
            if (!strcmp(e->c->in[k].role, e->c->grad[i].role)) {
                g.slot[g.n] = k;
                xs[g.n++] = e->in[k];
            }
    lg_step_end(e->ctx); /* the first-order graph and gradients go */
    for (int k = 0; k < e->c->nin; k++) /* the inputs again, in the new step */
        if (!(e->in[k] = make_tensor(e, &e->c->in[k])))
            return -1;
    for (int k = 0; k < g.n; k++)
        xs[k] = e->in[g.slot[k]];
    if (!taped_first_order(e, L, o, &g, xs))
        return -1;
    for (int k = 0; k < g.n; k++)
        xs[k] = e->in[g.slot[k]];
    lg_gradcheck_report r;
    lg_status st = lg_gradgradcheck(e->ctx, graded_call, &g, g.n, xs, NULL, &r);
    if (st == LG_ERR_VALUE && g.n > 1) {
        /* a perturbation left an input's domain (a +-1 target): each input
         * alone, without those that cannot move */
        graded all = g;
        bool ok = true;
        int judged = 0;
        for (int k = 0; k < all.n && ok; k++) {
            lg_ctx_clear_error(e->ctx);
            g.n = 1, g.slot[0] = all.slot[k];
            st = lg_gradgradcheck(e->ctx, graded_call, &g, 1, &xs[k], NULL, &r);
            if (st == LG_ERR_VALUE)
                continue;
            judged++;
            ok = st == LG_OK && r.ok;
        }
        if (st == LG_ERR_VALUE)
            lg_ctx_clear_error(e->ctx), st = LG_OK, r.ok = ok;
        if (st == LG_OK && judged == 0) { /* nothing could move: not a match */
            snprintf(e->why, sizeof e->why, "second derivative: every input is at its domain's edge");
            return 0;
        }
    }
    if (st != LG_OK) { /* LG_ERR_VALUE: the one input moved out of its domain */
        snprintf(e->why, sizeof e->why, "gradgradcheck: %s", lg_ctx_errmsg(e->ctx));
        return st == LG_ERR_VALUE ? 0 : -1;
    }
    if (!r.ok)
        snprintf(e->why, sizeof e->why,
                 "second derivative: input %d element %lld: analytic %.12g, numeric %.12g",
                 r.worst_input, (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
    return r.ok ? 1 : 0;
}

static bool hvp_mode; /* --hvp: the files carry v and hvp lines */

/* The case's graded input of a role (a grad line names it), or -1. */
static int graded_slot(const fcase *c, const char *role)
{
    for (int i = 0; i < c->ngrad; i++)
        if (!strcmp(c->grad[i].role, role))
            for (int k = 0; k < c->nin; k++)
                if (!strcmp(c->in[k].role, role))
                    return k;
    return -1;
}

static bool ctx_failed(eval *e, const char *what)
{
    snprintf(e->why, sizeof e->why, "hvp: %s: %s", what, lg_ctx_errmsg(e->ctx));
    return false;
}

/* --hvp, float64: H v of f = sum(out * upstream) in the graded inputs
 * (every grad line's role: lg_hvp's inputs, in grad-line order, with the
 * case's v lines as directions) against each hvp line. */
static bool hvp_check(eval *e, const lt_loss *L, lt_any_opts *o)
{
    const fcase *c = e->c;
    lg_tensor *xs[MAX_TENSORS], *vs[MAX_TENSORS], *hv[MAX_TENSORS];
    int n = c->ngrad;
    if (n == 0) {
        snprintf(e->why, sizeof e->why, "no grad lines: no input to take the Hessian in");
        return false;
    }
    if (c->nv != n || c->nhvp != n) {
        snprintf(e->why, sizeof e->why, "%d grad, %d v, %d hvp lines: expected one each per role",
                 n, c->nv, c->nhvp);
        return false;
    }
    lg_step_end(e->ctx); /* the first-order graph and gradients go */
    /* the inputs again, in the new step */
    for (int k = 0; k < c->nin; k++)
        if (!(e->in[k] = make_tensor(e, &c->in[k])))
            return ctx_failed(e, "input");
    for (int i = 0; i < n; i++) {
        int k = graded_slot(c, c->grad[i].role);
        const ftensor *v = NULL, *h = NULL;
        for (int j = 0; j < n; j++) {
            if (!strcmp(c->v[j].role, c->grad[i].role))
                v = &c->v[j];
            if (!strcmp(c->hvp[j].role, c->grad[i].role))
                h = &c->hvp[j];
        }
        if (k < 0 || !v || !h) {
            const char *missing = k < 0 ? "in" : !v ? "v" : "hvp";
            snprintf(e->why, sizeof e->why, "role '%s': no %s line", c->grad[i].role, missing);
            return false;
        }
        if (v->is_int || v->ndim != c->in[k].ndim ||
            memcmp(v->shape, c->in[k].shape, (size_t)v->ndim * sizeof(int64_t))) {
            snprintf(e->why, sizeof e->why, "v %s: not a float64 tensor of the input's shape",
                     v->role);
            return false;
        }
        xs[i] = e->in[k];
        lg_requires_grad(e->ctx, xs[i], true);
        if (!(vs[i] = make_tensor(e, v)))
            return ctx_failed(e, "v");
    }
    lt_any_opts oc = *o;
    lg_tensor *out = call_loss(e, L, &oc), *f = out;
    if (out && c->has_upstream)
        f = lg_sum(e->ctx, lg_mul(e->ctx, out, make_tensor(e, &c->upstream)), 0, NULL, false);
    else if (out && lg_tensor_numel(out) != 1)
        f = lg_sum(e->ctx, out, 0, NULL, false);
    if (!f)
        return ctx_failed(e, "the loss");
    if (!lg_tensor_requires_grad(f)) { /* no graded input reaches out: H = 0 */
        for (int i = 0; i < n; i++) {
            hv[i] = lg_zeros(e->ctx, LG_F64, lg_tensor_ndim(xs[i]), lg_tensor_shape(xs[i]));
            if (!hv[i])
                return ctx_failed(e, "zeros");
        }
    } else if (lg_hvp(e->ctx, f, n, xs, vs, hv, false) != LG_OK) {
        return ctx_failed(e, "lg_hvp");
    }
    for (int i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "hvp %s", c->grad[i].role);
        for (int j = 0; j < n; j++)
            if (!strcmp(c->hvp[j].role, c->grad[i].role) && !compare(e, hv[i], &c->hvp[j], what))
                return false;
    }
    return true;
}

/* Runs one case in one precision; false with e->why set on failure. */
static bool run_case(const fcase *c, lg_dtype dt, char *why, size_t whyn)
{
    eval e = { .dt = dt, .c = c };
    bool ok = false;
    const lt_loss *L = lt_find(c->loss);
    e.ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 1, .threads = 1 });
    if (!e.ctx) {
        snprintf(e.why, sizeof e.why, "out of memory");
        goto done;
    }
    if (!L) {
        snprintf(e.why, sizeof e.why, "unknown loss '%s'", c->loss);
        goto done;
    }
    lt_any_opts o;
    if (!parse_opts(&e, L, &o))
        goto done;
    for (int i = 0; i < c->nin; i++) {
        if (!takes_role(L, c->in[i].role)) {
            snprintf(e.why, sizeof e.why, "unknown role '%s' for %s", c->in[i].role, c->loss);
            goto done;
        }
        e.in[i] = make_tensor(&e, &c->in[i]);
        if (!e.in[i] && c->has_err && lg_ctx_status(e.ctx) == LG_ERR_SHAPE) {
            ok = true; /* the library rejects the input's shape itself ([0, 2^62, 4]) */
            goto done;
        }
        if (!e.in[i]) {
            snprintf(e.why, sizeof e.why, "cannot make input '%s': %s", c->in[i].role,
                     lg_ctx_errmsg(e.ctx));
            goto done;
        }
    }
    for (int i = 0; i < c->ngrad; i++) {
        const ftensor *in = find_in(c, c->grad[i].role);
        if (!in || in->is_int) {
            snprintf(e.why, sizeof e.why, "grad line for role '%s' that is %s", c->grad[i].role,
                     in ? "an integer input" : "not an input");
            goto done;
        }
        for (int k = 0; k < c->nin; k++)
            if (!strcmp(c->in[k].role, c->grad[i].role))
                lg_requires_grad(e.ctx, e.in[k], true);
    }
    lg_tensor *out = call_loss(&e, L, &o);
    if (c->has_err) {
        ok = !out && lg_ctx_status(e.ctx) != LG_OK && lg_ctx_errmsg(e.ctx)[0];
        if (!ok)
            snprintf(e.why, sizeof e.why, "expected an error (%s), the loss returned a value",
                     c->err);
        goto done;
    }
    if (!out) {
        snprintf(e.why, sizeof e.why, "error: %s", lg_ctx_errmsg(e.ctx));
        goto done;
    }
    if (!compare(&e, out, &c->out, "out"))
        goto done;
    if (c->ngrad > 0 && lg_tensor_requires_grad(out)) {
        lg_tensor *u = c->has_upstream
                           ? make_tensor(&e, &c->upstream)
                           : lg_ones(e.ctx, dt, lg_tensor_ndim(out), lg_tensor_shape(out));
        if (lg_backward_with(e.ctx, out, u) != LG_OK) {
            snprintf(e.why, sizeof e.why, "backward: %s", lg_ctx_errmsg(e.ctx));
            goto done;
        }
    }
    for (int i = 0; i < c->ngrad; i++) {
        lg_tensor *x = input_tensor(&e, c->grad[i].role);
        lg_tensor *g = lg_tensor_grad(x);
        if (!g) /* not reached by backward: the gradient is zero */
            g = lg_zeros(e.ctx, dt, lg_tensor_ndim(x), lg_tensor_shape(x));
        char what[48];
        snprintf(what, sizeof what, "grad %s", c->grad[i].role);
        if (!compare(&e, g, &c->grad[i], what))
            goto done;
    }
    ok = true;
    if (dt == LG_F64 && hvp_mode)
        ok = hvp_check(&e, L, &o);
    if (dt == LG_F64 && second_order && c->ngrad > 0) {
        int res = second_check(&e, L, &o);
        bool matched = res == 1;
        ok = ok && res >= 0 && matched != is_kink(c->id);
        if (res >= 0 && matched && is_kink(c->id))
            snprintf(e.why, sizeof e.why, "listed in --kinks, but its second derivative matches");
    }
done:
    if (!ok)
        snprintf(why, whyn, "%s", e.why);
    lg_ctx_free(e.ctx);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Reading files                                                        */
/* ------------------------------------------------------------------ */

typedef struct tally {
    long passed, failed;
} tally;

static void judge(fcase *c, tally *t)
{
    char why[256];
    bool ok = true;
    if (c->problem[0]) {
        printf("FAIL %s: malformed case: %s\n", c->id, c->problem);
        ok = false;
    } else if (!c->has_err && !c->has_out) {
        printf("FAIL %s: malformed case: no out and no err line\n", c->id);
        ok = false;
    } else {
        /* one line per failed case: the precisions that failed, the first reason */
        char why32[256];
        bool ok64 = run_case(c, LG_F64, why, sizeof why);
        bool ok32 = run_case(c, LG_F32, why32, sizeof why32);
        ok = ok64 && ok32;
        if (!ok)
            printf("FAIL %s [%s]: %s\n", c->id,
                   !ok64 && !ok32 ? "float64, float32" : (!ok64 ? "float64" : "float32"),
                   !ok64 ? why : why32);
    }
    if (ok)
        t->passed++;
    else
        t->failed++;
}

static void on_case(fcase *c, void *user)
{
    judge(c, user);
}

static void on_problem(const char *msg, void *user)
{
    printf("FAIL %s\n", msg);
    ((tally *)user)->failed++;
}

static int read_file(const char *path, tally *t)
{
    const fixture_reader r = { on_case, on_problem, t };
    return hvp_mode ? fixture_read_hvp(path, &r) : fixture_read(path, &r);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s [--second-order [--kinks FILE] | --hvp] FIXTURE_FILE...\n",
                argv[0]);
        return 2;
    }
    tally t = { 0, 0 };
    int rc = 0, first = 1;
    if (!strcmp(argv[1], "--second-order"))
        second_order = true, first = 2;
    else if (!strcmp(argv[1], "--hvp"))
        hvp_mode = true, first = 2;
    if (second_order && argc > 3 && !strcmp(argv[2], "--kinks")) {
        if (!read_kinks(argv[3])) {
            fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[3]);
            return 2;
        }
        first = 4;
    }
    for (int i = first; i < argc; i++)
        if (read_file(argv[i], &t) != 0)
            rc = 2;
    printf("%ld passed, %ld failed\n", t.passed, t.failed);
    for (char **k = kinks; k && *k; k++)
        free(*k);
    free(kinks);
    return rc ? rc : (t.failed > 0);
}
