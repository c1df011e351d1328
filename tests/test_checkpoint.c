/* test_checkpoint.c: safetensors checkpoints: bit-exact round trip, a
 * resumed run identical to an uninterrupted one, every kind of damaged file
 * rejected with the model unchanged, and a crash during save. The tests
 * named F<n>_... and S2_... are the regressions of issue 13's findings. */
#include "helpers.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

/* Optimizers are made only here, so a change of lg_optim_opts is one edit. */
static lg_optim *make_optim(lg_ctx *ctx, lg_optim_kind kind, double lr, bool amsgrad)
{
    lg_optim_opts o = lg_optim_opts_default(kind);
    o.lr = lr;
    if (kind == LG_ADAM || kind == LG_ADAMW)
        o.amsgrad = amsgrad;
    lg_optim *opt = lg_optim_new(ctx, &o);
    cr_assert_not_null(opt, "%s", lg_ctx_errmsg(ctx));
    return opt;
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
    lg_ctx *ctx = test_ctx(11);
    lg_mlp *m = model(ctx);
    lg_optim *opt = make_optim(ctx, LG_ADAM, 0.01, true);
    lg_sched *sch =
        lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_EXPONENTIAL, .gamma = 0.97 });
    for (int e = 0; e < 4; e++) {
        train(ctx, m, opt, e * 10, 10, straight);
        lg_sched_step(sch);
    }
    lg_ctx_free(ctx);

    ctx = test_ctx(11);
    m = model(ctx);
    opt = make_optim(ctx, LG_ADAM, 0.01, true);
    sch = lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_EXPONENTIAL, .gamma = 0.97 });
    for (int e = 0; e < 2; e++) {
        train(ctx, m, opt, e * 10, 10, resumed);
        lg_sched_step(sch);
    }
    cr_assert_eq(lg_checkpoint_save(ctx, path_of("run.safetensors"), opt), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);

    /* a new process would start from another seed: the checkpoint restores
     * all, the schedule made on opt included */
    ctx = test_ctx(999);
    m = model(ctx);
    opt = make_optim(ctx, LG_ADAM, 0.01, true);
    sch = lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_EXPONENTIAL, .gamma = 0.97 });
    cr_assert_eq(lg_checkpoint_load(ctx, path_of("run.safetensors"), opt), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_optim_steps(opt), 20);
    for (int e = 2; e < 4; e++) {
        train(ctx, m, opt, e * 10, 10, resumed);
        lg_sched_step(sch);
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

/* ------------------------------------------------------------------ */
/* Issue 13: hardening findings                                         */
/* ------------------------------------------------------------------ */

/* A path in the test folder, by value: at("x").s lives to the end of the
 * full expression; keep a pathbuf to keep it longer. */
typedef struct pathbuf {
    char s[256];
} pathbuf;

static pathbuf at(const char *name)
{
    pathbuf p;
    snprintf(p.s, sizeof p.s, "%s/%s", dir, name);
    return p;
}

static void *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc(*n + 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static bool same_bytes(const char *a, const char *b)
{
    size_t na, nb;
    void *x = read_all(a, &na), *y = read_all(b, &nb);
    bool same = na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* The ctx a hostile file is loaded into: "w" F64 [2, 2], a cached normal
 * draw and, if asked, an Adam optimizer that has made a step (its state
 * allocated). */
typedef struct victim {
    lg_ctx *ctx;
    lg_optim *opt;
} victim;

static void one_step(lg_ctx *ctx, lg_optim *opt)
{
    lg_tensor *w = lg_param_find(ctx, "w");
    lg_tensor *loss = lg_sum(ctx, lg_mul(ctx, w, w), 0, NULL, false);
    cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_optim_step(opt), LG_OK);
    lg_zero_grad(ctx);
    lg_step_end(ctx);
}

static victim make_victim(bool with_opt)
{
    victim v = { test_ctx(3), NULL };
    lg_tensor *w = lg_param_new(v.ctx, "w", LG_F64, 2, SHAPE(2, 2));
    lg_init_normal(v.ctx, w, 0, 1);
    lg_rand_normal(v.ctx);
    if (with_opt) {
        v.opt = make_optim(v.ctx, LG_ADAM, 0.1, false);
        one_step(v.ctx, v.opt);
    }
    return v;
}

/* Everything a load may change (parameters, optimizer state, RNG), as the
 * bytes of a checkpoint of it. */
static void save_state(victim *v, const char *path)
{
    cr_assert_eq(lg_checkpoint_save(v->ctx, path, v->opt), LG_OK, "%s", lg_ctx_errmsg(v->ctx));
}

/* Loading file fails with want, a message naming the call and holding
 * substr, and leaves the ctx and the optimizer exactly as they were. */
static void expect_load_fails(const char *file, bool with_opt, lg_status want, const char *substr)
{
    victim v = make_victim(with_opt);
    pathbuf before = at("state_before"), after = at("state_after");
    save_state(&v, before.s);
    lg_status st = lg_checkpoint_load(v.ctx, file, v.opt);
    const char *msg = lg_ctx_errmsg(v.ctx);
    cr_assert_eq(st, want, "%s: status %s (%s)", file, lg_status_name(st), msg);
    cr_assert(strstr(msg, "lg_checkpoint_load: ") == msg, "'%s' does not name the call", msg);
    cr_assert(strstr(msg, substr) != NULL, "'%s' lacks '%s'", msg, substr);
    lg_ctx_clear_error(v.ctx);
    save_state(&v, after.s);
    cr_assert(same_bytes(before.s, after.s), "the failed load changed the ctx (%s)", msg);
    lg_ctx_free(v.ctx);
}

static void expect_load_ok(const char *file, bool with_opt)
{
    victim v = make_victim(with_opt);
    cr_assert_eq(lg_checkpoint_load(v.ctx, file, v.opt), LG_OK, "%s", lg_ctx_errmsg(v.ctx));
    lg_ctx_free(v.ctx);
}

static const char RNG_OK[] = "0000000000000001000000000000000200000000000000030000000000000004";
static const char W_ONLY[] = "\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]}";
static const char W_ADAM[] =
    "\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]},"
    "\"__optim__.w.exp_avg\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[32,64]},"
    "\"__optim__.w.exp_avg_sq\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[64,96]},"
    "\"__optim__.w.step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[96,104]}";
static const char ADAM_META[] = ",\"optim\":\"adam\",\"optim_lr\":\"0.01\"";

/* The data of W_ADAM: w, exp_avg, exp_avg_sq and the step count. */
static const uint8_t *adam_data(int64_t step)
{
    static uint8_t b[104];
    for (int i = 0; i < 12; i++) {
        double x = 0.25 * (i + 1);
        memcpy(b + 8 * i, &x, 8);
    }
    memcpy(b + 96, &step, 8);
    return b;
}

static double doubles4[4] = { 1, 2, 3, 4 };

/* Writes {tensors, "__metadata__": {format, rng, rng_spare, extra}} and
 * the data to name; returns its path. */
static pathbuf write_ckpt(const char *name, const char *tensors, const char *rng, const char *spare,
                          const char *extra, const void *data, size_t n)
{
    char json[2048];
    snprintf(
        json, sizeof json,
        "{%s,\"__metadata__\":{\"format\":\"lossgrad\",\"rng\":\"%s\",\"rng_spare\":\"%s\"%s}}",
        tensors, rng, spare, extra);
    pathbuf path = at(name);
    write_raw(path.s, json, data, n, 0);
    return path;
}

Test(checkpoint, F5_fifo_rejected_without_blocking, .init = make_dir, .fini = remove_dir,
     .timeout = 20)
{
    /* a FIFO with no writer: an open for reading would wait forever */
    cr_assert_eq(mkfifo(at("fifo").s, 0600), 0);
    expect_load_fails(at("fifo").s, false, LG_ERR_IO, "is a FIFO, not a regular file");
    expect_load_fails(at("fifo").s, true, LG_ERR_IO, "is a FIFO, not a regular file");
    cr_assert_eq(mkdir(at("folder").s, 0700), 0);
    expect_load_fails(at("folder").s, false, LG_ERR_IO, "is a directory, not a regular file");
    expect_load_fails(at("absent").s, false, LG_ERR_IO, "cannot open");
    /* a regular file reached through a symbolic link still loads */
    write_ckpt("good", W_ONLY, RNG_OK, "0 0", "", doubles4, 32);
    cr_assert_eq(symlink("good", at("link").s), 0);
    expect_load_ok(at("link").s, false);
}

Test(checkpoint, F8_optim_lr_validated, .init = make_dir, .fini = remove_dir)
{
    static const char *const bad[] = { "nan",  "-1",   "inf",  "1e999", "abc",    "",
                                       " 0.1", "0.1 ", "0.1x", "+0.1",  "0x1p-3", ".5",
                                       "1.",   "-nan", "1e",   "--1" };
    char extra[128];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(extra, sizeof extra, ",\"optim\":\"adam\",\"optim_lr\":\"%s\"", bad[i]);
        pathbuf f = write_ckpt("lr", W_ADAM, RNG_OK, "0 0", extra, adam_data(3), 104);
        expect_load_fails(f.s, true, LG_ERR_VALUE, "optim_lr");
        /* the header is checked as a whole, whatever the call asks for */
        expect_load_fails(f.s, false, LG_ERR_VALUE, "optim_lr");
    }
    static const char *const good[] = { "0", "0.001", "1e-05", "2.5E+2", "0.10000000000000001" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        snprintf(extra, sizeof extra, ",\"optim\":\"adam\",\"optim_lr\":\"%s\"", good[i]);
        pathbuf f = write_ckpt("lr", W_ADAM, RNG_OK, "0 0", extra, adam_data(3), 104);
        victim v = make_victim(true);
        cr_assert_eq(lg_checkpoint_load(v.ctx, f.s, v.opt), LG_OK, "%s: %s", good[i],
                     lg_ctx_errmsg(v.ctx));
        cr_assert_eq(lg_optim_lr(v.opt), strtod(good[i], NULL), "lr 0 is legal, as in PyTorch");
        lg_ctx_free(v.ctx);
    }
}

Test(checkpoint, F8_step_counts_validated, .init = make_dir, .fini = remove_dir)
{
    static const int64_t bad[] = { -1, INT64_MIN, ((int64_t)1 << 53) + 1, INT64_MAX };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pathbuf f = write_ckpt("s", W_ADAM, RNG_OK, "0 0", ADAM_META, adam_data(bad[i]), 104);
        expect_load_fails(f.s, true, LG_ERR_VALUE, "is not a step count in [0, 2^53]");
    }
    static const int64_t good[] = { 0, 7, (int64_t)1 << 53 };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        pathbuf f = write_ckpt("s", W_ADAM, RNG_OK, "0 0", ADAM_META, adam_data(good[i]), 104);
        victim v = make_victim(true);
        cr_assert_eq(lg_checkpoint_load(v.ctx, f.s, v.opt), LG_OK, "%s", lg_ctx_errmsg(v.ctx));
        cr_assert_eq(lg_optim_steps(v.opt), good[i]);
        lg_ctx_free(v.ctx);
    }
    /* the step count must be there for every parameter opt optimizes */
    pathbuf f = write_ckpt("s", W_ONLY, RNG_OK, "0 0", ADAM_META, doubles4, 32);
    expect_load_fails(f.s, true, LG_ERR_VALUE, "has no optimizer state for opt's parameter 'w'");
}

Test(checkpoint, F8_every_metadata_value_validated, .init = make_dir, .fini = remove_dir)
{
    char json[1024];
    pathbuf f = at("m");
    snprintf(json, sizeof json,
             "{%s,\"__metadata__\":{\"format\":\"other\",\"rng\":\"%s\","
             "\"rng_spare\":\"0 0\"}}",
             W_ONLY, RNG_OK);
    write_raw(f.s, json, doubles4, 32, 0);
    expect_load_fails(f.s, false, LG_ERR_VALUE, "metadata format is 'other', 'lossgrad' expected");
    snprintf(json, sizeof json, "{%s,\"__metadata__\":{\"rng\":\"%s\",\"rng_spare\":\"0 0\"}}",
             W_ONLY, RNG_OK);
    write_raw(f.s, json, doubles4, 32, 0);
    expect_load_fails(f.s, false, LG_ERR_VALUE, "metadata format");
    snprintf(json, sizeof json,
             "{%s,\"__metadata__\":{\"format\":\"lossgrad\",\"rng\":7,"
             "\"rng_spare\":\"0 0\"}}",
             W_ONLY);
    write_raw(f.s, json, doubles4, 32, 0);
    expect_load_fails(f.s, false, LG_ERR_VALUE, "metadata 'rng' is not a string");
    static const char *const spares[] = { "2 0", "0 abc", "0", "0 ", "00 1", "0  1", "1 1,5", "" };
    for (size_t i = 0; i < sizeof spares / sizeof *spares; i++)
        expect_load_fails(write_ckpt("m", W_ONLY, RNG_OK, spares[i], "", doubles4, 32).s, false,
                          LG_ERR_VALUE, "rng_spare");
    expect_load_fails(write_ckpt("m", W_ONLY, RNG_OK, "0 0",
                                 ",\"optim\":\"adagradw\","
                                 "\"optim_lr\":\"0.1\"",
                                 doubles4, 32)
                          .s,
                      false, LG_ERR_VALUE,
                      "optim = 'adagradw' is not sgd, adam, adamw, rmsprop, adagrad, adadelta, "
                      "adamax, radam, rprop, nadam, asgd or lbfgs");
    expect_load_fails(write_ckpt("m", W_ONLY, RNG_OK, "0 0", ",\"optim\":\"adam\"", doubles4, 32).s,
                      false, LG_ERR_VALUE, "has optim without optim_lr");
    expect_load_fails(write_ckpt("m", W_ONLY, RNG_OK + 1, "0 0", "", doubles4, 32).s, false,
                      LG_ERR_VALUE, "is not 64 hex digits");
}

/* A checkpoint of a 16-byte model "w" F64 [2], and that file with a tail. */
Test(checkpoint, F9_trailing_bytes_rejected_and_memory_bounded, .init = make_dir,
     .fini = remove_dir)
{
    lg_ctx *ctx = test_ctx(8);
    lg_param_new(ctx, "w", LG_F64, 1, SHAPE(2));
    pathbuf good = at("good");
    cr_assert_eq(lg_checkpoint_save(ctx, good.s, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    lg_mem_stats m0 = lg_ctx_mem_stats(ctx);
    cr_assert_eq(lg_checkpoint_load(ctx, good.s, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    lg_mem_stats m1 = lg_ctx_mem_stats(ctx);
    cr_assert_eq(m1.arena_capacity, m0.arena_capacity, "a load left %zu bytes in the arena",
                 m1.arena_capacity - m0.arena_capacity);
    cr_assert_eq(m1.persistent_bytes, m0.persistent_bytes);
    cr_assert_eq(m1.alloc_calls - m0.alloc_calls, m1.free_calls - m0.free_calls,
                 "a load kept memory");

    /* the same file with a 1 GiB tail (sparse: cheap to make) */
    size_t n;
    void *bytes = read_all(good.s, &n);
    pathbuf tail = at("tail");
    int fd = open(tail.s, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(write(fd, bytes, n), (ssize_t)n);
    cr_assert_eq(ftruncate(fd, (off_t)n + ((off_t)1 << 30)), 0);
    close(fd);
    lg_status st = lg_checkpoint_load(ctx, tail.s, NULL);
    lg_mem_stats m2 = lg_ctx_mem_stats(ctx);
    cr_assert_eq(m2.arena_capacity, m0.arena_capacity, "the tail left %zu bytes in the arena",
                 m2.arena_capacity - m0.arena_capacity);
    cr_assert_eq(st, LG_ERR_VALUE, "%s", lg_ctx_errmsg(ctx));
    cr_assert(strstr(lg_ctx_errmsg(ctx), "bytes after the last tensor are rejected"), "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
    free(bytes);

    /* one byte of tail.s, and a gap between tensors, are rejected too */
    uint8_t data[48] = { 0 };
    expect_load_fails(write_ckpt("t1", W_ONLY, RNG_OK, "0 0", "", data, 33).s, false, LG_ERR_VALUE,
                      "bytes after the last tensor are rejected");
    expect_load_fails(
        write_ckpt("gap", "\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[8,40]}",
                   RNG_OK, "0 0", "", data, 40)
            .s,
        false, LG_ERR_VALUE, "8 unused bytes before tensor 'w'");
}

Test(checkpoint, F12_duplicate_tensor_name, .init = make_dir, .fini = remove_dir)
{
    double data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    const char *twice = "\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]},"
                        "\"w\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[32,64]}";
    expect_load_fails(write_ckpt("d", twice, RNG_OK, "0 0", "", data, 64).s, false, LG_ERR_VALUE,
                      "the header has the key 'w' twice");
    /* a repeated key inside an entry or in the metadata is no better */
    const char *dtype2 = "\"w\":{\"dtype\":\"F32\",\"dtype\":\"F64\",\"shape\":[2,2],"
                         "\"data_offsets\":[0,32]}";
    expect_load_fails(write_ckpt("d", dtype2, RNG_OK, "0 0", "", data, 32).s, false, LG_ERR_VALUE,
                      "tensor 'w' has the key 'dtype' twice");
    expect_load_fails(write_ckpt("d", W_ONLY, RNG_OK, "0 0", ",\"rng\":\"x\"", data, 32).s, false,
                      LG_ERR_VALUE, "__metadata__ has the key 'rng' twice");
}

Test(checkpoint, F12_nul_in_tensor_name, .init = make_dir, .fini = remove_dir)
{
    /* cJSON turns \u0000 (and a malformed \u, read as 0) into a NUL that
     * ends the C string: both would load as "w" */
    static const char *const names[] = { "w\\u0000junk", "w\\u00G0", "w\\u0000" };
    char t[256];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(t, sizeof t, "\"%s\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]}",
                 names[i]);
        expect_load_fails(write_ckpt("z", t, RNG_OK, "0 0", "", doubles4, 32).s, false,
                          LG_ERR_VALUE, "\\u0000 (or malformed \\u) escape");
    }
    /* a raw control byte is not JSON either (cJSON takes it) */
    expect_load_fails(
        write_ckpt("z", "\"w\x01\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]}",
                   RNG_OK, "0 0", "", doubles4, 32)
            .s,
        false, LG_ERR_VALUE, "control byte 0x01");
    /* an escaped backslash before "u0000" is just text: no parameter of that name */
    expect_load_fails(
        write_ckpt("z",
                   "\"w\\\\u0000\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]}",
                   RNG_OK, "0 0", "", doubles4, 32)
            .s,
        false, LG_ERR_VALUE, "no such parameter");
}

Test(checkpoint, F12_garbage_after_header_json, .init = make_dir, .fini = remove_dir)
{
    char json[1024];
    pathbuf f = at("g");
    static const char *const tails[] = { "   x", "\n", "\t ", "}", " ," };
    for (size_t i = 0; i < sizeof tails / sizeof *tails; i++) {
        snprintf(json, sizeof json,
                 "{%s,\"__metadata__\":{\"format\":\"lossgrad\",\"rng\":\"%s\","
                 "\"rng_spare\":\"0 0\"}}%s",
                 W_ONLY, RNG_OK, tails[i]);
        write_raw(f.s, json, doubles4, 32, 0);
        expect_load_fails(f.s, false, LG_ERR_VALUE, "only space padding may follow");
    }
    /* space padding is legal safetensors */
    snprintf(json, sizeof json,
             "{%s,\"__metadata__\":{\"format\":\"lossgrad\",\"rng\":\"%s\","
             "\"rng_spare\":\"0 0\"}}     ",
             W_ONLY, RNG_OK);
    write_raw(f.s, json, doubles4, 32, 0);
    expect_load_ok(f.s, false);
}

Test(checkpoint, F12_all_zero_rng_state, .init = make_dir, .fini = remove_dir)
{
    char zeros[65];
    memset(zeros, '0', 64);
    zeros[64] = '\0';
    expect_load_fails(write_ckpt("r", W_ONLY, zeros, "0 0", "", doubles4, 32).s, false,
                      LG_ERR_VALUE, "rng is all zeros");
}

Test(checkpoint, F12_rng_spare_not_finite, .init = make_dir, .fini = remove_dir)
{
    static const char *const spares[] = { "1 nan", "1 inf", "0 -inf", "1 1e999", "1 -nan" };
    for (size_t i = 0; i < sizeof spares / sizeof *spares; i++)
        expect_load_fails(write_ckpt("s", W_ONLY, RNG_OK, spares[i], "", doubles4, 32).s, false,
                          LG_ERR_VALUE, "rng_spare");
    /* a finite spare draw loads and is the next normal */
    lg_ctx *ctx = test_ctx(1);
    lg_param_new(ctx, "w", LG_F64, 2, SHAPE(2, 2));
    cr_assert_eq(lg_checkpoint_load(
                     ctx, write_ckpt("s", W_ONLY, RNG_OK, "1 -1.25", "", doubles4, 32).s, NULL),
                 LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_rand_normal(ctx), -1.25);
    lg_ctx_free(ctx);
}

Test(checkpoint, F12_rng_words_with_signs_or_spaces, .init = make_dir, .fini = remove_dir)
{
    static const char *const words[] = {
        "+000000000000001", "-000000000000001", " 000000000000001",
        "0x00000000000001", "000000000000001 ", "00000000000000g1"
    };
    char rng[80];
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        snprintf(rng, sizeof rng, "%s%s", words[i], RNG_OK + 16);
        expect_load_fails(write_ckpt("w", W_ONLY, rng, "0 0", "", doubles4, 32).s, false,
                          LG_ERR_VALUE, "is not 64 hex digits");
    }
}

/* cJSON's allocator is process-wide: this test process makes its k-th
 * allocation fail, as malloc does (NULL, errno ENOMEM). */
static int cjson_fail_at; /* 1: the first allocation fails; 0: none */

static void *failing_malloc(size_t n)
{
    if (cjson_fail_at > 0 && --cjson_fail_at == 0) {
        errno = ENOMEM;
        return NULL;
    }
    return malloc(n);
}

static void cjson_fail(int k)
{
    cjson_fail_at = k;
    cJSON_InitHooks(&(cJSON_Hooks){ .malloc_fn = failing_malloc, .free_fn = free });
}

Test(checkpoint, F13_cjson_oom_is_reported_as_oom, .init = make_dir, .fini = remove_dir)
{
    victim src = make_victim(true);
    pathbuf file = at("src");
    save_state(&src, file.s);
    lg_ctx_free(src.ctx);
    pathbuf before = at("before"), after = at("after");
    victim v = make_victim(true);
    save_state(&v, before.s);
    int k = 1;
    for (;; k++) {
        cjson_fail(k);
        lg_status st = lg_checkpoint_load(v.ctx, file.s, v.opt);
        cJSON_InitHooks(NULL);
        if (st == LG_OK)
            break;
        cr_assert_eq(st, LG_ERR_OOM, "allocation %d: %s (%s)", k, lg_status_name(st),
                     lg_ctx_errmsg(v.ctx));
        cr_assert(strstr(lg_ctx_errmsg(v.ctx), "lg_checkpoint_load: path '") &&
                      strstr(lg_ctx_errmsg(v.ctx), "out of memory"),
                  "%s", lg_ctx_errmsg(v.ctx));
        lg_ctx_clear_error(v.ctx);
        save_state(&v, after.s);
        cr_assert(same_bytes(before.s, after.s), "allocation %d: the failed load changed the ctx",
                  k);
        cr_assert_lt(k, 10000);
    }
    cr_assert_gt(k, 10, "the header should take a fair number of allocations (%d)", k);
    /* saving reports it the same way */
    for (k = 1;; k++) {
        cjson_fail(k);
        lg_status st = lg_checkpoint_save(v.ctx, at("out").s, v.opt);
        cJSON_InitHooks(NULL);
        if (st == LG_OK)
            break;
        cr_assert_eq(st, LG_ERR_OOM, "allocation %d: %s", k, lg_ctx_errmsg(v.ctx));
        lg_ctx_clear_error(v.ctx);
        cr_assert_lt(k, 10000);
    }
    lg_ctx_free(v.ctx);
}

/* Allocation failures through the ctx hook during a load that allocates
 * optimizer state: each is LG_ERR_OOM and leaves everything as it was. */

Test(checkpoint, oom_during_load_changes_nothing, .init = make_dir, .fini = remove_dir)
{
    victim src = make_victim(true);
    pathbuf file = at("src");
    save_state(&src, file.s);
    lg_ctx_free(src.ctx);
    countdown c = { -1 };
    victim v = {
        lg_ctx_new(&(lg_ctx_params){ .seed = 4, .alloc = countdown_alloc, .alloc_user = &c }), NULL
    };
    lg_param_new(v.ctx, "w", LG_F64, 2, SHAPE(2, 2));
    v.opt = make_optim(v.ctx, LG_ADAM, 0.5, false); /* no state yet: the load allocates it */
    pathbuf before = at("before"), after = at("after");
    save_state(&v, before.s);
    long k = 0;
    for (;; k++) {
        c.left = k;
        lg_status st = lg_checkpoint_load(v.ctx, file.s, v.opt);
        c.left = -1;
        if (st == LG_OK)
            break;
        cr_assert_eq(st, LG_ERR_OOM, "allocation %ld: %s", k, lg_ctx_errmsg(v.ctx));
        cr_assert(strstr(lg_ctx_errmsg(v.ctx), "lg_checkpoint_load: "), "%s", lg_ctx_errmsg(v.ctx));
        lg_ctx_clear_error(v.ctx);
        save_state(&v, after.s);
        cr_assert(same_bytes(before.s, after.s), "allocation %ld: the failed load changed the ctx",
                  k);
    }
    cr_assert_geq(k, 3, "the load should allocate its scratch and the two Adam slots");
    lg_ctx_free(v.ctx);
}

/* A save of big (512 KiB) that dies once its file passes 64 KiB. */
static void crash_a_save(lg_ctx *ctx, const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct rlimit rl = { 64 << 10, 64 << 10 };
        setrlimit(RLIMIT_FSIZE, &rl);
        signal(SIGXFSZ, SIG_DFL);
        lg_checkpoint_save(ctx, path, NULL);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ, "the save was not interrupted");
}

/* Names in the test folder starting with prefix. */
static int count_prefixed(const char *prefix)
{
    int n = 0;
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += !strncmp(de->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

Test(checkpoint, F14_abandoned_temp_files_removed, .init = make_dir, .fini = remove_dir)
{
    lg_ctx *ctx = test_ctx(5);
    lg_tensor *big = lg_param_new(ctx, "big", LG_F64, 1, SHAPE(1 << 16));
    lg_init_normal(ctx, big, 0, 1);
    pathbuf path = at("ckpt.safetensors");
    cr_assert_eq(lg_checkpoint_save(ctx, path.s, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    /* files a cleaner must leave alone: other names, a live save's file */
    static const char *const keep[] = {
        "ckpt.safetensors.tmp-abc12",  "ckpt.safetensors.tmp-abc1234",
        "ckpt.safetensors.tmp-ab_c12", "other.safetensors.tmp-ABCDEF",
        "ckpt.safetensors.tmp-Live01", "xckpt.safetensors.tmp-ABCDEF"
    };
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
        write_raw(at(keep[i]).s, "x", NULL, 0, 0);
    int live = open(at("ckpt.safetensors.tmp-Live01").s, O_RDONLY);
    cr_assert_eq(flock(live, LOCK_EX), 0); /* as a save in progress holds it */
    cr_assert_eq(mkdir(at("ckpt.safetensors.tmp-Dir001").s, 0700), 0);
    cr_assert_eq(symlink("other.safetensors.tmp-ABCDEF", at("ckpt.safetensors.tmp-Link01").s), 0);
    int decoys = count_prefixed("ckpt.safetensors.tmp-");

    for (int i = 0; i < 3; i++)
        crash_a_save(ctx, path.s);
    cr_assert_leq(count_prefixed("ckpt.safetensors.tmp-") - decoys, 1,
                  "each save removes the files of the saves that crashed before it");
    cr_assert_eq(lg_checkpoint_save(ctx, path.s, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(count_prefixed("ckpt.safetensors.tmp-"), decoys, "a crashed save's file is left");
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
        cr_assert(exists(at(keep[i]).s), "%s was removed", keep[i]);
    cr_assert(exists(at("ckpt.safetensors.tmp-Dir001").s) &&
              exists(at("ckpt.safetensors.tmp-Link01").s));
    close(live);
    lg_ctx_free(ctx);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return st.st_mode & 07777;
}

Test(checkpoint, F14_file_mode_follows_umask, .init = make_dir, .fini = remove_dir)
{
    lg_ctx *ctx = test_ctx(5);
    lg_param_new(ctx, "w", LG_F64, 1, SHAPE(2));
    static const mode_t masks[] = { 022, 077, 0, 027 };
    mode_t old = umask(022);
    for (size_t i = 0; i < sizeof masks / sizeof *masks; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%zu", i);
        umask(masks[i]);
        cr_assert_eq(lg_checkpoint_save(ctx, at(name).s, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
        cr_assert_eq(mode_of(at(name).s), 0666 & ~masks[i], "umask %03o: mode %03o", masks[i],
                     mode_of(at(name).s));
    }
    /* saving over a file keeps its mode, as writing into it with fopen would */
    umask(022);
    cr_assert_eq(chmod(at("m0").s, 0640), 0);
    cr_assert_eq(lg_checkpoint_save(ctx, at("m0").s, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(mode_of(at("m0").s), 0640);
    cr_assert_eq(chmod(at("m1").s, 0604), 0);
    umask(077);
    cr_assert_eq(lg_checkpoint_save(ctx, at("m1").s, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(mode_of(at("m1").s), 0604);
    umask(old);
    lg_ctx_free(ctx);
}

Test(checkpoint, F14_symlink_written_through, .init = make_dir, .fini = remove_dir)
{
    lg_ctx *a = test_ctx(1), *b = test_ctx(2);
    model(a);
    model(b);
    cr_assert_eq(lg_checkpoint_save(a, at("target").s, NULL), LG_OK, "%s", lg_ctx_errmsg(a));
    cr_assert_eq(symlink("target", at("link").s), 0);
    cr_assert_eq(lg_checkpoint_save(b, at("link").s, NULL), LG_OK, "%s", lg_ctx_errmsg(b));
    struct stat st;
    cr_assert_eq(lstat(at("link").s, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the save replaced the link");
    snapshot sb = snap(b);
    lg_ctx *c = test_ctx(3);
    model(c);
    cr_assert_eq(lg_checkpoint_load(c, at("target").s, NULL), LG_OK, "%s", lg_ctx_errmsg(c));
    cr_assert(same(c, &sb), "the link's target does not hold the saved model");
    cr_assert_eq(count_prefixed("target.tmp-") + count_prefixed("link.tmp-"), 0);
    /* a link to a missing file: nothing is created */
    cr_assert_eq(symlink("missing", at("dangling").s), 0);
    cr_assert_eq(lg_checkpoint_save(b, at("dangling").s, NULL), LG_ERR_IO);
    cr_assert(strstr(lg_ctx_errmsg(b), "is a symbolic link to a missing file"), "%s",
              lg_ctx_errmsg(b));
    cr_assert(!exists(at("missing").s));
    cr_assert_eq(lstat(at("dangling").s, &st), 0);
    cr_assert(S_ISLNK(st.st_mode));
    free_snap(&sb);
    lg_ctx_free(a);
    lg_ctx_free(b);
    lg_ctx_free(c);
}

Test(checkpoint, F14_non_regular_target_left_untouched, .init = make_dir, .fini = remove_dir)
{
    lg_ctx *ctx = test_ctx(5);
    lg_param_new(ctx, "w", LG_F64, 1, SHAPE(2));
    struct stat st;
    cr_assert_eq(mkfifo(at("fifo").s, 0600), 0);
    cr_assert_eq(lg_checkpoint_save(ctx, at("fifo").s, NULL), LG_ERR_IO);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "is a FIFO, not a regular file; it was left untouched"),
              "%s", lg_ctx_errmsg(ctx));
    cr_assert(stat(at("fifo").s, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");
    lg_ctx_clear_error(ctx);
    cr_assert_eq(mkdir(at("folder").s, 0700), 0);
    cr_assert_eq(lg_checkpoint_save(ctx, at("folder").s, NULL), LG_ERR_IO);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "is a directory"), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    /* a device node (mknod needs privileges: tested where allowed) */
    if (mknod(at("null").s, S_IFCHR | 0600, makedev(1, 3)) == 0) {
        cr_assert_eq(lg_checkpoint_save(ctx, at("null").s, NULL), LG_ERR_IO);
        cr_assert(strstr(lg_ctx_errmsg(ctx), "is a character device"), "%s", lg_ctx_errmsg(ctx));
        cr_assert(stat(at("null").s, &st) == 0 && S_ISCHR(st.st_mode), "the device was replaced");
        lg_ctx_clear_error(ctx);
    }
    cr_assert_eq(count_prefixed("fifo.tmp-") + count_prefixed("folder.tmp-") +
                     count_prefixed("null.tmp-"),
                 0, "a temporary file was left");
    lg_ctx_free(ctx);
}

Test(checkpoint, S2_messages_say_what_the_file_holds, .init = make_dir, .fini = remove_dir)
{
    victim v = make_victim(true);
    save_state(&v, at("adam").s);
    cr_assert_eq(lg_checkpoint_save(v.ctx, at("plain").s, NULL), LG_OK);
    lg_ctx_free(v.ctx);
    lg_ctx *ctx = test_ctx(9);
    lg_param_new(ctx, "w", LG_F64, 2, SHAPE(2, 2));
    lg_optim *sgd = make_optim(ctx, LG_SGD, 0.1, false);
    cr_assert_eq(lg_checkpoint_load(ctx, at("adam").s, sgd), LG_ERR_VALUE);
    cr_assert(
        strstr(lg_ctx_errmsg(ctx), "lg_checkpoint_load: path '") &&
            strstr(lg_ctx_errmsg(ctx), "holds adam optimizer state, but opt is an sgd optimizer"),
        "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_checkpoint_load(ctx, at("plain").s, sgd), LG_ERR_VALUE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "holds no optimizer state, but opt is an sgd optimizer"),
              "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    lg_optim *adamw = make_optim(ctx, LG_ADAMW, 0.1, false);
    cr_assert_eq(lg_checkpoint_load(ctx, at("adam").s, adamw), LG_ERR_VALUE);
    cr_assert(
        strstr(lg_ctx_errmsg(ctx), "holds adam optimizer state, but opt is an adamw optimizer"),
        "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    /* the parameters alone still load */
    cr_assert_eq(lg_checkpoint_load(ctx, at("adam").s, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

/* A file without some of opt's state (saved before its first step) makes
 * that state start again from zero, as in the saved run: the two runs go
 * on identically. */
Test(checkpoint, absent_optimizer_state_restarts_from_zero, .init = make_dir, .fini = remove_dir)
{
    lg_ctx *a = test_ctx(21);
    lg_tensor *w = lg_param_new(a, "w", LG_F64, 2, SHAPE(2, 2));
    lg_init_normal(a, w, 0, 1);
    lg_optim *oa = make_optim(a, LG_ADAM, 0.1, false);
    cr_assert_eq(lg_checkpoint_save(a, at("fresh").s, oa), LG_OK, "%s", lg_ctx_errmsg(a));
    lg_ctx *b = test_ctx(22);
    lg_init_normal(b, lg_param_new(b, "w", LG_F64, 2, SHAPE(2, 2)), 0, 1);
    lg_optim *ob = make_optim(b, LG_ADAM, 0.1, false);
    for (int i = 0; i < 3; i++)
        one_step(b, ob); /* state that the load must not keep */
    cr_assert_eq(lg_checkpoint_load(b, at("fresh").s, ob), LG_OK, "%s", lg_ctx_errmsg(b));
    for (int i = 0; i < 3; i++) {
        one_step(a, oa);
        one_step(b, ob);
    }
    cr_assert_eq(memcmp(lg_tensor_data(w), lg_tensor_data(lg_param_find(b, "w")), 32), 0,
                 "the loaded run went another way");
    lg_ctx_free(a);
    lg_ctx_free(b);
}

/* An SGD momentum buffer the file lacks is PyTorch's None: the first
 * update after the load starts it as the update itself, whatever the step
 * count (it once took the count to decide, and with dampening went astray). */
Test(checkpoint, sgd_momentum_buffer_absent_from_the_file_starts_afresh, .init = make_dir,
     .fini = remove_dir)
{
    lg_ctx *a = test_ctx(23);
    lg_tensor *w = lg_param_new(a, "w", LG_F64, 1, SHAPE(3));
    lg_init_normal(a, w, 0, 1);
    lg_optim *plain = make_optim(a, LG_SGD, 0.1, false);
    one_step(a, plain);
    one_step(a, plain);
    cr_assert_eq(lg_checkpoint_save(a, at("sgd").s, plain), LG_OK, "%s", lg_ctx_errmsg(a));
    lg_optim_opts mo = lg_optim_opts_default(LG_SGD);
    mo.lr = 0.1, mo.momentum = 0.9, mo.dampening = 0.5;
    lg_ctx *b = test_ctx(24);
    lg_param_new(b, "w", LG_F64, 1, SHAPE(3));
    lg_optim *ob = lg_optim_new(b, &mo);
    one_step(b, ob); /* a buffer that the load must drop */
    cr_assert_eq(lg_checkpoint_load(b, at("sgd").s, ob), LG_OK, "%s", lg_ctx_errmsg(b));
    lg_optim *oa = lg_optim_new(a, &mo); /* the same weights, a new momentum optimizer */
    one_step(a, oa);
    one_step(b, ob);
    cr_assert_eq(memcmp(lg_tensor_data(w), lg_tensor_data(lg_param_find(b, "w")), 24), 0,
                 "the loaded optimizer did not start its buffer afresh");
    lg_ctx_free(a);
    lg_ctx_free(b);
}

Test(checkpoint, metadata_numbers_ignore_the_locale, .init = make_dir, .fini = remove_dir)
{
    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8")) {
        remove_dir(); /* a skipped test does not run .fini */
        cr_skip_test("no de_DE.UTF-8 locale here");
    }
    victim v = make_victim(true);
    lg_optim_set_lr(v.opt, 0.5);
    save_state(&v, at("c").s);
    size_t n;
    char *bytes = read_all(at("c").s, &n);
    bytes[n] = '\0';
    cr_assert(strstr(bytes + 8, "\"optim_lr\":\"0.5\""), "%s", bytes + 8);
    free(bytes);
    lg_optim_set_lr(v.opt, 0.25);
    cr_assert_eq(lg_checkpoint_load(v.ctx, at("c").s, v.opt), LG_OK, "%s", lg_ctx_errmsg(v.ctx));
    cr_assert_eq(lg_optim_lr(v.opt), 0.5);
    lg_ctx_free(v.ctx);
    setlocale(LC_NUMERIC, "C");
}

Test(checkpoint, messages_name_the_call_the_argument_and_the_rule, .init = make_dir,
     .fini = remove_dir)
{
    lg_ctx *ctx = test_ctx(1), *other = test_ctx(2);
    lg_param_new(ctx, "w", LG_F64, 2, SHAPE(2, 2));
    lg_param_new(other, "w", LG_F64, 2, SHAPE(2, 2));
    lg_optim *foreign = make_optim(other, LG_SGD, 0.1, false);
    cr_assert_eq(lg_checkpoint_save(ctx, at("x").s, foreign), LG_ERR_VALUE);
    cr_assert_str_eq(lg_ctx_errmsg(ctx), "lg_checkpoint_save: opt was made with another ctx");
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_checkpoint_load(ctx, at("x").s, foreign), LG_ERR_VALUE);
    cr_assert_str_eq(lg_ctx_errmsg(ctx), "lg_checkpoint_load: opt was made with another ctx");
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_checkpoint_load(ctx, NULL, NULL), LG_ERR_NULL);
    cr_assert_str_eq(lg_ctx_errmsg(ctx), "lg_checkpoint_load: path is NULL");
    lg_ctx_clear_error(ctx);
    /* a long path is shortened in the middle: the rule still fits */
    char deep[400];
    snprintf(deep, sizeof deep, "%s/%0250d/x.safetensors", dir, 0);
    cr_assert_eq(lg_checkpoint_load(ctx, deep, NULL), LG_ERR_IO);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "...") && strstr(lg_ctx_errmsg(ctx), "x.safetensors': ") &&
                  strstr(lg_ctx_errmsg(ctx), "No such file or directory"),
              "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
    lg_ctx_free(other);
}
