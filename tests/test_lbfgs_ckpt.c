/* test_lbfgs_ckpt.c: LBFGS's state in checkpoints. A run of LBFGS steps
 * saved halfway and resumed in a fresh ctx and optimizer gives the bits of
 * the uninterrupted run (the history ring wrapped, with and without the
 * strong-Wolfe search, float64 and float32); a file without LBFGS state
 * restarts the optimizer; damaged state is refused and changes nothing. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/lg_lbfgs_ckpt_XXXXXX";
static char path[128];

static void make_dir(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/run.safetensors", dir);
}

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

/* mean((X W + b - Y)^2) + 0.1 sum(W^4) on fixed data (X and Y made anew at
 * each evaluation from sines): not a quadratic, so the search and the pairs
 * have work at every step. */
typedef struct run {
    lg_ctx *ctx;
    lg_dtype dt;
    lg_tensor *W, *b;
    lg_optim *opt;
} run;

static lg_tensor *wave(lg_ctx *ctx, lg_dtype dt, int64_t r, int64_t c, double f, double ph)
{
    double v[40];
    for (int64_t i = 0; i < r * c; i++)
        v[i] = sin(f * (double)i + ph);
    return from_doubles(ctx, dt, v, 2, SHAPE(r, c));
}

static double closure(lg_ctx *ctx, void *user)
{
    run *r = user;
    lg_zero_grad(ctx);
    lg_tensor *X = wave(ctx, r->dt, 10, 4, 0.7, 1), *Y = wave(ctx, r->dt, 10, 3, 1.3, 0.2);
    lg_tensor *fit =
        lg_mean(ctx, lg_square(ctx, lg_sub(ctx, lg_add(ctx, lg_matmul(ctx, X, r->W), r->b), Y)), 0,
                NULL, false);
    lg_tensor *loss =
        lg_add(ctx, fit,
               lg_mul_scalar(ctx, lg_sum(ctx, lg_pow_scalar(ctx, r->W, 4), 0, NULL, false), 0.1));
    if (lg_backward(ctx, loss) != LG_OK)
        return NAN;
    double v = lg_item(ctx, loss);
    lg_step_end(ctx);
    return v;
}

/* The model at its fixed start, with an LBFGS optimizer over W then b
 * (history 3 wraps its ring within 7 steps of 4 iterations). */
static run make_run_in(lg_ctx *ctx, lg_dtype dt, bool wolfe, int history)
{
    run r = { ctx, dt, NULL, NULL, NULL };
    r.W = lg_param_new(r.ctx, "W", dt, 2, SHAPE(4, 3));
    r.b = lg_param_new(r.ctx, "b", dt, 1, SHAPE(3));
    lg_copy_into(r.ctx, r.W, wave(r.ctx, dt, 4, 3, 2.1, 0.5));
    lg_copy_into(r.ctx, r.b, lg_reshape(r.ctx, wave(r.ctx, dt, 1, 3, 0.9, 2), 1, SHAPE(3)));
    lg_step_end(r.ctx);
    lg_optim_opts o = lg_optim_opts_default(LG_LBFGS);
    o.history_size = history, o.max_iter = 4, o.lr = wolfe ? 1 : 0.3;
    if (wolfe)
        o.line_search = LG_LINE_SEARCH_STRONG_WOLFE;
    o.params = (lg_tensor *[]){ r.W, r.b }, o.nparams = 2;
    r.opt = lg_optim_new(r.ctx, &o);
    cr_assert_not_null(r.opt, "%s", lg_ctx_errmsg(r.ctx));
    return r;
}

static run make_run(lg_dtype dt, bool wolfe, int history)
{
    return make_run_in(test_ctx(5), dt, wolfe, history);
}

static void steps(run *r, int n, double *losses)
{
    for (int s = 0; s < n; s++)
        cr_assert_eq(lg_optim_step_closure(r->opt, closure, r, &losses[s]), LG_OK, "%s",
                     lg_ctx_errmsg(r->ctx));
}

static void expect_same_params(run *a, run *b, const char *what)
{
    size_t es = a->dt == LG_F32 ? 4 : 8;
    cr_assert(!memcmp(lg_tensor_data(a->W), lg_tensor_data(b->W), 12 * es), "%s: W differs", what);
    cr_assert(!memcmp(lg_tensor_data(a->b), lg_tensor_data(b->b), 3 * es), "%s: b differs", what);
}

Test(lbfgs_ckpt, resumed_run_is_bit_identical, .init = make_dir, .fini = remove_dir)
{
    for (int c = 0; c < 4; c++) {
        lg_dtype dt = c & 1 ? LG_F32 : LG_F64;
        bool wolfe = c >= 2;
        char what[64];
        snprintf(what, sizeof what, "%s, %s", dt == LG_F32 ? "f32" : "f64",
                 wolfe ? "strong_wolfe" : "fixed step");
        run whole = make_run(dt, wolfe, 3);
        double lw[7], lr[7];
        steps(&whole, 7, lw);

        run first = make_run(dt, wolfe, 3);
        steps(&first, 3, lr);
        cr_assert_eq(lg_checkpoint_save(first.ctx, path, first.opt), LG_OK, "%s: %s", what,
                     lg_ctx_errmsg(first.ctx));
        lg_ctx_free(first.ctx);
        /* the resumed optimizer has a state of its own, which the file's replaces */
        run resumed = make_run(dt, wolfe, 3);
        steps(&resumed, 2, lr + 3);
        cr_assert_eq(lg_checkpoint_load(resumed.ctx, path, resumed.opt), LG_OK, "%s: %s", what,
                     lg_ctx_errmsg(resumed.ctx));
        steps(&resumed, 4, lr + 3);
        for (int s = 0; s < 7; s++)
            cr_assert(!memcmp(&lw[s], &lr[s], sizeof lw[s]), "%s: step %d loss %.17g, not %.17g",
                      what, s, lr[s], lw[s]);
        expect_same_params(&whole, &resumed, what);
        cr_assert_lt(lw[6], lw[0], "%s: LBFGS did not descend", what);
        lg_ctx_free(whole.ctx);
        lg_ctx_free(resumed.ctx);
    }
}

/* A file saved before the first step holds no LBFGS state: loading it into
 * an optimizer that has stepped starts it afresh (PyTorch's
 * load_state_dict of a fresh optimizer's empty state). */
Test(lbfgs_ckpt, a_file_without_state_restarts_the_optimizer, .init = make_dir, .fini = remove_dir)
{
    run fresh = make_run(LG_F64, true, 3);
    cr_assert_eq(lg_checkpoint_save(fresh.ctx, path, fresh.opt), LG_OK, "%s",
                 lg_ctx_errmsg(fresh.ctx));
    double lf[3], lo[5];
    steps(&fresh, 3, lf);
    run other = make_run(LG_F64, true, 3);
    steps(&other, 2, lo);
    cr_assert_eq(lg_checkpoint_load(other.ctx, path, other.opt), LG_OK, "%s",
                 lg_ctx_errmsg(other.ctx));
    steps(&other, 3, lo + 2);
    cr_assert(!memcmp(lf, lo + 2, sizeof lf), "the restarted optimizer kept some state");
    expect_same_params(&fresh, &other, "restarted");
    lg_ctx_free(fresh.ctx);
    lg_ctx_free(other.ctx);
}

/* The saved file's bytes, with its header as a string. */
typedef struct file {
    char *bytes;
    size_t n;
    uint64_t hlen;
} file;

static file read_file(void)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    file r = { malloc((size_t)ftell(f) + 1), (size_t)ftell(f), 0 };
    rewind(f);
    cr_assert_eq(fread(r.bytes, 1, r.n, f), r.n);
    fclose(f);
    memcpy(&r.hlen, r.bytes, 8); /* the test hosts are little-endian */
    r.bytes[r.n] = '\0';
    return r;
}

static void write_file(const file *f, const char *to)
{
    FILE *o = fopen(to, "wb");
    cr_assert_not_null(o);
    cr_assert_eq(fwrite(f->bytes, 1, f->n, o), f->n);
    fclose(o);
}

/* Where tensor key's data is in the file. */
static char *data_of(const file *f, const char *key)
{
    char want[80];
    snprintf(want, sizeof want, "\"%s\":", key);
    const char *at = strstr(f->bytes + 8, want);
    cr_assert_not_null(at, "no %s in the header", key);
    const char *offs = strstr(at, "\"data_offsets\":[");
    unsigned long long begin;
    cr_assert_eq(sscanf(offs, "\"data_offsets\":[%llu", &begin), 1);
    return f->bytes + 8 + f->hlen + begin;
}

/* Replaces the header's only occurrence of from by to (of the same length). */
static void rename_in_header(file *f, const char *from, const char *to)
{
    char *at = strstr(f->bytes + 8, from);
    cr_assert_not_null(at, "no '%s' in the header", from);
    cr_assert(at < f->bytes + 8 + f->hlen);
    cr_assert_eq(strlen(from), strlen(to));
    memcpy(at, to, strlen(to));
}

/* Loading bad fails with the message, and leaves r's parameters and
 * LBFGS state as they were: r's next steps equal its twin's. */
static void expect_refused(const file *bad, run *r, run *twin, lg_status st, const char *msg)
{
    char bad_path[160];
    snprintf(bad_path, sizeof bad_path, "%s/bad.safetensors", dir);
    write_file(bad, bad_path);
    cr_assert_eq(lg_checkpoint_load(r->ctx, bad_path, r->opt), st, "%s", lg_ctx_errmsg(r->ctx));
    cr_assert(strstr(lg_ctx_errmsg(r->ctx), msg), "'%s' lacks '%s'", lg_ctx_errmsg(r->ctx), msg);
    lg_ctx_clear_error(r->ctx);
    unlink(bad_path);
    double a[2], b[2];
    steps(r, 2, a);
    steps(twin, 2, b);
    cr_assert(!memcmp(a, b, sizeof a), "a refused load (%s) changed the optimizer", msg);
    expect_same_params(r, twin, msg);
}

Test(lbfgs_ckpt, damaged_state_is_refused_and_changes_nothing, .init = make_dir, .fini = remove_dir)
{
    run src = make_run(LG_F64, true, 3);
    double l[4];
    steps(&src, 4, l);
    cr_assert_eq(lg_checkpoint_save(src.ctx, path, src.opt), LG_OK, "%s", lg_ctx_errmsg(src.ctx));
    file good = read_file();
    run r = make_run(LG_F64, true, 3), twin = make_run(LG_F64, true, 3);
    steps(&r, 1, l);
    steps(&twin, 1, l);

    file f = read_file();
    rename_in_header(&f, "__optim__.W.ro\"", "__optim__.b.ro\"");
    expect_refused(
        &f, &r, &twin, LG_ERR_VALUE,
        "tensor '__optim__.b.ro': LBFGS's state is kept under opt's first parameter 'W'");
    free(f.bytes);

    f = read_file();
    int64_t minus = -1;
    memcpy(data_of(&f, "__optim__.W.n_iter"), &minus, 8);
    expect_refused(&f, &r, &twin, LG_ERR_VALUE,
                   "tensor '__optim__.W.n_iter' = -1 is not a count in [0, 2^53]");
    free(f.bytes);

    f = read_file();
    double nan = NAN;
    memcpy(data_of(&f, "__optim__.W.H_diag"), &nan, 8);
    expect_refused(&f, &r, &twin, LG_ERR_VALUE, "tensor '__optim__.W.H_diag' = nan is not finite");
    free(f.bytes);

    f = read_file();
    char *t_at = strstr(f.bytes + 8, "\"__optim__.W.t\":");
    cr_assert_not_null(t_at);
    memcpy(strstr(t_at, "\"dtype\":\"F64\"") + 9, "I64", 3);
    expect_refused(&f, &r, &twin, LG_ERR_SHAPE, "tensor '__optim__.W.t' must be a 0-d F64");
    free(f.bytes);

    /* an optimizer whose history is shorter than the file's pairs */
    run short_hist = make_run(LG_F64, true, 2), short_twin = make_run(LG_F64, true, 2);
    expect_refused(&good, &short_hist, &short_twin, LG_ERR_VALUE,
                   "holds 3 LBFGS correction pairs, more than opt's history_size 2");
    lg_ctx_free(short_hist.ctx);
    lg_ctx_free(short_twin.ctx);

    /* the parameters in another order: the state is another first parameter's */
    lg_optim_opts o = lg_optim_opts_default(LG_LBFGS);
    o.history_size = 3, o.max_iter = 4, o.line_search = LG_LINE_SEARCH_STRONG_WOLFE;
    lg_ctx *ctx = test_ctx(5);
    lg_tensor *W = lg_param_new(ctx, "W", LG_F64, 2, SHAPE(4, 3));
    lg_tensor *b = lg_param_new(ctx, "b", LG_F64, 1, SHAPE(3));
    o.params = (lg_tensor *[]){ b, W }, o.nparams = 2;
    lg_optim *rev = lg_optim_new(ctx, &o);
    cr_assert_not_null(rev, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_checkpoint_load(ctx, path, rev), LG_ERR_VALUE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "LBFGS's state is kept under opt's first parameter 'b'"),
              "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);

    /* the good file still loads, and resumes the run */
    double lr[2], ls[2];
    cr_assert_eq(lg_checkpoint_load(r.ctx, path, r.opt), LG_OK, "%s", lg_ctx_errmsg(r.ctx));
    steps(&r, 2, lr);
    steps(&src, 2, ls);
    cr_assert(!memcmp(lr, ls, sizeof lr), "the good file did not resume the run");
    expect_same_params(&r, &src, "resumed after refusals");
    free(good.bytes);
    lg_ctx_free(src.ctx);
    lg_ctx_free(r.ctx);
    lg_ctx_free(twin.ctx);
}

/* LBFGS beside another optimizer in one file (lg_checkpoint_save_optims):
 * the LBFGS state is that optimizer's ("__optim__#1.<param>.d", ...). */
Test(lbfgs_ckpt, beside_another_optimizer, .init = make_dir, .fini = remove_dir)
{
    double l1[6], l2[6];
    for (int pass = 0; pass < 2; pass++) {
        run r = make_run(LG_F64, false, 3);
        r.opt = NULL; /* make_run's optimizer stays unused: this run's is below */
        lg_tensor *v = lg_param_new(r.ctx, "v", LG_F64, 1, SHAPE(3));
        lg_optim *sgd = lg_optim_new(r.ctx, &(lg_optim_opts){ .kind = LG_SGD,
                                                              .lr = 0.1,
                                                              .momentum = 0.9,
                                                              .params = (lg_tensor *[]){ v },
                                                              .nparams = 1 });
        cr_assert_not_null(sgd, "%s", lg_ctx_errmsg(r.ctx));
        /* the LBFGS optimizer over W and b only */
        lg_optim_opts o = lg_optim_opts_default(LG_LBFGS);
        o.history_size = 3, o.max_iter = 4, o.lr = 0.3;
        o.params = (lg_tensor *[]){ r.W, r.b }, o.nparams = 2;
        r.opt = lg_optim_new(r.ctx, &o);
        cr_assert_not_null(r.opt, "%s", lg_ctx_errmsg(r.ctx));
        lg_optim *both[2] = { sgd, r.opt };
        double *l = pass ? l2 : l1;
        for (int s = 0; s < 6; s++) {
            if (pass && s == 3) { /* save, scramble by more steps, load */
                cr_assert_eq(lg_checkpoint_save_optims(r.ctx, path, both, 2), LG_OK, "%s",
                             lg_ctx_errmsg(r.ctx));
                double junk;
                steps(&r, 1, &junk);
                cr_assert_eq(lg_checkpoint_load_optims(r.ctx, path, both, 2), LG_OK, "%s",
                             lg_ctx_errmsg(r.ctx));
            }
            steps(&r, 1, &l[s]);
        }
        if (pass) {
            file f = read_file();
            cr_assert_not_null(strstr(f.bytes + 8, "\"__optim__#1.W.old_dirs\""));
            free(f.bytes);
        }
        lg_ctx_free(r.ctx);
    }
    cr_assert(!memcmp(l1, l2, sizeof l1), "the resumed run's losses differ");
}

/* Allocation failures through the ctx hook while a load builds the LBFGS
 * state: each is LG_ERR_OOM and leaves the ctx and optimizer as they were
 * (a save of them before and after is the same bytes). */

static bool same_files(const char *a, const char *b)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

Test(lbfgs_ckpt, oom_during_load_changes_nothing, .init = make_dir, .fini = remove_dir)
{
    run src = make_run(LG_F64, true, 3);
    double l[4];
    steps(&src, 4, l);
    cr_assert_eq(lg_checkpoint_save(src.ctx, path, src.opt), LG_OK, "%s", lg_ctx_errmsg(src.ctx));
    lg_ctx_free(src.ctx);
    countdown c = { -1 };
    run r = make_run_in(
        lg_ctx_new(&(lg_ctx_params){ .seed = 5, .alloc = countdown_alloc, .alloc_user = &c }),
        LG_F64, true, 3);
    steps(&r, 1, l); /* a state of its own, with one pair */
    char before[160], after[160];
    snprintf(before, sizeof before, "%s/before.safetensors", dir);
    snprintf(after, sizeof after, "%s/after.safetensors", dir);
    cr_assert_eq(lg_checkpoint_save(r.ctx, before, r.opt), LG_OK, "%s", lg_ctx_errmsg(r.ctx));
    long k = 0;
    for (;; k++) {
        c.left = k;
        lg_status st = lg_checkpoint_load(r.ctx, path, r.opt);
        c.left = -1;
        if (st == LG_OK)
            break;
        cr_assert_eq(st, LG_ERR_OOM, "allocation %ld: %s", k, lg_ctx_errmsg(r.ctx));
        lg_ctx_clear_error(r.ctx);
        cr_assert_eq(lg_checkpoint_save(r.ctx, after, r.opt), LG_OK, "%s", lg_ctx_errmsg(r.ctx));
        cr_assert(same_files(before, after), "allocation %ld: the failed load changed the ctx", k);
    }
    /* scratch, the state's record and its 12 vectors, three pairs of two */
    cr_assert_geq(k, 14, "the load made fewer allocations than the state needs");
    unlink(before);
    unlink(after);
    lg_ctx_free(r.ctx);
}
