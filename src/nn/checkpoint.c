/* checkpoint.c: saving a ctx's parameters, an optimizer's state and the
 * RNG as a safetensors file (format: checkpoint.h), atomically through
 * checkpoint_file.c. Loading is checkpoint_load.c.
 *
 * A save changes nothing in the ctx: its entries and names live in a
 * private scratch arena, the header JSON in cJSON's memory (the C
 * library's allocator: cJSON's hooks are process-wide), both freed before
 * it returns.
 */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"
#include "sched.h"

#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

/* What one save writes: the ctx's tensors and the state of nopts
 * optimizers; errors name the function called. */
typedef struct saver {
    lg_ctx *ctx;
    const char *who;
    lg_optim *const *opts;
    int nopts;
    bool many; /* lg_checkpoint_save_optims: messages say opts[k], not opt */
    lgC_arena scratch;
} saver;

/* ------------------------------------------------------------------ */
/* The list of entries a ctx (and optimizer) has                        */
/* ------------------------------------------------------------------ */

/* What a checkpoint stores of the model: every parameter, then every
 * buffer (state_dict's order in PyTorch is by module; names carry it). */
static int stored_count(const lg_ctx *ctx)
{
    return lg_param_count(ctx) + lg_buffer_count(ctx);
}
static lg_tensor *stored_at(lg_ctx *ctx, int i)
{
    int np = lg_param_count(ctx);
    return i < np ? lg_param_at(ctx, i) : lg_buffer_at(ctx, i - np);
}

static bool check_param_name(lg_ctx *ctx, const char *who, int i, const char *name)
{
    int np = lg_param_count(ctx);
    const char *kind = i < np ? "parameter" : "buffer";
    if (!name || !*name)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: %s %d has no name", who, kind,
                          i < np ? i : i - np),
               false;
    if (!strncmp(name, LGN_OPT_BASE, strlen(LGN_OPT_BASE)) || !strcmp(name, "__metadata__"))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: %s name '%s' is reserved", who, kind, name),
               false;
    for (int j = 0; j < i; j++)
        if (!strcmp(lg_tensor_name(stored_at(ctx, j)), name))
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: two tensors are named '%s'", who, name),
                   false;
    return true;
}

static bool check_opt_param(const saver *S, int k, int i)
{
    const lg_optim *opt = S->opts[k];
    const char *name = lg_tensor_name(opt->params[i]);
    char arg[24];
    snprintf(arg, sizeof arg, S->many ? "opts[%d]" : "opt", k);
    if (!name || !*name)
        return lgC_errorf(S->ctx, LG_ERR_VALUE, "%s: %s's parameter %d has no name", S->who, arg,
                          i),
               false;
    for (int j = 0; j < i; j++)
        if (opt->params[j] == opt->params[i])
            return lgC_errorf(S->ctx, LG_ERR_VALUE, "%s: %s optimizes parameter '%s' twice", S->who,
                              arg, name),
                   false;
    return true;
}

/* One entry: parameter p itself (slot NULL) or optimizer k's state of it
 * named slot ("step": the count; scalar: a 0-d F64 of per-parameter scalar
 * state); the name is formatted into scratch. */
static bool add_entry(saver *S, lgN_entry *e, lg_tensor *p, int k, const char *slot,
                      const void *src, bool scalar)
{
    const char *pname = lg_tensor_name(p);
    size_t len = strlen(LGN_OPT_PREFIX) + 12 + strlen(pname) + (slot ? strlen(slot) + 1 : 0) + 1;
    char *name = lgC_arena_alloc(S->ctx, &S->scratch, len, S->who);
    if (!name)
        return false;
    if (slot && k)
        snprintf(name, len, LGN_OPT_BASE "#%d.%s.%s", k, pname, slot);
    else if (slot)
        snprintf(name, len, LGN_OPT_PREFIX "%s.%s", pname, slot);
    else
        snprintf(name, len, "%s", pname);
    bool is_step = slot && !strcmp(slot, "step");
    *e = (lgN_entry){ .name = name, .src = src };
    e->dt = is_step ? LG_I64 : scalar ? LG_F64 : lg_tensor_dtype(p);
    e->ndim = is_step || scalar ? 0 : lg_tensor_ndim(p);
    memcpy(e->shape, lg_tensor_shape(p), (size_t)e->ndim * sizeof(int64_t));
    return true;
}

/* LBFGS's state (optim.h), under optimizer k's first parameter as PyTorch
 * keys it: es[0..LGN_LBFGS_ENTRIES) are filled when es is not NULL; the
 * pairs are copied oldest first into scratch. */
static bool add_lbfgs(saver *S, lgN_entry *es, int k)
{
    const lg_optim *opt = S->opts[k];
    int64_t P;
    int nold;
    if (!lgN_lbfgs_saved_dims(opt, &P, &nold))
        return true;
    size_t pb = (size_t)P * sizeof(double);
    lgN_lbfgs_saved *v = lgC_arena_alloc(S->ctx, &S->scratch, sizeof *v, S->who);
    double *buf =
        v ? lgC_arena_alloc(S->ctx, &S->scratch,
                            (2 + 2 * (size_t)nold) * pb + (size_t)(nold ? nold : 1) * 8, S->who)
          : NULL;
    if (!buf)
        return false;
    v->d = buf, v->prev_flat_grad = buf + P;
    v->old_dirs = buf + 2 * P, v->old_stps = v->old_dirs + (size_t)nold * (size_t)P;
    v->ro = v->old_stps + (size_t)nold * (size_t)P;
    lgN_lbfgs_export(opt, v);
    const void *src[LGN_LBFGS_ENTRIES] = {
        v->d,  v->prev_flat_grad, v->old_dirs, v->old_stps,   v->ro,
        &v->t, &v->H_diag,        &v->n_iter,  &v->func_evals
    };
    for (int j = 0; j < LGN_LBFGS_ENTRIES; j++) {
        lgN_entry *e = &es[j];
        if (!add_entry(S, e, opt->params[0], k, lgN_lbfgs_entry_name(j), src[j], true))
            return false;
        e->dt = j >= 7 ? LG_I64 : LG_F64;
        e->ndim = j < 2 || j == 4 ? 1 : j < 4 ? 2 : 0;
        e->shape[0] = j == 4 ? nold : j < 2 ? P : nold;
        e->shape[1] = P;
    }
    return true;
}

/* Fills es[] (if not NULL) and returns how many entries there are, or -1
 * with the ctx error set. */
static int collect(saver *S, lgN_entry *es)
{
    lg_ctx *ctx = S->ctx;
    int n = 0;
    for (int i = 0; i < stored_count(ctx); i++) {
        lg_tensor *p = stored_at(ctx, i);
        if (!check_param_name(ctx, S->who, i, lg_tensor_name(p)))
            return -1;
        if (es && !add_entry(S, &es[n], p, 0, NULL, lg_tensor_data(p), false))
            return -1;
        n++;
    }
    for (int k = 0; k < S->nopts; k++)
        for (int i = 0; i < S->opts[k]->n; i++) {
            const lg_optim *opt = S->opts[k];
            if (!check_opt_param(S, k, i))
                return -1;
            for (int s = 0; s <= LGN_SLOTS; s++) {
                bool is_step = s == LGN_SLOTS;
                if (!is_step && !opt->slot[s][i])
                    continue;
                const char *slot = is_step ? "step" : lgN_slot_name(opt, s);
                const void *src = is_step ? (const void *)&opt->steps[i] : opt->slot[s][i];
                if (es && !add_entry(S, &es[n], opt->params[i], k, slot, src, false))
                    return -1;
                n++;
            }
            /* scalar state, once the parameter has been updated (its first slot made) */
            for (int s = 0; s < LGN_SCALARS && opt->slot[0][i]; s++) {
                if (!lgN_scalar_name(opt, s))
                    continue;
                if (es && !add_entry(S, &es[n], opt->params[i], k, lgN_scalar_name(opt, s),
                                     &opt->scalar[s][i], true))
                    return -1;
                n++;
            }
        }
    for (int k = 0; k < S->nopts; k++) {
        int64_t P;
        int nold;
        if (S->opts[k]->kind != LG_LBFGS || !lgN_lbfgs_saved_dims(S->opts[k], &P, &nold))
            continue;
        if (es && !add_lbfgs(S, &es[n], k))
            return -1;
        n += LGN_LBFGS_ENTRIES;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* The header                                                           */
/* ------------------------------------------------------------------ */

/* meta[key] = n numbers "%.17g" split by single spaces: v[0..n), or (v
 * NULL) each group's hyper-parameter h of opt. */
static bool add_numbers(lg_ctx *ctx, cJSON *meta, const char *key, int n, const double *v,
                        const lg_optim *opt, lg_optim_hyper h)
{
    size_t len = (size_t)n * 32 + 1, at = 0;
    char *s = lgC_raw_alloc(ctx, len);
    if (!s)
        return false;
    s[0] = '\0';
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, len - at, i ? " %.17g" : "%.17g",
                               v ? v[i] : lg_optim_group_get(opt, i, h));
    bool ok = cJSON_AddStringToObject(meta, key, s) != NULL;
    lgC_raw_free(ctx, s, len);
    return ok;
}

/* Optimizer k's metadata key for base: base for the first, "base#k" for
 * k >= 1 (a file of one optimizer reads as it always did). */
static const char *okey(char *buf, size_t n, int k, const char *base)
{
    snprintf(buf, n, k ? "%s#%d" : "%s", base, k);
    return buf;
}

/* Optimizer k's kind, lr, every group's lr and momentum or beta1, and the
 * state of the schedules made on it. */
static bool add_optim_metadata(lg_ctx *ctx, cJSON *meta, const lg_optim *opt, int k)
{
    char buf[64], key[48];
    snprintf(buf, sizeof buf, "%.17g", opt->groups[0].lr);
    bool ok = cJSON_AddStringToObject(meta, okey(key, sizeof key, k, "optim"),
                                      lgN_kind_name(opt->kind)) &&
              cJSON_AddStringToObject(meta, okey(key, sizeof key, k, "optim_lr"), buf);
    /* more than one group: every group's lr, "lr0 lr1 ...", each "%.17g" */
    if (ok && opt->ngroups > 1)
        ok = add_numbers(ctx, meta, okey(key, sizeof key, k, "optim_group_lrs"), opt->ngroups, NULL,
                         opt, LG_HYPER_LR);
    /* every group's momentum (SGD, RMSprop) or beta1 (the Adam family), which
     * CyclicLR and OneCycleLR move: "m0 m1 ..." */
    lg_optim_hyper mh = LG_HYPER_MOMENTUM;
    if (isnan(lg_optim_group_get(opt, 0, mh)))
        mh = LG_HYPER_BETA1;
    if (ok && !isnan(lg_optim_group_get(opt, 0, mh)))
        ok = add_numbers(ctx, meta, okey(key, sizeof key, k, "optim_group_momenta"), opt->ngroups,
                         NULL, opt, mh);
    /* the schedules made on opt (those no composite owns), in order:
     * "sched.<j>" (or "sched#k.<j>") = their state's numbers (sched.h) */
    int ns = lgN_optim_top_scheds(opt, NULL);
    lg_sched **top = ns ? lgC_raw_alloc(ctx, (size_t)ns * sizeof *top) : NULL;
    if (ns && !top)
        return false;
    if (ns)
        lgN_optim_top_scheds(opt, top);
    for (int j = 0; ok && j < ns; j++) {
        int len = lgN_sched_state_len(top[j]);
        double *v = lgC_raw_alloc(ctx, (size_t)len * sizeof *v);
        if (!v) {
            ok = false;
            break;
        }
        lgN_sched_state_save(top[j], v);
        if (k)
            snprintf(key, sizeof key, "sched#%d.%d", k, j);
        else
            snprintf(key, sizeof key, "sched.%d", j);
        ok = add_numbers(ctx, meta, key, len, v, NULL, LG_HYPER_LR);
        lgC_raw_free(ctx, v, (size_t)len * sizeof *v);
    }
    if (top)
        lgC_raw_free(ctx, top, (size_t)ns * sizeof *top);
    return ok;
}

static bool add_metadata(const saver *S, cJSON *root)
{
    lg_ctx *ctx = S->ctx;
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    char buf[128];
    bool ok = meta && cJSON_AddStringToObject(meta, "format", "lossgrad");
    snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, ctx->rng[0],
             ctx->rng[1], ctx->rng[2], ctx->rng[3]);
    ok = ok && cJSON_AddStringToObject(meta, "rng", buf);
    snprintf(buf, sizeof buf, "%d %.17g", ctx->has_spare ? 1 : 0, ctx->spare_normal);
    ok = ok && cJSON_AddStringToObject(meta, "rng_spare", buf);
    if (ok && S->nopts > 1) {
        snprintf(buf, sizeof buf, "%d", S->nopts);
        ok = cJSON_AddStringToObject(meta, "optims", buf) != NULL;
    }
    for (int k = 0; ok && k < S->nopts; k++)
        ok = add_optim_metadata(ctx, meta, S->opts[k], k);
    return ok;
}

static bool add_tensor(cJSON *root, const lgN_entry *e)
{
    cJSON *t = cJSON_AddObjectToObject(root, e->name);
    cJSON *shape = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
    cJSON *offs = shape ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
    bool ok = offs && cJSON_AddStringToObject(t, "dtype", lgN_dt_tag(e->dt));
    for (int d = 0; ok && d < e->ndim; d++)
        ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
    return ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)e->begin)) &&
           cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)e->end));
}

/* The header JSON (cJSON_free it), or NULL with the ctx error set. */
static char *header_json(const saver *S, lgN_entry *es, int n)
{
    lg_ctx *ctx = S->ctx;
    const char *who = S->who;
    lgN_c_numeric loc;
    if (!lgN_c_numeric_begin(&loc))
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory building the header", who);
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    uint64_t off = 0;
    for (int i = 0; i < n && ok; i++) {
        es[i].begin = off;
        es[i].end = off += lgN_entry_bytes(&es[i]);
        ok = add_tensor(root, &es[i]);
    }
    char *json = ok && add_metadata(S, root) ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    lgN_c_numeric_end(&loc);
    if (!json)
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory building the header", who);
    if ((strlen(json) + 7) / 8 * 8 > LGN_MAX_HEADER) {
        lgC_errorf(ctx, LG_ERR_VALUE, "%s: the header would be %zu bytes, more than a load accepts",
                   who, strlen(json));
        cJSON_free(json);
        return NULL;
    }
    return json;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */
/* ------------------------------------------------------------------ */

/* Writes n elements of size es, little-endian whatever the host. */
static bool write_le(int fd, const void *data, size_t es, size_t n)
{
    if (lgN_little_endian())
        return lgN_write_all(fd, data, es * n);
    const uint8_t *p = data;
    uint8_t buf[4096];
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (; i < n && m + es <= sizeof buf; i++, m += es)
            for (size_t k = 0; k < es; k++)
                buf[m + k] = p[i * es + es - 1 - k];
        if (!lgN_write_all(fd, buf, m))
            return false;
    }
    return true;
}

typedef struct content {
    const char *json;
    const lgN_entry *es;
    int n;
} content;

/* The length, the JSON padded with spaces to a multiple of 8, the data. */
static bool write_content(int fd, void *user)
{
    const content *c = user;
    size_t jlen = strlen(c->json), hlen = (jlen + 7) / 8 * 8;
    uint8_t len8[8];
    for (int k = 0; k < 8; k++)
        len8[k] = (uint8_t)((uint64_t)hlen >> (8 * k));
    bool ok = lgN_write_all(fd, len8, 8) && lgN_write_all(fd, c->json, jlen) &&
              lgN_write_all(fd, "       ", hlen - jlen);
    for (int i = 0; ok && i < c->n; i++) {
        size_t es = lgN_dt_size(c->es[i].dt);
        ok = write_le(fd, c->es[i].src, es, (size_t)(lgN_entry_bytes(&c->es[i]) / es));
    }
    return ok;
}

static lg_status save(saver *S, const char *path)
{
    int n = collect(S, NULL);
    if (n < 0)
        return S->ctx->status;
    lgN_entry *es = lgC_arena_alloc(S->ctx, &S->scratch, (size_t)(n ? n : 1) * sizeof *es, S->who);
    if (!es)
        return LG_ERR_OOM;
    if (collect(S, es) != n)
        return S->ctx->status;
    char *json = header_json(S, es, n);
    if (!json)
        return S->ctx->status;
    content c = { json, es, n };
    lg_status st = lgN_replace_file(S->ctx, S->who, path, write_content, &c);
    cJSON_free(json);
    return st;
}

static lg_status save_file(lg_ctx *ctx, const char *who, const char *path, lg_optim *const *opts,
                           int nopts, bool many)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return LG_ERR_STATE;
    lg_status st = lgN_check_call(ctx, who, path, opts, nopts, many);
    if (st != LG_OK)
        return st;
    saver S = { ctx, who, opts, nopts, many, lgN_scratch() };
    st = save(&S, path);
    lgC_arena_free(ctx, &S.scratch);
    return st;
}

lg_status lg_checkpoint_save(lg_ctx *ctx, const char *path, const lg_optim *opt)
{
    /* opts is only read: the pointer array's type is the one users hold */
    lg_optim *o = (lg_optim *)opt;
    return save_file(ctx, "lg_checkpoint_save", path, opt ? &o : NULL, opt ? 1 : 0, false);
}

lg_status lg_checkpoint_save_optims(lg_ctx *ctx, const char *path, lg_optim *const *opts, int nopts)
{
    return save_file(ctx, "lg_checkpoint_save_optims", path, opts, nopts, true);
}
