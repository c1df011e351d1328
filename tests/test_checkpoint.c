/* test_checkpoint.c: safetensors checkpoints: bit-exact round trip, a
 * resumed run identical to an uninterrupted one, every kind of damaged file
 * rejected with the model unchanged, and a crash during save. */
#include "helpers.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/lg_ckpt_XXXXXX";

static void make_dir(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static const char *path_of(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* A small model: an MLP (float32) and an extra float64 parameter. */
static lg_mlp *model(lg_ctx *ctx)
{
    lg_mlp *m = lg_mlp_new(ctx, "mlp", 3, SHAPE(4, 16, 3), &(lg_mlp_opts){ .dropout = 0.2 });
    lg_tensor *s = lg_param_new(ctx, "scale", LG_F64, 1, SHAPE(3));
    lg_init_normal(ctx, s, 1, 0.1);
    return m;
}

static lg_tensor *loss_of(lg_ctx *ctx, lg_mlp *m)
{
    lg_tensor *x = lg_randn(ctx, LG_F32, 2, SHAPE(8, 4)); /* data from the ctx RNG */
    int64_t y[8];
    for (int i = 0; i < 8; i++)
        y[i] = (int64_t)lg_rand_below(ctx, 3);
    lg_tensor *logits = lg_mlp_forward(ctx, m, x);
    lg_tensor *scale = lg_cast(ctx, lg_param_find(ctx, "scale"), LG_F32);
    return lg_cross_entropy(ctx, lg_mul(ctx, logits, scale), T_FROM(ctx, LG_I64, y, 8), NULL);
}

/* Copies of every parameter's bytes, to compare before and after. */
typedef struct snapshot {
    int n;
    void *bytes[16];
    size_t size[16];
} snapshot;

static snapshot snap(lg_ctx *ctx)
{
    snapshot s = { .n = lg_param_count(ctx) };
    for (int i = 0; i < s.n; i++) {
        lg_tensor *p = lg_param_at(ctx, i);
        s.size[i] = (size_t)lg_tensor_numel(p) * (lg_tensor_dtype(p) == LG_F32 ? 4 : 8);
        s.bytes[i] = malloc(s.size[i]);
        memcpy(s.bytes[i], lg_tensor_data(p), s.size[i]);
    }
    return s;
}

static bool same(lg_ctx *ctx, const snapshot *s)
{
    for (int i = 0; i < s->n; i++)
        if (memcmp(s->bytes[i], lg_tensor_data(lg_param_at(ctx, i)), s->size[i]))
            return false;
    return true;
}

static void free_snap(snapshot *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->bytes[i]);
}

Test(checkpoint, round_trip_is_bit_exact, .init = make_dir, .fini = remove_dir)
{
    lg_ctx *a = test_ctx(1), *b = test_ctx(2);
    model(a);
    model(b);
    snapshot sa = snap(a);
    cr_assert(!same(b, &sa), "different seeds give different models");
    cr_assert_eq(lg_checkpoint_save(a, path_of("m.safetensors"), NULL), LG_OK, "%s",
                 lg_ctx_errmsg(a));
    cr_assert_eq(lg_checkpoint_load(b, path_of("m.safetensors"), NULL), LG_OK, "%s",
                 lg_ctx_errmsg(b));
    cr_assert(same(b, &sa), "loaded parameters differ");
    free_snap(&sa);
    lg_ctx_free(a);
    lg_ctx_free(b);
}

/* Trains `steps` Adam steps, recording losses from index `from`. */
static void train(lg_ctx *ctx, lg_mlp *m, lg_optim *opt, int from, int steps, double *losses)
{
    for (int s = from; s < from + steps; s++) {
        lg_tensor *loss = loss_of(ctx, m);
        cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s", lg_ctx_errmsg(ctx));
        losses[s] = lg_item(ctx, loss);
        cr_assert_eq(lg_optim_step(opt), LG_OK);
        lg_zero_grad(ctx);
        lg_step_end(ctx);
    }
}

Test(checkpoint, resumed_run_is_bit_identical, .init = make_dir, .fini = remove_dir)
{
    double straight[40], resumed[40];
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAM);
    oo.lr = 0.01;
    oo.amsgrad = true;
    lg_ctx *ctx = test_ctx(11);
    lg_mlp *m = model(ctx);
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_sched *sch =
        lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_EXPONENTIAL, .gamma = 0.97 });
    for (int e = 0; e < 4; e++) {
        train(ctx, m, opt, e * 10, 10, straight);
        lg_sched_step(sch);
    }
    lg_ctx_free(ctx);

    ctx = test_ctx(11);
    m = model(ctx);
    opt = lg_optim_new(ctx, &oo);
    sch = lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_EXPONENTIAL, .gamma = 0.97 });
    for (int e = 0; e < 2; e++) {
        train(ctx, m, opt, e * 10, 10, resumed);
        lg_sched_step(sch);
    }
    cr_assert_eq(lg_checkpoint_save(ctx, path_of("run.safetensors"), opt), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);

    /* a new process would start from another seed: the checkpoint restores all */
    ctx = test_ctx(999);
    m = model(ctx);
    opt = lg_optim_new(ctx, &oo);
    cr_assert_eq(lg_checkpoint_load(ctx, path_of("run.safetensors"), opt), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_optim_steps(opt), 20);
    /* the schedule continues from the saved rate */
    for (int e = 2; e < 4; e++) {
        train(ctx, m, opt, e * 10, 10, resumed);
        lg_optim_set_lr(opt, lg_optim_lr(opt) * 0.97);
    }
    for (int s = 0; s < 40; s++)
        cr_assert_eq(memcmp(&straight[s], &resumed[s], sizeof(double)), 0,
                     "step %d: %.17g vs %.17g", s, straight[s], resumed[s]);
    lg_ctx_free(ctx);
}

/* Writes a raw safetensors file: header JSON and data bytes. */
static void write_raw(const char *path, const char *json, const void *data, size_t n,
                      uint64_t declared)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    uint64_t len = declared ? declared : strlen(json);
    uint8_t b[8];
    for (int k = 0; k < 8; k++)
        b[k] = (uint8_t)(len >> (8 * k));
    fwrite(b, 1, 8, f);
    fwrite(json, 1, strlen(json), f);
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

static const char META[] = "\"__metadata__\":{\"format\":\"lossgrad\",\"rng\":"
                           "\"0000000000000001000000000000000200000000000000030000000000000004\","
                           "\"rng_spare\":\"0 0\"}";

/* One float64 parameter "w" of shape [2, 2]. */
static void expect_rejected(const char *json, const void *data, size_t n, uint64_t declared,
                            lg_status want, const char *substr)
{
    lg_ctx *ctx = test_ctx(3);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 2, SHAPE(2, 2));
    lg_init_normal(ctx, w, 0, 1);
    snapshot s = snap(ctx);
    write_raw(path_of("bad.safetensors"), json, data, n, declared);
    lg_status st = lg_checkpoint_load(ctx, path_of("bad.safetensors"), NULL);
    cr_assert_eq(st, want, "%s: status %s (%s)", json, lg_status_name(st), lg_ctx_errmsg(ctx));
    cr_assert(strstr(lg_ctx_errmsg(ctx), substr) != NULL, "'%s' lacks '%s'", lg_ctx_errmsg(ctx),
              substr);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_checkpoint_load") != NULL);
    cr_assert(same(ctx, &s), "the model changed");
    free_snap(&s);
    lg_ctx_free(ctx);
}

Test(checkpoint, damaged_files_are_rejected_and_change_nothing, .init = make_dir,
     .fini = remove_dir)
{
    double data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    char json[1024];
#define J(body) (snprintf(json, sizeof json, "{%s,%s}", body, META), json)
    /* sanity: the well-formed file loads */
    lg_ctx *ctx = test_ctx(3);
    lg_param_new(ctx, "w", LG_F64, 2, SHAPE(2, 2));
    write_raw(path_of("good.safetensors"),
              J("\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]}"), data, 32, 0);
    cr_assert_eq(lg_checkpoint_load(ctx, path_of("good.safetensors"), NULL), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    expect_close(lg_param_find(ctx, "w"), data, 4, 0, "good file");
    lg_ctx_free(ctx);

    const char *ok = "\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]}";
    expect_rejected(J(ok), data, 20, 0, LG_ERR_VALUE,
                    "outside the 20-byte data"); /* truncated data */
    expect_rejected("{\"w\":", NULL, 0, 0, LG_ERR_VALUE,
                    "not a JSON object");                                   /* truncated header */
    expect_rejected(J(ok), data, 32, 1u << 30, LG_ERR_VALUE, "declares a"); /* oversized length */
    write_raw(path_of("tiny.safetensors"), "", NULL, 0, 0);
    expect_rejected("", NULL, 0, 0, LG_ERR_VALUE, "not a JSON object");
    expect_rejected(J("\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]]"), data,
                    32, 0, LG_ERR_VALUE, "not a JSON object"); /* corrupted JSON */
    expect_rejected(J("\"w\":{\"dtype\":\"F64\",\"shape\":[4,1],\"data_offsets\":[0,32]}"), data,
                    32, 0, LG_ERR_SHAPE, "another shape");
    expect_rejected(J("\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"), data,
                    32, 0, LG_ERR_DTYPE, "F32 in the file, F64 in the model");
    expect_rejected(J("\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}"), data,
                    32, 0, LG_ERR_DTYPE, "BF16");
    expect_rejected(J("\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[32,64]}"), data,
                    32, 0, LG_ERR_VALUE, "outside");
    expect_rejected(J("\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,24]}"), data,
                    32, 0, LG_ERR_VALUE, "need 32");
    expect_rejected(J("\"w\":{\"dtype\":\"F64\",\"shape\":[9007199254740992,9007199254740992],"
                      "\"data_offsets\":[0,32]}"),
                    data, 32, 0, LG_ERR_SHAPE, "overflowing");
    expect_rejected(J("\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]},"
                      "\"v\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[16,32]}"),
                    data, 32, 0, LG_ERR_VALUE, "no such parameter");
    expect_rejected(J("\"x\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]}"), data,
                    32, 0, LG_ERR_VALUE, "no such parameter");
    expect_rejected(J("\"w\":{\"dtype\":\"F64\",\"shape\":[2,2]}"), data, 32, 0, LG_ERR_VALUE,
                    "data_offsets");
    expect_rejected("{\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]}}", data, 32,
                    0, LG_ERR_VALUE, "metadata");
#undef J
}

Test(checkpoint, overlapping_and_missing_tensors, .init = make_dir, .fini = remove_dir)
{
    double data[8] = { 0 };
    lg_ctx *ctx = test_ctx(4);
    lg_param_new(ctx, "a", LG_F64, 1, SHAPE(2));
    lg_param_new(ctx, "b", LG_F64, 1, SHAPE(2));
    char json[1024];
    snprintf(json, sizeof json,
             "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
             "\"b\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[8,24]},%s}",
             META);
    write_raw(path_of("o.safetensors"), json, data, 32, 0);
    cr_assert_eq(lg_checkpoint_load(ctx, path_of("o.safetensors"), NULL), LG_ERR_VALUE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "overlap") != NULL, "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    snprintf(json, sizeof json,
             "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},%s}", META);
    write_raw(path_of("m.safetensors"), json, data, 16, 0);
    cr_assert_eq(lg_checkpoint_load(ctx, path_of("m.safetensors"), NULL), LG_ERR_VALUE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "no tensor for parameter 'b'") != NULL, "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_checkpoint_load(ctx, path_of("absent.safetensors"), NULL), LG_ERR_IO);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "cannot open") != NULL);
    lg_ctx_free(ctx);
}

Test(checkpoint, a_crash_during_save_keeps_the_old_checkpoint, .init = make_dir, .fini = remove_dir)
{
    lg_ctx *ctx = test_ctx(5);
    lg_tensor *big = lg_param_new(ctx, "big", LG_F64, 1, SHAPE(1 << 16)); /* 512 KiB */
    lg_init_normal(ctx, big, 0, 1);
    const char *path = path_of("ckpt.safetensors");
    cr_assert_eq(lg_checkpoint_save(ctx, path, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    snapshot old = snap(ctx);
    lg_init_normal(ctx, big, 5, 1); /* new values the crashed save would have written */
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* the process dies (SIGXFSZ) once its file passes 64 KiB: mid-write */
        struct rlimit rl = { 64 << 10, 64 << 10 };
        setrlimit(RLIMIT_FSIZE, &rl);
        signal(SIGXFSZ, SIG_DFL);
        lg_checkpoint_save(ctx, path, NULL);
        _exit(0); /* not reached if the limit killed it */
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ, "the save was not interrupted");
    lg_ctx *fresh = test_ctx(6);
    lg_param_new(fresh, "big", LG_F64, 1, SHAPE(1 << 16));
    cr_assert_eq(lg_checkpoint_load(fresh, path, NULL), LG_OK, "the old checkpoint is damaged: %s",
                 lg_ctx_errmsg(fresh));
    cr_assert(same(fresh, &old), "the old checkpoint's values changed");
    free_snap(&old);
    lg_ctx_free(fresh);
    lg_ctx_free(ctx);
}

Test(checkpoint, save_errors_are_clear, .init = make_dir, .fini = remove_dir)
{
    lg_ctx *ctx = test_ctx(7);
    lg_param_new(ctx, NULL, LG_F32, 1, SHAPE(2));
    cr_assert_eq(lg_checkpoint_save(ctx, path_of("x.safetensors"), NULL), LG_ERR_VALUE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "parameter 0 has no name") != NULL, "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
    ctx = test_ctx(7);
    lg_param_new(ctx, "p", LG_F32, 1, SHAPE(2));
    cr_assert_eq(lg_checkpoint_save(ctx, "/nonexistent-dir/x.safetensors", NULL), LG_ERR_IO);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_checkpoint_save: cannot create") != NULL, "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}
