/* arena.c: the step arena, a list of chunks with bump allocation.
 *
 * Invariant: chunks keep their order across resets, and an allocation that
 * does not fit the current chunk moves on to the next chunk that can hold
 * it before asking the allocator for a new one. So a step that repeats the
 * previous step's allocation sequence makes no allocator call at all.
 * In sanitizer builds released memory is poisoned, so a stale read is an
 * AddressSanitizer report.
 */
#include "core.h"

#include <string.h>

#if defined(LG_ASAN_POISON)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 64
#define HDR ((sizeof(lgC_chunk) + ALIGN - 1) / ALIGN * ALIGN)

static unsigned char *payload(lgC_chunk *c)
{
    return (unsigned char *)c + HDR;
}

static lgC_chunk *new_chunk(lg_ctx *ctx, lgC_arena *a, size_t n)
{
    size_t size = n > a->chunk_size ? n : a->chunk_size;
    if (size > SIZE_MAX - HDR - ALIGN)
        return NULL;
    size_t raw_size = HDR + size + ALIGN; /* ALIGN spare bytes to align the header */
    unsigned char *raw = lgC_raw_alloc(ctx, raw_size);
    if (!raw)
        return NULL;
    lgC_chunk *c = (lgC_chunk *)(raw + ((size_t)(-(uintptr_t)raw) & (ALIGN - 1)));
    *c = (lgC_chunk){ .size = size, .raw = raw, .raw_size = raw_size };
    a->capacity += size;
    if (!a->readable)
        POISON(payload(c), c->size);
    return c;
}

static void free_chunk(lg_ctx *ctx, lgC_chunk *c)
{
    UNPOISON(payload(c), c->size);
    lgC_raw_free(ctx, c->raw, c->raw_size);
}

/* The step memory in use: data and this step's headers. */
static size_t step_used(const lg_ctx *ctx)
{
    return ctx->arena.used + ctx->headers[ctx->step_id % LGC_HEADER_POOLS].used;
}

void *lgC_arena_alloc(lg_ctx *ctx, lgC_arena *a, size_t n, const char *who)
{
    size_t align = a->align ? a->align : ALIGN;
    if (n > SIZE_MAX - align)
        return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory (%zu bytes requested)", who, n);
    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    bool step_memory =
        a == &ctx->arena || (a >= ctx->headers && a < ctx->headers + LGC_HEADER_POOLS);
    if (step_memory && ctx->step_limit &&
        (n > ctx->step_limit || step_used(ctx) > ctx->step_limit - n))
        return lgC_error(ctx, LG_ERR_STATE,
                         "%s: the step would use %zu bytes, over the limit of %zu set by "
                         "lg_ctx_set_step_limit (is an lg_step_end missing?)",
                         who, step_used(ctx) + n, ctx->step_limit);
    lgC_chunk *c = a->cur;
    while (c && c->size - (c->used ? c->used : a->skip) < n)
        c = c->next; /* chunks past cur are empty */
    if (!c) {
        c = new_chunk(ctx, a, n);
        if (!c)
            return lgC_error(ctx, LG_ERR_OOM, "%s: out of memory (%zu bytes requested)", who, n);
        /* Insert after cur so the order matches the allocation sequence. */
        if (a->cur) {
            c->next = a->cur->next;
            a->cur->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    a->cur = c;
    if (c->used == 0 && a->skip) {      /* a chunk's first allocation this use (not counted) */
        memset(payload(c), 0, a->skip); /* scanned for headers: never left undefined */
        c->used = a->skip;
    }
    void *p = payload(c) + c->used;
    c->used += n;
    a->used += n;
    if (a->used > a->high_water)
        a->high_water = a->used;
    if (a->used > a->peak)
        a->peak = a->used;
    UNPOISON(p, n);
    return p;
}

void *lgC_salloc(lg_ctx *ctx, size_t n, const char *who)
{
    return lgC_arena_alloc(ctx, &ctx->arena, n, who);
}

void lgC_arena_reset(lgC_arena *a)
{
    for (lgC_chunk *c = a->head; c; c = c->next) {
        c->used = 0;
        if (!a->readable)
            POISON(payload(c), c->size);
    }
    a->cur = a->head;
    a->used = 0;
    a->peak = 0;
}

bool lgC_arena_grow(lg_ctx *ctx, lgC_arena *a, size_t n)
{
    /* What the chunks can hold for sure: each loses at most its skip and
     * one allocation's worth at its end. */
    size_t room = 0, align = a->align ? a->align : ALIGN;
    for (lgC_chunk *c = a->head; c; c = c->next)
        if (c->size > a->skip + 2 * LGC_HEADER_BYTES)
            room += c->size - a->skip - 2 * LGC_HEADER_BYTES;
    if (room >= n)
        return true;
    size_t want = n + LGC_HEADER_BYTES * 2 + align; /* the rotation's skip fits in this */
    lgC_chunk *c = new_chunk(ctx, a, want);
    if (!c)
        return false;
    lgC_chunk **tail = &a->head;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
    if (!a->cur)
        a->cur = a->head;
    return true;
}

void lgC_arena_free(lg_ctx *ctx, lgC_arena *a)
{
    lgC_chunk *c = a->head;
    while (c) {
        lgC_chunk *next = c->next;
        free_chunk(ctx, c);
        c = next;
    }
    a->head = a->cur = NULL;
    a->used = a->capacity = 0;
}

lgC_mark lgC_arena_mark(const lgC_arena *a)
{
    return (lgC_mark){ .cur = a->cur, .cur_used = a->cur ? a->cur->used : 0, .used = a->used };
}

void lgC_arena_release(lgC_arena *a, lgC_mark m)
{
    lgC_chunk *start = m.cur ? m.cur : a->head;
    for (lgC_chunk *c = start; c; c = c->next) {
        size_t keep = (c == m.cur) ? m.cur_used : 0;
        if (c->used > keep && !a->readable)
            POISON(payload(c) + keep, c->used - keep);
        c->used = keep;
        if (c == a->cur)
            break;
    }
    a->cur = m.cur ? m.cur : a->head;
    a->used = m.used;
}

void lgC_arena_reset_skip(lgC_arena *a, size_t skip)
{
    lgC_arena_reset(a);
    a->skip = skip;
}

bool lgC_arena_after(const lgC_arena *a, lgC_mark m, const void *p)
{
    for (lgC_chunk *c = m.cur ? m.cur : a->head; c; c = c->next) {
        const unsigned char *b = payload(c) + (c == m.cur ? m.cur_used : 0);
        if ((const unsigned char *)p >= b && (const unsigned char *)p < payload(c) + c->used)
            return true;
        if (c == a->cur)
            break;
    }
    return false;
}

bool lgC_arena_spans(const lgC_arena *a, lgC_mark m, lgC_span *out, int max, int *n)
{
    *n = 0;
    for (lgC_chunk *c = m.cur ? m.cur : a->head; c; c = c->next) {
        size_t from = c == m.cur ? m.cur_used : 0;
        if (c->used > from) {
            if (*n == max)
                return false;
            out[(*n)++] = (lgC_span){ payload(c) + from, payload(c) + c->used };
        }
        if (c == a->cur)
            break;
    }
    return true;
}

/* p's place in the arena counted from m's chunk (chunks in order), or SIZE_MAX. */
static size_t position(const lgC_arena *a, lgC_mark m, const void *p)
{
    size_t base = 0;
    for (lgC_chunk *c = m.cur ? m.cur : a->head; c; c = c->next) {
        const unsigned char *b = payload(c);
        if ((const unsigned char *)p >= b && (const unsigned char *)p < b + c->size)
            return base + (size_t)((const unsigned char *)p - b);
        base += c->size;
        if (c == a->cur)
            break;
    }
    return SIZE_MAX;
}

void lgC_arena_release_keep(lgC_arena *a, lgC_mark m, int n, void **ptrs, const size_t *sizes)
{
    /* Order the kept blocks as they lie in the arena (an insertion sort:
     * scopes keep a few results). */
    int order[LGC_MAX_KEEP];
    size_t rank[LGC_MAX_KEEP];
    lg_assert(n <= LGC_MAX_KEEP);
    for (int i = 0; i < n; i++) {
        rank[i] = position(a, m, ptrs[i]);
        int j = i;
        while (j > 0 && rank[order[j - 1]] > rank[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    /* Copy each one down to where a fresh allocation after m puts it:
     * never above its old place (the kept blocks are a subsequence of what
     * was allocated), so moving in order overwrites nothing still to move. */
    lgC_chunk *old_cur = a->cur;
    size_t align = a->align ? a->align : ALIGN;
    lgC_arena_release(a, m);
    for (int k = 0; k < n; k++) {
        int i = order[k];
        size_t sz = sizes[i] ? (sizes[i] + align - 1) / align * align : align;
        lgC_chunk *c = a->cur ? a->cur : a->head;
        while (c && c->size - c->used < sz)
            c = c->next;
        lg_assert(c != NULL);
        unsigned char *dst = payload(c) + c->used;
        UNPOISON(dst, sz);
        UNPOISON(ptrs[i], sizes[i]);
        memmove(dst, ptrs[i], sizes[i]);
        c->used += sz;
        a->used += sz;
        if (a->used > a->high_water)
            a->high_water = a->used;
        a->cur = c;
        ptrs[i] = dst;
    }
    /* What the moves left behind is released again. */
    for (lgC_chunk *c = a->cur; c; c = c->next) {
        POISON(payload(c) + c->used, c->size - c->used);
        if (c == old_cur)
            break;
    }
}

void lgC_arena_scan(lgC_arena *a, lgC_mark m, size_t (*fn)(void *p, size_t room, void *user),
                    void *user)
{
    size_t align = a->align ? a->align : ALIGN;
    for (lgC_chunk *c = m.cur ? m.cur : a->head; c; c = c->next) {
        size_t off = c == m.cur ? m.cur_used : 0;
        while (off < c->used) {
            size_t step = fn(payload(c) + off, c->used - off, user);
            off += step > align ? step : align;
        }
        if (c == a->cur)
            break;
    }
}

static size_t retire_one(void *p, size_t room, void *user)
{
    (void)user;
    if (room < LGC_HEADER_BYTES || !lgC_hdr_intact(p))
        return 8;
    lgC_hdr *h = p;
    h->magic = LGC_HDR_DEAD;
    h->self = NULL;
    return LGC_HEADER_BYTES;
}

void lgC_retire(lgC_arena *a, lgC_mark m)
{
    lgC_arena_scan(a, m, retire_one, NULL);
}

bool lgC_header_gap(lg_ctx *ctx, const char *who)
{
    size_t gap = 8 * (1 + ctx->scope_turn++ % (LGC_HEADER_BYTES / 8 - 1));
    void *g = lgC_arena_alloc(ctx, lgC_header_pool(ctx), gap, who);
    if (g)
        memset(g, 0, gap); /* scanned for headers: never left undefined */
    return g != NULL;
}
