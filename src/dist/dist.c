/* dist.c: data-parallel training on MPI (lossgrad/dist.h). Built on
 * lossgrad's public interface only, as a library of its own
 * (lossgrad_dist), so that lossgrad itself stays free of MPI.
 *
 * Every collective call first agrees on whether each rank can take part
 * (one small allreduce of the first failing rank): a rank that finds a
 * local error (a missing gradient, a wrong micro-batch count) does not
 * leave the others waiting in a collective it never joins; every rank
 * returns an error, the failing one with its reason.
 *
 * This file: setup, broadcast, sampling, seeds, checkpoints; the gradients
 * (buckets, their overlap with backward, the deterministic sum) are
 * grads.c's.
 */
#include "dist_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

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
lg_status lgD_mpi_error(lg_dist *d, const char *who, const char *what, int rc)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", rc);
    return lg_ctx_set_error(d->ctx, LG_ERR_IO, "%s: %s failed: %s", who, what, msg);
}

/* Whether every rank can go on: ok is this rank's answer. All ranks learn
 * the first rank that cannot; a rank that can gets an error naming it. */
lg_status lgD_agree(lg_dist *d, const char *who, bool ok)
{
    int mine = ok ? d->size : d->rank, first = d->size;
    int rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, d->comm);
    if (rc != MPI_SUCCESS)
        return lgD_mpi_error(d, who, "MPI_Allreduce", rc);
    if (first == d->size)
        return LG_OK;
    if (ok)
        return lg_ctx_set_error(d->ctx, LG_ERR_STATE,
                                "%s: rank %d could not take part (its own error says why)", who,
                                first);
    return lg_ctx_status(d->ctx) != LG_OK ? lg_ctx_status(d->ctx) : LG_ERR_STATE;
}

bool lgD_mine(const lg_dist *d, const lg_tensor *t)
{
    if (!d->prefix)
        return true;
    const char *name = lg_tensor_name(t);
    size_t n = strlen(d->prefix);
    return name && !strncmp(name, d->prefix, n) && (name[n] == '\0' || name[n] == '.');
}

bool lgD_select(lg_dist *d, const char *who)
{
    int np = lg_param_count(d->ctx);
    if (!d->prefix || np == d->sel_seen)
        return true;
    lg_tensor **sel = lg_ctx_mem_alloc(d->ctx, (size_t)(np ? np : 1) * sizeof *sel, who);
    if (!sel)
        return false;
    int n = 0;
    for (int i = 0; i < np; i++)
        if (lgD_mine(d, lg_param_at(d->ctx, i)))
            sel[n++] = lg_param_at(d->ctx, i);
    lg_ctx_mem_free(d->ctx, d->sel);
    d->sel = sel, d->nsel = n, d->sel_seen = np;
    return true;
}

int lgD_np(const lg_dist *d)
{
    return d->prefix ? d->nsel : lg_param_count(d->ctx);
}

lg_tensor *lgD_param(const lg_dist *d, int i)
{
    return d->prefix ? d->sel[i] : lg_param_at(d->ctx, i);
}

/* Whether two models' prefixes can name one tensor (NULL: every tensor). */
static bool overlap(const char *a, const char *b)
{
    if (!a || !b)
        return true;
    size_t na = strlen(a), nb = strlen(b), n = na < nb ? na : nb;
    const char *longer = na < nb ? b : a;
    return !strncmp(a, b, n) && (longer[n] == '\0' || longer[n] == '.');
}

/* The lg_dists on ctx's grad-ready hook (NULL if none); *other: the hook
 * is the program's. */
static lg_dist *hooked(lg_ctx *ctx, bool *other)
{
    void *user = NULL;
    lg_grad_ready_fn fn = lg_ctx_grad_ready_hook(ctx, &user);
    *other = fn && fn != lgD_on_grad_ready;
    return fn == lgD_on_grad_ready ? user : NULL;
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
    if (!bad && o->prefix && !o->prefix[0])
        bad = "prefix";
    if (bad && !strcmp(bad, "prefix")) {
        lg_ctx_set_error(ctx, LG_ERR_VALUE,
                         "lg_dist_new: opts->prefix is \"\"; expected a model's name (the "
                         "prefix of its parameters' names), or NULL for every parameter");
        return false;
    }
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

static void discard(lg_dist *d)
{
    if (!d)
        return;
    lg_ctx_mem_free(d->ctx, d->sel);
    lg_ctx_mem_free(d->ctx, d->prefix);
    lg_ctx_mem_free(d->ctx, d);
}

/* lg_dist_new's own checks (the options, the ctx's hook, the model) and
 * the lg_dist they allow, before any communication; NULL with the ctx
 * error set if one fails. */
static lg_dist *make(lg_ctx *ctx, const lg_dist_opts *opts)
{
    if (lg_ctx_status(ctx) != LG_OK)
        return NULL;
    lg_dist_opts o = lg_dist_opts_default();
    if (opts) {
        o = *opts;
        if (o.defaults_tag == 0 && !o.bucket_bytes && !o.first_bucket_bytes && !o.deterministic &&
            !o.prefix)
            o = lg_dist_opts_default(); /* all zero: the defaults */
        if (!check_opts(ctx, &o))
            return NULL;
    }
    bool other = false;
    lg_dist *chain = hooked(ctx, &other);
    if (other) {
        lg_ctx_set_error(ctx, LG_ERR_STATE,
                         "lg_dist_new: the ctx has a grad-ready hook of the program's "
                         "(lg_ctx_set_grad_ready_hook); lg_dist needs it");
        return NULL;
    }
    for (lg_dist *x = chain; x; x = x->next)
        if (overlap(x->prefix, o.prefix)) {
            lg_ctx_set_error(ctx, LG_ERR_STATE,
                             "lg_dist_new: opts->prefix = %s%s%s overlaps the model of an "
                             "lg_dist this ctx has (prefix %s%s%s): each parameter in one "
                             "lg_dist at most",
                             o.prefix ? "\"" : "", o.prefix ? o.prefix : "NULL (every parameter)",
                             o.prefix ? "\"" : "", x->prefix ? "\"" : "",
                             x->prefix ? x->prefix : "NULL, every parameter",
                             x->prefix ? "\"" : "");
            return NULL;
        }
    lg_dist *d = lg_ctx_mem_alloc(ctx, sizeof *d, "lg_dist_new");
    if (!d)
        return NULL;
    d->ctx = ctx, d->o = o;
    d->comm = d->bcomm = MPI_COMM_NULL;
    if (o.prefix) {
        size_t n = strlen(o.prefix) + 1;
        if (!(d->prefix = lg_ctx_mem_alloc(ctx, n, "lg_dist_new"))) {
            discard(d);
            return NULL;
        }
        memcpy(d->prefix, o.prefix, n);
        d->o.prefix = d->prefix; /* not the caller's string */
        d->sel_seen = -1;
        bool ok = lgD_select(d, "lg_dist_new");
        if (ok && d->nsel == 0)
            ok = false, lg_ctx_set_error(ctx, LG_ERR_VALUE,
                                         "lg_dist_new: opts->prefix = \"%s\" names no parameter "
                                         "of the ctx (expected a model made before, e.g. \"fc\" "
                                         "for \"fc.weight\")",
                                         o.prefix);
        if (!ok) {
            discard(d);
            return NULL;
        }
    }
    return d;
}

lg_dist *lg_dist_new(lg_ctx *ctx, MPI_Comm comm, const lg_dist_opts *opts)
{
    const char *who = "lg_dist_new";
    if (!ctx)
        return NULL;
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin) { /* nothing can be agreed on without MPI */
        lg_ctx_set_error(ctx, LG_ERR_STATE,
                         "%s: MPI is %s (call MPI_Init or lg_dist_mpi_init first)", who,
                         fin ? "finalized" : "not initialised");
        return NULL;
    }
    if (comm == MPI_COMM_NULL) {
        lg_ctx_set_error(ctx, LG_ERR_NULL, "%s: comm is MPI_COMM_NULL", who);
        return NULL;
    }
    lg_dist *d = make(ctx, opts);
    /* Every rank duplicates comm (collective), then all agree whether
     * each could make its lg_dist: a rank's own error (its model named
     * otherwise, say) is an error on every rank, not a hang in the next
     * collective. */
    MPI_Comm c = MPI_COMM_NULL, bc = MPI_COMM_NULL;
    int rank = 0, size = 1, first = 1;
    int rc = MPI_Comm_dup(comm, &c);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(c, &rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(c, &size);
    if (rc == MPI_SUCCESS) {
        int mine = d ? size : rank;
        first = size;
        rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c);
    }
    if (rc == MPI_SUCCESS && first == size)
        rc = MPI_Comm_dup(c, &bc);
    if (rc != MPI_SUCCESS || first != size) {
        if (rc != MPI_SUCCESS) {
            char msg[MPI_MAX_ERROR_STRING] = "";
            int len = 0;
            if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
                snprintf(msg, sizeof msg, "MPI error %d", rc);
            lg_ctx_set_error(ctx, LG_ERR_IO, "%s: duplicating the communicator failed: %s", who,
                             msg);
        } else if (d) {
            lg_ctx_set_error(ctx, LG_ERR_STATE,
                             "%s: rank %d could not make its lg_dist (its own error says why)", who,
                             first);
        }
        if (bc != MPI_COMM_NULL)
            MPI_Comm_free(&bc);
        if (c != MPI_COMM_NULL)
            MPI_Comm_free(&c);
        discard(d);
        return NULL;
    }
    d->comm = c, d->bcomm = bc, d->rank = rank, d->size = size;
    d->sync = true;
    /* buckets start from backward as their gradients are final; the ctx's
     * lg_dists share its hook, the newest first */
    bool other = false;
    d->next = hooked(ctx, &other);
    lg_ctx_set_grad_ready_hook(ctx, lgD_on_grad_ready, d);
    return d;
}

void lg_dist_free(lg_dist *d)
{
    if (!d)
        return;
    bool other = false;
    lg_dist *head = hooked(d->ctx, &other);
    if (head == d)
        lg_ctx_set_grad_ready_hook(d->ctx, d->next ? lgD_on_grad_ready : NULL, d->next);
    for (lg_dist *x = head; x; x = x->next)
        if (x->next == d)
            x->next = d->next;
    lgD_free_rounds(d);
    lgD_free_sums(d);
    lg_ctx_mem_free(d->ctx, d->bucket_mem);
    lg_ctx_mem_free(d->ctx, d->sel);
    lg_ctx_mem_free(d->ctx, d->prefix);
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

/* The model's parameters, then its buffers, into out (NULL: counts them). */
static int stored(lg_dist *d, lg_tensor **out)
{
    int n = 0;
    for (int i = 0; i < lgD_np(d); i++, n++)
        if (out)
            out[n] = lgD_param(d, i);
    for (int i = 0; i < lg_buffer_count(d->ctx); i++)
        if (lgD_mine(d, lg_buffer_at(d->ctx, i))) {
            if (out)
                out[n] = lg_buffer_at(d->ctx, i);
            n++;
        }
    return n;
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

MPI_Datatype lgD_mpi_type(lg_dtype dt)
{
    return dt == LG_F32 ? MPI_FLOAT : dt == LG_F64 ? MPI_DOUBLE : MPI_INT64_T;
}

/* Rank root's count of tensors and their signatures match this rank's. */
static lg_status check_alike(lg_dist *d, const char *who, int root, lg_tensor **t, int n)
{
    lg_ctx *ctx = d->ctx;
    int rn = n;
    int rc = MPI_Bcast(&rn, 1, MPI_INT, root, d->comm);
    if (rc != MPI_SUCCESS)
        return lgD_mpi_error(d, who, "MPI_Bcast", rc);
    bool ok = rn == n;
    if (!ok)
        lg_ctx_set_error(ctx, LG_ERR_VALUE,
                         "%s: rank %d has %d parameters and buffers, rank %d (the root) has %d",
                         who, d->rank, n, root, rn);
    lg_status st = lgD_agree(d, who, ok);
    if (st != LG_OK)
        return st;
    uint64_t *sig = lg_ctx_mem_alloc(ctx, (size_t)(n ? n : 1) * 2 * sizeof *sig, who);
    ok = sig != NULL;
    if ((st = lgD_agree(d, who, ok)) != LG_OK) {
        lg_ctx_mem_free(ctx, sig);
        return st;
    }
    for (int i = 0; i < n; i++)
        sig[i] = sig[n + i] = signature(t[i]);
    rc = MPI_Bcast(sig + n, n, MPI_UINT64_T, root, d->comm);
    if (rc != MPI_SUCCESS) {
        lg_ctx_mem_free(ctx, sig);
        return lgD_mpi_error(d, who, "MPI_Bcast", rc);
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
                         who, d->rank, bad, lg_tensor_name(t[bad]), root);
    return lgD_agree(d, who, bad < 0);
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
    lg_tensor **all = NULL;
    int n = 0;
    bool ok = lg_ctx_status(d->ctx) == LG_OK && lgD_select(d, who);
    if (ok) {
        n = stored(d, NULL);
        ok = (all = lg_ctx_mem_alloc(d->ctx, (size_t)(n ? n : 1) * sizeof *all, who)) != NULL;
    }
    lg_status st = lgD_agree(d, who, ok);
    if (st == LG_OK) {
        stored(d, all);
        st = check_alike(d, who, root, all, n);
    }
    for (int i = 0; i < n && st == LG_OK; i++) {
        lg_tensor *t = all[i];
        int64_t left = lg_tensor_numel(t);
        char *p = lg_tensor_data(t);
        size_t es = lg_tensor_dtype(t) == LG_F32 ? 4 : 8;
        while (left > 0) { /* MPI counts are int */
            int c = left > (1 << 30) ? 1 << 30 : (int)left;
            int rc = MPI_Bcast(p, c, lgD_mpi_type(lg_tensor_dtype(t)), root, d->comm);
            if (rc != MPI_SUCCESS) {
                st = lgD_mpi_error(d, who, "MPI_Bcast", rc);
                break;
            }
            p += (size_t)c * es, left -= c;
        }
    }
    lg_ctx_mem_free(d->ctx, all);
    return st;
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
        return lgD_mpi_error(d, who, "MPI_Bcast", rc);
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
    lg_status all = lgD_agree(d, who, st == LG_OK);
    return st != LG_OK ? st : all;
}

lg_status lg_dist_barrier(lg_dist *d)
{
    if (!d)
        return LG_ERR_NULL;
    int rc = MPI_Barrier(d->comm);
    return rc == MPI_SUCCESS ? LG_OK : lgD_mpi_error(d, "lg_dist_barrier", "MPI_Barrier", rc);
}
