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
    POISON(payload(c), c->size);
    return c;
}

static void free_chunk(lg_ctx *ctx, lgC_chunk *c)
{
    UNPOISON(payload(c), c->size);
    lgC_raw_free(ctx, c->raw, c->raw_size);
}

void *lgC_arena_alloc(lg_ctx *ctx, lgC_arena *a, size_t n, const char *who)
{
    n = (n + ALIGN - 1) / ALIGN * ALIGN;
    if (n == 0)
        n = ALIGN;
    lgC_chunk *c = a->cur;
    while (c && c->size - c->used < n)
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
    void *p = payload(c) + c->used;
    c->used += n;
    a->used += n;
    if (a->used > a->high_water)
        a->high_water = a->used;
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
        POISON(payload(c), c->size);
    }
    a->cur = a->head;
    a->used = 0;
}

bool lgC_arena_reserve(lg_ctx *ctx, lgC_arena *a, size_t n)
{
    if (a->capacity >= n && (!a->head || !a->head->next))
        return true;
    lgC_arena_free(ctx, a);
    lgC_chunk *c = new_chunk(ctx, a, n);
    if (!c)
        return false;
    a->head = a->cur = c;
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
        if (c->used > keep)
            POISON(payload(c) + keep, c->used - keep);
        c->used = keep;
        if (c == a->cur)
            break;
    }
    a->cur = m.cur ? m.cur : a->head;
    a->used = m.used;
}
