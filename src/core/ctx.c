/* ctx.c: context lifetime, the allocator hook, persistent memory, errors.
 *
 * The ctx owns all memory: persistent blocks (a list, freed with the ctx)
 * and the arenas of arena.c. Errors are sticky: the first one recorded is
 * kept with its message until lg_ctx_clear_error.
 */
#include "core.h"

#include <limits.h>
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

/* Records the first error. While a composite public call runs (ctx->api),
 * a message from an inner call is prefixed with it, so that the message
 * always starts with the function the user called. */
static void vset_error(lg_ctx *ctx, lg_status s, const char *fmt, va_list ap)
{
    if (!ctx || ctx->status != LG_OK)
        return;
    ctx->status = s;
    char msg[LG_ERRMSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = ctx->api ? strlen(ctx->api) : 0, k = 0;
    if (n && n < 64 && !(strncmp(msg, ctx->api, n) == 0 && msg[n] == ':')) {
        memcpy(ctx->errmsg, ctx->api, n);
        memcpy(ctx->errmsg + n, ": ", 2);
        k = n + 2;
    }
    size_t m = strlen(msg);
    if (m > sizeof ctx->errmsg - 1 - k)
        m = sizeof ctx->errmsg - 1 - k;
    memcpy(ctx->errmsg + k, msg, m);
    ctx->errmsg[k + m] = '\0';
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

lg_status lg_ctx_set_error(lg_ctx *ctx, lg_status s, const char *fmt, ...)
{
    if (!ctx || s == LG_OK || !fmt)
        return s;
    va_list ap;
    va_start(ap, fmt);
    vset_error(ctx, s, fmt, ap);
    va_end(ap);
    return s;
}

lg_status lg_ctx_set_grad_ready_hook(lg_ctx *ctx, lg_grad_ready_fn fn, void *user)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, "lg_ctx_set_grad_ready_hook"))
        return LG_ERR_STATE;
    ctx->grad_ready = fn;
    ctx->grad_ready_user = fn ? user : NULL;
    return LG_OK;
}

lg_grad_ready_fn lg_ctx_grad_ready_hook(const lg_ctx *ctx, void **user)
{
    if (user)
        *user = ctx ? ctx->grad_ready_user : NULL;
    return ctx ? ctx->grad_ready : NULL;
}

void *lg_ctx_mem_alloc(lg_ctx *ctx, size_t n, const char *who)
{
    if (!ctx)
        return NULL;
    void *p = lgC_palloc(ctx, n, who ? who : "lg_ctx_mem_alloc");
    if (p)
        memset(p, 0, n);
    return p;
}

void lg_ctx_mem_free(lg_ctx *ctx, void *p)
{
    if (ctx)
        lgC_pfree(ctx, p);
}

bool lgC_fail(lg_ctx *ctx, lg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_error(ctx, s, fmt, ap);
    va_end(ap);
    return false;
}

void *lgC_palloc(lg_ctx *ctx, size_t n, const char *who)
{
    size_t total = n + LGC_BLOCK_SPARE;
    if (total < n)
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory (%zu bytes requested)", who, n);
    unsigned char *raw = lgC_raw_alloc(ctx, total);
    if (!raw)
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory (%zu bytes requested)", who, n);
    unsigned char *payload = raw + sizeof(lgC_block);
    payload += (size_t)(-(uintptr_t)payload) & 63;
    lgC_block *b = (lgC_block *)(void *)payload - 1;
    memset(b, 0, sizeof *b + n);
    b->size = n;
    b->raw = raw;
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
    lgC_raw_free(ctx, b->raw, b->size + LGC_BLOCK_SPARE);
}

static const lg_ctx_params ctx_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc ctx_desc = LGC_DESC0(lg_ctx_params, ctx_defaults);

lg_ctx_params lg_ctx_params_default(void)
{
    return ctx_defaults;
}

/* Invalid params leave a ctx that holds the error and refuses every call
 * (lgC_failed), so that the message is not lost with a NULL. */
static void fail(lg_ctx *ctx)
{
    ctx->failed = true;
    memcpy(ctx->failmsg, ctx->errmsg, sizeof ctx->failmsg);
}

bool lgC_failed(lg_ctx *ctx, const char *who)
{
    if (!ctx->failed)
        return false;
    lgC_error(ctx, LG_ERR_STATE, "%s: this ctx was made from invalid lg_ctx_params (%s)", who,
              ctx->failmsg);
    return true;
}

lg_ctx *lg_ctx_new(const lg_ctx_params *params)
{
    /* A struct whose tag no lossgrad call writes (uninitialised memory)
     * cannot be trusted for its allocator either. */
    uint32_t tag = 0;
    if (params)
        memcpy(&tag, params, sizeof tag);
    bool trusted = tag == 0 || tag == LG_OPTS_TAG;
    lg_ctx_params p = params && trusted ? *params : ctx_defaults;
    lg_alloc_fn alloc = p.alloc ? p.alloc : default_alloc;
    lg_ctx *ctx = alloc(p.alloc_user, NULL, 0, sizeof *ctx);
    if (!ctx)
        return NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->bitwise_threads = true; /* products the same bits at every thread count */
    ctx->alloc = alloc;
    ctx->alloc_user = p.alloc_user;
    ctx->alloc_calls = 1;
    ctx->threads = 1;
    ctx->arena.chunk_size = p.arena_chunk ? p.arena_chunk : (size_t)1 << 20;
    for (int i = 0; i < LGC_HEADER_POOLS; i++) {
        ctx->headers[i].chunk_size = 64 * 1024;
        ctx->headers[i].align = 8;
        ctx->headers[i].readable = true;
    }
    ctx->step_id = 1;
    lg_seed(ctx, p.seed);
    static const char who[] = "lg_ctx_new";
    if (!trusted) {
        lg_ctx_params ignored;
        lgC_opts(ctx, who, &ctx_desc, params, &ignored);
        fail(ctx);
    } else if (p.threads < 0 || p.threads > LG_MAX_THREADS) {
        lgC_error(ctx, LG_ERR_VALUE,
                  "%s: params->threads = %d, expected 1..%d (or 0, the default: one thread)", who,
                  p.threads, LG_MAX_THREADS);
        fail(ctx);
    } else {
        ctx->threads = p.threads ? p.threads : 1;
        ctx->step_limit = p.step_limit;
    }
    return ctx;
}

void lg_ctx_free(lg_ctx *ctx)
{
    if (!ctx)
        return;
    lgC_pool_free(ctx);
    lgC_arena_free(ctx, &ctx->arena);
    for (int i = 0; i < LGC_HEADER_POOLS; i++)
        lgC_arena_free(ctx, &ctx->headers[i]);
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
    if (ctx->failed) { /* made from invalid params: that error stays */
        ctx->status = LG_ERR_VALUE;
        memcpy(ctx->errmsg, ctx->failmsg, sizeof ctx->errmsg);
        return;
    }
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
    if (lgC_failed(ctx, "lg_ctx_set_threads"))
        return LG_ERR_STATE;
    if (n < 1 || n > LG_MAX_THREADS)
        return lgC_errorf(ctx, LG_ERR_VALUE, "lg_ctx_set_threads: n = %d, expected 1..%d", n,
                          LG_MAX_THREADS);
    ctx->threads = n;
    return LG_OK;
}

lg_status lg_ctx_set_bitwise_threads(lg_ctx *ctx, bool on)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, "lg_ctx_set_bitwise_threads"))
        return LG_ERR_STATE;
    ctx->bitwise_threads = on;
    return LG_OK;
}

int lg_ctx_threads(const lg_ctx *ctx)
{
    return ctx ? ctx->threads : 0;
}

/* The rotation of a header pool's start: how many 8-byte steps into its
 * first chunk step s's headers begin. Headers are 8-byte aligned and about
 * 300 bytes, so a handle from an earlier use of the pool points into the
 * middle of a new header (caught by its self check) unless the rotation
 * has come round. */
static size_t header_skip(uint64_t step)
{
    size_t turns = LGC_HEADER_BYTES / 8;
    return (size_t)((step / LGC_HEADER_POOLS) % turns) * 8;
}

void lg_step_end(lg_ctx *ctx)
{
    if (!ctx)
        return;
    size_t last = lgC_header_pool(ctx)->peak;
    ctx->step_id++;
    ctx->tape_tail = NULL;
    ctx->nscopes = 0;
    lgC_arena_reset(&ctx->arena);
    /* Every pool can hold a step like the last one, so that a repeated
     * step allocates nothing (on failure they grow on demand later). */
    for (int i = 0; i < LGC_HEADER_POOLS; i++)
        lgC_arena_grow(ctx, &ctx->headers[i], last);
    /* The pool of the step starting now last held the headers of step
     * step_id - LGC_HEADER_POOLS; the others keep theirs, dead (stale) but
     * readable. */
    lgC_arena *pool = lgC_header_pool(ctx);
    lgC_retire(pool, (lgC_mark){ 0 });
    lgC_arena_reset_skip(pool, header_skip(ctx->step_id));
    ctx->hdr_start = lgC_arena_mark(lgC_header_pool(ctx));
}

lg_status lg_ctx_set_step_limit(lg_ctx *ctx, size_t bytes)
{
    if (!ctx)
        return LG_ERR_NULL;
    ctx->step_limit = bytes;
    return LG_OK;
}

lg_mem_stats lg_ctx_mem_stats(const lg_ctx *ctx)
{
    lg_mem_stats s = { 0 };
    if (!ctx)
        return s;
    /* Live step memory is the data arena plus the current header pool;
     * the other pool only holds the previous step's stale headers. */
    size_t hw = 0, cap = 0;
    for (int i = 0; i < LGC_HEADER_POOLS; i++) {
        hw = ctx->headers[i].high_water > hw ? ctx->headers[i].high_water : hw;
        cap += ctx->headers[i].capacity;
    }
    s.arena_used = ctx->arena.used + ctx->headers[ctx->step_id % LGC_HEADER_POOLS].used;
    s.arena_high_water = ctx->arena.high_water + hw;
    s.arena_capacity = ctx->arena.capacity + cap;
    s.persistent_bytes = ctx->persistent_bytes;
    s.alloc_calls = ctx->alloc_calls;
    s.free_calls = ctx->free_calls;
    return s;
}

lg_status lg_no_grad_begin(lg_ctx *ctx)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (ctx->no_grad == INT_MAX)
        return lgC_errorf(ctx, LG_ERR_STATE, "lg_no_grad_begin: nested %d deep", INT_MAX);
    ctx->no_grad++;
    return LG_OK;
}

lg_status lg_no_grad_end(lg_ctx *ctx)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (ctx->no_grad == 0)
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "lg_no_grad_end: no lg_no_grad_begin is open (calls must pair)");
    ctx->no_grad--;
    return LG_OK;
}

const char *lg_version(void)
{
    return "0.1.0";
}

void lg_ctx_set_fused(lg_ctx *ctx, bool on)
{
    if (ctx)
        ctx->composite = !on;
}
