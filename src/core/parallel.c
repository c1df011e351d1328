/* parallel.c: the ctx's threads, the one place kernels are split.
 *
 * lgC_parallel(ctx, work, n, fn, arg) cuts [0, n) into a few contiguous
 * chunks (4 per thread) and runs them on the calling thread and the ctx's
 * pool of threads - 1 workers, each thread claiming the next chunk until
 * none is left. The caller never waits for a chunk nobody has started: on
 * a machine whose other cores are busy, a worker that is not running when
 * the work is posted claims nothing, and the caller does the whole range
 * (as with threads = 1), waiting only for chunks a worker has begun; when
 * no worker has claimed a chunk by the end of its first, it takes the rest
 * as one range. This
 * is why the pool is lossgrad's own and not an OpenMP team, which splits
 * the range statically and makes every region wait for its slowest thread:
 * with one core taken by another process, that made 2 threads 10 to 30
 * times slower than 1.
 *
 * Kernels keep their results independent of where chunks start by summing
 * fixed blocks of their range (see core.h), so the bits do not depend on
 * the thread count or on which thread ran what.
 *
 * Workers wait for work on a condition variable after a spin of 200 us
 * (long enough to catch the next kernel of a training step; waking a
 * sleeping thread took longer than many of its products), yielding as
 * they spin, so that a caller sharing their core is not held back. A job is named by a generation
 * number packed with its next chunk into one atomic ticket, so a worker
 * that wakes late can never run a chunk of a newer job with an older one's
 * function. A call made from inside a chunk runs serially, and so does
 * every call for a while after the workers were late (stand_aside).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "core.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

enum { CHUNKS_PER_THREAD = 4, SPIN_NS = 200000, WAIT_SPIN_NS = 20000 };

typedef struct lgC_pool {
    int want, nworkers; /* asked for; started */
    pthread_t *tid;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    bool stop; /* under mu */
    /* the job (written under mu before gen is advanced) */
    lgC_range_fn fn;
    void *arg;
    int64_t n, nchunks;
    uint32_t gen; /* under mu; mirrored in ticket's high half */
    /* (gen << 32) | next chunk to claim */
    _Atomic uint64_t ticket;
    _Atomic int64_t finished; /* chunks of the current job done */
    _Atomic uint32_t posted;  /* gen, for the workers' spin */
    _Atomic uint32_t taken;   /* the last gen a worker picked up */
    /* the caller's side only: late workers make the pool stand aside */
    double serial_until, pause; /* ns: serial until then; the last pause */
    int missed;                 /* long jobs in a row no worker picked up */
} lgC_pool;

static _Thread_local bool in_chunk; /* this thread is running a chunk */

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e9 * (double)t.tv_sec + (double)t.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* k more chunks of the job are done: the last wakes a caller asleep on done. */
static void chunks_done(lgC_pool *p, int64_t k, int64_t nchunks)
{
    if (atomic_fetch_add_explicit(&p->finished, k, memory_order_acq_rel) + k == nchunks) {
        pthread_mutex_lock(&p->mu); /* the caller may be asleep on done */
        pthread_cond_broadcast(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Runs chunks of job `gen` until none is left; the number run. The caller
 * (greedy) takes every chunk left at once when no worker has claimed one
 * by the time its own chunk is done: the workers are not running (another
 * process has their cores), and one range is faster than its chunks one by
 * one (a product as one BLAS call). */
static int64_t run_chunks(lgC_pool *p, uint32_t gen, lgC_range_fn fn, void *arg, int64_t n,
                          int64_t nchunks, bool greedy)
{
    int64_t ran = 0;
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        int64_t c = (int64_t)(t & 0xffffffffu);
        if ((uint32_t)(t >> 32) != gen || c >= nchunks)
            return ran;
        int64_t take = greedy && ran > 0 && c == ran ? nchunks - c : 1;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + (uint64_t)take,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue; /* t was reloaded */
        in_chunk = true;
        fn(arg, n * c / nchunks, n * (c + take) / nchunks);
        in_chunk = false;
        ran += take;
        chunks_done(p, take, nchunks);
        t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    }
}

static void *worker(void *vp)
{
    lgC_pool *p = vp;
    uint32_t seen = 0;
    for (;;) {
        /* spin briefly for the next job, then sleep */
        double until = now_ns() + SPIN_NS;
        while (atomic_load_explicit(&p->posted, memory_order_acquire) == seen && now_ns() < until) {
            for (int k = 0; k < 32; k++)
                cpu_relax();
            sched_yield(); /* a thread sharing this core (the caller's) goes first */
        }
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->gen;
        atomic_store_explicit(&p->taken, seen, memory_order_release);
        lgC_range_fn fn = p->fn;
        void *arg = p->arg;
        int64_t n = p->n, nchunks = p->nchunks;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, seen, fn, arg, n, nchunks, false);
    }
}

static void pool_free(lg_ctx *ctx, lgC_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int k = 0; k < p->nworkers; k++)
        pthread_join(p->tid[k], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    lgC_raw_free(ctx, p->tid, (size_t)p->want * sizeof *p->tid);
    lgC_raw_free(ctx, p, sizeof *p);
}

/* A pool of nworkers threads, its memory from the ctx's allocator hook, or
 * NULL (then the work runs serially). */
static lgC_pool *pool_new(lg_ctx *ctx, int nworkers)
{
    lgC_pool *p = lgC_raw_alloc(ctx, sizeof *p);
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->want = nworkers;
    p->tid = lgC_raw_alloc(ctx, (size_t)nworkers * sizeof *p->tid);
    if (!p->tid || pthread_mutex_init(&p->mu, NULL)) {
        lgC_raw_free(ctx, p->tid, (size_t)nworkers * sizeof *p->tid);
        lgC_raw_free(ctx, p, sizeof *p);
        return NULL;
    }
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->finished, 0);
    atomic_init(&p->posted, 0);
    for (int k = 0; k < nworkers; k++) {
        if (pthread_create(&p->tid[k], NULL, worker, p))
            break; /* fewer workers than asked: still correct */
        p->nworkers = k + 1;
    }
    if (p->nworkers == 0) {
        pool_free(ctx, p);
        return NULL;
    }
    return p;
}

void lgC_pool_free(lg_ctx *ctx)
{
    if (ctx->pool)
        pool_free(ctx, ctx->pool);
    ctx->pool = NULL;
}

/* The ctx's pool for its thread count (made, or remade after
 * lg_ctx_set_threads), or NULL: then the work runs serially (threads could
 * not be started for this count; not retried until the count changes). */
static lgC_pool *pool_of(lg_ctx *ctx)
{
    int want = ctx->threads - 1;
    if (ctx->pool && ctx->pool->want != want)
        lgC_pool_free(ctx);
    if (!ctx->pool && want > 0 && ctx->pool_failed != want) {
        ctx->pool = pool_new(ctx, want);
        ctx->pool_failed = ctx->pool ? 0 : want;
    }
    return ctx->pool;
}

/* After job gen: the caller worked from t0 to t1 and waited for the
 * workers until t2. The pool stands aside (the ctx runs serially for a
 * pause of 50 ms, doubled while the workers stay late, up to 2 s, then
 * tries its workers again) when
 * - the wait was longer than the caller's own work by 300 us: a worker
 *   was descheduled while holding a chunk (the scheduler's slices are
 *   milliseconds; a shorter hiccup is not worth giving the threads up
 *   for); or
 * - no worker picked up two jobs in a row that kept the caller busy for
 *   100 us each: their cores are taken (a worker spinning for work picks
 *   a job up in a microsecond, a sleeping one in tens). The caller then
 *   did the work alone, but as separate chunks, and the workers' waking
 *   took the cores from it.
 * So a busy machine costs 2 threads a few late jobs a pause, not a late
 * job every kernel. */
static void stand_aside(lgC_pool *p, uint32_t gen, double t0, double t1, double t2)
{
    bool late = t2 - t1 > (t1 - t0) + 300e3;
    if (t1 - t0 >= 100e3)
        p->missed =
            atomic_load_explicit(&p->taken, memory_order_acquire) == gen ? 0 : p->missed + 1;
    if (!late && p->missed < 2) {
        if (p->missed == 0)
            p->pause = 0;
        return;
    }
    p->missed = 0;
    p->pause = p->pause == 0 ? 50e6 : (p->pause * 2 < 2e9 ? p->pause * 2 : 2e9);
    p->serial_until = t2 + p->pause;
}

void lgC_parallel(lg_ctx *ctx, int64_t work, int64_t n, lgC_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    lgC_pool *p =
        work >= LGC_PAR_MIN && ctx->threads > 1 && n > 1 && !in_chunk ? pool_of(ctx) : NULL;
    double t0 = p ? now_ns() : 0;
    if (!p || t0 < p->serial_until) {
        fn(arg, 0, n);
        return;
    }
    int64_t nchunks = (int64_t)(p->nworkers + 1) * CHUNKS_PER_THREAD;
    if (nchunks > n)
        nchunks = n;
    pthread_mutex_lock(&p->mu);
    uint32_t gen = ++p->gen;
    p->fn = fn, p->arg = arg, p->n = n, p->nchunks = nchunks;
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ticket, (uint64_t)gen << 32, memory_order_release);
    atomic_store_explicit(&p->posted, gen, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, gen, fn, arg, n, nchunks, true);
    /* every chunk is claimed: wait for the ones workers are running */
    double t1 = now_ns(), until = t1 + WAIT_SPIN_NS;
    while (atomic_load_explicit(&p->finished, memory_order_acquire) < nchunks && now_ns() < until)
        cpu_relax();
    if (atomic_load_explicit(&p->finished, memory_order_acquire) < nchunks) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->finished, memory_order_acquire) < nchunks)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    stand_aside(p, gen, t0, t1, now_ns());
}
