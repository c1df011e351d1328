/* fixture_read.c: the fixture file reader (fixture_read.h). A case that
 * cannot be parsed is still handed on, with its problem, so the caller can
 * count it: no case is skipped silently. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#endif
#include "fixture_read.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tensor_free(ftensor *t)
{
    free(t->v);
    free(t->iv);
    memset(t, 0, sizeof *t);
}

static void case_free(fcase *c)
{
    for (int i = 0; i < c->nin; i++)
        tensor_free(&c->in[i]);
    for (int i = 0; i < c->ngrad; i++)
        tensor_free(&c->grad[i]);
    for (int i = 0; i < c->nv; i++)
        tensor_free(&c->v[i]);
    for (int i = 0; i < c->nhvp; i++)
        tensor_free(&c->hvp[i]);
    tensor_free(&c->out);
    tensor_free(&c->upstream);
    memset(c, 0, sizeof *c);
}

/* Parses "<dtype> <ndim> <dims...> : <values...>" (after the record word
 * and, for in/grad/v/hvp, the role). Returns false with c->problem set. */
static bool parse_tensor(char *s, ftensor *t, fcase *c)
{
    /* Every value is a token of at least one character plus a separator,
     * so a line of L characters holds at most L/2 + 1 values: a larger
     * element count is malformed, and checking it bounds the allocation. */
    const long long max_numel = (long long)strlen(s) / 2 + 1;
    char *save = NULL, *tok = strtok_r(s, " \t", &save);
    if (!tok || (strcmp(tok, "f64") && strcmp(tok, "i64"))) {
        snprintf(c->problem, sizeof c->problem, "line %d: bad dtype '%s'", c->line, tok ? tok : "");
        return false;
    }
    t->is_int = !strcmp(tok, "i64");
    tok = strtok_r(NULL, " \t", &save);
    char *end;
    long nd = tok ? strtol(tok, &end, 10) : -1;
    if (!tok || *end || nd < 0 || nd > LG_MAX_DIMS) {
        snprintf(c->problem, sizeof c->problem, "line %d: bad ndim", c->line);
        return false;
    }
    t->ndim = (int)nd;
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        tok = strtok_r(NULL, " \t", &save);
        long long v = tok ? strtoll(tok, &end, 10) : -1;
        if (!tok || *end || v < 0) {
            snprintf(c->problem, sizeof c->problem, "line %d: bad dim %d", c->line, d);
            return false;
        }
        t->shape[d] = v;
    }
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0)
            t->numel = 0;
    for (int d = 0; d < t->ndim && t->numel; d++) {
        if (t->numel > max_numel / t->shape[d]) {
            snprintf(c->problem, sizeof c->problem,
                     "line %d: the shape holds more values than the line can", c->line);
            return false;
        }
        t->numel *= t->shape[d];
    }
    tok = strtok_r(NULL, " \t", &save);
    if (!tok || strcmp(tok, ":")) {
        snprintf(c->problem, sizeof c->problem, "line %d: expected ':' after the dims", c->line);
        return false;
    }
    t->v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *t->v);
    t->iv = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *t->iv);
    if (!t->v || !t->iv) {
        snprintf(c->problem, sizeof c->problem, "line %d: out of memory", c->line);
        return false;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        tok = strtok_r(NULL, " \t", &save);
        if (!tok) {
            snprintf(c->problem, sizeof c->problem, "line %d: %lld values, expected %lld", c->line,
                     (long long)i, (long long)t->numel);
            return false;
        }
        if (t->is_int) {
            t->iv[i] = strtoll(tok, &end, 10);
            t->v[i] = (double)t->iv[i];
        } else {
            t->v[i] = strtod(tok, &end);
        }
        if (*end) {
            snprintf(c->problem, sizeof c->problem, "line %d: bad value '%s'", c->line, tok);
            return false;
        }
    }
    if (strtok_r(NULL, " \t", &save)) {
        snprintf(c->problem, sizeof c->problem, "line %d: more values than %lld", c->line,
                 (long long)t->numel);
        return false;
    }
    return true;
}

/* A problem outside a case, however long its text (a record word may be a
 * whole line). */
static void report(const fixture_reader *r, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (msg) {
        vsnprintf(msg, (size_t)n + 1, fmt, ap2);
        r->on_problem(msg, r->user);
    } else {
        r->on_problem("(out of memory)", r->user);
    }
    free(msg);
    va_end(ap2);
    va_end(ap);
}

static void hand_on(const fixture_reader *r, fcase *c)
{
    r->on_case(c, r->user);
    case_free(c);
}

static int read_any(const char *path, const fixture_reader *r, bool hvp_lines)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        report(r, "%s: cannot open the file", path);
        return 2;
    }
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    fcase *c = calloc(1, sizeof *c);
    bool header = false, open_case = false;
    int lineno = 0, rc = 0;
    if (!line || !c) {
        fclose(f);
        free(line);
        free(c);
        return 2;
    }
    while (true) {
        /* read one whole line, however long */
        size_t len = 0;
        int ch;
        while ((ch = fgetc(f)) != EOF && ch != '\n') {
            if (len + 1 >= cap) {
                char *bigger = realloc(line, cap * 2);
                if (!bigger)
                    break;
                line = bigger, cap *= 2;
            }
            line[len++] = (char)ch;
        }
        if (ch == EOF && len == 0)
            break;
        line[len] = '\0';
        lineno++;
        while (len && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        if (!header) {
            if (strcmp(s, "lossgrad-fixture 1")) {
                report(r, "%s: line %d: expected 'lossgrad-fixture 1'", path, lineno);
                rc = 2;
                break;
            }
            header = true;
            continue;
        }
        char *save = NULL, *word = strtok_r(s, " \t", &save), *rest = strtok_r(NULL, "", &save);
        if (!rest)
            rest = "";
        while (isspace((unsigned char)*rest))
            rest++;
        if (!strcmp(word, "case")) {
            if (open_case) {
                snprintf(c->problem, sizeof c->problem, "no 'end' before line %d", lineno);
                hand_on(r, c);
            }
            open_case = true;
            snprintf(c->id, sizeof c->id, "%s", *rest ? rest : "(no id)");
            c->line = lineno;
            continue;
        }
        if (!open_case) {
            report(r, "%s: line %d: '%s' outside a case", path, lineno, word);
            continue;
        }
        c->line = lineno;
        if (c->problem[0] && strcmp(word, "end"))
            continue;
        if (!strcmp(word, "end")) {
            hand_on(r, c);
            open_case = false;
        } else if (!strcmp(word, "loss")) {
            snprintf(c->loss, sizeof c->loss, "%s", rest);
        } else if (!strcmp(word, "opt")) {
            char *s2 = NULL, *k = strtok_r(rest, " \t", &s2), *v = strtok_r(NULL, " \t", &s2);
            if (!k || !v || c->nopt == MAX_OPTS)
                snprintf(c->problem, sizeof c->problem, "line %d: bad opt line", lineno);
            else {
                snprintf(c->opt_key[c->nopt], sizeof c->opt_key[0], "%s", k);
                snprintf(c->opt_val[c->nopt++], sizeof c->opt_val[0], "%s", v);
            }
        } else if (!strcmp(word, "in") || !strcmp(word, "grad") ||
                   (hvp_lines && (!strcmp(word, "v") || !strcmp(word, "hvp")))) {
            bool is_in = !strcmp(word, "in"), is_grad = !strcmp(word, "grad");
            bool is_v = !strcmp(word, "v");
            int *n = is_in ? &c->nin : is_grad ? &c->ngrad : is_v ? &c->nv : &c->nhvp;
            ftensor *list = is_in ? c->in : is_grad ? c->grad : is_v ? c->v : c->hvp;
            char *s2 = NULL, *role = strtok_r(rest, " \t", &s2), *tail = strtok_r(NULL, "", &s2);
            if (!role || !tail || *n == MAX_TENSORS) {
                snprintf(c->problem, sizeof c->problem, "line %d: bad %s line", lineno, word);
                continue;
            }
            ftensor *ft = &list[*n];
            (*n)++;
            snprintf(ft->role, sizeof ft->role, "%s", role);
            parse_tensor(tail, ft, c);
        } else if (!strcmp(word, "out") || !strcmp(word, "upstream")) {
            bool is_out = !strcmp(word, "out");
            ftensor *ft = is_out ? &c->out : &c->upstream;
            if (ft->v) /* a repeated line: a malformed case, not a leak */
                snprintf(c->problem, sizeof c->problem, "line %d: a second '%s' line", lineno,
                         word);
            else if (is_out)
                c->has_out = parse_tensor(rest, ft, c);
            else
                c->has_upstream = parse_tensor(rest, ft, c);
        } else if (!strcmp(word, "err")) {
            c->has_err = true;
            snprintf(c->err, sizeof c->err, "%s", rest);
        } else {
            snprintf(c->problem, sizeof c->problem, "line %d: unknown record '%s'", lineno, word);
        }
    }
    if (open_case) {
        snprintf(c->problem, sizeof c->problem, "the file ends inside the case");
        hand_on(r, c);
    }
    if (!header && rc == 0)
        report(r, "%s: no 'lossgrad-fixture 1' header", path);
    fclose(f);
    free(line);
    free(c);
    return rc;
}

int fixture_read(const char *path, const fixture_reader *r)
{
    return read_any(path, r, false);
}

int fixture_read_hvp(const char *path, const fixture_reader *r)
{
    return read_any(path, r, true);
}
