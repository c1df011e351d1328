/* test_registry.c: coverage of the loss registry (src/loss/losses.def).
 * Each test fails naming every loss that lacks something:
 *
 *   public_losses  the registry holds exactly the public losses;
 *   rows           its rows are well formed;
 *   fixtures       every loss has a fixture case with an `out` line;
 *   gradcheck      every loss passes a float64 gradcheck on one of its
 *                  fixture cases, with respect to each input the case
 *                  gives a `grad` line for;
 *   fused_oracle   with lg_ctx_set_fused(ctx, false) every fixture case
 *                  gives the same value and gradients, and a fused loss
 *                  primitive at the output is replaced by a composite;
 *   bench          every loss has a case in bench/bench_losses.c, and
 *                  bench/bench_torch.py's CASES list and
 *                  bench/bench_libtorch.cpp's CASES table have the same
 *                  cases.
 *
 * Sources are read at run time from LG_SOURCE_DIR (set by CMake). */
#include "fixture_read.h"
#include "helpers.h"
#include "loss_table.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LG_SOURCE_DIR
#error "LG_SOURCE_DIR: the source tree, set by tests/CMakeLists.txt"
#endif

enum { MAX_LOSSES = 64, MAX_FILES = 32 };

/* ------------------------------------------------------------------ */
/* Plumbing: source files, a list of problems, the fixture files        */
/* ------------------------------------------------------------------ */

static char *read_text(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", LG_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = NULL;
    size_t n = 0, cap = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF) {
        if (n + 2 > cap) {
            char *bigger = realloc(s, cap = cap ? 2 * cap : 1 << 16);
            cr_assert_not_null(bigger);
            s = bigger;
        }
        s[n++] = (char)ch;
    }
    fclose(f);
    if (!s)
        s = calloc(1, 1);
    cr_assert_not_null(s);
    s[n] = '\0';
    return s;
}

/* The problems a test found, one line each; the test fails if any. */
typedef struct problems {
    char text[16384];
    size_t len;
    int count;
} problems;

static void problem(problems *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    p->count++;
    if (p->len + 2 < sizeof p->text) {
        int n = vsnprintf(p->text + p->len, sizeof p->text - p->len - 1, fmt, ap);
        if (n > 0)
            p->len +=
                (size_t)n < sizeof p->text - p->len - 1 ? (size_t)n : sizeof p->text - p->len - 2;
        p->text[p->len++] = '\n';
        p->text[p->len] = '\0';
    }
    va_end(ap);
}

/* Frees p and fails if it holds a problem (freed first: a failing
 * assertion leaves the test at once). */
static void expect_none(problems *p, const char *what)
{
    static char text[sizeof p->text];
    int count = p->count;
    memcpy(text, p->text, sizeof text);
    free(p);
    cr_assert_eq(count, 0, "%s: %d problem(s):\n%s", what, count, text);
}

static int loss_index(const char *name)
{
    for (int i = 0; i < lt_count(); i++)
        if (!strcmp(lt_at(i)->name, name))
            return i;
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fixture_problem(const char *msg, void *user)
{
    (void)user;
    cr_assert_fail("malformed fixture file: %s", msg);
}

/* Every .txt file of tests/fixtures, in name order, through on_case. */
static void each_fixture(void (*on_case)(fcase *c, void *user), void *user)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures", LG_SOURCE_DIR);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    char *names[MAX_FILES];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < MAX_FILES) {
        size_t len = strlen(de->d_name);
        if (len > 4 && !strcmp(de->d_name + len - 4, ".txt"))
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    cr_assert_gt(n, 0, "no fixture files in %s", dir);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int rc = fixture_read(path, &(fixture_reader){ on_case, fixture_problem, user });
        cr_assert_eq(rc, 0, "cannot read %s", path);
        free(names[i]);
    }
}

/* ------------------------------------------------------------------ */
/* A fixture case as a call: inputs, options, the loss                  */
/* ------------------------------------------------------------------ */

/* The case's tensors in float64 (i64 ones as given), made in ctx. */
static lg_tensor *case_tensor(lg_ctx *ctx, const ftensor *t)
{
    if (t->is_int)
        return lg_tensor_from(ctx, LG_I64, t->iv, t->ndim, t->shape);
    return lg_tensor_from(ctx, LG_F64, t->v, t->ndim, t->shape);
}

/* The options of the case for L; false if the case's options do not fit
 * it (such a case is the runner's to report, not this test's). */
static bool case_opts(const lt_loss *L, const fcase *c, lt_any_opts *o)
{
    const lt_opt *clash[2];
    L->defaults(o);
    for (int i = 0; i < c->nopt; i++) {
        const lt_opt *r = lt_find_opt(L, c->opt_key[i]);
        if (!r || !lt_set_text(o, r, c->opt_val[i]))
            return false;
    }
    return lt_apply_flags(L, o, c->nopt, c->opt_key, c->opt_val, clash);
}

/* Calls L on the case's inputs xs[k] (one per c->in[k]): first tensor of
 * each role, tensor options from inputs of their key. */
static lg_tensor *call_case(lg_ctx *ctx, const lt_loss *L, const fcase *c, lt_any_opts *o,
                            lg_tensor *const *xs)
{
    lg_tensor *in[LT_MAX_IN] = { 0 };
    const lt_opt *r;
    for (int k = c->nin - 1; k >= 0; k--) { /* backwards: the first of a role wins */
        int pos = lt_role_index(L, c->in[k].role);
        r = lt_find_opt(L, c->in[k].role);
        if (pos >= 0 && pos < LT_MAX_IN)
            in[pos] = xs[k];
        else if (r && r->kind == LT_TENSOR)
            lt_set_tensor(o, r, xs[k]);
    }
    return L->call(ctx, in, o);
}

/* A case that can be evaluated: parsed, an out line, options that fit. */
static const lt_loss *usable(const fcase *c, lt_any_opts *o)
{
    const lt_loss *L = lt_find(c->loss);
    if (!L || c->problem[0] || c->has_err || !c->has_out || !case_opts(L, c, o))
        return NULL;
    for (int k = 0; k < c->nin; k++) {
        const lt_opt *r = lt_find_opt(L, c->in[k].role);
        if (lt_role_index(L, c->in[k].role) < 0 && !(r && r->kind == LT_TENSOR))
            return NULL;
    }
    return L;
}

static int input_of(const fcase *c, const char *role)
{
    for (int k = 0; k < c->nin; k++)
        if (!strcmp(c->in[k].role, role))
            return k;
    return -1;
}

static bool all_finite(const ftensor *t)
{
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(t->v[i]))
            return false;
    return true;
}

/* ------------------------------------------------------------------ */
/* a. the registry holds exactly the public losses                      */
/* ------------------------------------------------------------------ */

/* The rule: a public loss is a function returning `lg_tensor *` declared
 * (at the start of a line, `lg_tensor *lg_<name>(`) in include/lossgrad/loss.h,
 * the losses' header, or named lg_*_loss in any public header
 * (include/lossgrad.h and the lossgrad/ headers it includes). */
static int public_losses(char **names, int max)
{
    int n = 0;
    char *top = read_text("include/lossgrad.h");
    cr_assert_not_null(top, "cannot read include/lossgrad.h");
    const char *headers[8] = { "include/lossgrad.h" };
    int nh = 1;
    for (const char *p = top; (p = strstr(p, "#include \"lossgrad/")); p++) {
        static char rel[8][128];
        const char *q = p + strlen("#include \"");
        const char *end = strchr(q, '"');
        if (end && nh < 8 && end - q < 100) {
            snprintf(rel[nh], sizeof rel[nh], "include/%.*s", (int)(end - q), q);
            headers[nh] = rel[nh];
            nh++;
        }
    }
    free(top);
    for (int h = 0; h < nh; h++) {
        char *s = read_text(headers[h]);
        cr_assert_not_null(s, "cannot read %s", headers[h]);
        bool loss_header = strstr(headers[h], "lossgrad/loss.h") != NULL;
        for (char *line = s; line && *line;
             line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
            static const char decl[] = "lg_tensor *lg_";
            if (strncmp(line, decl, strlen(decl)))
                continue;
            const char *name = line + strlen("lg_tensor *");
            size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_");
            if (name[len] != '(')
                continue;
            bool named_loss = len > 5 && !strncmp(name + len - 5, "_loss", 5);
            if ((loss_header || named_loss) && n < max)
                names[n++] = strndup(name, len);
        }
        free(s);
    }
    return n;
}

Test(registry, public_losses)
{
    char *pub[MAX_LOSSES];
    int npub = public_losses(pub, MAX_LOSSES);
    problems *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    cr_assert_gt(npub, 0, "no loss declarations found in the public headers");
    for (int i = 0; i < npub; i++) {
        bool found = false;
        for (int k = 0; k < lt_count(); k++)
            found |= !strcmp(lt_at(k)->fn_name, pub[i]);
        if (!found)
            problem(p, "%s: a public loss with no row in src/loss/losses.def", pub[i]);
    }
    for (int k = 0; k < lt_count(); k++) {
        bool found = false;
        for (int i = 0; i < npub; i++)
            found |= !strcmp(lt_at(k)->fn_name, pub[i]);
        if (!found)
            problem(p, "%s: its function %s is not a public loss in include/lossgrad/loss.h",
                    lt_at(k)->name, lt_at(k)->fn_name);
    }
    for (int i = 0; i < npub; i++)
        free(pub[i]);
    expect_none(p, "registry vs public header");
}

Test(registry, rows)
{
    problems *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    for (int k = 0; k < lt_count(); k++) {
        const lt_loss *L = lt_at(k);
        const lt_opt *r;
        int nroles = 0;
        while (lt_role(L, nroles))
            nroles++;
        if (nroles != L->nin)
            problem(p, "%s: %d LG_LOSS_IN rows, but LG_LOSS says %d inputs", L->name, nroles,
                    L->nin);
        if (L->nin > LT_MAX_IN)
            problem(p, "%s: more than %d inputs", L->name, LT_MAX_IN);
        if (loss_index(L->name) != k)
            problem(p, "%s: two LG_LOSS rows", L->name);
        for (int i = 0; (r = lt_opt_at(L, i)); i++) {
            if (lt_find_opt(L, r->key) != r)
                problem(p, "%s: option %s has two rows", L->name, r->key);
            if (lt_role_index(L, r->key) >= 0)
                problem(p, "%s: %s is both an input and an option", L->name, r->key);
            if (r->kind == LT_FLAG && !r->set_flag)
                problem(p, "%s: flag %s without a setter", L->name, r->key);
        }
        for (int i = 0; i < nroles; i++)
            if (lt_role_index(L, lt_role(L, i)) != i)
                problem(p, "%s: input %s has two rows", L->name, lt_role(L, i));
    }
    for (int k = 0; k < lt_count(); k++)
        if (!lt_find_opt(lt_at(k), "reduction"))
            problem(p, "%s: no reduction option", lt_at(k)->name);
    expect_none(p, "registry rows");
}

/* ------------------------------------------------------------------ */
/* b. every loss has fixtures                                           */
/* ------------------------------------------------------------------ */

typedef struct counts {
    int out[MAX_LOSSES], err[MAX_LOSSES];
} counts;

static void count_case(fcase *c, void *user)
{
    counts *n = user;
    int k = loss_index(c->loss);
    if (k < 0 || c->problem[0])
        return;
    if (c->has_out && !c->has_err)
        n->out[k]++;
    else if (c->has_err)
        n->err[k]++;
}

Test(registry, fixtures)
{
    counts *n = calloc(1, sizeof *n);
    problems *p = calloc(1, sizeof *p);
    cr_assert(n && p);
    cr_assert_leq(lt_count(), MAX_LOSSES);
    each_fixture(count_case, n);
    for (int k = 0; k < lt_count(); k++)
        if (n->out[k] == 0)
            problem(p, "%s: no fixture case with an out line in tests/fixtures (%d err cases)",
                    lt_at(k)->name, n->err[k]);
    free(n);
    expect_none(p, "fixtures");
}

/* ------------------------------------------------------------------ */
/* c. every loss passes gradcheck on one of its fixture cases           */
/* ------------------------------------------------------------------ */

/* The rule: each input role the loss's cases give `grad` lines for is
 * gradchecked on the first case (fixture files in name order, cases in
 * file order) where it is well posed: the case has an out line, its out,
 * grad and input values are finite, and the loss has no kink along any
 * element of that input. A kink is judged from the loss's values alone,
 * never its gradient: the one-sided second-order differences
 * (-3f(x) + 4f(x+h) - f(x+2h)) / 2h and (3f(x) - 4f(x-h) + f(x-2h)) / 2h,
 * h = 1e-5, of f = sum(w * loss) (w fixed, in [0.5, 1.5)) differ by more
 * than 1e-7 + 1e-6 (|F| + |B|) + 1e-8 |f(x)|, or a value is not finite
 * (off the domain: a 0/1 mask, a +-1 label). Smooth points agree to
 * O(h^2); a kink within 2h (gradcheck's +-1e-6 included) differs by its
 * jump. The well-posed inputs of a case still unchecked are checked
 * together, the others held fixed, with gradcheck's default (lossgrad's
 * strict) tolerances; the loss fails if that fails (no second try), or if
 * its first input (call position 0) is never well posed. A role never
 * well posed in any case (a target that only takes discrete values) is
 * logged, not failed. */
typedef struct gc_case {
    const lt_loss *L;
    const fcase *c;
    lt_any_opts opts;
    lg_tensor *fixed[MAX_TENSORS]; /* the case's inputs, f64 (i64 as given) */
    int diff[MAX_TENSORS], ndiff;  /* c->in index of each differentiated input */
} gc_case;

static lg_tensor *gc_fn(lg_ctx *ctx, lg_tensor *const *inputs, void *user)
{
    gc_case *g = user;
    lg_tensor *xs[MAX_TENSORS];
    lt_any_opts o = g->opts;
    for (int k = 0; k < g->c->nin; k++)
        xs[k] = g->fixed[k];
    for (int j = 0; j < g->ndiff; j++)
        xs[g->diff[j]] = inputs[j];
    return call_case(ctx, g->L, g->c, &o, xs);
}

static double weighted_value(lg_ctx *ctx, gc_case *g, lg_tensor *const *xs)
{
    double f = NAN;
    lg_scope_begin(ctx);
    lg_no_grad_begin(ctx);
    lg_tensor *out = gc_fn(ctx, xs, g);
    if (out && lg_tensor_dtype(out) == LG_F64) {
        const double *v = lg_tensor_data(out);
        f = 0;
        for (int64_t i = 0; i < lg_tensor_numel(out); i++)
            f += (0.5 + (double)((i * 7919) % 1000) / 1000) * v[i];
    }
    lg_no_grad_end(ctx);
    lg_scope_end(ctx, 0, NULL);
    lg_ctx_clear_error(ctx); /* off the domain: NaN here, not an error later */
    return f;
}

/* True if the loss has a kink (or a non-finite value) within 2h of the
 * case's point along some element of input j (the rule above). */
static bool near_kink(lg_ctx *ctx, gc_case *g, lg_tensor *const *xs, int j, double f0)
{
    const double h = 1e-5;
    double *x = lg_tensor_data(xs[j]);
    for (int64_t i = 0; i < lg_tensor_numel(xs[j]); i++) {
        double x0 = x[i], f[5]; /* f(x - 2h) .. f(x + 2h) */
        for (int s = -2; s <= 2; s++) {
            x[i] = x0 + s * h;
            f[s + 2] = s ? weighted_value(ctx, g, xs) : f0;
        }
        x[i] = x0;
        double F = (-3 * f[2] + 4 * f[3] - f[4]) / (2 * h);
        double B = (3 * f[2] - 4 * f[1] + f[0]) / (2 * h);
        if (!isfinite(F) || !isfinite(B) ||
            fabs(F - B) > 1e-7 + 1e-6 * (fabs(F) + fabs(B)) + 1e-8 * fabs(f0))
            return true;
    }
    return false;
}

typedef struct gc_loss {
    char role[MAX_TENSORS][32]; /* roles with grad lines, as met */
    bool checked[MAX_TENSORS];
    int nrole, kinks;
} gc_loss;

typedef struct gc_state {
    gc_loss loss[MAX_LOSSES];
    problems *p;
} gc_state;

/* The slot of a grad-line role in the loss's state (added when new). */
static int gc_role(gc_loss *s, const char *role)
{
    for (int i = 0; i < s->nrole; i++)
        if (!strcmp(s->role[i], role))
            return i;
    if (s->nrole == MAX_TENSORS)
        return -1;
    snprintf(s->role[s->nrole], sizeof s->role[0], "%s", role);
    return s->nrole++;
}

static void gradcheck_case(fcase *c, void *user)
{
    gc_state *st = user;
    gc_case *g = calloc(1, sizeof *g);
    cr_assert_not_null(g);
    g->c = c;
    g->L = usable(c, &g->opts);
    int k = g->L ? loss_index(c->loss) : -1;
    bool fit = k >= 0 && c->ngrad > 0 && all_finite(&c->out);
    for (int i = 0; fit && i < c->nin; i++)
        fit = c->in[i].is_int || all_finite(&c->in[i]);
    for (int i = 0; fit && i < c->ngrad; i++)
        fit = all_finite(&c->grad[i]);
    if (!fit) {
        free(g);
        return;
    }
    gc_loss *s = &st->loss[k];
    lg_ctx *ctx = test_ctx(11);
    lg_tensor *xs[MAX_TENSORS];
    int slot[MAX_TENSORS];
    for (int i = 0; i < c->nin; i++)
        xs[i] = g->fixed[i] = case_tensor(ctx, &c->in[i]);
    double f0 = weighted_value(ctx, g, xs);
    for (int i = 0; i < c->ngrad; i++) {
        int at = input_of(c, c->grad[i].role), r = gc_role(s, c->grad[i].role);
        if (at < 0 || c->in[at].is_int || r < 0 || s->checked[r])
            continue;
        if (!isfinite(f0) || near_kink(ctx, g, xs, at, f0)) {
            s->kinks++;
            continue;
        }
        slot[g->ndiff] = r;
        g->diff[g->ndiff++] = at;
    }
    if (g->ndiff > 0) {
        lg_tensor *dx[MAX_TENSORS];
        lg_gradcheck_report rep;
        for (int j = 0; j < g->ndiff; j++) {
            dx[j] = case_tensor(ctx, &c->in[g->diff[j]]);
            s->checked[slot[j]] = true;
        }
        lg_status status = lg_gradcheck(ctx, gc_fn, g, g->ndiff, dx, NULL, &rep);
        if (status != LG_OK)
            problem(st->p, "%s: gradcheck on case %s could not run: %s", c->loss, c->id,
                    lg_ctx_errmsg(ctx));
        else if (!rep.ok)
            problem(st->p,
                    "%s: gradcheck fails on case %s, input %s[%lld]: analytic %.10g, numeric "
                    "%.10g",
                    c->loss, c->id, c->in[g->diff[rep.worst_input]].role,
                    (long long)rep.worst_index, rep.worst_analytic, rep.worst_numeric);
    }
    lg_ctx_free(ctx);
    free(g);
}

Test(registry, gradcheck, .timeout = 120)
{
    gc_state *st = calloc(1, sizeof *st);
    cr_assert_not_null(st);
    st->p = calloc(1, sizeof *st->p);
    cr_assert_not_null(st->p);
    each_fixture(gradcheck_case, st);
    for (int k = 0; k < lt_count(); k++) {
        const lt_loss *L = lt_at(k);
        gc_loss *s = &st->loss[k];
        int first = gc_role(s, lt_role(L, 0)); /* adds it if no case has its grad lines */
        if (first < 0 || !s->checked[first])
            problem(st->p,
                    "%s: its input %s is gradchecked on no fixture case (none with its grad "
                    "lines, finite values and no kink; %d inputs skipped for a kink)",
                    L->name, lt_role(L, 0), s->kinks);
        for (int r = 0; r < s->nrole; r++)
            if (!s->checked[r] && r != first)
                cr_log_info("%s: input %s is never well posed for gradcheck in the fixtures",
                            L->name, s->role[r]);
    }
    problems *p = st->p;
    free(st);
    expect_none(p, "gradcheck");
}

/* ------------------------------------------------------------------ */
/* d. fused losses against their composite oracle                       */
/* ------------------------------------------------------------------ */

/* The fused loss primitives: the rows of src/loss/ops.def. */
static const char *const fused_op_names[] = {
#define LG_FUSED_OP(name) #name,
#include "../src/loss/ops.def"
#undef LG_FUSED_OP
};

static int fused_ops(char names[][64], int max)
{
    int n = 0;
    for (size_t i = 0; i < sizeof fused_op_names / sizeof *fused_op_names && n < max; i++)
        snprintf(names[n++], 64, "%s", fused_op_names[i]);
    return n;
}

typedef struct oracle_state {
    char fused[64][64];
    int nfused;
    int reported[MAX_LOSSES];
    bool no_oracle[MAX_LOSSES];
    int checked[MAX_LOSSES];
    problems *p;
} oracle_state;

static bool is_fused(const oracle_state *st, const char *op)
{
    for (int i = 0; i < st->nfused; i++)
        if (!strcmp(st->fused[i], op))
            return true;
    return false;
}

/* One evaluation of the case in float64, fused on or off: the output,
 * the gradients of the grad-line inputs (NULL where none reached them). */
typedef struct run {
    lg_tensor *out, *grad[MAX_TENSORS];
    char op[64];
} run;

static bool run_fused(lg_ctx *ctx, const lt_loss *L, const fcase *c, bool fused, run *r)
{
    lt_any_opts o;
    lg_tensor *xs[MAX_TENSORS];
    memset(r, 0, sizeof *r);
    lg_ctx_set_fused(ctx, fused);
    case_opts(L, c, &o);
    for (int k = 0; k < c->nin; k++)
        xs[k] = case_tensor(ctx, &c->in[k]);
    for (int i = 0; i < c->ngrad; i++) {
        int at = input_of(c, c->grad[i].role);
        if (at >= 0 && !c->in[at].is_int)
            lg_requires_grad(ctx, xs[at], true);
    }
    r->out = call_case(ctx, L, c, &o, xs);
    if (!r->out)
        return false;
    snprintf(r->op, sizeof r->op, "%s", lg_tensor_op_name(r->out));
    if (lg_tensor_requires_grad(r->out)) {
        lg_tensor *u = c->has_upstream
                           ? case_tensor(ctx, &c->upstream)
                           : lg_ones(ctx, LG_F64, lg_tensor_ndim(r->out), lg_tensor_shape(r->out));
        if (lg_backward_with(ctx, r->out, u) != LG_OK)
            return false;
    }
    for (int i = 0; i < c->ngrad; i++) {
        int at = input_of(c, c->grad[i].role);
        r->grad[i] = at >= 0 ? lg_tensor_grad(xs[at]) : NULL;
    }
    return lg_ctx_status(ctx) == LG_OK;
}

/* Same values within 1e-10 relative (to the larger magnitude, or to the
 * tensor's largest finite magnitude where that is larger: cancellation
 * near 0), NaN for NaN, infinities equal. A missing gradient is zeros. */
static bool departs(const fcase *c, int64_t i);

static bool same_except(const fcase *c, lg_tensor *a, lg_tensor *b, int64_t n, int64_t *bad)
{
    double scale = 0;
    for (int64_t i = 0; a && i < n; i++)
        if (isfinite(get(a, i)) && fabs(get(a, i)) > scale)
            scale = fabs(get(a, i));
    for (int64_t i = 0; i < n; i++) {
        if (c && departs(c, i))
            continue;
        double x = a ? get(a, i) : 0, y = b ? get(b, i) : 0;
        bool ok = isnan(x) || isnan(y) ? isnan(x) && isnan(y)
                  : isinf(x) || isinf(y)
                      ? x == y
                      : fabs(x - y) <= 1e-10 * fmax(fmax(fabs(x), fabs(y)), scale);
        if (!ok)
            return *bad = i, false;
    }
    return true;
}

static bool same(lg_tensor *a, lg_tensor *b, int64_t n, int64_t *bad)
{
    return same_except(NULL, a, b, n, bad);
}

/* Where a fused loss's gradient is PyTorch's rule rather than the
 * derivative of its forward, no composite can agree, and element i of
 * the gradients is left out of the comparison (docs/losses.md lists the
 * departure). binary_cross_entropy: PyTorch divides by max(x (1 - x),
 * 1e-12) and takes dy = log(1 - x) - log(x) unclamped, which at x(1 - x) <=
 * 1e-12 are not the derivatives of the clamped forward. */
static bool departs(const fcase *c, int64_t i)
{
    if (strcmp(c->loss, "binary_cross_entropy"))
        return false;
    for (int k = 0; k < c->nin; k++)
        if (!strcmp(c->in[k].role, "input") && i < c->in[k].numel) {
            double x = c->in[k].v[i];
            return !(x * (1 - x) > (double)1e-12f);
        }
    return false;
}

static void oracle_case(fcase *c, void *user)
{
    oracle_state *st = user;
    lt_any_opts o;
    const lt_loss *L = usable(c, &o);
    int k = L ? loss_index(c->loss) : -1;
    if (k < 0)
        return;
    lg_ctx *on = test_ctx(5), *off = test_ctx(5);
    run a, b;
    bool ok_on = run_fused(on, L, c, true, &a), ok_off = run_fused(off, L, c, false, &b);
    int64_t bad = 0;
    st->checked[k]++;
    if (!ok_on || !ok_off) {
        if (ok_on != ok_off && !st->reported[k]++)
            problem(st->p, "%s: case %s fails with fused %s only: %s", c->loss, c->id,
                    ok_on ? "off" : "on", lg_ctx_errmsg(ok_on ? off : on));
    } else if (lg_tensor_numel(a.out) != lg_tensor_numel(b.out) ||
               !same(a.out, b.out, lg_tensor_numel(a.out), &bad)) {
        if (!st->reported[k]++)
            problem(st->p,
                    "%s: case %s: composite value differs from fused at [%lld]: %.17g vs %.17g",
                    c->loss, c->id, (long long)bad, get(b.out, bad), get(a.out, bad));
    } else {
        for (int i = 0; i < c->ngrad; i++) {
            int at = input_of(c, c->grad[i].role);
            int64_t n = at >= 0 ? c->in[at].numel : 0;
            if (!same_except(c, a.grad[i], b.grad[i], n, &bad) && !st->reported[k]++)
                problem(st->p,
                        "%s: case %s: composite gradient of %s differs from fused at [%lld]: "
                        "%.17g vs %.17g",
                        c->loss, c->id, c->grad[i].role, (long long)bad,
                        b.grad[i] ? get(b.grad[i], bad) : 0.0,
                        a.grad[i] ? get(a.grad[i], bad) : 0.0);
        }
    }
    if (ok_on && ok_off && is_fused(st, a.op) && is_fused(st, b.op) && !st->no_oracle[k]) {
        st->no_oracle[k] = true;
        problem(st->p,
                "%s: fused op %s has no composite oracle: with lg_ctx_set_fused(false) its "
                "output op is still %s (case %s)",
                c->loss, a.op, b.op, c->id);
    }
    lg_ctx_free(on);
    lg_ctx_free(off);
}

Test(registry, fused_oracle, .timeout = 120)
{
    oracle_state *st = calloc(1, sizeof *st);
    cr_assert_not_null(st);
    st->p = calloc(1, sizeof *st->p);
    cr_assert_not_null(st->p);
    st->nfused = fused_ops(st->fused, 64);
    cr_assert_gt(st->nfused, 0, "no fused loss primitives found");
    each_fixture(oracle_case, st);
    for (int k = 0; k < lt_count(); k++)
        if (!st->checked[k])
            problem(st->p, "%s: no fixture case to compare fused and composite on", lt_at(k)->name);
    problems *p = st->p;
    free(st);
    expect_none(p, "fused vs composite");
}

/* ------------------------------------------------------------------ */
/* e. every loss has a bench case                                       */
/* ------------------------------------------------------------------ */

/* The rule: bench/bench_losses.c's cases[] rows are `{ "<case>", <fn>, ...`;
 * a loss is benchmarked when the body of some case's fn (its definition
 * `static lg_tensor *<fn>(...) { ... }`) calls the loss's public function.
 * bench/bench_torch.py's CASES rows `("<case>", ...` must name the same
 * cases (compare.py pairs them by name; the optimizer cases, added after
 * the list, are not read there), and so must bench/bench_libtorch.cpp's
 * CASES rows `{ "<case>", ...`, all of them (a name there that is not a
 * cases[] row must be a string in bench_losses.c: its OPTIM_CASE rows). */
enum { MAX_CASES = 128 };

static int bench_c_cases(const char *src, char **names, char **fns)
{
    int n = 0;
    const char *p = strstr(src, "static const bcase cases[] = {");
    cr_assert_not_null(p, "bench/bench_losses.c: no cases[] table");
    const char *end = strstr(p, "\n};");
    cr_assert_not_null(end);
    for (p = strchr(p, '\n'); p && (p = strstr(p, "{ \"")) && p < end && n < MAX_CASES; p++) {
        const char *name = p + 3, *close = strchr(name, '"');
        const char *fn = close + 1 + strspn(close + 1, ", \n\t");
        size_t len = strspn(fn, "abcdefghijklmnopqrstuvwxyz0123456789_");
        names[n] = strndup(name, (size_t)(close - name));
        fns[n++] = strndup(fn, len);
    }
    return n;
}

/* The body of `static lg_tensor *<fn>(`, up to its closing brace at the
 * start of a line; NULL if not found. */
static char *body_of(const char *src, const char *fn)
{
    char head[160];
    snprintf(head, sizeof head, "static lg_tensor *%s(", fn);
    const char *p = strstr(src, head), *end = p ? strstr(p, "\n}") : NULL;
    return p && end ? strndup(p, (size_t)(end - p)) : NULL;
}

static int bench_py_cases(const char *src, char **names)
{
    int n = 0;
    const char *p = strstr(src, "\nCASES = [");
    cr_assert_not_null(p, "bench/bench_torch.py: no CASES list");
    const char *end = strstr(p, "\n]\n");
    cr_assert_not_null(end);
    for (; (p = strstr(p, "(\"")) && p < end && n < MAX_CASES; p++) {
        const char *name = p + 2, *close = strchr(name, '"');
        names[n++] = strndup(name, (size_t)(close - name));
    }
    return n;
}

static int bench_cpp_cases(const char *src, char **names)
{
    int n = 0;
    const char *p = strstr(src, "\nstatic const std::vector<Case> CASES = {");
    cr_assert_not_null(p, "bench/bench_libtorch.cpp: no CASES table");
    const char *end = strstr(p, "\n};");
    cr_assert_not_null(end);
    for (; (p = strstr(p, "{ \"")) && p < end && n < MAX_CASES; p++) {
        const char *name = p + 3, *close = strchr(name, '"');
        names[n++] = strndup(name, (size_t)(close - name));
    }
    return n;
}

/* the names of one list missing from the other, as problems */
static void bench_missing(problems *p, char **a, int na, const char *a_file, char **b, int nb,
                          const char *b_file)
{
    for (int i = 0; i < na; i++) {
        bool found = false;
        for (int j = 0; j < nb; j++)
            found |= !strcmp(a[i], b[j]);
        if (!found)
            problem(p, "bench case %s: in %s, not in %s", a[i], a_file, b_file);
    }
}

Test(registry, bench)
{
    char *c_src = read_text("bench/bench_losses.c"), *py_src = read_text("bench/bench_torch.py");
    cr_assert(c_src && py_src, "cannot read bench/bench_losses.c or bench/bench_torch.py");
    char *cn[MAX_CASES], *cf[MAX_CASES], *pn[MAX_CASES];
    int nc = bench_c_cases(c_src, cn, cf), np = bench_py_cases(py_src, pn);
    problems *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    cr_assert_gt(nc, 0);
    for (int k = 0; k < lt_count(); k++) {
        char call[160];
        bool found = false;
        snprintf(call, sizeof call, "%s(", lt_at(k)->fn_name);
        for (int i = 0; i < nc && !found; i++) {
            char *body = body_of(c_src, cf[i]);
            found = body && strstr(body, call);
            free(body);
        }
        if (!found)
            problem(p, "%s: no case in bench/bench_losses.c's cases[] calls %s", lt_at(k)->name,
                    lt_at(k)->fn_name);
    }
    for (int i = 0; i < nc; i++) {
        bool found = false;
        for (int j = 0; j < np; j++)
            found |= !strcmp(cn[i], pn[j]);
        if (!found)
            problem(p, "bench case %s: in bench/bench_losses.c, not in bench/bench_torch.py",
                    cn[i]);
    }
    for (int j = 0; j < np; j++) {
        bool found = false;
        for (int i = 0; i < nc; i++)
            found |= !strcmp(cn[i], pn[j]);
        if (!found)
            problem(p, "bench case %s: in bench/bench_torch.py, not in bench/bench_losses.c",
                    pn[j]);
    }
    char *cpp_src = read_text("bench/bench_libtorch.cpp"), *xn[MAX_CASES];
    cr_assert_not_null(cpp_src, "cannot read bench/bench_libtorch.cpp");
    int nx = bench_cpp_cases(cpp_src, xn);
    bench_missing(p, cn, nc, "bench/bench_losses.c", xn, nx, "bench/bench_libtorch.cpp");
    for (int j = 0; j < nx; j++) { /* bench_losses.c's OPTIM_CASE rows too: a literal there */
        char lit[160];
        snprintf(lit, sizeof lit, "\"%s\"", xn[j]);
        if (!strstr(c_src, lit))
            problem(p, "bench case %s: in bench/bench_libtorch.cpp, not in bench/bench_losses.c",
                    xn[j]);
    }
    for (int i = 0; i < nc; i++)
        free(cn[i]), free(cf[i]);
    for (int j = 0; j < np; j++)
        free(pn[j]);
    for (int j = 0; j < nx; j++)
        free(xn[j]);
    free(c_src);
    free(py_src);
    free(cpp_src);
    expect_none(p, "bench cases");
}
