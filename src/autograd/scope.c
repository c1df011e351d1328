/* scope.c: scopes inside a step, so that work such as inference over many
 * batches runs in bounded memory.
 *
 * lg_scope_begin marks the step arena, the header pool and the tape, and
 * leaves a gap before the scope's headers whose size turns with every
 * scope. lg_scope_end gives everything made since back, data and headers,
 * except the tensors the caller keeps: their data is moved down to the
 * mark, and a kept tensor made inside the scope gets a new header there
 * (its handle in keep[] is replaced), as a detached leaf. Every header it
 * frees is marked dead first, so a handle from a closed scope is an
 * LG_ERR_STALE error; since the gaps differ, a later scope at the same
 * place lays its headers out of step with the old ones for at least the
 * next LGC_HEADER_BYTES / 8 - 2 scopes.
 */
#include "autograd.h"

#include <string.h>

enum { MAX_SPANS = 64 };

lg_status lg_scope_begin(lg_ctx *ctx)
{
    static const char who[] = "lg_scope_begin";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return LG_ERR_STATE;
    if (ctx->nscopes == LGC_MAX_SCOPES)
        return lgC_errorf(ctx, LG_ERR_STATE, "%s: scopes nest %d deep at most", who,
                          LGC_MAX_SCOPES);
    lgC_arena *pool = lgC_header_pool(ctx);
    struct lgC_scope sc = { .data = lgC_arena_mark(&ctx->arena),
                            .hdr = lgC_arena_mark(pool),
                            .tape_tail = ctx->tape_tail,
                            .backwards = ctx->backwards };
    if (!lgC_header_gap(ctx, who))
        return ctx->status;
    ctx->scopes[ctx->nscopes++] = sc;
    return LG_OK;
}

/* The kept tensors made inside the scope, each once. */
typedef struct kept {
    int n;
    lg_tensor *old[LGC_MAX_KEEP];   /* their headers in the scope */
    lg_tensor copy[LGC_MAX_KEEP];   /* what those held */
    lg_tensor *fresh[LGC_MAX_KEEP]; /* their new headers at the mark */
} kept;

static int find(const kept *k, const lg_tensor *t)
{
    for (int i = 0; i < k->n; i++)
        if (k->old[i] == t)
            return i;
    return -1;
}

/* Moves the kept data blocks made in the scope (the kept tensors' own and
 * the copies of those made inside it) down to the scope's mark. */
static void move_data(lg_ctx *ctx, const struct lgC_scope *sc, lg_tensor *const *keep, int n,
                      kept *k)
{
    void *ptrs[LGC_MAX_KEEP] = { NULL };
    size_t sizes[LGC_MAX_KEEP] = { 0 };
    void **where[LGC_MAX_KEEP]; /* each kept tensor's data pointer, */
    int block[LGC_MAX_KEEP];    /* and the block it is in (or -1) */
    int nb = 0;
    for (int i = 0; i < n; i++) {
        lg_tensor *t = keep[i];
        int c = find(k, t);
        where[i] = c >= 0 ? &k->copy[c].data : &t->data;
        block[i] = -1;
        if (t->persistent || !lgC_arena_after(&ctx->arena, sc->data, *where[i]))
            continue;
        int b = 0;
        while (b < nb && ptrs[b] != *where[i]) /* a reshape shares its input's block */
            b++;
        if (b == nb) {
            ptrs[nb] = *where[i];
            sizes[nb++] = (size_t)t->numel * lgT_dtype_size((lg_dtype)t->dtype);
        }
        block[i] = b;
    }
    lgC_arena_release_keep(&ctx->arena, sc->data, nb, ptrs, sizes);
    for (int i = 0; i < n; i++)
        if (block[i] >= 0)
            *where[i] = ptrs[block[i]];
}

/* A header from before the scope whose gradient was made in the scope (a
 * backward ran in it) keeps it only if it was kept, in its new header. */
typedef struct regrad {
    const lgC_span *spans;
    int nspans;
    const kept *k;
} regrad;

static size_t fix_grad(void *p, size_t room, void *user)
{
    const regrad *r = user;
    if (room < LGC_HEADER_BYTES || !lgC_hdr_intact(p))
        return 8;
    lg_tensor *t = p;
    if (t->grad && !t->grad->persistent && lgC_spans_have(r->spans, r->nspans, t->grad)) {
        int c = find(r->k, t->grad);
        t->grad = c >= 0 ? r->k->fresh[c] : NULL;
    }
    return LGC_HEADER_BYTES;
}

/* The tape as it was at the scope's start, less the entries a backward in
 * the scope consumed (backward unlinks those; their own links still lead
 * to the older entries). */
static void relink_tape(lg_ctx *ctx)
{
    lg_tensor **link = &ctx->tape_tail;
    for (lg_tensor *y = ctx->tape_tail; y; y = y->tape_prev)
        if (!y->consumed) {
            *link = y;
            link = &y->tape_prev;
        }
    *link = NULL;
}

static lg_status check_keep(lg_ctx *ctx, int n, lg_tensor **keep, lgC_span *spans, int *nspans,
                            const struct lgC_scope *sc)
{
    static const char who[] = "lg_scope_end";
    if (n < 0 || n > LGC_MAX_KEEP || (n > 0 && !keep))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: n = %d%s, expected 0..%d tensors", who, n,
                          n > 0 && !keep ? " with keep NULL" : "", LGC_MAX_KEEP);
    for (int i = 0; i < n; i++) {
        char arg[24];
        snprintf(arg, sizeof arg, "keep[%d]", i);
        if (!lgT_ok(ctx, keep[i], who, arg))
            return ctx->status;
    }
    if (!lgC_arena_spans(lgC_header_pool(ctx), sc->hdr, spans, MAX_SPANS, nspans))
        return lgC_errorf(ctx, LG_ERR_STATE, "%s: the scope spans more than %d arena chunks", who,
                          MAX_SPANS);
    return LG_OK;
}

lg_status lg_scope_end(lg_ctx *ctx, int n, lg_tensor **keep)
{
    static const char who[] = "lg_scope_end";
    if (!ctx)
        return LG_ERR_NULL;
    if (ctx->nscopes == 0)
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "%s: no lg_scope_begin is open in this step (calls must pair; "
                          "lg_step_end closes every scope)",
                          who);
    struct lgC_scope *sc = &ctx->scopes[ctx->nscopes - 1];
    lgC_span spans[MAX_SPANS];
    int nspans = 0;
    lg_status st = check_keep(ctx, n, keep, spans, &nspans, sc);
    if (st != LG_OK)
        return st;
    /* what the kept tensors made inside hold, before their headers go (on
     * the stack: the arenas' space after the marks is being given back) */
    kept kv, *kp = &kv;
    kp->n = 0;
    for (int i = 0; i < n; i++)
        if (lgC_spans_have(spans, nspans, keep[i]) && find(kp, keep[i]) < 0) {
            kp->old[kp->n] = keep[i];
            kp->copy[kp->n++] = *keep[i];
        }
    lgC_arena *pool = lgC_header_pool(ctx);
    lgC_retire(pool, sc->hdr);
    move_data(ctx, sc, keep, n, kp);
    lgC_arena_release(pool, sc->hdr);
    for (int c = 0; c < kp->n; c++) {
        lg_tensor *t = lgC_arena_alloc(ctx, pool, sizeof *t, who); /* it fits: freed above */
        lg_assert(t != NULL);
        *t = kp->copy[c];
        t->self = t;
        t->op = LGT_LEAF;
        t->nin = 0;
        t->in = t->in_inline;
        t->requires_grad = false;
        t->consumed = false;
        t->grad = t->saved = NULL;
        t->aux = NULL;
        t->tape_prev = NULL;
        kp->fresh[c] = t;
    }
    if (ctx->backwards != sc->backwards) {
        regrad r = { spans, nspans, kp };
        lgC_arena_scan(pool, ctx->hdr_start, fix_grad, &r);
    }
    for (int i = 0; i < n; i++) {
        int c = find(kp, keep[i]);
        if (c >= 0)
            keep[i] = kp->fresh[c];
    }
    ctx->tape_tail = sc->tape_tail;
    if (ctx->backwards != sc->backwards)
        relink_tape(ctx);
    ctx->nscopes--;
    return LG_OK;
}
