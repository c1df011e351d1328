/* nfile.h: a reader for the named-tensor fixture files of tests/fixtures/nn
 * (rnn.txt, optim.txt, sched.txt from tools/gen_nn_fixtures.py; layers.txt
 * from tools/gen_layer_fixtures.py): `case <id>`, `<key> <value>` lines,
 * `tensor <name> <f64|i64> <ndim> <dims...> : <values...>`, `end`. An
 * `err <word>` line is kept as the key "err". */
#ifndef LG_TEST_NFILE_H
#define LG_TEST_NFILE_H

#include "helpers.h"

typedef struct ntensor {
    char name[96];
    bool is_int;
    int ndim;
    int64_t shape[LG_MAX_DIMS], numel;
    double *v;
    int64_t *iv;
} ntensor;

typedef struct ncase {
    char id[96];
    char keys[24][32], vals[24][64];
    int nkeys, ntensors;
    ntensor t[48];
} ncase;

typedef struct nfile {
    int ncases;
    ncase *cases;
} nfile;

/* Reads LG_FIXTURE_DIR/<name>; a malformed file fails the test. */
nfile read_nfile(const char *name);
void free_nfile(nfile *nf);
/* The value of key k, or NULL. */
const char *key(const ncase *c, const char *k);
/* A number ("true" 1, "false" 0), or dflt when the key is absent. */
double keyd(const ncase *c, const char *k, double dflt);
/* The tensor named name, or NULL. */
const ntensor *find(const ncase *c, const char *name);
/* A step tensor of t's values: int64 as written, floats in dt. */
lg_tensor *make(lg_ctx *ctx, const ntensor *t, lg_dtype dt);
/* The fixture rule: float64 1e-9 + 1e-7|want|, float32 1e-5 scale + 1e-4|want|
 * (scale: the largest |want|, at least 1); NaN must be NaN and an infinity
 * the same infinity. Fails the test naming id and what. */
void expect_fixture(lg_tensor *got, const ntensor *want, lg_dtype dt, const char *id,
                    const char *what);
/* The same as a check: false (and a message in msg) instead of failing. */
bool fixture_close(lg_tensor *got, const ntensor *want, lg_dtype dt, char *msg, size_t n);

/* An rnn.txt / layers18.txt case: "kind" as lg_rnn_kind ("gru", "lstm",
 * "rnn_relu", else tanh). */
lg_rnn_kind rnn_kind(const char *k);
/* The case's weights copied into net (made as "net" in ctx) by PyTorch's
 * names, then output, h_n (c_n), and the gradients of x, h0, c0 and every
 * parameter for the case's upstream gradients against the fixture; frees
 * ctx. */
void expect_rnn_case(lg_ctx *ctx, lg_rnn *net, lg_rnn_kind kind, const ncase *c, lg_dtype dt);

#endif
