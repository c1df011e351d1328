/* ctx.c: context lifetime, the allocator hook, persistent memory, errors.
 *
 * The ctx owns all memory: persistent blocks (a list, freed with the ctx)
 * and the arenas of arena.c. Errors are sticky: the first one recorded is
 * kept with its message until lg_ctx_clear_error.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *default_alloc(void *user, void *ptr, size_t old_size, size_t new_size)
{
    (void)user;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

void *lgC_raw_alloc(lg_ctx *ctx, size_t n)
{
    ctx->alloc_calls++;
    return ctx->alloc(ctx->alloc_user, NULL, 0, n);
}

void lgC_raw_free(lg_ctx *ctx, void *p, size_t n)
{
    if (!p)
        return;
    ctx->free_calls++;
    ctx->alloc(ctx->alloc_user, p, n, 0);
}

static void vset_error(lg_ctx *ctx, lg_status s, const char *fmt, va_list ap)
{
    if (!ctx || ctx->status != LG_OK)
        return;
    ctx->status = s;
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
}

void *lgC_error(lg_ctx *ctx, lg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(ctx, s, fmt, ap);
    va_end(ap);
    return NULL;
}

lg_status lgC_errorf(lg_ctx *ctx, lg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(ctx, s, fmt, ap);
    va_end(ap);
    return s;
}

void *lgC_palloc(lg_ctx *ctx, size_t n, const char *who)
{
    size_t total = sizeof(lgC_block) + n;
    if (total < n)
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory (%zu bytes requested)", who, n);
    lgC_block *b = lgC_raw_alloc(ctx, total);
    if (!b)
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory (%zu bytes requested)", who, n);
    memset(b, 0, total);
    b->size = n;
    b->next = ctx->blocks;
    if (ctx->blocks)
        ctx->blocks->prev = b;
    ctx->blocks = b;
    ctx->persistent_bytes += n;
    return b + 1;
}

void lgC_pfree(lg_ctx *ctx, void *p)
{
    if (!p)
        return;
    lgC_block *b = (lgC_block *)p - 1;
    if (b->prev)
        b->prev->next = b->next;
    else
        ctx->blocks = b->next;
    if (b->next)
        b->next->prev = b->prev;
    ctx->persistent_bytes -= b->size;
    lgC_raw_free(ctx, b, sizeof(lgC_block) + b->size);
}

lg_ctx *lg_ctx_new(const lg_ctx_params *params)
{
    lg_ctx_params p = params ? *params : (lg_ctx_params){ 0 };
    lg_alloc_fn alloc = p.alloc ? p.alloc : default_alloc;
    lg_ctx *ctx = alloc(p.alloc_user, NULL, 0, sizeof *ctx);
    if (!ctx)
        return NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->alloc = alloc;
    ctx->alloc_user = p.alloc_user;
    ctx->alloc_calls = 1;
    ctx->threads = p.threads > 0 ? p.threads : 1;
    size_t chunk = p.arena_chunk ? p.arena_chunk : (size_t)1 << 20;
    ctx->arena.chunk_size = chunk;
    ctx->headers[0].chunk_size = ctx->headers[1].chunk_size = 64 * 1024;
    ctx->step_id = 1;
    lg_seed(ctx, p.seed);
    return ctx;
}

void lg_ctx_free(lg_ctx *ctx)
{
    if (!ctx)
        return;
    lgC_arena_free(ctx, &ctx->arena);
    lgC_arena_free(ctx, &ctx->headers[0]);
    lgC_arena_free(ctx, &ctx->headers[1]);
    while (ctx->blocks)
        lgC_pfree(ctx, ctx->blocks + 1);
    ctx->alloc(ctx->alloc_user, ctx, sizeof *ctx, 0);
}

lg_status lg_ctx_status(const lg_ctx *ctx)
{
    return ctx ? ctx->status : LG_ERR_NULL;
}

const char *lg_ctx_errmsg(const lg_ctx *ctx)
{
    if (!ctx)
        return "lossgrad: ctx is NULL";
    return ctx->status == LG_OK ? "" : ctx->errmsg;
}

void lg_ctx_clear_error(lg_ctx *ctx)
{
    if (!ctx)
        return;
    ctx->status = LG_OK;
    ctx->errmsg[0] = '\0';
}

const char *lg_status_name(lg_status s)
{
    static const char *const names[] = {
        "LG_OK",        "LG_ERR_NULL",  "LG_ERR_SHAPE", "LG_ERR_DTYPE",
        "LG_ERR_AXIS",  "LG_ERR_INDEX", "LG_ERR_VALUE", "LG_ERR_OOM",
        "LG_ERR_STALE", "LG_ERR_STATE", "LG_ERR_IO",
    };
    if ((unsigned)s >= sizeof names / sizeof names[0])
        return "LG_ERR_UNKNOWN";
    return names[s];
}

lg_status lg_ctx_set_threads(lg_ctx *ctx, int n)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (n < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "lg_ctx_set_threads: n = %d, expected >= 1", n);
    ctx->threads = n;
    return LG_OK;
}

int lg_ctx_threads(const lg_ctx *ctx)
{
    return ctx ? ctx->threads : 0;
}

void lg_step_end(lg_ctx *ctx)
{
    if (!ctx)
        return;
    lgC_arena *done = &ctx->headers[ctx->step_id & 1];
    ctx->step_id++;
    ctx->tape_tail = NULL;
    lgC_arena_reset(&ctx->arena);
    /* Headers of the step just ended stay readable (and stale) until the
     * step after next, so a stale handle is reported, not misread. The
     * next step's pool is sized like the last one's, so a repeated step
     * allocates nothing (on failure it grows on demand later). */
    lgC_arena *next = &ctx->headers[ctx->step_id & 1];
    lgC_arena_reset(next);
    if (done->used > next->capacity)
        lgC_arena_reserve(ctx, next, done->used);
}

lg_mem_stats lg_ctx_mem_stats(const lg_ctx *ctx)
{
    lg_mem_stats s = { 0 };
    if (!ctx)
        return s;
    /* Live step memory is the data arena plus the current header pool;
     * the other pool only holds the previous step's stale headers. */
    const lgC_arena *h0 = &ctx->headers[0], *h1 = &ctx->headers[1];
    s.arena_used = ctx->arena.used + ctx->headers[ctx->step_id & 1].used;
    s.arena_high_water =
        ctx->arena.high_water + (h0->high_water > h1->high_water ? h0->high_water : h1->high_water);
    s.arena_capacity = ctx->arena.capacity + h0->capacity + h1->capacity;
    s.persistent_bytes = ctx->persistent_bytes;
    s.alloc_calls = ctx->alloc_calls;
    s.free_calls = ctx->free_calls;
    return s;
}

void lg_no_grad_begin(lg_ctx *ctx)
{
    if (ctx)
        ctx->no_grad++;
}

void lg_no_grad_end(lg_ctx *ctx)
{
    if (ctx && ctx->no_grad > 0)
        ctx->no_grad--;
}

const char *lg_version(void)
{
    return "0.1.0";
}
