/* test_dist.c: lossgrad/dist.h under mpirun (ctest runs it at 2 and 4
 * ranks). Each check compares with an independent truth computed in the
 * same process: the single-process run of the same global batch (a ctx of
 * its own), closed forms, or the other ranks' values gathered.
 *
 *   test_dist                 the checks below
 *   test_dist save FILE       10 deterministic steps, saved by rank 0
 *   test_dist resume FILE     loads FILE, 10 more steps; the parameters
 *                             must be the bits of 20 uninterrupted steps
 *   test_dist die x           the last rank kills itself (SIGKILL) after
 *                             3 steps, the others go on stepping: the job
 *                             must end, with an error, within a bound
 *                             (tests/dist/check_killed_rank.sh)
 *
 * A failed check prints "FAIL rank R: ..." and the program exits 1 on
 * every rank (MPI_Abort is not needed: the ranks agree on the result).
 */
#include <lossgrad.h>
#include <lossgrad/dist.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank_, size_, failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL rank %d (line %d): ", rank_, __LINE__);                                   \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

enum { IN = 4, HID = 8, B = 16, MICRO = 2 };

/* The data: B examples, x in [-1, 1]^IN and a target, from sines. */
static void example(int64_t i, double *x, double *y)
{
    for (int k = 0; k < IN; k++)
        x[k] = sin(0.37 * (double)(i * IN + k) + 0.1);
    *y = cos(0.9 * (double)i) + 0.5 * x[0] * x[1];
}

typedef struct model {
    lg_ctx *ctx;
    lg_linear *l1, *l2;
    lg_optim *opt;
} model;

/* The same initial model for a given seed. */
static model make_model(uint64_t seed)
{
    model m = { lg_ctx_new(&(lg_ctx_params){ .seed = seed }), NULL, NULL, NULL };
    m.l1 = lg_linear_new(m.ctx, "l1", IN, HID, &(lg_linear_opts){ .dtype = LG_F64 });
    m.l2 = lg_linear_new(m.ctx, "l2", HID, 1, &(lg_linear_opts){ .dtype = LG_F64 });
    lg_optim_opts o = lg_optim_opts_default(LG_SGD);
    o.lr = 0.1, o.momentum = 0.9;
    m.opt = lg_optim_new(m.ctx, &o);
    if (!m.opt)
        printf("rank %d: %s\n", rank_, lg_ctx_errmsg(m.ctx));
    return m;
}

/* backward of the mean squared error over examples [from, from + n). */
static void backward_on(model *m, int64_t from, int64_t n)
{
    double x[B * IN], y[B];
    for (int64_t i = 0; i < n; i++)
        example(from + i, x + i * IN, y + i);
    lg_ctx *ctx = m->ctx;
    lg_tensor *X = lg_tensor_from(ctx, LG_F64, x, 2, (int64_t[]){ n, IN });
    lg_tensor *Y = lg_tensor_from(ctx, LG_F64, y, 2, (int64_t[]){ n, 1 });
    lg_tensor *out = lg_linear_forward(ctx, m->l2, lg_tanh(ctx, lg_linear_forward(ctx, m->l1, X)));
    lg_backward(ctx, lg_mse_loss(ctx, out, Y, NULL));
}

/* The parameters, flat. */
static int64_t params_of(model *m, double *v)
{
    int64_t at = 0;
    for (int i = 0; i < lg_param_count(m->ctx); i++) {
        lg_tensor *p = lg_param_at(m->ctx, i);
        memcpy(v + at, lg_tensor_data(p), (size_t)lg_tensor_numel(p) * sizeof *v);
        at += lg_tensor_numel(p);
    }
    return at;
}

/* steps of data-parallel SGD: each rank its contiguous part of the batch
 * (B / size examples); deterministic: MICRO-sized micro-batches, each
 * accumulated. d over a comm of one rank is the single-process run. */
static void train(model *m, lg_dist *d, int steps, bool deterministic)
{
    int n = lg_dist_size(d), r = lg_dist_rank(d);
    int64_t part = B / n, from = r * part;
    for (int s = 0; s < steps; s++) {
        lg_zero_grad(m->ctx);
        if (deterministic) {
            for (int64_t k = 0; k < part; k += MICRO) {
                backward_on(m, from + k, MICRO);
                lg_dist_accumulate(d);
            }
        } else {
            backward_on(m, from, part);
        }
        lg_dist_allreduce_grads(d);
        lg_optim_step(m->opt);
        lg_step_end(m->ctx);
    }
    CHECK(lg_ctx_status(m->ctx) == LG_OK, "training: %s", lg_ctx_errmsg(m->ctx));
}

/* The plain single-process run: the whole batch at once, no lg_dist. */
static void train_alone(model *m, int steps)
{
    for (int s = 0; s < steps; s++) {
        lg_zero_grad(m->ctx);
        backward_on(m, 0, B);
        lg_optim_step(m->opt);
        lg_step_end(m->ctx);
    }
}

static void check_broadcast(void)
{
    model m = make_model(100 + (uint64_t)rank_); /* each rank its own init */
    lg_dist *d = lg_dist_new(m.ctx, MPI_COMM_WORLD, NULL);
    CHECK(d != NULL, "lg_dist_new: %s", lg_ctx_errmsg(m.ctx));
    CHECK(lg_dist_rank(d) == rank_ && lg_dist_size(d) == size_, "rank %d size %d", lg_dist_rank(d),
          lg_dist_size(d));
    double mine[64], root[64];
    int64_t P = params_of(&m, mine);
    memcpy(root, mine, sizeof mine);
    MPI_Bcast(root, (int)P, MPI_DOUBLE, 1 % size_, MPI_COMM_WORLD);
    if (rank_ != 1 % size_)
        CHECK(memcmp(root, mine, (size_t)P * 8), "differently seeded ranks started equal");
    CHECK(lg_dist_broadcast(d, 1 % size_) == LG_OK, "%s", lg_ctx_errmsg(m.ctx));
    params_of(&m, mine);
    CHECK(!memcmp(root, mine, (size_t)P * 8), "after the broadcast from rank %d, not its values",
          1 % size_);
    CHECK(lg_dist_broadcast(d, size_) == LG_ERR_VALUE, "root out of range accepted");
    CHECK(strstr(lg_ctx_errmsg(m.ctx), "lg_dist_broadcast: root = "), "%s", lg_ctx_errmsg(m.ctx));
    lg_ctx_clear_error(m.ctx);
    lg_dist_free(d);
    lg_ctx_free(m.ctx);

    if (size_ == 1)
        return;
    /* a model unlike the others on the last rank: an error on every rank */
    model u = make_model(7);
    if (rank_ == size_ - 1)
        lg_param_new(u.ctx, "extra", LG_F64, 1, (int64_t[]){ 3 });
    d = lg_dist_new(u.ctx, MPI_COMM_WORLD, NULL);
    CHECK(lg_dist_broadcast(d, 0) != LG_OK, "unlike models broadcast without an error");
    const char *want = rank_ == size_ - 1 ? "has 5 parameters and buffers, rank 0 (the root) has 4"
                                          : "could not take part";
    CHECK(strstr(lg_ctx_errmsg(u.ctx), want), "'%s' lacks '%s'", lg_ctx_errmsg(u.ctx), want);
    lg_dist_free(d);
    lg_ctx_free(u.ctx);
}

static void check_allreduce_mean(void)
{
    /* grads r + 1 + j on rank r: the mean is (size + 1) / 2 + j exactly */
    model m = make_model(3);
    lg_dist_opts o = lg_dist_opts_default();
    o.bucket_bytes = 64, o.first_bucket_bytes = 16; /* many buckets */
    lg_dist *d = lg_dist_new(m.ctx, MPI_COMM_WORLD, &o);
    lg_dist_set_sync(d, false); /* backward sends nothing: the values are set below */
    backward_on(&m, 0, 2);      /* makes the gradients */
    lg_dist_set_sync(d, true);
    for (int i = 0; i < lg_param_count(m.ctx); i++) {
        lg_tensor *g = lg_tensor_grad(lg_param_at(m.ctx, i));
        double *v = lg_tensor_data(g);
        for (int64_t j = 0; j < lg_tensor_numel(g); j++)
            v[j] = rank_ + 1 + (double)j;
    }
    CHECK(lg_dist_allreduce_grads(d) == LG_OK, "%s", lg_ctx_errmsg(m.ctx));
    for (int i = 0; i < lg_param_count(m.ctx); i++) {
        lg_tensor *g = lg_tensor_grad(lg_param_at(m.ctx, i));
        double *v = lg_tensor_data(g);
        for (int64_t j = 0; j < lg_tensor_numel(g); j++)
            CHECK(v[j] == (size_ + 1) / 2.0 + (double)j, "param %d [%lld] = %g", i, (long long)j,
                  v[j]);
    }
    lg_dist_free(d);
    lg_ctx_free(m.ctx);

    /* a rank without gradients: an error on every rank, no hang */
    model n = make_model(3);
    d = lg_dist_new(n.ctx, MPI_COMM_WORLD, NULL);
    if (rank_ != 0)
        backward_on(&n, 0, 2);
    CHECK(lg_dist_allreduce_grads(d) == (rank_ == 0 ? LG_ERR_STATE : LG_ERR_STATE),
          "a missing gradient was not an error");
    const char *want = rank_ == 0 ? "parameter 'l1.weight' has no gradient on rank 0"
                                  : "rank 0 could not take part";
    CHECK(strstr(lg_ctx_errmsg(n.ctx), want), "'%s' lacks '%s'", lg_ctx_errmsg(n.ctx), want);
    lg_dist_free(d);
    lg_ctx_free(n.ctx);
}

/* Overlap: with sync on, backward starts every bucket (4 parameters in
 * buckets of at most 64 bytes: several), and lg_dist_allreduce_grads only
 * waits; accumulation: two half-batch backwards, the first with sync off,
 * give the mean of the whole batch's gradient over the ranks. */
static void check_overlap_and_accumulation(void)
{
    lg_dist_opts o = lg_dist_opts_default();
    o.bucket_bytes = 64, o.first_bucket_bytes = 16;
    model m = make_model(5), ref = make_model(5);
    lg_dist *d = lg_dist_new(m.ctx, MPI_COMM_WORLD, &o);
    int64_t part = B / size_, from = rank_ * part;
    backward_on(&m, from, part);
    lg_dist_stats st = lg_dist_get_stats(d);
    CHECK(st.buckets > 2 && st.buckets == st.buckets_in_backward,
          "%lld buckets started during backward, expected all of them (%lld) but the last",
          (long long)st.buckets_in_backward, (long long)st.buckets);
    CHECK(lg_dist_allreduce_grads(d) == LG_OK, "%s", lg_ctx_errmsg(m.ctx));
    st = lg_dist_get_stats(d);
    CHECK(st.allreduces == 1 && st.buckets == st.buckets_in_backward + 1,
          "stats after the call: %lld buckets, %lld in backward", (long long)st.buckets,
          (long long)st.buckets_in_backward);
    /* a second backward with sync on before the allreduce: an error, no hang */
    lg_zero_grad(m.ctx);
    backward_on(&m, from, part);
    backward_on(&m, from, part);
    CHECK(lg_dist_allreduce_grads(d) == LG_ERR_STATE, "two backwards in one round accepted");
    CHECK(strstr(lg_ctx_errmsg(m.ctx), "an earlier backward's gradients") ||
              strstr(lg_ctx_errmsg(m.ctx), "could not take part"),
          "%s", lg_ctx_errmsg(m.ctx));
    lg_ctx_clear_error(m.ctx);
    /* a backward with sync off after one with sync on (whose buckets went
     * with its gradients alone): an error too, not a mix of the two */
    lg_zero_grad(m.ctx);
    backward_on(&m, from, part);
    lg_dist_set_sync(d, false);
    backward_on(&m, from, part);
    lg_dist_set_sync(d, true);
    CHECK(lg_dist_allreduce_grads(d) == LG_ERR_STATE, "sync on, then off, in one round accepted");
    lg_ctx_clear_error(m.ctx);
    /* the buckets in flight were drained: the next round works */
    lg_zero_grad(m.ctx);
    backward_on(&m, from, part);
    CHECK(lg_dist_allreduce_grads(d) == LG_OK, "after a failed round: %s", lg_ctx_errmsg(m.ctx));
    lg_dist_free(d);
    /* accumulation over two half batches */
    d = lg_dist_new(m.ctx, MPI_COMM_WORLD, &o);
    lg_zero_grad(m.ctx);
    lg_dist_set_sync(d, false);
    backward_on(&m, from, part / 2);
    lg_step_end(m.ctx);
    lg_dist_set_sync(d, true);
    backward_on(&m, from + part / 2, part / 2);
    CHECK(lg_dist_allreduce_grads(d) == LG_OK, "%s", lg_ctx_errmsg(m.ctx));
    backward_on(&ref, 0, B); /* mean over B = mean over the ranks of two half means / 2 */
    double g[64], want[64];
    int64_t at = 0;
    for (int i = 0; i < lg_param_count(m.ctx); i++) {
        lg_tensor *a = lg_tensor_grad(lg_param_at(m.ctx, i)),
                  *r = lg_tensor_grad(lg_param_at(ref.ctx, i));
        memcpy(g + at, lg_tensor_data(a), (size_t)lg_tensor_numel(a) * 8);
        memcpy(want + at, lg_tensor_data(r), (size_t)lg_tensor_numel(r) * 8);
        at += lg_tensor_numel(a);
    }
    double worst = 0;
    for (int64_t j = 0; j < at; j++)
        worst = fmax(worst, fabs(g[j] / 2 - want[j]) / fmax(1e-3, fabs(want[j])));
    CHECK(worst < 1e-12, "accumulated gradient off the whole batch's by %g", worst);
    lg_dist_free(d);
    lg_ctx_free(m.ctx);
    lg_ctx_free(ref.ctx);
}

static void check_training(void)
{
    /* normal mode: within float rounding of the single-process run */
    model alone = make_model(11), par = make_model(11 + (uint64_t)rank_);
    lg_dist *d = lg_dist_new(par.ctx, MPI_COMM_WORLD, NULL);
    lg_dist_broadcast(d, 0); /* rank 0's init is seed 11's, as alone's */
    train_alone(&alone, 50);
    train(&par, d, 50, false);
    double a[64], p[64];
    int64_t P = params_of(&alone, a);
    params_of(&par, p);
    double worst = 0;
    for (int64_t j = 0; j < P; j++)
        worst = fmax(worst, fabs(a[j] - p[j]) / fmax(1, fabs(a[j])));
    CHECK(worst < 1e-12, "50 data-parallel steps differ from one process by %g", worst);
    CHECK(memcmp(a, (double[64]){ 0 }, (size_t)P * 8), "no parameters");
    lg_dist_free(d);
    lg_ctx_free(alone.ctx);
    lg_ctx_free(par.ctx);

    /* deterministic mode: the bits of one process over the same micro-batches */
    lg_dist_opts o = lg_dist_opts_default();
    o.deterministic = true;
    model one = make_model(11), many = make_model(11);
    lg_dist *d1 = lg_dist_new(one.ctx, MPI_COMM_SELF, &o);
    lg_dist *dn = lg_dist_new(many.ctx, MPI_COMM_WORLD, &o);
    train(&one, d1, 50, true);
    train(&many, dn, 50, true);
    params_of(&one, a);
    params_of(&many, p);
    CHECK(!memcmp(a, p, (size_t)P * 8), "deterministic mode: %d ranks differ from 1", size_);
    /* and every rank holds the same bits */
    double r0[64];
    memcpy(r0, p, sizeof r0);
    MPI_Bcast(r0, (int)P, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    CHECK(!memcmp(r0, p, (size_t)P * 8), "ranks differ after deterministic steps");
    /* a count of micro-batches that is not a power of two: an error everywhere */
    lg_zero_grad(many.ctx);
    for (int k = 0; k < 3; k++) {
        backward_on(&many, k * MICRO, MICRO);
        lg_dist_accumulate(dn);
    }
    CHECK(lg_dist_allreduce_grads(dn) == LG_ERR_STATE, "3 micro-batches accepted");
    CHECK(strstr(lg_ctx_errmsg(many.ctx), "needs a power of two"), "%s", lg_ctx_errmsg(many.ctx));
    lg_dist_free(d1);
    lg_dist_free(dn);
    lg_ctx_free(one.ctx);
    lg_ctx_free(many.ctx);
}

static void check_shard(void)
{
    model m = make_model(1);
    lg_dist *d = lg_dist_new(m.ctx, MPI_COMM_WORLD, NULL);
    enum { N = 103 };
    int64_t mine[N], count = 0, all[N * 4];
    int seen[N];
    int64_t first[N];
    for (int epoch = 0; epoch < 2; epoch++) {
        CHECK(lg_dist_shard(d, N, 42, epoch, mine, N, &count) == LG_OK, "%s", lg_ctx_errmsg(m.ctx));
        CHECK(count == N / size_ || count == N / size_ + 1, "count %lld", (long long)count);
        int counts[4], displs[4], c = (int)count;
        MPI_Allgather(&c, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD);
        int total = 0;
        for (int r = 0; r < size_; r++)
            displs[r] = total, total += counts[r];
        CHECK(total == N, "the ranks' parts hold %d of %d examples", total, N);
        MPI_Allgatherv(mine, c, MPI_INT64_T, all, counts, displs, MPI_INT64_T, MPI_COMM_WORLD);
        memset(seen, 0, sizeof seen);
        for (int i = 0; i < total && i < N; i++)
            if (all[i] >= 0 && all[i] < N)
                seen[all[i]]++;
        for (int i = 0; i < N; i++)
            CHECK(seen[i] == 1, "epoch %d: example %d seen %d times", epoch, i, seen[i]);
        if (epoch == 0)
            memcpy(first, all, sizeof first);
        else
            CHECK(memcmp(first, all, sizeof first), "epoch 1 has epoch 0's order");
    }
    /* the whole permutation: rank r's part sits at positions r, r + size, ... */
    int64_t perm[N];
    CHECK(lg_dist_permutation(d, N, 42, 1, perm) == LG_OK, "%s", lg_ctx_errmsg(m.ctx));
    lg_dist_shard(d, N, 42, 1, mine, N, &count);
    for (int64_t k = 0; k < count; k++)
        CHECK(mine[k] == perm[rank_ + k * size_], "shard %lld is not the permutation's",
              (long long)k);
    CHECK(lg_dist_shard(d, N, 42, 0, mine, 1, &count) == LG_ERR_VALUE, "a short out accepted");
    CHECK(strstr(lg_ctx_errmsg(m.ctx), "lg_dist_shard: out holds 1 indices"), "%s",
          lg_ctx_errmsg(m.ctx));
    lg_ctx_clear_error(m.ctx);
    /* per-rank seeds: distinct across ranks */
    uint64_t s = lg_dist_rank_seed(d, 9), ss[4];
    MPI_Allgather(&s, 1, MPI_UINT64_T, ss, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int r = 0; r < size_; r++)
        for (int q = 0; q < r; q++)
            CHECK(ss[r] != ss[q], "ranks %d and %d have one seed", q, r);
    lg_dist_free(d);
    lg_ctx_free(m.ctx);
}

static void check_opts(void)
{
    lg_ctx *ctx = lg_ctx_new(NULL);
    lg_dist_opts o = { 0 };
    o.deterministic = true; /* by hand: the bucket sizes must be written */
    CHECK(!lg_dist_new(ctx, MPI_COMM_WORLD, &o), "bucket_bytes = 0 by hand accepted");
    CHECK(strstr(lg_ctx_errmsg(ctx), "opts->bucket_bytes = 0 in a struct written by hand"), "%s",
          lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    o = lg_dist_opts_default();
    o.first_bucket_bytes = 0;
    CHECK(!lg_dist_new(ctx, MPI_COMM_WORLD, &o), "first_bucket_bytes = 0 accepted");
    CHECK(strstr(lg_ctx_errmsg(ctx), "opts->first_bucket_bytes = 0, expected > 0"), "%s",
          lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    CHECK(!lg_dist_new(ctx, MPI_COMM_NULL, NULL), "MPI_COMM_NULL accepted");
    lg_ctx_clear_error(ctx);
    lg_dist *d = lg_dist_new(ctx, MPI_COMM_WORLD, &(lg_dist_opts){ 0 }); /* all zero: defaults */
    CHECK(d != NULL, "%s", lg_ctx_errmsg(ctx));
    CHECK(lg_dist_accumulate(d) == LG_ERR_STATE, "accumulate outside deterministic mode");
    lg_dist_free(d);
    lg_ctx_free(ctx);
}

/* Two models in one ctx, an lg_dist each (opts.prefix): a GAN's two steps. */
typedef struct gan {
    lg_ctx *ctx;
    lg_linear *gen, *disc;
} gan;

static gan make_gan(uint64_t seed)
{
    gan g = { lg_ctx_new(&(lg_ctx_params){ .seed = seed }), NULL, NULL };
    g.gen = lg_linear_new(g.ctx, "gen", IN, IN, &(lg_linear_opts){ .dtype = LG_F64 });
    g.disc = lg_linear_new(g.ctx, "disc", IN, 1, &(lg_linear_opts){ .dtype = LG_F64 });
    lg_buffer_new(g.ctx, "disc.seen", LG_F64, 1, (int64_t[]){ 1 });
    lg_buffer_new(g.ctx, "other", LG_F64, 1, (int64_t[]){ 1 });
    return g;
}

/* mean(disc(gen(x))^2) over this rank's examples, gen's output detached
 * (the discriminator's step) or not (the generator's) */
static void gan_backward(gan *g, bool detach)
{
    double x[B * IN], y;
    int64_t part = B / size_, from = rank_ * part;
    for (int64_t i = 0; i < part; i++)
        example(from + i, x + i * IN, &y);
    lg_ctx *ctx = g->ctx;
    lg_tensor *X = lg_tensor_from(ctx, LG_F64, x, 2, (int64_t[]){ part, IN });
    lg_tensor *f = lg_linear_forward(ctx, g->gen, X);
    lg_tensor *o = lg_linear_forward(ctx, g->disc, detach ? lg_detach(ctx, f) : f);
    lg_backward(ctx, lg_mean(ctx, lg_mul(ctx, o, o), 0, NULL, false));
}

/* The parameters named prefix.* : their gradients, flat (0 if none). */
static int64_t grads_of(lg_ctx *ctx, const char *prefix, double *v)
{
    lg_tensor *p[8];
    int n = lg_params_with_prefix(ctx, prefix, p, 8);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        lg_tensor *g = lg_tensor_grad(p[i]);
        for (int64_t j = 0; j < lg_tensor_numel(p[i]); j++)
            v[at + j] = g ? ((double *)lg_tensor_data(g))[j] : 0;
        at += lg_tensor_numel(p[i]);
    }
    return at;
}

/* v (n values on every rank) against the ranks' mean of local */
static double off_mean(const double *v, const double *local, int64_t n)
{
    double all[4 * 64], worst = 0;
    MPI_Allgather(local, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
    for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int r = 0; r < size_; r++)
            s += all[r * n + j];
        worst = fmax(worst, fabs(v[j] - s / size_) / fmax(1e-3, fabs(s / size_)));
    }
    return worst;
}

static void check_two_models(void)
{
    gan g = make_gan(21 + (uint64_t)rank_); /* every rank its own init */
    lg_ctx *ctx = g.ctx;
    lg_dist_opts o = lg_dist_opts_default();
    o.bucket_bytes = 64, o.first_bucket_bytes = 16; /* several buckets per model */
    o.prefix = "";
    CHECK(!lg_dist_new(ctx, MPI_COMM_WORLD, &o) && strstr(lg_ctx_errmsg(ctx), "prefix is \"\""),
          "empty prefix: %s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    o.prefix = "ge"; /* a prefix of "gen", not a model */
    CHECK(!lg_dist_new(ctx, MPI_COMM_WORLD, &o) &&
              strstr(lg_ctx_errmsg(ctx), "\"ge\" names no parameter"),
          "prefix naming no model: %s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    char name[8] = "gen";
    o.prefix = name;
    lg_dist *dg = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
    strcpy(name, "xx"); /* the string was copied */
    o.prefix = "disc";
    lg_dist *dd = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
    CHECK(dg && dd, "%s", lg_ctx_errmsg(ctx));
    o.prefix = "gen";
    CHECK(!lg_dist_new(ctx, MPI_COMM_WORLD, &o) && strstr(lg_ctx_errmsg(ctx), "overlaps"),
          "a second lg_dist of gen: %s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    CHECK(!lg_dist_new(ctx, MPI_COMM_WORLD, NULL) && strstr(lg_ctx_errmsg(ctx), "overlaps"),
          "an lg_dist of every parameter beside gen's: %s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);

    /* a rank whose model has another name: an error on every rank, no hang */
    o.prefix = rank_ == size_ - 1 ? "generator" : "gen";
    lg_dist_free(dg);
    CHECK(!lg_dist_new(ctx, MPI_COMM_WORLD, &o), "a prefix naming nothing on one rank accepted");
    CHECK(strstr(lg_ctx_errmsg(ctx),
                 rank_ == size_ - 1 ? "names no parameter" : "could not make its lg_dist"),
          "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    o.prefix = "gen";
    dg = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
    CHECK(dg, "%s", lg_ctx_errmsg(ctx));

    /* broadcast: gen's parameters only; disc's and the buffers unchanged */
    double before[64], after[64];
    int64_t nd = grads_of(ctx, "disc", before); /* sizes; values below */
    lg_tensor *dp[2], *gp[2];
    lg_params_with_prefix(ctx, "disc", dp, 2);
    lg_params_with_prefix(ctx, "gen", gp, 2);
    double dw0 = ((double *)lg_tensor_data(dp[0]))[0];
    ((double *)lg_tensor_data(lg_buffer_at(ctx, 0)))[0] = rank_;
    ((double *)lg_tensor_data(lg_buffer_at(ctx, 1)))[0] = rank_;
    CHECK(lg_dist_broadcast(dg, 0) == LG_OK, "%s", lg_ctx_errmsg(ctx));
    double gw0 = ((double *)lg_tensor_data(gp[0]))[0], r0 = gw0;
    MPI_Bcast(&r0, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    CHECK(gw0 == r0, "gen not broadcast");
    CHECK(((double *)lg_tensor_data(dp[0]))[0] == dw0, "disc changed by gen's broadcast");
    CHECK(((double *)lg_tensor_data(lg_buffer_at(ctx, 0)))[0] == rank_, "disc's buffer changed");
    CHECK(lg_dist_broadcast(dd, 0) == LG_OK, "%s", lg_ctx_errmsg(ctx));
    CHECK(((double *)lg_tensor_data(lg_buffer_at(ctx, 0)))[0] == 0, "disc's buffer not broadcast");
    CHECK(((double *)lg_tensor_data(lg_buffer_at(ctx, 1)))[0] == rank_,
          "a buffer of no model broadcast by disc's lg_dist");

    /* the discriminator's step: only disc's buckets, its mean */
    lg_dist_set_sync(dd, false);
    gan_backward(&g, true);
    double local[64];
    grads_of(ctx, "disc", local);
    lg_zero_grad(ctx);
    lg_step_end(ctx);
    lg_dist_set_sync(dd, true);
    lg_dist_stats sg = lg_dist_get_stats(dg), sd = lg_dist_get_stats(dd);
    gan_backward(&g, true);
    CHECK(lg_dist_get_stats(dg).buckets == sg.buckets, "gen's buckets started by disc's step");
    CHECK(size_ == 1 || lg_dist_get_stats(dd).buckets_in_backward > sd.buckets_in_backward,
          "disc's buckets not started in backward");
    CHECK(lg_dist_allreduce_grads(dd) == LG_OK, "%s", lg_ctx_errmsg(ctx));
    grads_of(ctx, "disc", after);
    CHECK(off_mean(after, local, nd) < 1e-13, "disc's gradient is not the ranks' mean");
    lg_zero_grad(ctx);
    lg_step_end(ctx);

    /* the generator's step through disc, disc's sync off: gen's mean, disc's own */
    int64_t ng = grads_of(ctx, "gen", before);
    lg_dist_set_sync(dg, false);
    lg_dist_set_sync(dd, false);
    gan_backward(&g, false);
    grads_of(ctx, "gen", local);
    lg_zero_grad(ctx);
    lg_step_end(ctx);
    lg_dist_set_sync(dg, true);
    sd = lg_dist_get_stats(dd);
    gan_backward(&g, false);
    CHECK(lg_dist_allreduce_grads(dg) == LG_OK, "%s", lg_ctx_errmsg(ctx));
    grads_of(ctx, "gen", after);
    CHECK(off_mean(after, local, ng) < 1e-13, "gen's gradient is not the ranks' mean");
    CHECK(lg_dist_get_stats(dd).buckets == sd.buckets, "disc's buckets started with sync off");
    lg_dist_set_sync(dd, true);
    lg_zero_grad(ctx);
    lg_step_end(ctx);

    /* freeing the newest leaves the other on the hook, and the oldest too */
    lg_dist_free(dd);
    gan_backward(&g, false);
    CHECK(lg_dist_allreduce_grads(dg) == LG_OK, "gen's lg_dist after disc's freed: %s",
          lg_ctx_errmsg(ctx));
    lg_zero_grad(ctx);
    lg_step_end(ctx);
    o.prefix = "disc";
    dd = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
    lg_dist_free(dg);
    gan_backward(&g, true);
    CHECK(lg_dist_allreduce_grads(dd) == LG_OK, "disc's lg_dist after gen's freed: %s",
          lg_ctx_errmsg(ctx));
    lg_dist_free(dd);
    CHECK(!lg_ctx_grad_ready_hook(ctx, NULL), "the hook outlives the lg_dists");
    lg_ctx_free(ctx);
}

/* Deterministic mode, two models, one loss reaching both: each
 * lg_dist_accumulate takes and zeroes its own model's gradients only. */
static void check_two_models_fixed(void)
{
    lg_ctx *ctx = lg_ctx_new(NULL);
    lg_tensor *a = lg_param_new(ctx, "a.w", LG_F64, 1, (int64_t[]){ 3 });
    lg_tensor *b = lg_param_new(ctx, "b.w", LG_F64, 1, (int64_t[]){ 3 });
    lg_dist_opts o = lg_dist_opts_default();
    o.deterministic = true;
    o.prefix = "a";
    lg_dist *da = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
    o.prefix = "b";
    lg_dist *db = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
    /* loss = sum(x * a) + sum(2 x * b), x = rank + 1: grads x and 2 x */
    double xv[3] = { rank_ + 1.0, rank_ + 1.0, rank_ + 1.0 };
    lg_tensor *x = lg_tensor_from(ctx, LG_F64, xv, 1, (int64_t[]){ 3 });
    lg_tensor *loss = lg_add(ctx, lg_sum(ctx, lg_mul(ctx, x, a), 0, NULL, false),
                             lg_sum(ctx, lg_mul(ctx, lg_add(ctx, x, x), b), 0, NULL, false));
    CHECK(lg_backward(ctx, loss) == LG_OK, "%s", lg_ctx_errmsg(ctx));
    CHECK(lg_dist_accumulate(da) == LG_OK && lg_dist_accumulate(db) == LG_OK, "%s",
          lg_ctx_errmsg(ctx));
    CHECK(lg_dist_allreduce_grads(da) == LG_OK && lg_dist_allreduce_grads(db) == LG_OK, "%s",
          lg_ctx_errmsg(ctx));
    double want = (size_ + 1) / 2.0; /* the ranks' mean of rank + 1 */
    const double *ga = lg_tensor_data(lg_tensor_grad(a)), *gb = lg_tensor_data(lg_tensor_grad(b));
    CHECK(ga[0] == want && gb[0] == 2 * want, "a.grad %g (want %g), b.grad %g (want %g)", ga[0],
          want, gb[0], 2 * want);
    lg_dist_free(db);
    lg_dist_free(da);
    lg_ctx_free(ctx);
}

/* float32 and float64 gradients whose sum over the ranks is exact (small
 * multiples of 1/8) and whose mean is not (3 ranks): each the correctly
 * rounded quotient, (float)((double)sum / size) for float32; the float64
 * one packed in a bucket, the float32 one (80 KB, the last bucket) reduced
 * in place. */
static void check_mean_rounding(void)
{
    enum { NA = 20000 };
    lg_ctx *ctx = lg_ctx_new(NULL);
    lg_tensor *a = lg_param_new(ctx, "a", LG_F32, 1, (int64_t[]){ NA }); /* 80 KB: in place */
    lg_tensor *b = lg_param_new(ctx, "b", LG_F64, 1, (int64_t[]){ 1000 });
    lg_dist *d = lg_dist_new(ctx, MPI_COMM_WORLD, NULL);
    lg_dist_set_sync(d, false);
    lg_backward(ctx, lg_add(ctx, lg_sum(ctx, a, 0, NULL, false),
                            lg_cast(ctx, lg_sum(ctx, b, 0, NULL, false), LG_F32)));
    lg_dist_set_sync(d, true);
    CHECK(lg_ctx_status(ctx) == LG_OK, "%s", lg_ctx_errmsg(ctx));
    float *ga = lg_tensor_data(lg_tensor_grad(a));
    double *gb = lg_tensor_data(lg_tensor_grad(b));
    for (int j = 0; j < NA; j++) {
        ga[j] = (float)((rank_ + 1) * (j % 1000 + 1)) / 8 + 0.125f * (float)(j % 1000);
        if (j < 1000)
            gb[j] = (double)ga[j] * 1.5;
    }
    CHECK(lg_dist_allreduce_grads(d) == LG_OK, "%s", lg_ctx_errmsg(ctx));
    int bad = 0;
    for (int j = 0; j < NA; j++) {
        double s = 0;
        for (int r = 0; r < size_; r++)
            s += (double)((float)((r + 1) * (j % 1000 + 1)) / 8 + 0.125f * (float)(j % 1000));
        bad += ga[j] != (float)(s / size_) || (j < 1000 && gb[j] != s * 1.5 / size_);
    }
    CHECK(bad == 0, "%d of %d means not correctly rounded at %d ranks", bad, NA, size_);
    lg_dist_free(d);
    lg_ctx_free(ctx);
}

/* Deterministic mode at any rank count: one micro-batch per rank, sums
 * that round, against the pairwise tree over the ranks in order computed
 * here by a binary counter of its own (lower ranks' sum + higher ranks'),
 * divided by the rank count: the same bits. */
static void check_fixed_order(void)
{
    enum { N = 300 };
    lg_ctx *ctx = lg_ctx_new(NULL);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, (int64_t[]){ N });
    lg_dist_opts o = lg_dist_opts_default();
    o.deterministic = true;
    lg_dist *d = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
    lg_backward(ctx, lg_sum(ctx, w, 0, NULL, false));
    double *g = lg_tensor_data(lg_tensor_grad(w)), mine[N], all[8 * N];
    for (int j = 0; j < N; j++)
        g[j] = mine[j] = sin(0.1 + 0.37 * j + 1.3 * rank_) * exp(0.2 * rank_);
    CHECK(lg_dist_accumulate(d) == LG_OK, "%s", lg_ctx_errmsg(ctx));
    CHECK(lg_dist_allreduce_grads(d) == LG_OK, "%s", lg_ctx_errmsg(ctx));
    MPI_Allgather(mine, N, MPI_DOUBLE, all, N, MPI_DOUBLE, MPI_COMM_WORLD);
    int bad = 0;
    for (int j = 0; j < N; j++) {
        double level[4];
        unsigned present = 0;
        for (int r = 0; r < size_; r++) { /* the counter's carry */
            double c = all[r * N + j];
            int l = 0;
            for (; present >> l & 1; l++)
                c = level[l] + c, present &= ~(1u << l);
            level[l] = c, present |= 1u << l;
        }
        double sum = 0;
        bool any = false;
        for (int l = 0; l < 4; l++)
            if (present >> l & 1)
                sum = any ? level[l] + sum : level[l], any = true;
        bad += g[j] != sum / size_;
    }
    CHECK(bad == 0, "%d of %d sums not in the fixed order at %d ranks", bad, N, size_);
    lg_dist_free(d);
    lg_ctx_free(ctx);
}

/* save: 10 deterministic steps on these ranks, saved; resume: 10 more
 * after loading, compared with 20 uninterrupted steps of one process. */
static void checkpoint_phase(const char *what, const char *file)
{
    lg_dist_opts o = lg_dist_opts_default();
    o.deterministic = true;
    model m = make_model(11);
    lg_dist *d = lg_dist_new(m.ctx, MPI_COMM_WORLD, &o);
    if (!strcmp(what, "save")) {
        train(&m, d, 10, true);
        CHECK(lg_dist_checkpoint_save(d, file, m.opt) == LG_OK, "%s", lg_ctx_errmsg(m.ctx));
    } else {
        CHECK(lg_dist_checkpoint_load(d, file, m.opt) == LG_OK, "%s", lg_ctx_errmsg(m.ctx));
        train(&m, d, 10, true);
        model ref = make_model(11);
        lg_dist *d1 = lg_dist_new(ref.ctx, MPI_COMM_SELF, &o);
        train(&ref, d1, 20, true);
        double a[64], p[64];
        int64_t P = params_of(&ref, a);
        params_of(&m, p);
        CHECK(!memcmp(a, p, (size_t)P * 8),
              "resumed on %d ranks: not the bits of 20 uninterrupted steps", size_);
        lg_dist_free(d1);
        lg_ctx_free(ref.ctx);
        CHECK(lg_dist_checkpoint_load(d, "/nonexistent/x.safetensors", m.opt) == LG_ERR_IO,
              "a missing file loaded");
        lg_ctx_clear_error(m.ctx);
    }
    lg_dist_free(d);
    lg_ctx_free(m.ctx);
}

int main(int argc, char **argv)
{
    if (lg_dist_mpi_init(&argc, &argv) != MPI_SUCCESS) {
        printf("MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (argc == 2 && !strcmp(argv[1], "mean") && size_ <= 8) { /* any rank count up to 8 */
        check_mean_rounding();
        check_fixed_order();
    } else if (size_ > 4 || B % size_ || (B / size_) % MICRO) {
        if (rank_ == 0)
            printf("run with 1, 2 or 4 ranks (up to 8 with the argument 'mean')\n");
        MPI_Finalize();
        return 1;
    }
    if (argc == 3 && !strcmp(argv[1], "die")) {
        model m = make_model(11);
        lg_dist *d = lg_dist_new(m.ctx, MPI_COMM_WORLD, NULL);
        train(&m, d, 3, false);
        if (rank_ == size_ - 1)
            raise(SIGKILL);
        train(&m, d, 100000, false); /* blocks in the allreduce the dead rank never joins */
        printf("rank %d: 100000 steps beside a dead rank\n", rank_);
        MPI_Finalize();
        return 0; /* success here is the failure check_killed_rank.sh looks for */
    }
    if (argc == 2) {
        /* done above */
    } else if (argc == 3) {
        checkpoint_phase(argv[1], argv[2]);
    } else {
        check_opts();
        check_broadcast();
        check_allreduce_mean();
        check_overlap_and_accumulation();
        check_training();
        check_shard();
        check_two_models();
        check_two_models_fixed();
        check_mean_rounding();
        check_fixed_order();
    }
    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank_ == 0)
        printf("%s: %d ranks, %d failed check(s)\n", argc >= 2 ? argv[1] : "checks", size_, all);
    MPI_Finalize();
    return all ? 1 : 0;
}
