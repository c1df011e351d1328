/* core.h: the context, its memory and its error state (internal).
 *
 * Invariants: every byte comes through ctx->alloc; persistent blocks are
 * tracked in a list freed by lg_ctx_free; step memory comes from the
 * arena, reset as a whole by lg_step_end (capacity kept). The first error
 * recorded sticks until lg_ctx_clear_error. Nothing here prints.
 */
#ifndef LG_CORE_H
#define LG_CORE_H

#include "lossgrad.h"

#include <stdarg.h>

#if defined(__GNUC__)
#define LG_HIDDEN __attribute__((visibility("hidden")))
#define LG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LG_HIDDEN
#define LG_PRINTF(a, b)
#endif

/* Internal invariant check: never reachable from user input. In debug
 * builds a violation traps; in release builds it compiles to nothing. */
#ifdef NDEBUG
#define lg_assert(c) ((void)0)
#else
#define lg_assert(c) ((c) ? (void)0 : __builtin_trap())
#endif

#define LG_ERRMSG_MAX 256

/* One chunk of the step arena. */
typedef struct lgC_chunk {
    struct lgC_chunk *next;
    size_t size; /* usable bytes after the (aligned) header */
    size_t used;
    void *raw; /* what the allocator returned, and its size */
    size_t raw_size;
} lgC_chunk;

typedef struct lgC_arena {
    lgC_chunk *head, *cur; /* chunks stay in order across resets */
    size_t chunk_size;
    size_t used, high_water, capacity;
} lgC_arena;

/* A position in the arena, to release back to (gradcheck uses it). */
typedef struct lgC_mark {
    lgC_chunk *cur;
    size_t cur_used, used;
} lgC_mark;

/* Persistent blocks form a doubly linked list ahead of their payload. */
typedef struct lgC_block {
    struct lgC_block *prev, *next;
    size_t size; /* payload bytes */
    size_t pad_; /* keeps the payload 16-byte aligned */
} lgC_block;

struct lg_tensor;

struct lg_ctx {
    lg_alloc_fn alloc;
    void *alloc_user;
    uint64_t alloc_calls, free_calls;

    lg_status status;
    char errmsg[LG_ERRMSG_MAX];

    uint64_t rng[4];
    double spare_normal;
    bool has_spare;

    int threads;
    int no_grad;
    bool eval_mode;               /* lg_ctx_set_training(ctx, false) */
    bool check_numerics;          /* lg_ctx_check_numerics */
    char numerics[LG_ERRMSG_MAX]; /* the first op that made a NaN or Inf, or "" */

    uint64_t step_id;     /* step tensors carry the id they were made in */
    lgC_arena arena;      /* data, tape entries, intermediate gradients */
    lgC_arena headers[2]; /* tensor headers, alternating by step parity */
    lgC_block *blocks;    /* persistent allocations */
    size_t persistent_bytes;

    struct lg_tensor **params;
    int nparams, params_cap;

    struct lg_tensor *tape_tail; /* last recorded op; linked backwards */
};

/* Errors: record the first one; later ones are dropped. Return NULL/status
 * so callers can write `return lgC_fail(...)`. */
LG_HIDDEN void *lgC_error(lg_ctx *ctx, lg_status s, const char *fmt, ...) LG_PRINTF(3, 4);
LG_HIDDEN lg_status lgC_errorf(lg_ctx *ctx, lg_status s, const char *fmt, ...) LG_PRINTF(3, 4);

/* Raw allocator calls through the hook (counted). */
LG_HIDDEN void *lgC_raw_alloc(lg_ctx *ctx, size_t n);
LG_HIDDEN void lgC_raw_free(lg_ctx *ctx, void *p, size_t n);

/* Persistent memory: zeroed, tracked, freed with the ctx (or by lgC_pfree).
 * Records LG_ERR_OOM naming `who` on failure. */
LG_HIDDEN void *lgC_palloc(lg_ctx *ctx, size_t n, const char *who);
LG_HIDDEN void lgC_pfree(lg_ctx *ctx, void *p);

/* Arena memory: 64-byte aligned, NOT zeroed. Records LG_ERR_OOM on failure. */
LG_HIDDEN void *lgC_arena_alloc(lg_ctx *ctx, lgC_arena *a, size_t n, const char *who);
LG_HIDDEN void *lgC_salloc(lg_ctx *ctx, size_t n, const char *who);  /* step arena */
LG_HIDDEN void lgC_arena_reset(lgC_arena *a);
/* Makes an empty arena hold at least n bytes in one chunk (false on OOM). */
LG_HIDDEN bool lgC_arena_reserve(lg_ctx *ctx, lgC_arena *a, size_t n);
LG_HIDDEN void lgC_arena_free(lg_ctx *ctx, lgC_arena *a);
LG_HIDDEN lgC_mark lgC_arena_mark(const lgC_arena *a);
LG_HIDDEN void lgC_arena_release(lgC_arena *a, lgC_mark m);

#endif
