/* fixture_read.h: the reader of the loss fixture format
 * (../shared/FIXTURES.md), shared by the conformance runner and the
 * coverage test. It parses; it judges nothing: each case goes to a
 * callback, complete or with its parse problem set, and is freed after. */
#ifndef LG_FIXTURE_READ_H
#define LG_FIXTURE_READ_H

#include <lossgrad.h>

#include <stdbool.h>
#include <stdint.h>

#define MAX_TENSORS 8
#define MAX_OPTS 8

typedef struct ftensor {
    char role[32];
    bool is_int;
    int ndim;
    int64_t shape[LG_MAX_DIMS];
    int64_t numel;
    double *v; /* values (int64 ones stored exactly as doubles up to 2^53) */
    int64_t *iv;
} ftensor;

typedef struct fcase {
    char id[128];
    char loss[64];
    int nin, ngrad, nopt;
    ftensor in[MAX_TENSORS], grad[MAX_TENSORS];
    /* second-order files only (fixture_read_hvp): v[i] a direction
     * for input v[i].role, hvp[i] the Hessian of sum(out * upstream) in the
     * graded inputs times those directions, at input hvp[i].role */
    int nv, nhvp;
    ftensor v[MAX_TENSORS], hvp[MAX_TENSORS];
    ftensor out, upstream;
    bool has_out, has_upstream, has_err;
    char err[32];
    char opt_key[MAX_OPTS][32], opt_val[MAX_OPTS][64];
    char problem[256]; /* a parse problem found while reading the case */
    int line;
} fcase;

typedef struct fixture_reader {
    /* Each case, in file order; c is freed when it returns. */
    void (*on_case)(fcase *c, void *user);
    /* A problem outside any case, as one line: "<path>: <what>". */
    void (*on_problem)(const char *msg, void *user);
    void *user;
} fixture_reader;

/* Reads every case of the file. Returns 0, or 2 if the file cannot be
 * opened, its header is wrong, or memory ran out. */
int fixture_read(const char *path, const fixture_reader *r);
/* The same for a second-order file (docs/second_order_fixtures.md): `v ROLE
 * ...` and `hvp ROLE ...` lines are read into the case. fixture_read takes
 * them for unknown records, as in any first-order file. */
int fixture_read_hvp(const char *path, const fixture_reader *r);

#endif
