/* loss_table.c: the tables and one-line wrappers loss_table.h declares,
 * each generated from a row of src/loss/losses.def. The option kind is the
 * field's type, read by _Generic, so a row cannot disagree with its
 * struct; a field of another type does not compile. */
#include "loss_table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The arguments of a call with n tensors. */
#define LT_ARGS_1(in) in[0]
#define LT_ARGS_2(in) LT_ARGS_1(in), in[1]
#define LT_ARGS_3(in) LT_ARGS_2(in), in[2]
#define LT_ARGS_4(in) LT_ARGS_3(in), in[3]
#define LT_ARGS_5(in) LT_ARGS_4(in), in[4]
#define LT_ARGS_6(in) LT_ARGS_5(in), in[5]
#define LT_ARGS(n, in) LT_ARGS_##n(in)

/* One typedef per loss, so option rows can name the struct by the loss. */
#define LG_LOSS(name, fn, opts_type, defaults_fn, nin) typedef opts_type lt_opts_##name;
#include "../src/loss/losses.def"

#define LG_LOSS(name, fn, opts_type, defaults_fn, nin)                                             \
    static lg_tensor *call_##name(lg_ctx *c, lg_tensor *const *in, const void *o)                  \
    {                                                                                              \
        return fn(c, LT_ARGS(nin, in), (const opts_type *)o);                                      \
    }                                                                                              \
    static void defaults_##name(void *o)                                                           \
    {                                                                                              \
        *(opts_type *)o = defaults_fn();                                                           \
    }
#include "../src/loss/losses.def"

#define LG_LOSS_FLAG(name, key, field, value)                                                      \
    static void flag_##name##_##key(void *o)                                                       \
    {                                                                                              \
        ((lt_opts_##name *)o)->field = value;                                                      \
    }
#include "../src/loss/losses.def"

static const struct {
    const char *loss, *role;
} in_rows[] = {
#define LG_LOSS_IN(name, role) { #name, #role },
#include "../src/loss/losses.def"
};

#define LT_KIND(name, field)                                                                       \
    _Generic(((lt_opts_##name *)0)->field,                                                         \
        double: LT_DOUBLE,                                                                         \
        int64_t: LT_INT,                                                                           \
        bool: LT_BOOL,                                                                             \
        lg_reduction: LT_REDUCTION,                                                                \
        lg_tensor *: LT_TENSOR)

static const lt_opt opt_rows[] = {
#define LG_LOSS_OPT(name, key, field)                                                              \
    { #name, #key, LT_KIND(name, field), offsetof(lt_opts_##name, field), NULL },
#define LG_LOSS_OPT_WHOLE(name, key, field)                                                        \
    { #name, #key, LT_WHOLE, offsetof(lt_opts_##name, field), NULL },
#define LG_LOSS_FLAG(name, key, field, value)                                                      \
    { #name, #key, LT_FLAG, offsetof(lt_opts_##name, field), flag_##name##_##key },
#include "../src/loss/losses.def"
};

static const lt_loss losses[] = {
#define LG_LOSS(name, fn, opts_type, defaults_fn, nin)                                             \
    { #name, #fn, #opts_type, nin, sizeof(opts_type), defaults_##name, call_##name },
#include "../src/loss/losses.def"
};
enum { NLOSSES = sizeof losses / sizeof losses[0] };

int lt_count(void)
{
    return NLOSSES;
}

const lt_loss *lt_at(int i)
{
    return i >= 0 && i < NLOSSES ? &losses[i] : NULL;
}

const lt_loss *lt_find(const char *name)
{
    for (int i = 0; i < NLOSSES; i++)
        if (!strcmp(losses[i].name, name))
            return lt_at(i);
    return NULL;
}

const lt_opt *lt_opt_at(const lt_loss *L, int i)
{
    for (size_t r = 0; r < sizeof opt_rows / sizeof opt_rows[0]; r++)
        if (!strcmp(opt_rows[r].loss, L->name) && i-- == 0)
            return &opt_rows[r];
    return NULL;
}

const lt_opt *lt_find_opt(const lt_loss *L, const char *key)
{
    const lt_opt *o;
    for (int i = 0; (o = lt_opt_at(L, i)); i++)
        if (!strcmp(o->key, key))
            return o;
    return NULL;
}

const char *lt_role(const lt_loss *L, int i)
{
    for (size_t r = 0; r < sizeof in_rows / sizeof in_rows[0]; r++)
        if (!strcmp(in_rows[r].loss, L->name) && i-- == 0)
            return in_rows[r].role;
    return NULL;
}

int lt_role_index(const lt_loss *L, const char *role)
{
    const char *r;
    for (int i = 0; (r = lt_role(L, i)); i++)
        if (!strcmp(r, role))
            return i;
    return -1;
}

void lt_set_double(void *opts, const lt_opt *o, double v)
{
    memcpy((char *)opts + o->offset, &v, sizeof v);
}

void lt_set_int(void *opts, const lt_opt *o, int64_t v)
{
    memcpy((char *)opts + o->offset, &v, sizeof v);
}

void lt_set_bool(void *opts, const lt_opt *o, bool v)
{
    memcpy((char *)opts + o->offset, &v, sizeof v);
}

void lt_set_reduction(void *opts, const lt_opt *o, lg_reduction v)
{
    memcpy((char *)opts + o->offset, &v, sizeof v);
}

void lt_set_tensor(void *opts, const lt_opt *o, lg_tensor *v)
{
    memcpy((char *)opts + o->offset, &v, sizeof v);
}

bool lt_parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1"))
        return *out = true, true;
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "0"))
        return *out = false, true;
    return false;
}

static bool parse_num(const char *v, double *out)
{
    char *end;
    *out = strtod(v, &end);
    return *v && !*end;
}

static bool parse_int(const char *v, int64_t *out)
{
    char *end;
    *out = strtoll(v, &end, 10);
    return *v && !*end;
}

static bool parse_reduction(const char *v, lg_reduction *out)
{
    static const struct {
        const char *name;
        lg_reduction r;
    } names[] = { { "mean", LG_REDUCTION_MEAN },
                  { "sum", LG_REDUCTION_SUM },
                  { "none", LG_REDUCTION_NONE },
                  { "batchmean", LG_REDUCTION_BATCHMEAN } };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(v, names[i].name))
            return *out = names[i].r, true;
    return false;
}

/* A number written into an integer field (p of multi_margin_loss):
 * anything but a whole number is passed on as an invalid value for the
 * library to reject. */
static int64_t whole(double d)
{
    return d == floor(d) && fabs(d) < 1e9 ? (int64_t)d : -1;
}

bool lt_set_text(void *opts, const lt_opt *r, const char *v)
{
    double d;
    int64_t i;
    bool b;
    lg_reduction red;
    switch (r->kind) {
    case LT_REDUCTION: return parse_reduction(v, &red) && (lt_set_reduction(opts, r, red), true);
    case LT_BOOL: return lt_parse_bool(v, &b) && (lt_set_bool(opts, r, b), true);
    case LT_FLAG: return lt_parse_bool(v, &b);
    case LT_INT: return parse_int(v, &i) && (lt_set_int(opts, r, i), true);
    case LT_WHOLE: return parse_num(v, &d) && (lt_set_int(opts, r, whole(d)), true);
    case LT_DOUBLE: return parse_num(v, &d) && (lt_set_double(opts, r, d), true);
    case LT_TENSOR: break;
    }
    return false;
}

static bool flag_given(const char *key, int n, const char (*keys)[32], const char (*vals)[64])
{
    bool on = false;
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i], key))
            lt_parse_bool(vals[i], &on);
    return on;
}

bool lt_apply_flags(const lt_loss *L, void *opts, int n, const char (*keys)[32],
                    const char (*vals)[64], const lt_opt *clash[2])
{
    const lt_opt *r, *q;
    for (int i = 0; (r = lt_opt_at(L, i)); i++) {
        if (r->kind != LT_FLAG || !flag_given(r->key, n, keys, vals))
            continue;
        for (int j = 0; j < i && (q = lt_opt_at(L, j)); j++)
            if (q->kind == LT_FLAG && q->offset == r->offset && flag_given(q->key, n, keys, vals)) {
                clash[0] = q, clash[1] = r;
                return false;
            }
        r->set_flag(opts);
    }
    return true;
}
