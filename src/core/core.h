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
#include <stddef.h>

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

#define LG_ERRMSG_MAX 512
#define LGC_HEADER_POOLS 4
#define LGC_HEADER_BYTES 312 /* sizeof(struct lg_tensor), checked in tensor.c */
#define LGC_MAX_SCOPES 64
#define LGC_MAX_KEEP 64 /* tensors one lg_scope_end keeps */

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
    size_t align;  /* allocation granularity; 0 means 64 */
    size_t skip;   /* each chunk's allocations start this far in (lgC_arena_reset_skip) */
    bool readable; /* released memory stays readable (header pools: a stale
                    * handle must read a dead header, not trip ASan) */
    size_t used, high_water, capacity;
    size_t peak; /* the most used since the last reset */
} lgC_arena;

/* A position in the arena, to release back to (gradcheck uses it). */
typedef struct lgC_mark {
    lgC_chunk *cur;
    size_t cur_used, used;
} lgC_mark;

/* Persistent blocks form a doubly linked list ahead of their payload. */
/* A persistent allocation: this header sits right before its payload,
 * which is 64-byte aligned (a cache line: vector loads of parameters,
 * gradients and optimizer state never straddle two; 16-byte payloads made
 * every other AVX2 load of an SGD step split). */
typedef struct lgC_block {
    struct lgC_block *prev, *next;
    size_t size; /* payload bytes */
    void *raw;   /* what the allocator returned, size + LGC_BLOCK_SPARE bytes */
} lgC_block;
#define LGC_BLOCK_SPARE (sizeof(lgC_block) + 63)

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
    bool bitwise_threads; /* lg_ctx_set_bitwise_threads (on by default): 1 thread cuts
                           * products as 2 do */
    struct lgC_pool *pool; /* threads - 1 workers for lgC_parallel (parallel.c), or NULL */
    int pool_failed;       /* the worker count that could not be started, or 0 */
    int no_grad;
    size_t step_limit; /* lg_ctx_set_step_limit; 0: none */
    bool failed;       /* made from invalid lg_ctx_params: every call fails */
    char failmsg[LG_ERRMSG_MAX];
    const char *api;              /* the public call under way that made inner calls, or NULL */
    bool eval_mode;               /* lg_ctx_set_training(ctx, false) */
    bool check_numerics;          /* lg_ctx_check_numerics */
    bool composite;               /* lg_ctx_set_fused(ctx, false) */
    char numerics[LG_ERRMSG_MAX]; /* the first op that made a NaN or Inf, or "" */

    uint64_t step_id; /* step tensors carry the id they were made in */
    lgC_arena arena;  /* data, tape entries, intermediate gradients */
    /* Tensor headers: step s uses pool s % LGC_HEADER_POOLS, each use
     * starting a little further into it (lgC_header_pool), and header
     * memory is never freed before the ctx: a stale handle reads a dead
     * header, never freed memory or (for LGC_HEADER_POOLS x the rotation
     * count step ends) a header of a later step at its own address. */
    lgC_arena headers[LGC_HEADER_POOLS];
    lgC_mark hdr_start;  /* where this step's headers begin in its pool */
    uint64_t backwards;  /* backward passes so far (scopes check it) */
    unsigned scope_turn; /* rotates the gap each scope leaves before its headers */
    bool fence_on;       /* gradcheck's backward: gradients only for tensors after fence */
    bool numeric_pass;   /* gradcheck is evaluating fn for a central difference */
    lgC_mark fence;
    int nscopes;
    struct lgC_scope {
        lgC_mark data, hdr;
        struct lg_tensor *tape_tail;
        uint64_t backwards;
    } scopes[LGC_MAX_SCOPES];
    lgC_block *blocks; /* persistent allocations */
    size_t persistent_bytes;

    struct lg_tensor **params;
    int nparams, params_cap;
    struct lg_tensor **buffers; /* persistent state that is not trained (lg_buffer_new) */
    int nbuffers, buffers_cap;

    struct lg_tensor *tape_tail; /* last recorded op; linked backwards */
    lg_grad_ready_fn grad_ready; /* lg_ctx_set_grad_ready_hook (NULL: none) */
    void *grad_ready_user;
};

/* The parameter store (ctx->params, filled by lg_param_new in
 * tensor/tensor.c). Is t one of the ctx's parameters? */
static inline bool lgC_is_param(const lg_ctx *ctx, const struct lg_tensor *t)
{
    for (int i = 0; i < ctx->nparams; i++)
        if (ctx->params[i] == t)
            return true;
    return false;
}
/* Frees the parameters made after the first n, their data, names and
 * gradients (a layer that failed half way leaves none behind; nn's
 * constructors call it). Defined beside lg_param_new in tensor/tensor.c,
 * which lays a parameter out. */
LG_HIDDEN void lgC_params_drop(lg_ctx *ctx, int n);
/* The same for the buffers made after the first n. */
LG_HIDDEN void lgC_buffers_drop(lg_ctx *ctx, int n);

/* A ctx made from invalid params: records LG_ERR_STATE naming who and returns true. */
LG_HIDDEN bool lgC_failed(lg_ctx *ctx, const char *who);

/* Errors: record the first one; later ones are dropped. Return NULL/status
 * so callers can write `return lgC_fail(...)`. */
LG_HIDDEN void *lgC_error(lg_ctx *ctx, lg_status s, const char *fmt, ...) LG_PRINTF(3, 4);
LG_HIDDEN lg_status lgC_errorf(lg_ctx *ctx, lg_status s, const char *fmt, ...) LG_PRINTF(3, 4);
/* The same, returning false (for checks that return bool). */
LG_HIDDEN bool lgC_fail(lg_ctx *ctx, lg_status s, const char *fmt, ...) LG_PRINTF(3, 4);

/* Raw allocator calls through the hook (counted). */
LG_HIDDEN void *lgC_raw_alloc(lg_ctx *ctx, size_t n);
LG_HIDDEN void lgC_raw_free(lg_ctx *ctx, void *p, size_t n);

/* Persistent memory: zeroed, tracked, freed with the ctx (or by lgC_pfree).
 * Records LG_ERR_OOM naming `who` on failure. */
LG_HIDDEN void *lgC_palloc(lg_ctx *ctx, size_t n, const char *who);
LG_HIDDEN void lgC_pfree(lg_ctx *ctx, void *p);

/* Arena memory: 64-byte aligned, NOT zeroed. Records LG_ERR_OOM on failure. */
LG_HIDDEN void *lgC_arena_alloc(lg_ctx *ctx, lgC_arena *a, size_t n, const char *who);
LG_HIDDEN void *lgC_salloc(lg_ctx *ctx, size_t n, const char *who); /* step arena */
LG_HIDDEN void lgC_arena_reset(lgC_arena *a);
/* Appends a chunk, if need be, so that a header pool holds n bytes of
 * headers whatever its rotation; frees nothing (false on OOM). */
LG_HIDDEN bool lgC_arena_grow(lg_ctx *ctx, lgC_arena *a, size_t n);
LG_HIDDEN void lgC_arena_free(lg_ctx *ctx, lgC_arena *a);
LG_HIDDEN lgC_mark lgC_arena_mark(const lgC_arena *a);
LG_HIDDEN void lgC_arena_release(lgC_arena *a, lgC_mark m);
/* Resets a and makes each chunk's allocations start skip bytes in. */
LG_HIDDEN void lgC_arena_reset_skip(lgC_arena *a, size_t skip);
/* Releases a back to m, keeping n blocks allocated after m (ptrs[i], sizes[i]
 * bytes; distinct): they are moved down to start at m, in arena order, and
 * ptrs[] is updated. Allocates nothing. */
LG_HIDDEN void lgC_arena_release_keep(lgC_arena *a, lgC_mark m, int n, void **ptrs,
                                      const size_t *sizes);
/* Every tensor header in a header pool starts with these fields
 * (tensor.h's struct lg_tensor does): a header is intact while its magic
 * is LGC_HDR_LIVE and self is its own address. */
#define LGC_HDR_LIVE 0x6c677431u /* "lgt1" */
#define LGC_HDR_DEAD 0x64656164u /* "dead" */
typedef struct lgC_hdr {
    uint32_t magic;
    void *self;
} lgC_hdr;
static inline bool lgC_hdr_intact(const void *p)
{
    const lgC_hdr *h = (const lgC_hdr *)p;
    return h->magic == LGC_HDR_LIVE && h->self == p;
}
/* Allocates, zeroed, the gap a scope or gradcheck leaves before its own
 * headers in the current header pool: 8 to LGC_HEADER_BYTES - 8 bytes,
 * turning with every call, so that headers made after its memory is given
 * back never line up with its own. false (error recorded) on failure. */
LG_HIDDEN bool lgC_header_gap(lg_ctx *ctx, const char *who);
/* Marks dead every intact header of pool a allocated after m, so that a
 * stale handle to one never reads as a tensor, whatever is written over
 * the rest of it later. */
LG_HIDDEN void lgC_retire(lgC_arena *a, lgC_mark m);

/* Calls fn at every aligned place allocated after m (in a header pool,
 * where headers need not lie at a fixed stride: skips and gaps rotate
 * them); fn returns how far to move on (at least the alignment), room is
 * what is allocated from p on in its chunk. */
LG_HIDDEN void lgC_arena_scan(lgC_arena *a, lgC_mark m,
                              size_t (*fn)(void *p, size_t room, void *user), void *user);
/* The memory allocated from a after m, as address ranges (one per chunk,
 * at most max; false if there are more). */
typedef struct lgC_span {
    const unsigned char *lo, *hi;
} lgC_span;
LG_HIDDEN bool lgC_arena_spans(const lgC_arena *a, lgC_mark m, lgC_span *out, int max, int *n);
static inline bool lgC_spans_have(const lgC_span *s, int n, const void *p)
{
    for (int i = 0; i < n; i++)
        if ((const unsigned char *)p >= s[i].lo && (const unsigned char *)p < s[i].hi)
            return true;
    return false;
}
/* Is p inside memory allocated from a after m? */
LG_HIDDEN bool lgC_arena_after(const lgC_arena *a, lgC_mark m, const void *p);
/* The header pool of the current step. */
static inline lgC_arena *lgC_header_pool(lg_ctx *ctx)
{
    return &ctx->headers[ctx->step_id % LGC_HEADER_POOLS];
}
/* A public call that is made of other public calls: errors recorded while
 * it runs name it first ("lg_linear_forward: lg_matmul_bias: ..."). Returns
 * the caller to restore with lgC_api_leave (nested calls keep the outer one). */
static inline const char *lgC_api_enter(lg_ctx *ctx, const char *who)
{
    const char *prev = ctx->api;
    if (!prev)
        ctx->api = who;
    return prev;
}
static inline void lgC_api_leave(lg_ctx *ctx, const char *prev)
{
    ctx->api = prev;
}

/* Options structs (opts.c). A descriptor names a public options struct,
 * its defaults, and the fields whose default is not zero (a struct written
 * by hand may not leave those at 0). */
#define LGC_OPTS_KIND_MASK 0xffu
typedef struct lgC_optfield {
    const char *name;
    size_t offset, size;
    const char *dflt; /* the default, as the message shows it */
} lgC_optfield;
/* clang-format off */
#define LGC_FIELD(T, f, dflt) { #f, offsetof(T, f), sizeof(((T *)0)->f), dflt }
/* clang-format on */
typedef struct lgC_opts_desc {
    const char *type, *defaults_fn; /* "lg_ce_opts", "lg_ce_opts_default()" */
    size_t size;
    const void *defaults;
    const lgC_optfield *fields;
    int nfields;
} lgC_opts_desc;
/* A descriptor from the struct type, its static const defaults and its
 * table of fields with non-zero defaults (DESC0: none). */
#define LGC_NELEM(a) ((int)(sizeof(a) / sizeof(a)[0]))
/* clang-format off */
#define LGC_DESC(T, dflt, fl) { #T, #T "_default()", sizeof(T), &(dflt), (fl), LGC_NELEM(fl) }
#define LGC_DESC0(T, dflt) { #T, #T "_default()", sizeof(T), &(dflt), NULL, 0 }
/* clang-format on */
typedef enum lgC_opts_kind {
    LGC_OPTS_BAD,     /* error recorded */
    LGC_OPTS_DEFAULT, /* NULL or all zero */
    LGC_OPTS_TAGGED,  /* made by its lg_*_default function: take as written */
    LGC_OPTS_HAND     /* written by hand: fields with non-zero defaults must be set */
} lgC_opts_kind;
/* Resolves user (may be NULL) into out (d->size bytes): false and
 * LG_ERR_VALUE naming who and the field when it cannot tell. */
LG_HIDDEN bool lgC_opts(lg_ctx *ctx, const char *who, const lgC_opts_desc *d, const void *user,
                        void *out);
/* The pieces, for structs whose defaults depend on a kind (optimizers,
 * schedules): the class of user (kind: the tag's kind for TAGGED), and
 * the hand-written check over a given field list. */
LG_HIDDEN lgC_opts_kind lgC_opts_classify(lg_ctx *ctx, const char *who, const lgC_opts_desc *d,
                                          const void *user, uint32_t *kind);
LG_HIDDEN bool lgC_opts_check_hand(lg_ctx *ctx, const char *who, const lgC_opts_desc *d,
                                   const void *user, const lgC_optfield *fields, int nfields);
LG_HIDDEN bool lgC_opts_zero_field(const void *user, const lgC_optfield *f);
/* Options whose defaults depend on a kind field (lg_optim_opts,
 * lg_sched_opts): each field lists the kinds that have it (bit k for kind
 * k) and those that give it a non-zero default. */
typedef struct lgC_kfield {
    lgC_optfield f;
    unsigned kinds, nonzero;
} lgC_kfield;
typedef struct lgC_kdesc {
    lgC_opts_desc d;
    const char *what; /* "an optimizer", "a schedule" */
    const char *const *kind_names;
    unsigned nkinds;
    const lgC_kfield *fields;
    int nfields;
} lgC_kdesc;
/* The options rule for such a struct whose kind field holds kind: a tag of
 * another kind's defaults, a field the kind has not set, or (by hand) a
 * non-zero-default field left at 0 is LG_ERR_VALUE; true if user may be
 * taken as written. */
LG_HIDDEN bool lgC_opts_kinded(lg_ctx *ctx, const char *who, const lgC_kdesc *k, const void *user,
                               unsigned kind);

/* Threads. lgC_parallel(ctx, work, n, fn, arg) calls fn(arg, lo, hi) over
 * contiguous chunks of [0, n), on the calling thread and the ctx's pool of
 * threads - 1 workers, when work >= LGC_PAR_MIN and the ctx has more than
 * one thread, and as fn(arg, 0, n) otherwise. Which thread runs a chunk,
 * and how many chunks there are, may vary: a kernel whose result depends
 * only on fixed blocks of its range (as every reduction here) gives the
 * same bits at any thread count. The caller never waits for a chunk no
 * worker has started (parallel.c), so a busy machine costs at most the
 * chunks a descheduled worker holds. lgC_pool_free ends the workers
 * (lg_ctx_free). */
#define LGC_PAR_MIN 32768
typedef void (*lgC_range_fn)(void *arg, int64_t lo, int64_t hi);
LG_HIDDEN void lgC_parallel(lg_ctx *ctx, int64_t work, int64_t n, lgC_range_fn fn, void *arg);
LG_HIDDEN void lgC_pool_free(lg_ctx *ctx);

/* LGC_SIMD_REDUCE(op : var) before a loop: a vector reduction (OpenMP's
 * simd directive, honoured with -fopenmp or -fopenmp-simd) where plain C
 * would add one element at a time. The order of the additions is fixed by
 * the binary, so results do not depend on the thread count. LGC_SIMD: the
 * loop's iterations are independent (vectorised without alias checks). */
#define LGC_PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) || defined(LG_OPENMP_SIMD)
#define LGC_SIMD_REDUCE(...) LGC_PRAGMA(omp simd reduction(__VA_ARGS__))
#define LGC_SIMD LGC_PRAGMA(omp simd)
#else
#define LGC_SIMD_REDUCE(...)
#define LGC_SIMD
#endif

/* LGC_VECTOR_CLONES before a hot kernel: GCC builds it three times, for
 * AVX-512, AVX2 and the baseline, and the loader picks one for the CPU (an
 * ifunc), so the portable library still runs 16- or 8-wide float loops
 * where the CPU can (docs/performance.md has the measurements). The code
 * is ISO C (no FMA contraction), so the clones round alike; only the order
 * of a vector reduction's additions follows the vector width. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) &&       \
    !defined(__SANITIZE_THREAD__)
/* (not under ThreadSanitizer: the clones' ifunc resolvers run before its
 * runtime is up and crash in their instrumentation) */
#define LGC_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
/* for loops of fewer than 16 iterations, which a 16-lane clone would run
 * in its scalar remainder */
#define LGC_VECTOR_CLONES_NARROW __attribute__((target_clones("avx2", "default")))
#else
#define LGC_VECTOR_CLONES
#define LGC_VECTOR_CLONES_NARROW
#endif

#endif
