/* grads.c: the gradients of lossgrad/dist.h: buckets planned from the
 * last parameter, each started as its parameters are reported final by
 * backward (the grad-ready hook) and waited for by
 * lg_dist_allreduce_grads; accumulation (lg_dist_set_sync); the
 * deterministic mode's pairwise sum over micro-batches. */
#include "dist_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Gradients                                                            */
/* ------------------------------------------------------------------ */

/* Every parameter has a gradient; *P gets their elements in all. */
static bool grads_present(lg_dist *d, const char *who, int64_t *P)
{
    *P = 0;
    for (int i = 0; i < lgD_np(d); i++) {
        lg_tensor *p = lgD_param(d, i);
        if (!lg_tensor_grad(p)) {
            lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                             "%s: parameter '%s' has no gradient on rank %d (every rank's "
                             "backward must reach every parameter)",
                             who, lg_tensor_name(p) ? lg_tensor_name(p) : "?", d->rank);
            return false;
        }
        *P += lg_tensor_numel(p);
    }
    return true;
}

typedef struct bucket {
    int first, last; /* parameters last..first (backward's order) */
    lg_dtype dt;
    size_t bytes, off; /* in bucket_mem */
} bucket;

/* Splits the parameters, from the last, into buckets of one dtype and at
 * most first_bucket_bytes (the first) or bucket_bytes (a parameter bigger
 * than that has one of its own); returns how many (b may be NULL). */
static int plan(lg_dist *d, bucket *b, size_t *total)
{
    int nb = 0, np = lgD_np(d);
    size_t off = 0;
    for (int i = np - 1; i >= 0;) {
        lg_tensor *p = lgD_param(d, i);
        lg_dtype dt = lg_tensor_dtype(p);
        size_t es = dt == LG_F32 ? 4 : 8, cap = nb ? d->o.bucket_bytes : d->o.first_bucket_bytes;
        size_t bytes = (size_t)lg_tensor_numel(p) * es;
        int last = i--;
        while (i >= 0 && lg_tensor_dtype(lgD_param(d, i)) == dt) {
            size_t more = (size_t)lg_tensor_numel(lgD_param(d, i)) * es;
            if (bytes + more > cap)
                break;
            bytes += more, i--;
        }
        if (b)
            b[nb] = (bucket){ i + 1, last, dt, bytes, off };
        off += (bytes + 63) / 64 * 64;
        nb++;
    }
    *total = off;
    return nb;
}

/* The last bucket's gradient that is most of it (and at least 64 KiB) is
 * reduced where it is, without the copies in and out of the bucket: one
 * more allreduce at most, for the copy of most of the bucket. */
#define IN_PLACE_BYTES ((size_t)64 << 10)

static size_t grad_bytes(const lg_tensor *g, lg_dtype dt)
{
    return (size_t)lg_tensor_numel(g) * (dt == LG_F32 ? 4 : 8);
}

/* Whether a gradient of bytes in bucket b, the last one (last), is
 * reduced in place. */
static bool in_place(const bucket *b, bool last, size_t bytes)
{
    return last && bytes >= IN_PLACE_BYTES && 2 * bytes > b->bytes;
}

/* Copies bucket b's gradients into mem, but for one reduced in place
 * (last: b is the last bucket); returns the bytes copied. */
static size_t pack_in(lg_dist *d, const bucket *b, char *mem, bool last)
{
    char *at = mem + b->off;
    for (int i = b->last; i >= b->first; i--) {
        lg_tensor *g = lg_tensor_grad(lgD_param(d, i));
        size_t bytes = grad_bytes(g, b->dt);
        if (!g || in_place(b, last, bytes)) /* no g: a failed round's drain, sums dropped */
            continue;
        memcpy(at, lg_tensor_data(g), bytes);
        at += bytes;
    }
    return (size_t)(at - (mem + b->off));
}

/* x[j] = y[j] / n for m elements of dtype dt, correctly rounded (y may be x). */
static void divide(void *x, const void *y, int64_t m, lg_dtype dt, int n)
{
    bool pow2 = (n & (n - 1)) == 0;
    if (dt == LG_F32) {
        float *xs = x, fn = (float)n, inv = 1.0f / fn;
        const float *ys = y;
        if (pow2)
            for (int64_t j = 0; j < m; j++)
                xs[j] = ys[j] * inv;
        else
            for (int64_t j = 0; j < m; j++)
                xs[j] = ys[j] / fn;
    } else {
        double *xs = x, dn = (double)n, inv = 1.0 / dn;
        const double *ys = y;
        if (pow2)
            for (int64_t j = 0; j < m; j++)
                xs[j] = ys[j] * inv;
        else
            for (int64_t j = 0; j < m; j++)
                xs[j] = ys[j] / dn;
    }
}

/* Copies bucket b's sums out of mem into the gradients, divided by the
 * rank count n, correctly rounded in the gradients' own type: for float32,
 * the float division gives the bits of (float)((double)s / n), since
 * double holds more than 2 * 24 + 2 bits (double rounding is innocuous),
 * and a power of two is a multiplication by its exact reciprocal. One
 * reduced in place (last: b is the last bucket) is divided there. */
static void pack_out(lg_dist *d, const bucket *b, const char *mem, int n, bool last)
{
    const char *at = mem + b->off;
    for (int i = b->last; i >= b->first; i--) {
        lg_tensor *g = lg_tensor_grad(lgD_param(d, i));
        size_t bytes = grad_bytes(g, b->dt);
        if (in_place(b, last, bytes)) {
            divide(lg_tensor_data(g), lg_tensor_data(g), lg_tensor_numel(g), b->dt, n);
            continue;
        }
        divide(lg_tensor_data(g), at, lg_tensor_numel(g), b->dt, n);
        at += bytes;
    }
}

/* One round of buckets: the plan for the gradients being made, started in
 * order (every rank must start its collectives in one order) as each
 * bucket's parameters are reported final by backward (on_grad_ready), the
 * rest by lg_dist_allreduce_grads, which waits for all. */
typedef struct bround {
    int nb, next; /* buckets; the next to start */
    bucket *b;
    int *left;   /* per bucket: parameters not yet final */
    int np, *of; /* per parameter: its bucket */
    int hint;    /* where the hook looks for the next parameter first */
    MPI_Request *req;
    int rc;      /* the first failed MPI call's code (MPI_SUCCESS if none) */
    bool failed; /* an allocation or MPI call failed inside backward */
    bool twice;  /* a parameter was reported twice: two backwards in one round */
} bround;

static void free_round(lg_ctx *ctx, bround *r)
{
    if (!r)
        return;
    lg_ctx_mem_free(ctx, r->b);
    lg_ctx_mem_free(ctx, r->left);
    lg_ctx_mem_free(ctx, r->of);
    lg_ctx_mem_free(ctx, r->req);
    lg_ctx_mem_free(ctx, r);
}

/* The round ends; its memory is kept for the next one of the same shape
 * (so that steady steps allocate nothing). */
void lgD_close_round(lg_dist *d)
{
    if (!d->round)
        return;
    free_round(d->ctx, d->spare);
    d->spare = d->round, d->round = NULL;
}

void lgD_free_rounds(lg_dist *d)
{
    free_round(d->ctx, d->round);
    free_round(d->ctx, d->spare);
    d->round = d->spare = NULL;
}

static bool open_round(lg_dist *d, const char *who)
{
    lg_ctx *ctx = d->ctx;
    size_t total = 0;
    if (!lgD_select(d, who))
        return false;
    int nb = plan(d, NULL, &total), np = lgD_np(d);
    bround *r = d->spare;
    if (r && r->nb == nb && r->np == np) { /* the last round's memory */
        d->spare = NULL;
        *r = (bround){
            .nb = r->nb, .b = r->b, .left = r->left, .np = r->np, .of = r->of, .req = r->req
        };
    } else {
        if (!(r = lg_ctx_mem_alloc(ctx, sizeof *r, who)))
            return false;
        r->nb = nb, r->np = np;
        size_t nbs = (size_t)(nb ? nb : 1), nps = (size_t)(np ? np : 1);
        if (!(r->b = lg_ctx_mem_alloc(ctx, nbs * sizeof *r->b, who)) ||
            !(r->left = lg_ctx_mem_alloc(ctx, nbs * sizeof *r->left, who)) ||
            !(r->of = lg_ctx_mem_alloc(ctx, nps * sizeof *r->of, who)) ||
            !(r->req = lg_ctx_mem_alloc(ctx, nbs * sizeof *r->req, who))) {
            free_round(ctx, r);
            return false;
        }
    }
    d->round = r;
    r->rc = MPI_SUCCESS, r->hint = np > 0 ? np - 1 : 0;
    if (total > d->bucket_cap) {
        lg_ctx_mem_free(ctx, d->bucket_mem);
        d->bucket_cap = 0;
        if (!(d->bucket_mem = lg_ctx_mem_alloc(ctx, total, who))) {
            lgD_close_round(d);
            return false;
        }
        d->bucket_cap = total;
    }
    plan(d, r->b, &total);
    for (int k = 0; k < nb; k++) /* before any bucket starts: MPI's counts are int */
        if (r->b[k].bytes / (r->b[k].dt == LG_F32 ? 4 : 8) > (size_t)1 << 30) {
            lg_ctx_set_error(ctx, LG_ERR_VALUE,
                             "%s: a gradient bucket of %zu bytes (parameter '%s' on): at most "
                             "2^30 elements in one (MPI counts are int; lower "
                             "lg_dist_opts.bucket_bytes, or split the parameter)",
                             who, r->b[k].bytes, lg_tensor_name(lgD_param(d, r->b[k].last)));
            lgD_close_round(d);
            return false;
        }
    for (int k = 0; k < nb; k++) {
        r->left[k] = r->b[k].last - r->b[k].first + 1;
        for (int i = r->b[k].first; i <= r->b[k].last; i++)
            r->of[i] = k;
    }
    return true;
}

/* Starts bucket r->next's allreduce (its gradients packed now). */
static void start_next(lg_dist *d, bool in_backward)
{
    bround *r = d->round;
    bucket *b = &r->b[r->next];
    pack_in(d, b, d->bucket_mem, false);
    size_t es = b->dt == LG_F32 ? 4 : 8, count = b->bytes / es;
    int rc = count > (size_t)1 << 30 /* MPI counts are int: not in this version */
                 ? MPI_ERR_COUNT
                 : MPI_Iallreduce(MPI_IN_PLACE, (char *)d->bucket_mem + b->off, (int)count,
                                  lgD_mpi_type(b->dt), MPI_SUM, d->bcomm, &r->req[r->next]);
    if (rc != MPI_SUCCESS) {
        r->rc = rc, r->failed = true;
        return;
    }
    r->next++;
    d->stats.buckets++;
    if (in_backward)
        d->stats.buckets_in_backward++;
}

/* The grad-ready hook: param's gradient is final; its bucket, and the
 * buckets after the started ones that are complete, start. */
void lgD_on_grad_ready(lg_ctx *ctx, lg_tensor *param, void *user)
{
    lg_dist *d = user;
    if (d->next) /* the ctx's other models' lg_dists */
        lgD_on_grad_ready(ctx, param, d->next);
    if (d->broken || d->size == 1 || d->o.deterministic || !lgD_mine(d, param))
        return; /* one rank: the mean is the gradient; deterministic: lg_dist_accumulate's */
    if (!d->sync) {
        if (d->round) /* buckets went with an earlier backward's gradients */
            d->round->twice = true;
        return;
    }
    if (!d->round) {
        lg_status before = lg_ctx_status(ctx);
        if (!open_round(d, "lg_backward")) {
            /* out of memory: lg_dist_allreduce_grads tries again and sends
             * everything itself (or reports it, on every rank) */
            if (before == LG_OK)
                lg_ctx_clear_error(ctx);
            return;
        }
    }
    bround *r = d->round;
    if (r->failed || r->twice)
        return;
    /* backward reports parameters about in reverse order: look from
     * below the last one found, going down */
    int i = r->hint, k = 0;
    for (; k < r->np && lgD_param(d, i) != param; k++)
        i = i > 0 ? i - 1 : r->np - 1;
    if (k == r->np || --r->left[r->of[i]] < 0) {
        r->twice = true; /* a parameter made after the plan, or a second backward */
        return;
    }
    r->hint = i > 0 ? i - 1 : r->np - 1;
    /* the last bucket is lg_dist_allreduce_grads's (below) */
    while (r->next < r->nb - 1 && r->left[r->next] == 0 && !r->failed)
        start_next(d, true);
}

/* After a failed lg_dist_allreduce_grads: the ranks may have started
 * different numbers of buckets during backward, which nobody may leave in
 * flight (MPI would write into freed buffers later). Every rank starts
 * buckets up to the most any rank started, in the same order, and waits
 * for them; their sums are dropped. Only if that fails too is the lg_dist
 * unusable for allreduces. */
static void drain(lg_dist *d)
{
    int mine = d->round ? d->round->next : 0, most = 0;
    if (MPI_Allreduce(&mine, &most, 1, MPI_INT, MPI_MAX, d->comm) != MPI_SUCCESS) {
        d->broken = true;
        return;
    }
    if (most == 0)
        return;
    if (!d->round && !open_round(d, "lg_dist_allreduce_grads")) {
        d->broken = true;
        return;
    }
    bround *r = d->round;
    while (r->next < most && r->next < r->nb && !r->failed)
        start_next(d, false);
    if (r->failed || r->next != most ||
        MPI_Waitall(r->next, r->req, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
        d->broken = true;
}

/* The round's end: the buckets not started yet start, all are waited for,
 * and the gradients become the ranks' mean. */
/* The last bucket, blocking: its gradients are the last backward
 * finishes (those of the parameters used first in forward), so when they
 * are final nothing is left to overlap with, and Open MPI's blocking
 * allreduce is faster than its non-blocking one (libnbc): 110 against
 * 173 us for the benchmark's 814 KB at 2 ranks here. Every rank sends it
 * the same way (MPI matches no blocking collective with a non-blocking
 * one): never from backward. A gradient that is most of it is reduced
 * where it is (in_place), the rest packed. */
static int allreduce_one(lg_dist *d, void *at, size_t bytes, lg_dtype dt)
{
    size_t count = bytes / (dt == LG_F32 ? 4 : 8);
    if (count > (size_t)1 << 30) /* MPI counts are int: not in this version */
        return MPI_ERR_COUNT;
    return MPI_Allreduce(MPI_IN_PLACE, at, (int)count, lgD_mpi_type(dt), MPI_SUM, d->bcomm);
}

static int allreduce_last(lg_dist *d)
{
    bround *r = d->round;
    bucket *b = &r->b[r->nb - 1];
    size_t packed = pack_in(d, b, d->bucket_mem, true);
    int rc = packed ? allreduce_one(d, (char *)d->bucket_mem + b->off, packed, b->dt) : MPI_SUCCESS;
    for (int i = b->last; i >= b->first && rc == MPI_SUCCESS; i--) {
        lg_tensor *g = lg_tensor_grad(lgD_param(d, i));
        if (in_place(b, true, grad_bytes(g, b->dt)))
            rc = allreduce_one(d, lg_tensor_data(g), grad_bytes(g, b->dt), b->dt);
    }
    if (rc == MPI_SUCCESS)
        r->next++, d->stats.buckets++;
    return rc;
}

static lg_status allreduce_buckets(lg_dist *d, const char *who)
{
    bround *r = d->round;
    while (r->next < r->nb - 1 && !r->failed)
        start_next(d, false);
    double t0 = MPI_Wtime();
    int wrc = r->next ? MPI_Waitall(r->next, r->req, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    int lrc = r->failed || wrc != MPI_SUCCESS || r->nb == 0 ? MPI_SUCCESS : allreduce_last(d);
    d->stats.wait_seconds += MPI_Wtime() - t0;
    d->stats.allreduces++;
    lg_status st = LG_OK;
    if (r->failed)
        st = lgD_mpi_error(d, who, "MPI_Iallreduce", r->rc);
    else if (wrc != MPI_SUCCESS)
        st = lgD_mpi_error(d, who, "MPI_Waitall", wrc);
    else if (lrc != MPI_SUCCESS)
        st = lgD_mpi_error(d, who, "MPI_Allreduce", lrc);
    else
        for (int k = 0; k < r->nb; k++)
            pack_out(d, &r->b[k], d->bucket_mem, d->size, k == r->nb - 1);
    d->broken = d->broken || r->failed || wrc != MPI_SUCCESS || lrc != MPI_SUCCESS;
    lgD_close_round(d);
    return st;
}

/* The parameters' gradients, flat, as doubles, into v. */
static void gather_grads(lg_dist *d, double *v)
{
    int64_t at = 0;
    for (int i = 0; i < lgD_np(d); i++) {
        lg_tensor *g = lg_tensor_grad(lgD_param(d, i));
        int64_t n = lg_tensor_numel(g);
        if (lg_tensor_dtype(g) == LG_F32) {
            const float *x = lg_tensor_data(g);
            for (int64_t j = 0; j < n; j++)
                v[at + j] = x[j];
        } else {
            memcpy(v + at, lg_tensor_data(g), (size_t)n * sizeof *v);
        }
        at += n;
    }
}

/* The binary counter's step: carry (P doubles) joins level 0, and each
 * full level's sum carries on up; levels are made as needed. */
static bool counter_add(lg_dist *d, const char *who, double *carry)
{
    int l = 0;
    for (; l < LEVELS && (d->present >> l & 1); l++) {
        const double *s = d->level[l];
        for (int64_t j = 0; j < d->P; j++)
            carry[j] = s[j] + carry[j];
        d->present &= ~((uint64_t)1 << l);
    }
    if (l == LEVELS)
        return lg_ctx_set_error(d->ctx, LG_ERR_VALUE, "%s: too many micro-batches", who), false;
    if (!d->level[l] &&
        !(d->level[l] = lg_ctx_mem_alloc(d->ctx, (size_t)d->P * sizeof(double), who)))
        return false;
    memcpy(d->level[l], carry, (size_t)d->P * sizeof(double));
    d->present |= (uint64_t)1 << l;
    return true;
}

/* The counter's sum: its levels from the lowest up, into out. */
static void counter_sum(const lg_dist *d, double *out)
{
    bool any = false;
    for (int l = 0; l < LEVELS; l++) {
        if (!(d->present >> l & 1))
            continue;
        const double *s = d->level[l];
        for (int64_t j = 0; j < d->P; j++)
            out[j] = any ? s[j] + out[j] : s[j];
        any = true;
    }
}

lg_status lg_dist_accumulate(lg_dist *d)
{
    const char *who = "lg_dist_accumulate";
    if (!d)
        return LG_ERR_NULL;
    if (lg_ctx_status(d->ctx) != LG_OK)
        return lg_ctx_status(d->ctx);
    if (!d->o.deterministic)
        return lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                                "%s: only in deterministic mode (lg_dist_opts.deterministic); "
                                "otherwise backward's gradients add up in .grad by themselves",
                                who);
    int64_t P;
    if (!lgD_select(d, who) || !grads_present(d, who, &P))
        return lg_ctx_status(d->ctx);
    if (d->k > 0 && P != d->P)
        return lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                                "%s: the parameters changed since the last micro-batch", who);
    if (d->k == 0) {
        lgD_free_sums(d);
        d->P = P;
        if (!(d->level = lg_ctx_mem_alloc(d->ctx, LEVELS * sizeof *d->level, who)) ||
            !(d->tmp = lg_ctx_mem_alloc(d->ctx, (size_t)(P ? P : 1) * sizeof(double), who))) {
            lgD_free_sums(d);
            return lg_ctx_status(d->ctx);
        }
    }
    gather_grads(d, d->tmp);
    if (!counter_add(d, who, d->tmp))
        return lg_ctx_status(d->ctx);
    d->k++;
    for (int i = 0; i < lgD_np(d); i++) { /* the model's only: not lg_zero_grad */
        lg_tensor *g = lg_tensor_grad(lgD_param(d, i));
        memset(lg_tensor_data(g), 0, grad_bytes(g, lg_tensor_dtype(g)));
    }
    return LG_OK;
}

/* The ranks' sums v (P each; N ranks, a power of two) added as the
 * pairwise tree over the ranks in order, each node the lower ranks' sum
 * plus the higher ranks' (as the counter adds them), into v on every
 * rank. Recursive halving: at level m = 1, 2, 4, ..., rank r and r ^ m,
 * which hold the same segment of their blocks' sums, swap halves of it,
 * and each adds the half it keeps, the lower block's first; then the
 * segments travel back the same way until every rank has all of v. Each
 * rank moves about 2 P doubles, and needs P / 2 + 1 of scratch (buf). */
static int tree_by_halving(lg_dist *d, double *v, double *buf)
{
    int64_t lo[32], hi[32];
    int levels = 0, rc = MPI_SUCCESS;
    lo[0] = 0, hi[0] = d->P;
    for (int m = 1; m < d->size && rc == MPI_SUCCESS; m <<= 1, levels++) {
        int peer = d->rank ^ m;
        bool lower = (d->rank & m) == 0;
        int64_t a = lo[levels], b = hi[levels], mid = a + (b - a) / 2;
        int64_t klo = lower ? a : mid, khi = lower ? mid : b; /* kept */
        int64_t slo = lower ? mid : a, shi = lower ? b : mid; /* sent */
        rc = MPI_Sendrecv(v + slo, (int)(shi - slo), MPI_DOUBLE, peer, 19, buf, (int)(khi - klo),
                          MPI_DOUBLE, peer, 19, d->comm, MPI_STATUS_IGNORE);
        for (int64_t j = klo; rc == MPI_SUCCESS && j < khi; j++)
            v[j] = lower ? v[j] + buf[j - klo] : buf[j - klo] + v[j];
        lo[levels + 1] = klo, hi[levels + 1] = khi;
    }
    for (int l = levels; l > 0 && rc == MPI_SUCCESS; l--) { /* back: level m = 2^(l-1) */
        int peer = d->rank ^ (1 << (l - 1));
        int64_t a = lo[l - 1], b = hi[l - 1], klo = lo[l], khi = hi[l];
        int64_t olo = klo == a ? khi : a, ohi = klo == a ? b : klo; /* the peer's half */
        rc = MPI_Sendrecv(v + klo, (int)(khi - klo), MPI_DOUBLE, peer, 20, v + olo,
                          (int)(ohi - olo), MPI_DOUBLE, peer, 20, d->comm, MPI_STATUS_IGNORE);
    }
    return rc;
}

/* Deterministic mode: every rank's sum (k micro-batches each, k a power of
 * two, so each is a whole subtree of the global pairwise tree), summed
 * over the ranks as the same counter in rank order would: by halving
 * (above) for a power of two of ranks, otherwise gathered and counted. */
static lg_status allreduce_fixed(lg_dist *d, const char *who)
{
    bool ok = d->k > 0 && (d->k & (d->k - 1)) == 0;
    if (!ok)
        lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                         "%s: rank %d accumulated %" PRId64
                         " micro-batches; deterministic mode needs a power of two (>= 1) on every "
                         "rank (lg_dist_accumulate after each micro-batch's backward)",
                         who, d->rank, d->k);
    lg_status st = lgD_agree(d, who, ok);
    if (st != LG_OK)
        return st;
    /* a power of two of ranks: the tree by halving (half the sums' memory
     * as scratch); otherwise every rank's sum gathered */
    bool halving = (d->size & (d->size - 1)) == 0;
    size_t scratch = halving ? (size_t)(d->P / 2 + 1) : (size_t)d->size * (size_t)(d->P ? d->P : 1);
    int64_t mine[2] = { d->k, d->P }, *all = lg_ctx_mem_alloc(d->ctx, 2 * (size_t)d->size * 8, who);
    double *gathered = all ? lg_ctx_mem_alloc(d->ctx, scratch * 8, who) : NULL;
    if ((st = lgD_agree(d, who, gathered != NULL)) != LG_OK)
        goto out;
    int rc = MPI_Allgather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, d->comm);
    if (rc != MPI_SUCCESS) {
        st = lgD_mpi_error(d, who, "MPI_Allgather", rc);
        goto out;
    }
    for (int r = 0; r < d->size; r++)
        if (all[2 * r] != d->k || all[2 * r + 1] != d->P) {
            st = lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                                  "%s: rank %d has %" PRId64 " micro-batches of %" PRId64
                                  " gradient elements, rank %d %" PRId64 " of %" PRId64
                                  " (every rank the same)",
                                  who, r, all[2 * r], all[2 * r + 1], d->rank, d->k, d->P);
            goto out;
        }
    if (d->P > (1 << 30)) {
        st = lg_ctx_set_error(d->ctx, LG_ERR_VALUE,
                              "%s: deterministic mode takes at most 2^30 gradient elements", who);
        goto out;
    }
    counter_sum(d, d->tmp);
    int64_t micro = d->k * d->size;
    if (halving) {
        if ((rc = tree_by_halving(d, d->tmp, gathered)) != MPI_SUCCESS) {
            st = lgD_mpi_error(d, who, "MPI_Sendrecv", rc);
            goto out;
        }
    } else {
        rc = MPI_Allgather(d->tmp, (int)d->P, MPI_DOUBLE, gathered, (int)d->P, MPI_DOUBLE, d->comm);
        if (rc != MPI_SUCCESS) {
            st = lgD_mpi_error(d, who, "MPI_Allgather", rc);
            goto out;
        }
        d->present = 0;
        for (int r = 0; r < d->size; r++) {
            memcpy(d->tmp, gathered + (size_t)r * (size_t)d->P, (size_t)d->P * sizeof(double));
            if (!counter_add(d, who, d->tmp)) {
                st = lg_ctx_status(d->ctx);
                goto out;
            }
        }
        counter_sum(d, d->tmp);
    }
    int64_t at = 0;
    for (int i = 0; i < lgD_np(d); i++) {
        lg_tensor *p = lgD_param(d, i);
        if (!lg_tensor_grad(p)) { /* zeroed by lg_zero_grad: made again by a backward */
            st = lg_ctx_set_error(d->ctx, LG_ERR_STATE, "%s: parameter '%s' lost its gradient", who,
                                  lg_tensor_name(p));
            goto out;
        }
        lg_tensor *g = lg_tensor_grad(p);
        int64_t n = lg_tensor_numel(g);
        if (lg_tensor_dtype(g) == LG_F32) {
            float *x = lg_tensor_data(g);
            for (int64_t j = 0; j < n; j++)
                x[j] = (float)(d->tmp[at + j] / (double)micro);
        } else {
            double *x = lg_tensor_data(g);
            for (int64_t j = 0; j < n; j++)
                x[j] = d->tmp[at + j] / (double)micro;
        }
        at += n;
    }
out:
    d->present = 0, d->k = 0;
    lg_ctx_mem_free(d->ctx, gathered);
    lg_ctx_mem_free(d->ctx, all);
    return st;
}

lg_status lg_dist_allreduce_grads(lg_dist *d)
{
    const char *who = "lg_dist_allreduce_grads";
    if (!d)
        return LG_ERR_NULL;
    if (d->broken)
        return lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                                "%s: an earlier error left gradient buckets in flight; free this "
                                "lg_dist and make a new one",
                                who);
    int64_t P = 0;
    bool ok = lg_ctx_status(d->ctx) == LG_OK && lgD_select(d, who) &&
              (d->o.deterministic || grads_present(d, who, &P));
    if (ok && d->round && d->round->twice)
        ok = false, lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                                     "%s: buckets went with an earlier backward's gradients "
                                     "(a second backward since the last call, with sync on or "
                                     "after turning it off, or parameters made since: to "
                                     "accumulate, lg_dist_set_sync(d, false) before the "
                                     "backwards and true before the last)",
                                     who);
    if (ok && d->round && d->round->failed)
        ok = false, lgD_mpi_error(d, who, "starting a bucket during backward", d->round->rc);
    if (ok && !d->o.deterministic && d->size == 1) { /* the mean of one rank: as it is */
        d->stats.allreduces++;
        return LG_OK;
    }
    if (ok && !d->o.deterministic && !d->round && !open_round(d, who))
        ok = false;
    lg_status st = lgD_agree(d, who, ok);
    if (st != LG_OK) {
        if (!d->o.deterministic)
            drain(d);
        lgD_close_round(d);
        return st;
    }
    return d->o.deterministic ? allreduce_fixed(d, who) : allreduce_buckets(d, who);
}

lg_status lg_dist_set_sync(lg_dist *d, bool on)
{
    if (!d)
        return LG_ERR_NULL;
    d->sync = on;
    return LG_OK;
}

lg_dist_stats lg_dist_get_stats(const lg_dist *d)
{
    return d ? d->stats : (lg_dist_stats){ 0 };
}

void lgD_free_sums(lg_dist *d)
{
    for (int l = 0; d->level && l < LEVELS; l++)
        lg_ctx_mem_free(d->ctx, d->level[l]);
    lg_ctx_mem_free(d->ctx, d->level);
    lg_ctx_mem_free(d->ctx, d->tmp);
    d->level = NULL, d->tmp = NULL, d->present = 0, d->k = 0, d->P = 0;
}
