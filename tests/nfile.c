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
