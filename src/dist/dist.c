/* dist.c: data-parallel training on MPI (lossgrad/dist.h). Built on
 * lossgrad's public interface only, as a library of its own
 * (lossgrad_dist), so that lossgrad itself stays free of MPI.
 *
 * Every collective call first agrees on whether each rank can take part
 * (one small allreduce of the first failing rank): a rank that finds a
 * local error (a missing gradient, a wrong micro-batch count) does not
 * leave the others waiting in a collective it never joins; every rank
 * returns an error, the failing one with its reason.
 */
#include <lossgrad/dist.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

struct lg_dist {
    lg_ctx *ctx;
    MPI_Comm comm; /* ours: a duplicate, errors returned */
    int rank, size;
    lg_dist_opts o;
    MPI_Comm bcomm; /* the buckets' allreduces (so that agree never meets one half-started) */
    /* gradient buckets (normal mode), kept between calls */
    void *bucket_mem;
    size_t bucket_cap;
    struct bround *round; /* the buckets of the gradients being made (bround, below) */
    bool sync;            /* backwards start buckets (lg_dist_set_sync) */
    bool broken;          /* buckets were left in flight by an error */
    lg_dist_stats stats;
    /* deterministic mode: this rank's pairwise sum of micro-batch gradients,
     * a binary counter: level l holds the sum of 2^l micro-batches */
    int64_t P, k;     /* the parameters' elements, micro-batches accumulated */
    double **level;   /* LEVELS vectors of P (NULL until needed) */
    uint64_t present; /* bit l: level l holds a sum */
    double *tmp;      /* P: the carry */
};

#define LEVELS 62

static void on_grad_ready(lg_ctx *ctx, lg_tensor *param, void *user);
static void close_round(lg_dist *d);

lg_dist_opts lg_dist_opts_default(void)
{
    return (lg_dist_opts){ .defaults_tag = LG_OPTS_TAG,
                           .bucket_bytes = (size_t)25 << 20,
                           .first_bucket_bytes = (size_t)1 << 20 };
}

int lg_dist_mpi_init(int *argc, char ***argv)
{
    int done = 0, provided = 0;
    int rc = MPI_Initialized(&done);
    if (rc != MPI_SUCCESS || done)
        return rc;
    return MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
}

/* "<who>: <what> failed: <MPI's message>". */
static lg_status mpi_error(lg_dist *d, const char *who, const char *what, int rc)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", rc);
    return lg_ctx_set_error(d->ctx, LG_ERR_IO, "%s: %s failed: %s", who, what, msg);
}

/* Whether every rank can go on: ok is this rank's answer. All ranks learn
 * the first rank that cannot; a rank that can gets an error naming it. */
static lg_status agree(lg_dist *d, const char *who, bool ok)
{
    int mine = ok ? d->size : d->rank, first = d->size;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, d->comm);
    if (rc != MPI_SUCCESS)
        return mpi_error(d, who, "MPI_Allreduce", rc);
    if (first == d->size)
        return LG_OK;
    if (ok)
        return lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                                "%s: rank %d could not take part (its own error says why)", who,
                                first);
    return lg_ctx_status(d->ctx) != LG_OK ? lg_ctx_status(d->ctx) : LG_ERR_STATE;
}

static bool check_opts(lg_ctx *ctx, const lg_dist_opts *o)
{
    if (o->defaults_tag != 0 && o->defaults_tag != LG_OPTS_TAG) {
        lg_ctx_set_error(ctx, LG_ERR_VALUE,
                         "lg_dist_new: opts->defaults_tag = 0x%08" PRIx32
                         " was not written by lg_dist_opts_default (start from it, or zero the "
                         "struct)",
                         o->defaults_tag);
        return false;
    }
    const char *bad = o->bucket_bytes == 0         ? "bucket_bytes"
                      : o->first_bucket_bytes == 0 ? "first_bucket_bytes"
                                                   : NULL;
    if (bad) {
        lg_ctx_set_error(ctx, LG_ERR_VALUE,
                         o->defaults_tag ? "lg_dist_new: opts->%s = 0, expected > 0"
                                         : "lg_dist_new: opts->%s = 0 in a struct written by "
                                           "hand: it has a non-zero default, so write it (or "
                                           "start from lg_dist_opts_default())",
                         bad);
        return false;
    }
    return true;
}

lg_dist *lg_dist_new(lg_ctx *ctx, MPI_Comm comm, const lg_dist_opts *opts)
{
    if (!ctx)
        return NULL;
    if (lg_ctx_status(ctx) != LG_OK)
        return NULL;
    lg_dist_opts o = lg_dist_opts_default();
    if (opts) {
        o = *opts;
        if (o.defaults_tag == 0 && !o.bucket_bytes && !o.first_bucket_bytes && !o.deterministic)
            o = lg_dist_opts_default(); /* all zero: the defaults */
        if (!check_opts(ctx, &o))
            return NULL;
    }
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin) {
        lg_ctx_set_error(ctx, LG_ERR_STATE,
                         "lg_dist_new: MPI is %s (call MPI_Init or lg_dist_mpi_init first)",
                         fin ? "finalized" : "not initialised");
        return NULL;
    }
    if (comm == MPI_COMM_NULL) {
        lg_ctx_set_error(ctx, LG_ERR_NULL, "lg_dist_new: comm is MPI_COMM_NULL");
        return NULL;
    }
    if (!o.deterministic && lg_ctx_grad_ready_hook(ctx, NULL)) {
        lg_ctx_set_error(ctx, LG_ERR_STATE,
                         "lg_dist_new: the ctx has a grad-ready hook already (another lg_dist's, "
                         "or the program's: lg_ctx_set_grad_ready_hook); one lg_dist per ctx");
        return NULL;
    }
    lg_dist *d = lg_ctx_mem_alloc(ctx, sizeof *d, "lg_dist_new");
    if (!d)
        return NULL;
    d->ctx = ctx, d->o = o;
    int rc = MPI_Comm_dup(comm, &d->comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    d->bcomm = MPI_COMM_NULL;
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_dup(d->comm, &d->bcomm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(d->comm, &d->rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(d->comm, &d->size);
    if (rc != MPI_SUCCESS) {
        mpi_error(d, "lg_dist_new", "duplicating the communicator", rc);
        if (d->bcomm != MPI_COMM_NULL)
            MPI_Comm_free(&d->bcomm);
        if (d->comm != MPI_COMM_NULL)
            MPI_Comm_free(&d->comm);
        lg_ctx_mem_free(ctx, d);
        return NULL;
    }
    d->sync = true;
    if (!o.deterministic) /* buckets start from backward as their gradients are final */
        lg_ctx_set_grad_ready_hook(ctx, on_grad_ready, d);
    return d;
}

static void free_sums(lg_dist *d)
{
    for (int l = 0; d->level && l < LEVELS; l++)
        lg_ctx_mem_free(d->ctx, d->level[l]);
    lg_ctx_mem_free(d->ctx, d->level);
    lg_ctx_mem_free(d->ctx, d->tmp);
    d->level = NULL, d->tmp = NULL, d->present = 0, d->k = 0, d->P = 0;
}

void lg_dist_free(lg_dist *d)
{
    if (!d)
        return;
    void *owner = NULL;
    if (lg_ctx_grad_ready_hook(d->ctx, &owner) == on_grad_ready && owner == d)
        lg_ctx_set_grad_ready_hook(d->ctx, NULL, NULL);
    close_round(d);
    free_sums(d);
    lg_ctx_mem_free(d->ctx, d->bucket_mem);
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) {
        MPI_Comm_free(&d->bcomm);
        MPI_Comm_free(&d->comm);
    }
    lg_ctx_mem_free(d->ctx, d);
}

int lg_dist_rank(const lg_dist *d)
{
    return d ? d->rank : -1;
}

int lg_dist_size(const lg_dist *d)
{
    return d ? d->size : 0;
}

/* ------------------------------------------------------------------ */
/* Broadcast                                                            */
/* ------------------------------------------------------------------ */

static int stored_count(lg_ctx *ctx)
{
    return lg_param_count(ctx) + lg_buffer_count(ctx);
}

static lg_tensor *stored_at(lg_ctx *ctx, int i)
{
    int np = lg_param_count(ctx);
    return i < np ? lg_param_at(ctx, i) : lg_buffer_at(ctx, i - np);
}

/* FNV-1a of a tensor's name, dtype and shape. */
static uint64_t signature(const lg_tensor *t)
{
    uint64_t h = 0xcbf29ce484222325u;
    const char *name = lg_tensor_name(t);
    for (const char *c = name ? name : ""; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3u;
    int64_t v[2 + LG_MAX_DIMS] = { lg_tensor_dtype(t), lg_tensor_ndim(t) };
    memcpy(v + 2, lg_tensor_shape(t), (size_t)lg_tensor_ndim(t) * sizeof(int64_t));
    for (int k = 0; k < 2 + lg_tensor_ndim(t); k++)
        for (int b = 0; b < 8; b++)
            h = (h ^ (uint8_t)((uint64_t)v[k] >> (8 * b))) * 0x100000001b3u;
    return h;
}

static MPI_Datatype mpi_type(lg_dtype dt)
{
    return dt == LG_F32 ? MPI_FLOAT : dt == LG_F64 ? MPI_DOUBLE : MPI_INT64_T;
}

/* Rank root's count of tensors and their signatures match this rank's. */
static lg_status check_alike(lg_dist *d, const char *who, int root)
{
    lg_ctx *ctx = d->ctx;
    int n = stored_count(ctx), rn = n;
    int rc = MPI_Bcast(&rn, 1, MPI_INT, root, d->comm);
    if (rc != MPI_SUCCESS)
        return mpi_error(d, who, "MPI_Bcast", rc);
    bool ok = rn == n;
    if (!ok)
        lg_ctx_set_error(ctx, LG_ERR_VALUE,
                         "%s: rank %d has %d parameters and buffers, rank %d (the root) has %d",
                         who, d->rank, n, root, rn);
    lg_status st = agree(d, who, ok);
    if (st != LG_OK)
        return st;
    uint64_t *sig = lg_ctx_mem_alloc(ctx, (size_t)(n ? n : 1) * 2 * sizeof *sig, who);
    ok = sig != NULL;
    if ((st = agree(d, who, ok)) != LG_OK) {
        lg_ctx_mem_free(ctx, sig);
        return st;
    }
    for (int i = 0; i < n; i++)
        sig[i] = sig[n + i] = signature(stored_at(ctx, i));
    rc = MPI_Bcast(sig + n, n, MPI_UINT64_T, root, d->comm);
    if (rc != MPI_SUCCESS) {
        lg_ctx_mem_free(ctx, sig);
        return mpi_error(d, who, "MPI_Bcast", rc);
    }
    int bad = -1;
    for (int i = 0; i < n && bad < 0; i++)
        if (sig[i] != sig[n + i])
            bad = i;
    lg_ctx_mem_free(ctx, sig);
    if (bad >= 0)
        lg_ctx_set_error(ctx, LG_ERR_VALUE,
                         "%s: rank %d's tensor %d ('%s') differs from rank %d's in name, dtype or "
                         "shape (the ranks must build the same model)",
                         who, d->rank, bad, lg_tensor_name(stored_at(ctx, bad)), root);
    return agree(d, who, bad < 0);
}

lg_status lg_dist_broadcast(lg_dist *d, int root)
{
    const char *who = "lg_dist_broadcast";
    if (!d)
        return LG_ERR_NULL;
    /* root is the same argument on every rank, so every rank returns here */
    if (root < 0 || root >= d->size)
        return lg_ctx_set_error(d->ctx, LG_ERR_VALUE, "%s: root = %d, expected in [0, %d)", who,
                                root, d->size);
    lg_status st = agree(d, who, lg_ctx_status(d->ctx) == LG_OK);
    if (st != LG_OK || (st = check_alike(d, who, root)) != LG_OK)
        return st;
    for (int i = 0; i < stored_count(d->ctx); i++) {
        lg_tensor *t = stored_at(d->ctx, i);
        int64_t left = lg_tensor_numel(t);
        char *p = lg_tensor_data(t);
        size_t es = lg_tensor_dtype(t) == LG_F32 ? 4 : 8;
        while (left > 0) { /* MPI counts are int */
            int c = left > (1 << 30) ? 1 << 30 : (int)left;
            int rc = MPI_Bcast(p, c, mpi_type(lg_tensor_dtype(t)), root, d->comm);
            if (rc != MPI_SUCCESS)
                return mpi_error(d, who, "MPI_Bcast", rc);
            p += (size_t)c * es, left -= c;
        }
    }
    return LG_OK;
}

/* ------------------------------------------------------------------ */
/* Gradients                                                            */
/* ------------------------------------------------------------------ */

/* Every parameter has a gradient; *P gets their elements in all. */
static bool grads_present(lg_dist *d, const char *who, int64_t *P)
{
    *P = 0;
    for (int i = 0; i < lg_param_count(d->ctx); i++) {
        lg_tensor *p = lg_param_at(d->ctx, i);
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
    int nb = 0, np = lg_param_count(d->ctx);
    size_t off = 0;
    for (int i = np - 1; i >= 0;) {
        lg_tensor *p = lg_param_at(d->ctx, i);
        lg_dtype dt = lg_tensor_dtype(p);
        size_t es = dt == LG_F32 ? 4 : 8, cap = nb ? d->o.bucket_bytes : d->o.first_bucket_bytes;
        size_t bytes = (size_t)lg_tensor_numel(p) * es;
        int last = i--;
        while (i >= 0 && lg_tensor_dtype(lg_param_at(d->ctx, i)) == dt) {
            size_t more = (size_t)lg_tensor_numel(lg_param_at(d->ctx, i)) * es;
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

/* Copies bucket b's gradients into (to_bucket) or out of mem, dividing by
 * div on the way out. */
static void pack(lg_dist *d, const bucket *b, char *mem, bool to_bucket, double div)
{
    char *at = mem + b->off;
    for (int i = b->last; i >= b->first; i--) {
        lg_tensor *g = lg_tensor_grad(lg_param_at(d->ctx, i));
        int64_t n = lg_tensor_numel(g);
        if (b->dt == LG_F32) {
            float *x = lg_tensor_data(g), *y = (float *)(void *)at;
            for (int64_t j = 0; j < n; j++)
                if (to_bucket)
                    y[j] = x[j];
                else
                    x[j] = (float)(y[j] / div);
            at += (size_t)n * 4;
        } else {
            double *x = lg_tensor_data(g), *y = (double *)(void *)at;
            for (int64_t j = 0; j < n; j++)
                if (to_bucket)
                    y[j] = x[j];
                else
                    x[j] = y[j] / div;
            at += (size_t)n * 8;
        }
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
    MPI_Request *req;
    int rc;      /* the first failed MPI call's code (MPI_SUCCESS if none) */
    bool failed; /* an allocation or MPI call failed inside backward */
    bool twice;  /* a parameter was reported twice: two backwards in one round */
} bround;

static void close_round(lg_dist *d)
{
    bround *r = d->round;
    if (!r)
        return;
    lg_ctx_mem_free(d->ctx, r->b);
    lg_ctx_mem_free(d->ctx, r->left);
    lg_ctx_mem_free(d->ctx, r->of);
    lg_ctx_mem_free(d->ctx, r->req);
    lg_ctx_mem_free(d->ctx, r);
    d->round = NULL;
}

/* The plan for the parameters as they are now; false on OOM. */
static bool open_round(lg_dist *d, const char *who)
{
    lg_ctx *ctx = d->ctx;
    size_t total = 0;
    int nb = plan(d, NULL, &total), np = lg_param_count(ctx);
    bround *r = lg_ctx_mem_alloc(ctx, sizeof *r, who);
    if (!r)
        return false;
    d->round = r;
    r->nb = nb, r->np = np, r->rc = MPI_SUCCESS;
    size_t nbs = (size_t)(nb ? nb : 1), nps = (size_t)(np ? np : 1);
    if (!(r->b = lg_ctx_mem_alloc(ctx, nbs * sizeof *r->b, who)) ||
        !(r->left = lg_ctx_mem_alloc(ctx, nbs * sizeof *r->left, who)) ||
        !(r->of = lg_ctx_mem_alloc(ctx, nps * sizeof *r->of, who)) ||
        !(r->req = lg_ctx_mem_alloc(ctx, nbs * sizeof *r->req, who))) {
        close_round(d);
        return false;
    }
    if (total > d->bucket_cap) {
        lg_ctx_mem_free(ctx, d->bucket_mem);
        d->bucket_cap = 0;
        if (!(d->bucket_mem = lg_ctx_mem_alloc(ctx, total, who))) {
            close_round(d);
            return false;
        }
        d->bucket_cap = total;
    }
    plan(d, r->b, &total);
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
    pack(d, b, d->bucket_mem, true, 1);
    size_t es = b->dt == LG_F32 ? 4 : 8, count = b->bytes / es;
    int rc = count > (size_t)1 << 30 /* MPI counts are int: not in this version */
                 ? MPI_ERR_COUNT
                 : MPI_Iallreduce(MPI_IN_PLACE, (char *)d->bucket_mem + b->off, (int)count,
                                  mpi_type(b->dt), MPI_SUM, d->bcomm, &r->req[r->next]);
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
static void on_grad_ready(lg_ctx *ctx, lg_tensor *param, void *user)
{
    lg_dist *d = user;
    if (!d->sync || d->broken || d->size == 1) /* one rank: the mean is the gradient */
        return;
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
    int i = 0;
    while (i < r->np && lg_param_at(ctx, i) != param)
        i++;
    if (i == r->np || --r->left[r->of[i]] < 0) {
        r->twice = true; /* a parameter made after the plan, or a second backward */
        return;
    }
    while (r->next < r->nb && r->left[r->next] == 0 && !r->failed)
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
static lg_status allreduce_buckets(lg_dist *d, const char *who)
{
    bround *r = d->round;
    while (r->next < r->nb && !r->failed)
        start_next(d, false);
    double t0 = MPI_Wtime();
    int wrc = r->next ? MPI_Waitall(r->next, r->req, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    d->stats.wait_seconds += MPI_Wtime() - t0;
    d->stats.allreduces++;
    lg_status st = LG_OK;
    if (r->failed)
        st = mpi_error(d, who, "MPI_Iallreduce", r->rc);
    else if (wrc != MPI_SUCCESS)
        st = mpi_error(d, who, "MPI_Waitall", wrc);
    else
        for (int k = 0; k < r->nb; k++)
            pack(d, &r->b[k], d->bucket_mem, false, d->size);
    d->broken = d->broken || r->failed || wrc != MPI_SUCCESS;
    close_round(d);
    return st;
}

/* The parameters' gradients, flat, as doubles, into v. */
static void gather_grads(lg_dist *d, double *v)
{
    int64_t at = 0;
    for (int i = 0; i < lg_param_count(d->ctx); i++) {
        lg_tensor *g = lg_tensor_grad(lg_param_at(d->ctx, i));
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
    if (!grads_present(d, who, &P))
        return lg_ctx_status(d->ctx);
    if (d->k > 0 && P != d->P)
        return lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                                "%s: the parameters changed since the last micro-batch", who);
    if (d->k == 0) {
        free_sums(d);
        d->P = P;
        if (!(d->level = lg_ctx_mem_alloc(d->ctx, LEVELS * sizeof *d->level, who)) ||
            !(d->tmp = lg_ctx_mem_alloc(d->ctx, (size_t)(P ? P : 1) * sizeof(double), who))) {
            free_sums(d);
            return lg_ctx_status(d->ctx);
        }
    }
    gather_grads(d, d->tmp);
    if (!counter_add(d, who, d->tmp))
        return lg_ctx_status(d->ctx);
    d->k++;
    lg_zero_grad(d->ctx);
    return LG_OK;
}

/* Deterministic mode: every rank's sum (k micro-batches each, k a power of
 * two, so each is a whole subtree of the global pairwise tree), gathered,
 * then summed over the ranks by the same counter in rank order. */
static lg_status allreduce_fixed(lg_dist *d, const char *who)
{
    bool ok = d->k > 0 && (d->k & (d->k - 1)) == 0;
    if (!ok)
        lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                         "%s: rank %d accumulated %" PRId64
                         " micro-batches; deterministic mode needs a power of two (>= 1) on every "
                         "rank (lg_dist_accumulate after each micro-batch's backward)",
                         who, d->rank, d->k);
    lg_status st = agree(d, who, ok);
    if (st != LG_OK)
        return st;
    int64_t mine[2] = { d->k, d->P }, *all = lg_ctx_mem_alloc(d->ctx, 2 * (size_t)d->size * 8, who);
    double *gathered =
        all ? lg_ctx_mem_alloc(d->ctx, (size_t)d->size * (size_t)(d->P ? d->P : 1) * 8, who) : NULL;
    if ((st = agree(d, who, gathered != NULL)) != LG_OK)
        goto out;
    int rc = MPI_Allgather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, d->comm);
    if (rc != MPI_SUCCESS) {
        st = mpi_error(d, who, "MPI_Allgather", rc);
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
    rc = MPI_Allgather(d->tmp, (int)d->P, MPI_DOUBLE, gathered, (int)d->P, MPI_DOUBLE, d->comm);
    if (rc != MPI_SUCCESS) {
        st = mpi_error(d, who, "MPI_Allgather", rc);
        goto out;
    }
    int64_t micro = d->k * d->size;
    d->present = 0;
    for (int r = 0; r < d->size; r++) {
        memcpy(d->tmp, gathered + (size_t)r * (size_t)d->P, (size_t)d->P * sizeof(double));
        if (!counter_add(d, who, d->tmp)) {
            st = lg_ctx_status(d->ctx);
            goto out;
        }
    }
    counter_sum(d, d->tmp);
    int64_t at = 0;
    for (int i = 0; i < lg_param_count(d->ctx); i++) {
        lg_tensor *p = lg_param_at(d->ctx, i);
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
    bool ok = lg_ctx_status(d->ctx) == LG_OK && (d->o.deterministic || grads_present(d, who, &P));
    if (ok && d->round && d->round->twice)
        ok = false, lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                                     "%s: a parameter's gradient was finished twice since the "
                                     "last call (two backwards, or parameters made since: "
                                     "accumulate with lg_dist_set_sync(d, false))",
                                     who);
    if (ok && d->round && d->round->failed)
        ok = false, mpi_error(d, who, "starting a bucket during backward", d->round->rc);
    if (ok && !d->o.deterministic && d->size == 1) { /* the mean of one rank: as it is */
        d->stats.allreduces++;
        return LG_OK;
    }
    if (ok && !d->o.deterministic && !d->round && !open_round(d, who))
        ok = false;
    lg_status st = agree(d, who, ok);
    if (st != LG_OK) {
        if (!d->o.deterministic)
            drain(d);
        close_round(d);
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

/* ------------------------------------------------------------------ */
/* Sampling, seeds                                                      */
/* ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n >= 1 (draws at or above the largest multiple of n
 * are redrawn, so there is no bias). */
static uint64_t below(uint64_t *s, uint64_t n)
{
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = splitmix64(s);
    while (x >= limit);
    return x % n;
}

/* The epoch's permutation of [0, n) from (seed, epoch): Fisher-Yates on
 * splitmix64, the same on every rank and at every rank count. */
static void permute(int64_t n, uint64_t seed, int64_t epoch, int64_t *perm)
{
    uint64_t s = seed ^ (0x5851f42d4c957f2du * (uint64_t)(epoch + 1));
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)below(&s, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

lg_status lg_dist_permutation(lg_dist *d, int64_t n, uint64_t seed, int64_t epoch, int64_t *out)
{
    if (!d)
        return LG_ERR_NULL;
    if (!out)
        return lg_ctx_set_error(d->ctx, LG_ERR_NULL, "lg_dist_permutation: out is NULL");
    if (n < 0 || epoch < 0)
        return lg_ctx_set_error(d->ctx, LG_ERR_VALUE,
                                "lg_dist_permutation: %s = %" PRId64 ", expected >= 0",
                                n < 0 ? "n" : "epoch", n < 0 ? n : epoch);
    permute(n, seed, epoch, out);
    return LG_OK;
}

lg_status lg_dist_shard(lg_dist *d, int64_t n, uint64_t seed, int64_t epoch, int64_t *out,
                        int64_t cap, int64_t *count)
{
    const char *who = "lg_dist_shard";
    if (!d)
        return LG_ERR_NULL;
    if (!count)
        return lg_ctx_set_error(d->ctx, LG_ERR_NULL, "%s: count is NULL", who);
    if (n < 0 || epoch < 0)
        return lg_ctx_set_error(d->ctx, LG_ERR_VALUE, "%s: %s = %" PRId64 ", expected >= 0", who,
                                n < 0 ? "n" : "epoch", n < 0 ? n : epoch);
    int64_t mine = n / d->size + (d->rank < n % d->size ? 1 : 0);
    *count = mine;
    if (!out)
        return LG_OK;
    if (cap < mine)
        return lg_ctx_set_error(d->ctx, LG_ERR_VALUE,
                                "%s: out holds %" PRId64 " indices, this rank's part is %" PRId64,
                                who, cap, mine);
    if ((uint64_t)n > SIZE_MAX / sizeof(int64_t))
        return lg_ctx_set_error(d->ctx, LG_ERR_VALUE, "%s: n = %" PRId64 " is too large", who, n);
    int64_t *perm = lg_ctx_mem_alloc(d->ctx, (size_t)(n ? n : 1) * sizeof *perm, who);
    if (!perm)
        return LG_ERR_OOM;
    permute(n, seed, epoch, perm);
    for (int64_t k = 0; k < mine; k++)
        out[k] = perm[d->rank + k * d->size];
    lg_ctx_mem_free(d->ctx, perm);
    return LG_OK;
}

uint64_t lg_dist_rank_seed(const lg_dist *d, uint64_t seed)
{
    uint64_t s = seed ^ (0xd1b54a32d192ed03u * (uint64_t)((d ? d->rank : 0) + 1));
    return splitmix64(&s);
}

/* ------------------------------------------------------------------ */
/* Checkpoints, barrier                                                 */
/* ------------------------------------------------------------------ */

lg_status lg_dist_checkpoint_save(lg_dist *d, const char *path, const lg_optim *opt)
{
    const char *who = "lg_dist_checkpoint_save";
    if (!d)
        return LG_ERR_NULL;
    struct {
        int status;
        char msg[512];
    } r = { LG_OK, "" };
    if (d->rank == 0) {
        r.status = lg_checkpoint_save(d->ctx, path, opt);
        if (r.status != LG_OK)
            snprintf(r.msg, sizeof r.msg, "%s", lg_ctx_errmsg(d->ctx));
    }
    int rc = MPI_Bcast(&r, (int)sizeof r, MPI_BYTE, 0, d->comm);
    if (rc != MPI_SUCCESS)
        return mpi_error(d, who, "MPI_Bcast", rc);
    if (d->rank != 0 && r.status != LG_OK)
        return lg_ctx_set_error(d->ctx, (lg_status)r.status, "%s: rank 0 failed: %s", who, r.msg);
    return (lg_status)r.status;
}

lg_status lg_dist_checkpoint_load(lg_dist *d, const char *path, lg_optim *opt)
{
    const char *who = "lg_dist_checkpoint_load";
    if (!d)
        return LG_ERR_NULL;
    lg_status st = lg_checkpoint_load(d->ctx, path, opt);
    lg_status all = agree(d, who, st == LG_OK);
    return st != LG_OK ? st : all;
}

lg_status lg_dist_barrier(lg_dist *d)
{
    if (!d)
        return LG_ERR_NULL;
    int rc = MPI_Barrier(d->comm);
    return rc == MPI_SUCCESS ? LG_OK : mpi_error(d, "lg_dist_barrier", "MPI_Barrier", rc);
}
