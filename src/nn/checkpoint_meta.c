/* checkpoint_meta.c: a checkpoint's metadata read and checked for
 * lg_checkpoint_load (checkpoint_load.c): the RNG state, and for each
 * optimizer of the file its kind, rates, momenta and the states of its
 * schedules, paired with the call's optimizers. Rules: docs/checkpoints.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint_load.h"
#include "sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* A decimal as %.17g writes one, [-]d+[.d+][e[+-]d+], read whole by strtod
 * (in the C locale, see c_numeric), and finite. */
static bool parse_decimal(const char *s, double *out)
{
    const char *p = s + (*s == '-');
    size_t d = strspn(p, "0123456789");
    if (d == 0)
        return false;
    p += d;
    if (*p == '.') {
        d = strspn(++p, "0123456789");
        if (d == 0)
            return false;
        p += d;
    }
    if (*p == 'e' || *p == 'E') {
        p += 1 + (p[1] == '+' || p[1] == '-');
        d = strspn(p, "0123456789");
        if (d == 0)
            return false;
        p += d;
    }
    char *end;
    *out = strtod(s, &end);
    return *p == '\0' && end == p && isfinite(*out);
}

/* "rng": 64 hex digits, four words, not all zero (xoshiro256** never leaves
 * the zero state: every draw would be 0). */
static lg_status parse_rng(loader *L, const char *s)
{
    if (strlen(s) != 64 || strspn(s, "0123456789abcdefABCDEF") != 64)
        return lgN_load_fail(L, LG_ERR_VALUE, "metadata rng = '%.70s' is not 64 hex digits", s);
    uint64_t any = 0;
    for (int k = 0; k < 4; k++) {
        uint64_t w = 0;
        for (int j = 0; j < 16; j++) {
            char c = s[16 * k + j];
            w = w << 4 | (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        L->rng[k] = w;
        any |= w;
    }
    if (!any)
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "metadata rng is all zeros, a state the generator never leaves");
    return LG_OK;
}

/* "rng_spare": "0 <x>" or "1 <x>", x finite (the cached normal draw). */
static lg_status parse_spare(loader *L, const char *s)
{
    if ((s[0] != '0' && s[0] != '1') || s[1] != ' ' || !parse_decimal(s + 2, &L->spare))
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "metadata rng_spare = '%.40s' is not '0 <x>' or '1 <x>' with x finite",
                             s);
    L->has_spare = s[0] == '1';
    return LG_OK;
}

/* "optim" and "optim_lr" of optimizer k, both or neither: a kind name and
 * lr >= 0 finite (0 is legal, as in PyTorch). */
static lg_status parse_optim(loader *L, optfile *o, const char *kkey, const cJSON *kind,
                             const cJSON *lr, const char *lrkey)
{
    o->kind = -1;
    if (!kind && !lr)
        return LG_OK;
    if (!kind || !lr)
        return lgN_load_fail(L, LG_ERR_VALUE, "metadata has %s without %s", kind ? kkey : lrkey,
                             kind ? lrkey : kkey);
    for (int k = 0; k < LGN_KINDS && o->kind < 0; k++)
        if (!strcmp(kind->valuestring, lgN_kind_name(k)))
            o->kind = k;
    if (o->kind < 0)
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "metadata %s = '%.40s' is not sgd, adam, adamw, rmsprop, adagrad, "
                             "adadelta, adamax, radam, rprop, nadam, asgd or lbfgs",
                             kkey, kind->valuestring);
    if (!parse_decimal(lr->valuestring, &o->lr) || o->lr < 0)
        return lgN_load_fail(L, LG_ERR_VALUE, "metadata %s = '%.40s' is not a finite number >= 0",
                             lrkey, lr->valuestring);
    return LG_OK;
}

/* "optims": how many optimizers the file holds when more than one, a
 * decimal in [2, the number of metadata keys] (each has its own keys);
 * without it, 1 if the file has "optim" (or "optim_lr"), else 0. Every key
 * "<name>#<k>..." names one of them: k in [1, nfile). */
static lg_status count_optims(loader *L, const cJSON *meta)
{
    const cJSON *n = meta_item(meta, "optims");
    int nkeys = cJSON_GetArraySize(meta);
    if (!n) {
        L->nfile = meta_item(meta, "optim") || meta_item(meta, "optim_lr");
    } else {
        const char *s = n->valuestring;
        size_t d = strspn(s, "0123456789");
        long v = d > 0 && d < 8 && s[d] == '\0' && s[0] != '0' ? strtol(s, NULL, 10) : -1;
        if (v < 2 || v > nkeys)
            return lgN_load_fail(
                L, LG_ERR_VALUE,
                "metadata optims = '%.20s' is not a count of optimizers in [2, %d] (a "
                "file of one optimizer has no optims)",
                s, nkeys);
        L->nfile = (int)v;
    }
    for (const cJSON *it = meta->child; it; it = it->next) {
        const char *hash = strchr(it->string, '#');
        if (!hash)
            continue;
        size_t d = strspn(hash + 1, "0123456789");
        long k = d > 0 && d < 8 && hash[1] != '0' ? strtol(hash + 1, NULL, 10) : -1;
        if (k < 1 || k >= L->nfile || (hash[1 + d] != '\0' && hash[1 + d] != '.'))
            return lgN_load_fail(
                L, LG_ERR_VALUE,
                "metadata key '%.60s' names optimizer '%.10s', but the file holds %d "
                "optimizer(s), numbered #1 to #%d after the first",
                it->string, hash + 1, L->nfile, L->nfile - 1);
    }
    L->of = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)(L->nfile ? L->nfile : 1) * sizeof *L->of,
                            L->who);
    if (!L->of)
        return LG_ERR_OOM;
    memset(L->of, 0, (size_t)(L->nfile ? L->nfile : 1) * sizeof *L->of);
    return LG_OK;
}

/* Optimizer k's metadata: "optim" and the rest for k = 0 (and in a file of
 * one optimizer), "optim#k", "optim_lr#k", ..., "sched#k.<j>" for k >= 1. */
static lg_status parse_optfile(loader *L, const cJSON *meta, int k)
{
    optfile *o = &L->of[k];
    char kkey[40], lrkey[40], key[48];
    snprintf(kkey, sizeof kkey, k ? "optim#%d" : "optim", k);
    snprintf(lrkey, sizeof lrkey, k ? "optim_lr#%d" : "optim_lr", k);
    lg_status st = parse_optim(L, o, kkey, meta_item(meta, kkey), meta_item(meta, lrkey), lrkey);
    if (st != LG_OK)
        return st;
    if (o->kind < 0 && L->nfile > 1)
        return lgN_load_fail(L, LG_ERR_VALUE, "metadata optims = %d, but it has no %s and %s",
                             L->nfile, kkey, lrkey);
    snprintf(key, sizeof key, k ? "optim_group_lrs#%d" : "optim_group_lrs", k);
    const cJSON *glrs = meta_item(meta, key);
    o->group_lrs = glrs ? glrs->valuestring : NULL;
    snprintf(key, sizeof key, k ? "optim_group_momenta#%d" : "optim_group_momenta", k);
    const cJSON *gm = meta_item(meta, key);
    o->group_momenta = gm ? gm->valuestring : NULL;
    /* "sched.0", "sched.1", ... (or "sched#k.0", ...): numbered from 0 without gaps */
    char prefix[32];
    snprintf(prefix, sizeof prefix, k ? "sched#%d." : "sched.", k);
    for (const cJSON *it = meta->child; it; it = it->next)
        o->nsched += !strncmp(it->string, prefix, strlen(prefix));
    if (!o->nsched)
        return LG_OK;
    o->sched = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)o->nsched * sizeof *o->sched, L->who);
    if (!o->sched)
        return LG_ERR_OOM;
    for (int j = 0; j < o->nsched; j++) {
        snprintf(key, sizeof key, "%s%d", prefix, j);
        const cJSON *v = meta_item(meta, key);
        if (!v)
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "metadata has %d '%s' keys but no %s (expected %s0 to %s%d)",
                                 o->nsched, prefix, key, prefix, prefix, o->nsched - 1);
        o->sched[j] = v->valuestring;
    }
    return LG_OK;
}

/* Every value of the metadata, checked whatever the call asks for. */
lg_status lgN_parse_meta(loader *L)
{
    const cJSON *meta = meta_item(L->root, "__metadata__");
    if (!cJSON_IsObject(meta))
        return lgN_load_fail(
            L, LG_ERR_VALUE,
            "lacks lossgrad's metadata (a __metadata__ object with format, rng, rng_spare)");
    lg_status st = lgN_check_unique(L, meta, "__metadata__");
    if (st != LG_OK)
        return st;
    for (const cJSON *it = meta->child; it; it = it->next)
        if (!cJSON_IsString(it))
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "metadata '%.40s' is not a string (safetensors metadata "
                                 "maps strings to strings)",
                                 it->string);
    const cJSON *format = meta_item(meta, "format"), *rng = meta_item(meta, "rng");
    const cJSON *spare = meta_item(meta, "rng_spare");
    if (!format || strcmp(format->valuestring, "lossgrad"))
        return lgN_load_fail(L, LG_ERR_VALUE, "metadata format is '%.40s', 'lossgrad' expected",
                             format ? format->valuestring : "(missing)");
    if (!rng || !spare)
        return lgN_load_fail(L, LG_ERR_VALUE, "lacks lossgrad's metadata (rng and rng_spare)");
    if ((st = parse_rng(L, rng->valuestring)) != LG_OK ||
        (st = parse_spare(L, spare->valuestring)) != LG_OK || (st = count_optims(L, meta)) != LG_OK)
        return st;
    for (int k = 0; k < L->nfile; k++)
        if ((st = parse_optfile(L, meta, k)) != LG_OK)
            return st;
    /* the call's optimizers, one per optimizer of the file (or none) */
    for (int k = 0; k < L->nfile && L->nopts; k++) {
        L->of[k].opt = k < L->nopts ? L->opts[k] : NULL;
        snprintf(L->of[k].arg, sizeof L->of[k].arg, L->nopts == 1 ? "opt" : "opts[%d]", k);
    }
    return LG_OK;
}

/* The k-th number of "optim_group_lrs" (k < ngroups) into *lr; the count
 * of numbers when lr is NULL, -1 if one is not a finite number >= 0. */
static int group_lr_at(const char *s, int k, double *lr)
{
    int count = 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, " ");
        char tok[48];
        double v;
        if (len == 0 || len >= sizeof tok)
            return -1;
        memcpy(tok, p, len), tok[len] = '\0';
        if (!parse_decimal(tok, &v) || v < 0)
            return -1;
        if (lr && count == k) {
            *lr = v;
            return count;
        }
        count++;
        p += len;
        if (*p == ' ' && *++p == '\0')
            return -1; /* a trailing space */
    }
    return count;
}

/* The numbers of s (finite, split by single spaces) into out[0..max);
 * their count, or -1 if one is not a finite number or there are more. */
static int numbers(const char *s, double *out, int max)
{
    int count = 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, " ");
        char tok[48];
        double v;
        if (len == 0 || len >= sizeof tok || count >= max)
            return -1;
        memcpy(tok, p, len), tok[len] = '\0';
        if (!strcmp(tok, "inf") || !strcmp(tok, "-inf")) /* %.17g's infinities (a plateau's best) */
            v = tok[0] == '-' ? -INFINITY : INFINITY;
        else if (!parse_decimal(tok, &v))
            return -1;
        out[count++] = v;
        p += len;
        if (*p == ' ' && *++p == '\0')
            return -1;
    }
    return count;
}

/* Optimizer o's metadata key for base: base itself for the first
 * optimizer, "base#k" for optimizer k >= 1. */
static const char *okey(char *buf, size_t n, const loader *L, const optfile *o, const char *base)
{
    int k = (int)(o - L->of);
    snprintf(buf, n, k ? "%s#%d" : "%s", base, k);
    return buf;
}

/* Every group's momentum (or beta1) of optimizer o, when the file has
 * them: opt's group count of valid values (lg_optim_group_set's ranges:
 * the values are checked here, set at commit). */
static lg_status check_group_momenta_of(loader *L, optfile *o)
{
    if (!o->opt || !o->group_momenta)
        return LG_OK;
    int ng = o->opt->ngroups;
    double *v = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)ng * sizeof *v, L->who);
    if (!v)
        return LG_ERR_OOM;
    int have = numbers(o->group_momenta, v, ng);
    char key[48];
    okey(key, sizeof key, L, o, "optim_group_momenta");
    if (have != ng)
        return lgN_load_fail(
            L, LG_ERR_VALUE,
            "metadata %s = '%.60s' is not %d finite numbers split by single spaces", key,
            o->group_momenta, ng);
    bool beta = isnan(lg_optim_group_get(o->opt, 0, LG_HYPER_MOMENTUM));
    for (int g = 0; g < ng; g++)
        if (beta ? !(v[g] >= 0 && v[g] < 1)
                 : !(isfinite(v[g]) && v[g] >= 0) || (o->opt->groups[g].nesterov && v[g] == 0))
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "metadata %s: %s's group %d's %s = %g is out of range", key,
                                 o->arg, g, beta ? "beta1" : "momentum", v[g]);
    return LG_OK;
}

lg_status lgN_check_group_momenta(loader *L)
{
    for (int k = 0; k < L->nfile; k++) {
        lg_status st = check_group_momenta_of(L, &L->of[k]);
        if (st != LG_OK)
            return st;
    }
    return LG_OK;
}

/* The schedules made on each opt take the file's states, one by one, after
 * every other check; each one's state before is kept, so that a failure
 * (here, or allocating slots in prepare_slots) puts them all back. */
static void restore_scheds_of(optfile *o, int upto)
{
    for (int j = 0; j < upto && o->sched_old; j++)
        lgN_sched_state_load(o->top[j], o->sched_old[j], lgN_sched_state_len(o->top[j]));
}

void lgN_restore_scheds(loader *L, int upto)
{
    for (int k = 0; k < upto; k++)
        restore_scheds_of(&L->of[k], L->of[k].nsched);
}

static lg_status load_scheds_of(loader *L, optfile *o)
{
    if (!o->opt)
        return LG_OK;
    int n = lgN_optim_top_scheds(o->opt, NULL);
    if (n != o->nsched)
        return lgN_load_fail(
            L, LG_ERR_VALUE,
            "holds the state of %d schedule(s), but %d schedule(s) were made on %s", o->nsched, n,
            o->arg);
    if (!n)
        return LG_OK;
    o->top = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)n * sizeof *o->top, L->who);
    double **old =
        o->top ? lgC_arena_alloc(L->ctx, &L->scratch, (size_t)n * sizeof *old, L->who) : NULL;
    if (!old)
        return LG_ERR_OOM;
    lgN_optim_top_scheds(o->opt, o->top);
    for (int j = 0; j < n; j++) {
        int len = lgN_sched_state_len(o->top[j]);
        double *v = lgC_arena_alloc(L->ctx, &L->scratch, (size_t)(len + 1) * sizeof *v, L->who);
        old[j] = v ? lgC_arena_alloc(L->ctx, &L->scratch, (size_t)len * sizeof *v, L->who) : NULL;
        if (!old[j]) {
            o->sched_old = old;
            restore_scheds_of(o, j);
            o->sched_old = NULL;
            return LG_ERR_OOM;
        }
        int have = numbers(o->sched[j], v, len + 1);
        lgN_sched_state_save(o->top[j], old[j]);
        lg_status st = have == len ? lgN_sched_state_load(o->top[j], v, len) : LG_ERR_VALUE;
        if (st != LG_OK) {
            char why[LG_ERRMSG_MAX];
            const char *m = lg_ctx_errmsg(L->ctx), *colon = strstr(m, ": ");
            snprintf(why, sizeof why, "%s",
                     have != len ? "not the schedule's numbers"
                     : colon     ? colon + 2
                                 : m);
            o->sched_old = old;
            restore_scheds_of(o, j);
            o->sched_old = NULL;
            lg_ctx_clear_error(L->ctx);
            char key[48];
            if (o == L->of)
                snprintf(key, sizeof key, "sched.%d", j);
            else
                snprintf(key, sizeof key, "sched#%d.%d", (int)(o - L->of), j);
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "metadata %s (%d numbers, the schedule has %d): %s", key, have,
                                 len, why);
        }
    }
    o->sched_old = old;
    return LG_OK;
}

lg_status lgN_load_scheds(loader *L)
{
    for (int k = 0; k < L->nfile; k++) {
        lg_status st = load_scheds_of(L, &L->of[k]);
        if (st != LG_OK) {
            lgN_restore_scheds(L, k);
            return st;
        }
    }
    return LG_OK;
}

/* Every group's lr: a file written with opt's number of groups. */
lg_status lgN_check_group_lrs(loader *L)
{
    for (int k = 0; k < L->nfile; k++) {
        const optfile *o = &L->of[k];
        if (!o->opt)
            continue;
        int ng = o->opt->ngroups, have = o->group_lrs ? group_lr_at(o->group_lrs, 0, NULL) : 1;
        char key[48];
        okey(key, sizeof key, L, o, "optim_group_lrs");
        if (have < 0)
            return lgN_load_fail(
                L, LG_ERR_VALUE,
                "metadata %s = '%.60s' is not finite numbers >= 0 split by single spaces", key,
                o->group_lrs);
        if (o->group_lrs && have < 2)
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "metadata %s holds %d rate(s), expected 2 or more", key, have);
        if (have != ng)
            return lgN_load_fail(
                L, LG_ERR_VALUE,
                "holds the state of an optimizer with %d parameter group(s), but %s has %d", have,
                o->arg, ng);
    }
    return LG_OK;
}

/* The file holds as many optimizers as the call gives (or the call gives
 * none), each of the kind of the call's at its place. */
lg_status lgN_check_optim_kind(loader *L)
{
    if (!L->nopts)
        return LG_OK;
    if (L->nfile == 0 && L->nopts == 1)
        return lgN_load_fail(
            L, LG_ERR_VALUE,
            "holds no optimizer state, but opt is an %s optimizer (pass opt = NULL to "
            "load the parameters only)",
            lgN_kind_name(L->opts[0]->kind));
    if (L->nfile != L->nopts)
        return lgN_load_fail(
            L, LG_ERR_VALUE,
            "holds the state of %d optimizer(s), but %d were given (give them all, in "
            "the order they were saved, or none to load the parameters only)",
            L->nfile, L->nopts);
    for (int k = 0; k < L->nfile; k++)
        if (L->of[k].kind != (int)L->opts[k]->kind)
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "holds %s optimizer state%s, but %s is an %s optimizer",
                                 lgN_kind_name(L->of[k].kind), L->nopts > 1 ? " at its place" : "",
                                 L->of[k].arg, lgN_kind_name(L->opts[k]->kind));
    return LG_OK;
}

/* Optimizer o's groups take the file's rates and momenta (checked by
 * lgN_check_group_lrs and lgN_check_group_momenta). */
void lgN_commit_groups(const optfile *o)
{
    lg_optim *opt = o->opt;
    for (int g = 0; g < opt->ngroups; g++) {
        double lr = o->lr;
        if (o->group_lrs)
            group_lr_at(o->group_lrs, g, &lr);
        opt->groups[g].lr = lr;
    }
    if (!o->group_momenta)
        return;
    bool beta = isnan(lg_optim_group_get(opt, 0, LG_HYPER_MOMENTUM));
    double v[1];
    const char *p = o->group_momenta;
    for (int g = 0; g < opt->ngroups; g++) {
        char tok[48];
        size_t len = strcspn(p, " ");
        memcpy(tok, p, len), tok[len] = '\0';
        parse_decimal(tok, v);
        p += len + (p[len] == ' ');
        if (beta)
            opt->groups[g].beta1 = v[0];
        else
            opt->groups[g].momentum = v[0];
    }
}
