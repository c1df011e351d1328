/* scope.c: scopes inside a step, so that work such as inference over many
 * batches runs in bounded memory.
 *
 * lg_scope_begin marks the step arena, the header pool and the tape;
 * lg_scope_end gives the data of every tensor made since back to the
 * arena, except the tensors the caller keeps, whose data is moved down to
 * the mark. Their handles stay valid (detached leaves: nothing made inside
 * the scope stays on the tape). The other headers made in the scope are
 * marked dead and their memory is kept until the step ends, so a handle
 * from a closed scope is always an LG_ERR_STALE error within the step.
 */
#include "autograd.h"

#include <string.h>

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
    struct lgC_scope *sc = &ctx->scopes[ctx->nscopes++];
    sc->data = lgC_arena_mark(&ctx->arena);
    sc->hdr = lgC_arena_mark(lgC_header_pool(ctx));
    sc->tape_tail = ctx->tape_tail;
    sc->backwards = ctx->backwards;
    return LG_OK;
}

typedef struct kept {
    lg_tensor *const *keep;
    int n;
} kept;

static bool is_kept(const kept *k, const lg_tensor *t)
{
    for (int i = 0; i < k->n; i++)
        if (k->keep[i] == t)
            return true;
    return false;
}

/* A header made in the scope: dead unless kept; kept ones become leaves. */
static void close_header(void *p, void *user)
{
    lg_tensor *t = p;
    if (t->magic != LGT_MAGIC)
        return;
    if (!is_kept(user, t)) {
        t->magic = LGT_DEAD;
        t->self = NULL;
        return;
    }
    t->op = LGT_LEAF;
    t->nin = 0;
    t->in = t->in_inline;
    t->requires_grad = false;
    t->consumed = false;
    t->grad = t->saved = NULL;
    t->aux = NULL;
    t->tape_prev = NULL;
}

/* A header from before the scope whose gradient was made in it (a
 * backward ran in the scope) loses that gradient. */
static void drop_dead_grad(void *p, void *user)
{
    (void)user;
    lg_tensor *t = p;
    if (t->magic == LGT_MAGIC && t->grad && !t->grad->persistent && t->grad->magic == LGT_DEAD)
        t->grad = NULL;
}

/* Moves the kept tensors' data blocks made in the scope down to its mark. */
static void move_data(lg_ctx *ctx, const struct lgC_scope *sc, lg_tensor *const *keep, int n)
{
    void *ptrs[LGC_MAX_KEEP] = { NULL };
    size_t sizes[LGC_MAX_KEEP] = { 0 };
    int nb = 0;
    for (int i = 0; i < n; i++) {
        lg_tensor *t = keep[i];
        if (t->persistent || !lgC_arena_after(&ctx->arena, sc->data, t->data))
            continue;
        bool seen = false; /* a reshape shares its input's block */
        for (int b = 0; b < nb && !seen; b++)
            seen = ptrs[b] == t->data;
        if (!seen) {
            ptrs[nb] = t->data;
            sizes[nb++] = (size_t)t->numel * lgT_dtype_size((lg_dtype)t->dtype);
        }
    }
    void *old[LGC_MAX_KEEP];
    memcpy(old, ptrs, (size_t)nb * sizeof *ptrs);
    lgC_arena_release_keep(&ctx->arena, sc->data, nb, ptrs, sizes);
    for (int i = 0; i < n; i++)
        for (int b = 0; b < nb; b++)
            if (keep[i]->data == old[b]) {
                keep[i]->data = ptrs[b];
                break;
            }
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

lg_status lg_scope_end(lg_ctx *ctx, int n, lg_tensor *const *keep)
{
    static const char who[] = "lg_scope_end";
    if (!ctx)
        return LG_ERR_NULL;
    if (ctx->nscopes == 0)
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "%s: no lg_scope_begin is open in this step (calls must pair; "
                          "lg_step_end closes every scope)",
                          who);
    if (n < 0 || n > LGC_MAX_KEEP || (n > 0 && !keep))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: n = %d%s, expected 0..%d tensors", who, n,
                          n > 0 && !keep ? " with keep NULL" : "", LGC_MAX_KEEP);
    for (int i = 0; i < n; i++) {
        char arg[24];
        snprintf(arg, sizeof arg, "keep[%d]", i);
        if (!lgT_ok(ctx, keep[i], who, arg))
            return ctx->status;
    }
    struct lgC_scope *sc = &ctx->scopes[ctx->nscopes - 1];
    kept k = { keep, n };
    lgC_arena *pool = lgC_header_pool(ctx);
    lgC_arena_walk(pool, sc->hdr, LGC_HEADER_BYTES, close_header, &k);
    if (ctx->backwards != sc->backwards)
        lgC_arena_walk(pool, ctx->hdr_start, LGC_HEADER_BYTES, drop_dead_grad, NULL);
    move_data(ctx, sc, keep, n);
    ctx->tape_tail = sc->tape_tail;
    if (ctx->backwards != sc->backwards)
        relink_tape(ctx);
    ctx->nscopes--;
    return LG_OK;
}
