/* common.h: what the examples share: command-line flags, the Fashion-MNIST
 * IDX reader (zlib), seeded shuffling, a progress display, a CSV log, a
 * small SVG plot writer and the RESULT line. Public API only. */
#ifndef EX_COMMON_H
#define EX_COMMON_H

#include <lossgrad.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ex_args {
    const char *name;     /* the example's name */
    uint64_t seed;        /* --seed (default 1) */
    int epochs;           /* --epochs (default: the example's) */
    int threads;          /* --threads (default 2) */
    bool quick;           /* --quick: a few seconds, for tests */
    const char *data_dir; /* --data (default /usr/share/datasets/fashion-mnist) */
    const char *out_dir;  /* --out (default results/<name>) */
} ex_args;

/* Parses the common flags; exits with a usage message on anything else. */
ex_args ex_parse(int argc, char **argv, const char *name, int default_epochs);
/* A context with the flags' seed and threads; exits with a message on failure. */
lg_ctx *ex_ctx(const ex_args *a);
/* Exits with the ctx's error message if it holds one. */
void ex_check(lg_ctx *ctx, const char *what);
/* "<out_dir>/<file>" (the folder is created). */
const char *ex_path(const ex_args *a, const char *file);
double ex_seconds(void);

/* Reads a gzipped IDX file of unsigned bytes with want_dims dims into a
 * malloc'ed buffer (*out); 0, or -1 with a message in err. */
int ex_idx_read(const char *path, int want_dims, int64_t dims[3], uint8_t **out, char *err,
                size_t errn);

/* Fashion-MNIST: images as floats in [0, 1], row-major [n, 784]. */
typedef struct ex_mnist {
    int64_t n;
    float *images;
    uint8_t *labels;
} ex_mnist;
/* Reads the train (train = true) or t10k split; exits with a message
 * naming the package to install if the files are missing. */
ex_mnist ex_fashion_load(const ex_args *a, bool train);
void ex_mnist_free(ex_mnist *m);
extern const char *const ex_fashion_classes[10];

/* A seeded permutation of 0..n-1 (Fisher-Yates with the ctx RNG). */
void ex_shuffle(lg_ctx *ctx, int64_t *idx, int64_t n);

/* Progress: a bar with rate and ETA on a terminal, a line every 10% when
 * output is not a terminal. */
typedef struct ex_progress {
    const char *label;
    int64_t total, done;
    double start, last;
    bool tty;
    int last_decile;
} ex_progress;
void ex_progress_start(ex_progress *p, const char *label, int64_t total);
void ex_progress_update(ex_progress *p, int64_t done, double loss);
void ex_progress_end(ex_progress *p, const char *summary);

/* A CSV log: the header line, then rows of numbers. */
FILE *ex_csv_open(const ex_args *a, const char *file, const char *header);
void ex_csv_row(FILE *f, int n, const double *values);

/* SVG plots. A series is a polyline (or points, if scatter). */
typedef struct ex_series {
    const char *name;
    int64_t n;
    const double *x, *y;
    bool scatter;
    const int *cls; /* scatter: a class per point for its colour, or NULL */
} ex_series;
void ex_svg_plot(const ex_args *a, const char *file, const char *title, const char *xlabel,
                 const char *ylabel, int nseries, const ex_series *s);

/* A curve recorded point by point (up to 256 points), plotted with others. */
typedef struct ex_curve {
    const char *name;
    int n;
    double x[256], y[256];
} ex_curve;
void ex_curve_add(ex_curve *c, double x, double y);
void ex_plot_curves(const ex_args *a, const char *file, const char *title, const char *xlabel,
                    const char *ylabel, int n, const ex_curve *cs);

/* The final machine-readable line: "RESULT example=<name> <pairs>
 * steps=<n> params=<digest> threads_bitwise=<0|1> seconds=<s>", where n is
 * the optimizer updates the run made through ex_optim_step (and so
 * ex_step), over every model it trained, and the digest is
 * FNV-1a over the bytes of every parameter of every ctx ex_ctx made (in
 * their order), and threads_bitwise is lg_threads_bitwise for both float
 * types: where it is 1, the digest is the same at any --threads. Call it
 * while those ctxs are alive. */
void ex_result(const ex_args *a, double seconds, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* lg_optim_step(opt), counted for the RESULT line's steps= when it updated
 * parameters (lg_optim_steps(opt) grew). Every example steps its
 * optimizers through it (or ex_step). */
lg_status ex_optim_step(lg_optim *opt);
/* One training step: backward from loss, an optimizer update
 * (ex_optim_step), gradients zeroed, the step ended. Returns the loss;
 * exits with the message on error. */
double ex_step(lg_ctx *ctx, lg_tensor *loss, lg_optim *opt);

/* dst[k] = src row idx[k] (rows of `dim` floats), k < n. */
void ex_gather(float *dst, const float *src, int64_t dim, const int64_t *idx, int64_t n);
/* The arg-max class of each row of a [n, c] float tensor (no gradient). */
void ex_argmax(lg_tensor *logits, int64_t *out);
/* Trains nothing: runs fn over `n` rows in batches under no-grad and
 * returns the accuracy of arg-max predictions against labels. */
typedef lg_tensor *(*ex_forward_fn)(lg_ctx *ctx, lg_tensor *x, void *user);
double ex_accuracy(lg_ctx *ctx, ex_forward_fn fn, void *user, const float *images,
                   const uint8_t *labels, int64_t n, int64_t dim);

#endif
