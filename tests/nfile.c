/* nfile.c: the named-tensor fixture reader (nfile.h). */
#include "nfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LG_FIXTURE_DIR
#error "LG_FIXTURE_DIR must name tests/fixtures/nn"
#endif

static char *next_tok(char **s)
{
    while (**s == ' ')
        (*s)++;
    if (!**s)
        return NULL;
    char *start = *s;
    while (**s && **s != ' ')
        (*s)++;
    if (**s)
        *(*s)++ = '\0';
    return start;
}

nfile read_nfile(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", LG_FIXTURE_DIR, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    int cap_cases = 64;
    nfile nf = { 0, calloc((size_t)cap_cases, sizeof(ncase)) };
    cr_assert_not_null(nf.cases);
    size_t cap = 1 << 22;
    char *line = malloc(cap);
    ncase *c = NULL;
    while (fgets(line, (int)cap, f)) {
        cr_assert(strchr(line, '\n') || feof(f), "%s: a line longer than %zu bytes", path, cap);
        line[strcspn(line, "\n")] = '\0';
        char *s = line, *w = next_tok(&s);
        if (!w || *w == '#' || !strcmp(w, "lossgrad-nn-fixture"))
            continue;
        if (!strcmp(w, "case")) {
            if (nf.ncases == cap_cases) {
                ncase *more = realloc(nf.cases, (size_t)(2 * cap_cases) * sizeof(ncase));
                cr_assert_not_null(more);
                memset(more + cap_cases, 0, (size_t)cap_cases * sizeof(ncase));
                nf.cases = more, cap_cases *= 2;
            }
            c = &nf.cases[nf.ncases++];
            const char *id = next_tok(&s);
            cr_assert_not_null(id, "%s: case without an id", path);
            snprintf(c->id, sizeof c->id, "%s", id);
        } else if (!strcmp(w, "end")) {
            c = NULL;
        } else if (!strcmp(w, "tensor")) {
            cr_assert(c && c->ntensors < 48, "%s: a tensor outside a case, or too many", path);
            ntensor *t = &c->t[c->ntensors++];
            const char *nm = next_tok(&s), *dt = next_tok(&s), *nd = next_tok(&s);
            cr_assert(nm && dt && nd, "%s: %s: a short tensor line", path, c->id);
            snprintf(t->name, sizeof t->name, "%s", nm);
            t->is_int = !strcmp(dt, "i64");
            t->ndim = atoi(nd);
            cr_assert(t->ndim >= 0 && t->ndim <= LG_MAX_DIMS);
            t->numel = 1;
            for (int d = 0; d < t->ndim; d++) {
                const char *tok = next_tok(&s);
                cr_assert_not_null(tok);
                t->numel *= (t->shape[d] = atoll(tok));
            }
            const char *colon = next_tok(&s);
            cr_assert(colon && !strcmp(colon, ":"), "%s: %s: tensor %s lacks ':'", path, c->id,
                      t->name);
            t->v = malloc((size_t)(t->numel + 1) * sizeof *t->v);
            t->iv = malloc((size_t)(t->numel + 1) * sizeof *t->iv);
            for (int64_t i = 0; i < t->numel; i++) {
                char *tok = next_tok(&s);
                cr_assert_not_null(tok, "%s: short tensor %s", c->id, t->name);
                t->v[i] = strtod(tok, NULL);
                t->iv[i] = strtoll(tok, NULL, 10);
            }
        } else {
            cr_assert(c && c->nkeys < 24, "%s: a key outside a case, or too many", path);
            const char *v = next_tok(&s);
            snprintf(c->keys[c->nkeys], 32, "%s", w);
            snprintf(c->vals[c->nkeys++], 64, "%s", v ? v : "");
        }
    }
    free(line);
    fclose(f);
    return nf;
}

void free_nfile(nfile *nf)
{
    for (int i = 0; i < nf->ncases; i++)
        for (int k = 0; k < nf->cases[i].ntensors; k++)
            free(nf->cases[i].t[k].v), free(nf->cases[i].t[k].iv);
    free(nf->cases);
}

const char *key(const ncase *c, const char *k)
{
    for (int i = 0; i < c->nkeys; i++)
        if (!strcmp(c->keys[i], k))
            return c->vals[i];
    return NULL;
}

double keyd(const ncase *c, const char *k, double dflt)
{
    const char *v = key(c, k);
    return v ? (strcmp(v, "true") == 0 ? 1.0 : (strcmp(v, "false") == 0 ? 0.0 : strtod(v, NULL)))
             : dflt;
}

const ntensor *find(const ncase *c, const char *name)
{
    for (int i = 0; i < c->ntensors; i++)
        if (!strcmp(c->t[i].name, name))
            return &c->t[i];
    return NULL;
}

lg_tensor *make(lg_ctx *ctx, const ntensor *t, lg_dtype dt)
{
    if (t->is_int)
        return lg_tensor_from(ctx, LG_I64, t->iv, t->ndim, t->shape);
    return from_doubles(ctx, dt, t->v, t->ndim, t->shape);
}

bool fixture_close(lg_tensor *got, const ntensor *want, lg_dtype dt, char *msg, size_t n)
{
    if (!got) {
        snprintf(msg, n, "NULL");
        return false;
    }
    if (lg_tensor_numel(got) != want->numel || lg_tensor_ndim(got) != want->ndim) {
        snprintf(msg, n, "%d dims and %lld elements, expected %d and %lld", lg_tensor_ndim(got),
                 (long long)lg_tensor_numel(got), want->ndim, (long long)want->numel);
        return false;
    }
    for (int d = 0; d < want->ndim; d++)
        if (lg_tensor_shape(got)[d] != want->shape[d]) {
            snprintf(msg, n, "dim %d is %lld, expected %lld", d, (long long)lg_tensor_shape(got)[d],
                     (long long)want->shape[d]);
            return false;
        }
    double scale = 1;
    for (int64_t i = 0; i < want->numel; i++)
        if (isfinite(want->v[i]))
            scale = fmax(scale, fabs(want->v[i]));
    for (int64_t i = 0; i < want->numel; i++) {
        double g = want->is_int ? (double)((const int64_t *)lg_tensor_data(got))[i] : get(got, i);
        double w = want->v[i];
        bool ok;
        if (isnan(w))
            ok = isnan(g);
        else if (isinf(w))
            ok = g == w;
        else if (want->is_int)
            ok = g == w;
        else
            ok = fabs(g - w) <=
                 (dt == LG_F64 ? 1e-9 + 1e-7 * fabs(w) : 1e-5 * scale + 1e-4 * fabs(w));
        if (!ok) {
            snprintf(msg, n, "[%lld] = %.17g, expected %.17g", (long long)i, g, w);
            return false;
        }
    }
    return true;
}

void expect_fixture(lg_tensor *got, const ntensor *want, lg_dtype dt, const char *id,
                    const char *what)
{
    char msg[256];
    bool ok = fixture_close(got, want, dt, msg, sizeof msg);
    cr_assert(ok, "%s [%s]: %s: %s", id, dt == LG_F64 ? "f64" : "f32", what, msg);
}

lg_rnn_kind rnn_kind(const char *k)
{
    return !strcmp(k, "gru")        ? LG_GRU
           : !strcmp(k, "lstm")     ? LG_LSTM
           : !strcmp(k, "rnn_relu") ? LG_RNN_RELU
                                    : LG_RNN_TANH;
}

void expect_rnn_case(lg_ctx *ctx, lg_rnn *net, lg_rnn_kind kind, const ncase *c, lg_dtype dt)
{
    int nparams = 0;
    for (int i = 0; i < c->ntensors; i++) {
        if (strncmp(c->t[i].name, "param.", 6))
            continue;
        char name[128];
        snprintf(name, sizeof name, "net.%s", c->t[i].name + 6);
        lg_tensor *p = lg_param_find(ctx, name);
        cr_assert_not_null(p, "%s: no parameter %s", c->id, name);
        cr_assert_eq(lg_copy_into(ctx, p, make(ctx, &c->t[i], LG_F64)), LG_OK, "%s: %s", c->id,
                     lg_ctx_errmsg(ctx));
        nparams++;
    }
    cr_assert_eq(nparams, lg_param_count(ctx), "%s: parameter count differs from PyTorch's", c->id);
    lg_tensor *x = make(ctx, find(c, "x"), dt);
    lg_requires_grad(ctx, x, true);
    const ntensor *tl = find(c, "lengths"), *th0 = find(c, "h0"), *tc0 = find(c, "c0");
    lg_tensor *h0 = th0 ? make(ctx, th0, dt) : NULL, *c0 = tc0 ? make(ctx, tc0, dt) : NULL;
    if (h0)
        lg_requires_grad(ctx, h0, true);
    if (c0)
        lg_requires_grad(ctx, c0, true);
    lg_rnn_result r;
    cr_assert_eq(lg_rnn_forward(ctx, net, x, tl ? make(ctx, tl, LG_I64) : NULL, h0, c0, &r), LG_OK,
                 "%s: %s", c->id, lg_ctx_errmsg(ctx));
    expect_fixture(r.output, find(c, "out.output"), dt, c->id, "output");
    expect_fixture(r.h_n, find(c, "out.h_n"), dt, c->id, "h_n");
    lg_tensor *loss = lg_add(
        ctx,
        lg_sum(ctx, lg_mul(ctx, r.output, make(ctx, find(c, "upstream.output"), dt)), 0, NULL,
               false),
        lg_sum(ctx, lg_mul(ctx, r.h_n, make(ctx, find(c, "upstream.h_n"), dt)), 0, NULL, false));
    if (kind == LG_LSTM) {
        expect_fixture(r.c_n, find(c, "out.c_n"), dt, c->id, "c_n");
        loss = lg_add(ctx, loss,
                      lg_sum(ctx, lg_mul(ctx, r.c_n, make(ctx, find(c, "upstream.c_n"), dt)), 0,
                             NULL, false));
    }
    cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    expect_fixture(lg_tensor_grad(x), find(c, "grad.x"), dt, c->id, "grad x");
    if (h0)
        expect_fixture(lg_tensor_grad(h0), find(c, "grad.h0"), dt, c->id, "grad h0");
    if (c0)
        expect_fixture(lg_tensor_grad(c0), find(c, "grad.c0"), dt, c->id, "grad c0");
    for (int i = 0; i < c->ntensors; i++) {
        if (strncmp(c->t[i].name, "grad.param.", 11))
            continue;
        char name[128];
        snprintf(name, sizeof name, "net.%s", c->t[i].name + 11);
        expect_fixture(lg_tensor_grad(lg_param_find(ctx, name)), &c->t[i], dt, c->id, name);
    }
    lg_ctx_free(ctx);
}
