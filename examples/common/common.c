/* common.c: the examples' shared parts (see common.h). */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

const char *const ex_fashion_classes[10] = { "T-shirt/top", "Trouser",   "Pullover", "Dress",
                                             "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                             "Bag",         "Ankle boot" };

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--seed N] [--epochs N] [--threads N] [--quick] [--data DIR] [--out DIR]\n",
            prog);
    exit(2);
}

ex_args ex_parse(int argc, char **argv, const char *name, int default_epochs)
{
    ex_args a = { .name = name,
                  .seed = 1,
                  .epochs = default_epochs,
                  .threads = 2,
                  .data_dir = "/usr/share/datasets/fashion-mnist" };
    static char out[512];
    snprintf(out, sizeof out, "results/%s", name);
    a.out_dir = out;
    bool epochs_given = false;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--quick"))
            a.quick = true;
        else if (!strcmp(f, "--seed") && v)
            a.seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(f, "--epochs") && v)
            a.epochs = atoi(v), epochs_given = true, i++;
        else if (!strcmp(f, "--threads") && v)
            a.threads = atoi(v), i++;
        else if (!strcmp(f, "--data") && v)
            a.data_dir = v, i++;
        else if (!strcmp(f, "--out") && v)
            a.out_dir = v, i++;
        else
            usage(argv[0]);
    }
    if (a.quick && !epochs_given)
        a.epochs = 2; /* two short epochs: enough to see the loss fall */
    if (a.epochs < 1 || a.threads < 1)
        usage(argv[0]);
    return a;
}

/* The ctxs ex_ctx made, for the RESULT line's digest (each example makes
 * its ctxs, trains, prints its RESULT, then frees them). */
static lg_ctx *made[8];
static int nmade;
/* The optimizer updates ex_optim_step counted, for the RESULT line's steps=. */
static int64_t nsteps;

lg_ctx *ex_ctx(const ex_args *a)
{
    lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = a->seed, .threads = a->threads });
    if (!ctx) {
        fprintf(stderr, "%s: out of memory\n", a->name);
        exit(1);
    }
    if (nmade < (int)(sizeof made / sizeof *made))
        made[nmade++] = ctx;
    return ctx;
}

void ex_check(lg_ctx *ctx, const char *what)
{
    if (lg_ctx_status(ctx) != LG_OK) {
        fprintf(stderr, "%s: %s\n", what, lg_ctx_errmsg(ctx));
        exit(1);
    }
}

static void mkdirs(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

const char *ex_path(const ex_args *a, const char *file)
{
    static char buf[4][640];
    static int k;
    mkdirs(a->out_dir);
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", a->out_dir, file);
    return b;
}

double ex_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* IDX files through zlib                                               */
/* ------------------------------------------------------------------ */

int ex_idx_read(const char *path, int want_dims, int64_t dims[3], uint8_t **out, char *err,
                size_t errn)
{
    *out = NULL;
    gzFile g = gzopen(path, "rb");
    if (!g) {
        snprintf(err, errn, "cannot open %s (%s)", path, strerror(errno));
        return -1;
    }
    uint8_t head[4];
    int64_t total = 1;
    bool ok =
        gzread(g, head, 4) == 4 && !head[0] && !head[1] && head[2] == 0x08 && head[3] == want_dims;
    if (!ok)
        snprintf(err, errn, "%s is not an IDX file of unsigned bytes with %d dims", path,
                 want_dims);
    for (int d = 0; ok && d < want_dims; d++) {
        uint8_t b[4];
        ok = gzread(g, b, 4) == 4;
        dims[d] = ok ? ((int64_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]) : 0;
        total *= dims[d];
        if (ok && total > ((int64_t)1 << 28)) { /* 256 MiB: more than any IDX file here */
            snprintf(err, errn, "%s declares %lld bytes of data, too many", path, (long long)total);
            ok = false;
        } else if (!ok) {
            snprintf(err, errn, "%s is truncated in its header", path);
        }
    }
    uint8_t *data = ok ? malloc((size_t)(total ? total : 1)) : NULL;
    if (ok && (!data || gzread(g, data, (unsigned)total) != (int)total)) {
        snprintf(err, errn, "%s is truncated, or memory ran out", path);
        ok = false;
    }
    gzclose(g);
    if (!ok) {
        free(data);
        return -1;
    }
    *out = data;
    return 0;
}

static uint8_t *read_idx(const ex_args *a, const char *file, int want_dims, int64_t dims[3])
{
    char path[1024], err[1200];
    uint8_t *data;
    snprintf(path, sizeof path, "%s/%s", a->data_dir, file);
    if (ex_idx_read(path, want_dims, dims, &data, err, sizeof err) != 0) {
        fprintf(stderr,
                "%s: %s.\nFashion-MNIST comes from the Debian package dataset-fashion-mnist: "
                "apt-get install dataset-fashion-mnist, or pass --data DIR.\n",
                a->name, err);
        exit(1);
    }
    return data;
}

ex_mnist ex_fashion_load(const ex_args *a, bool train)
{
    int64_t di[3], dl[3];
    uint8_t *img =
        read_idx(a, train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz", 3, di);
    uint8_t *lab =
        read_idx(a, train ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz", 1, dl);
    if (di[0] != dl[0] || di[1] != 28 || di[2] != 28) {
        fprintf(stderr, "%s: image and label files do not match\n", a->name);
        exit(1);
    }
    ex_mnist m = { .n = di[0],
                   .images = malloc((size_t)di[0] * 784 * sizeof(float)),
                   .labels = lab };
    for (int64_t i = 0; i < di[0] * 784; i++)
        m.images[i] = (float)img[i] / 255.0f;
    free(img);
    return m;
}

void ex_mnist_free(ex_mnist *m)
{
    free(m->images);
    free(m->labels);
}

void ex_shuffle(lg_ctx *ctx, int64_t *idx, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)lg_rand_below(ctx, (uint64_t)i + 1), t = idx[i];
        idx[i] = idx[j], idx[j] = t;
    }
}

/* ------------------------------------------------------------------ */
/* Progress, CSV, RESULT                                                */
/* ------------------------------------------------------------------ */

void ex_progress_start(ex_progress *p, const char *label, int64_t total)
{
    *p = (ex_progress){ .label = label, .total = total, .start = ex_seconds(), .tty = isatty(1) };
}

void ex_progress_update(ex_progress *p, int64_t done, double loss)
{
    p->done = done;
    double now = ex_seconds(), el = now - p->start, rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(p->total - done) / rate : 0;
    if (p->tty) {
        if (now - p->last < 0.1 && done < p->total)
            return;
        p->last = now;
        int w = 30, fill = p->total ? (int)(w * done / p->total) : w;
        printf("\r%-14s [%.*s%*s] %3d%%  %7.0f/s  eta %4.0fs  loss %.4f", p->label, fill,
               "##############################", w - fill, "",
               p->total ? (int)(100 * done / p->total) : 100, rate, eta, loss);
        fflush(stdout);
    } else {
        int decile = p->total ? (int)(10 * done / p->total) : 10;
        if (decile > p->last_decile && decile < 10) {
            p->last_decile = decile;
            printf("%s: %3d%%  %.0f/s  eta %.0fs  loss %.4f\n", p->label, decile * 10, rate, eta,
                   loss);
        }
    }
}

void ex_progress_end(ex_progress *p, const char *summary)
{
    if (p->tty)
        printf("\r%-100s\r", "");
    printf("%s: %s (%.1fs)\n", p->label, summary, ex_seconds() - p->start);
    fflush(stdout);
}

FILE *ex_csv_open(const ex_args *a, const char *file, const char *header)
{
    FILE *f = fopen(ex_path(a, file), "w");
    if (f)
        fprintf(f, "%s\n", header);
    return f;
}

void ex_csv_row(FILE *f, int n, const double *v)
{
    if (!f)
        return;
    for (int i = 0; i < n; i++)
        fprintf(f, i ? ",%.6g" : "%.6g", v[i]);
    fputc('\n', f);
    fflush(f);
}

void ex_result(const ex_args *a, double seconds, const char *fmt, ...)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    bool bitwise = nmade > 0;
    for (int c = 0; c < nmade; c++) {
        bitwise =
            bitwise && lg_threads_bitwise(made[c], LG_F32) && lg_threads_bitwise(made[c], LG_F64);
        for (int i = 0; i < lg_param_count(made[c]); i++) {
            lg_tensor *p = lg_param_at(made[c], i);
            const unsigned char *d = lg_tensor_data(p);
            size_t n = (size_t)lg_tensor_numel(p) * (lg_tensor_dtype(p) == LG_F32 ? 4 : 8);
            for (size_t k = 0; k < n; k++)
                h = (h ^ d[k]) * 1099511628211u;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    printf("RESULT example=%s ", a->name);
    vprintf(fmt, ap);
    printf(" steps=%lld params=%016llx threads_bitwise=%d seconds=%.1f\n", (long long)nsteps,
           (unsigned long long)h, bitwise ? 1 : 0, seconds);
    va_end(ap);
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* SVG                                                                  */
/* ------------------------------------------------------------------ */

static const char *const palette[10] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" };

void ex_svg_plot(const ex_args *a, const char *file, const char *title, const char *xlabel,
                 const char *ylabel, int nseries, const ex_series *s)
{
    FILE *f = fopen(ex_path(a, file), "w");
    if (!f)
        return;
    const double W = 720, H = 480, L = 70, R = 170, T = 40, B = 50;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < nseries; k++)
        for (int64_t i = 0; i < s[k].n; i++)
            if (isfinite(s[k].x[i]) && isfinite(s[k].y[i])) {
                x0 = fmin(x0, s[k].x[i]), x1 = fmax(x1, s[k].x[i]);
                y0 = fmin(y0, s[k].y[i]), y1 = fmax(y1, s[k].y[i]);
            }
    if (!(x1 > x0))
        x1 = x0 + 1;
    if (!(y1 > y0))
        y1 = y0 + 1;
    double py = 0.05 * (y1 - y0);
    y0 -= py, y1 += py;
#define PX(v) (L + ((v)-x0) / (x1 - x0) * (W - L - R))
#define PY(v) (H - B - ((v)-y0) / (y1 - y0) * (H - T - B))
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' "
            "font-family='sans-serif' "
            "font-size='12'>\n<rect width='100%%' height='100%%' fill='white'/>\n",
            W, H);
    fprintf(f, "<text x='%.0f' y='24' font-size='15' text-anchor='middle'>%s</text>\n",
            (W - R + L) / 2, title);
    fprintf(f, "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='none' stroke='#444'/>\n",
            L, T, W - L - R, H - T - B);
    for (int t = 0; t <= 4; t++) { /* ticks */
        double xv = x0 + (x1 - x0) * t / 4, yv = y0 + (y1 - y0) * t / 4;
        fprintf(f, "<text x='%.1f' y='%.0f' text-anchor='middle'>%.3g</text>\n", PX(xv), H - B + 16,
                xv);
        fprintf(f, "<text x='%.0f' y='%.1f' text-anchor='end'>%.3g</text>\n", L - 6, PY(yv) + 4,
                yv);
        fprintf(f, "<line x1='%.1f' y1='%.0f' x2='%.1f' y2='%.0f' stroke='#ddd'/>\n", PX(xv), T,
                PX(xv), H - B);
        fprintf(f, "<line x1='%.0f' y1='%.1f' x2='%.0f' y2='%.1f' stroke='#ddd'/>\n", L, PY(yv),
                W - R, PY(yv));
    }
    fprintf(f, "<text x='%.0f' y='%.0f' text-anchor='middle'>%s</text>\n", (W - R + L) / 2, H - 12,
            xlabel);
    fprintf(
        f, "<text x='16' y='%.0f' text-anchor='middle' transform='rotate(-90 16 %.0f)'>%s</text>\n",
        (H - B + T) / 2, (H - B + T) / 2, ylabel);
    for (int k = 0; k < nseries; k++) {
        const char *col = palette[k % 10];
        if (s[k].scatter) {
            for (int64_t i = 0; i < s[k].n; i++)
                if (isfinite(s[k].x[i]) && isfinite(s[k].y[i]))
                    fprintf(f, "<circle cx='%.1f' cy='%.1f' r='2' fill='%s' fill-opacity='0.6'/>\n",
                            PX(s[k].x[i]), PY(s[k].y[i]),
                            s[k].cls ? palette[s[k].cls[i] % 10] : col);
        } else {
            fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", col);
            for (int64_t i = 0; i < s[k].n; i++)
                if (isfinite(s[k].x[i]) && isfinite(s[k].y[i]))
                    fprintf(f, "%.1f,%.1f ", PX(s[k].x[i]), PY(s[k].y[i]));
            fprintf(f, "'/>\n");
        }
        if (s[k].name && !s[k].cls) {
            fprintf(f, "<rect x='%.0f' y='%.0f' width='12' height='12' fill='%s'/>", W - R + 12,
                    T + 8 + 20.0 * k, col);
            fprintf(f, "<text x='%.0f' y='%.0f'>%s</text>\n", W - R + 30, T + 18 + 20.0 * k,
                    s[k].name);
        }
    }
    for (int k = 0; k < nseries; k++) /* class legend for coloured scatter */
        if (s[k].cls)
            for (int c = 0; c < 10; c++) {
                fprintf(f, "<rect x='%.0f' y='%.0f' width='12' height='12' fill='%s'/>", W - R + 12,
                        T + 8 + 20.0 * c, palette[c]);
                fprintf(f, "<text x='%.0f' y='%.0f'>%s</text>\n", W - R + 30, T + 18 + 20.0 * c,
                        ex_fashion_classes[c]);
            }
    fprintf(f, "</svg>\n");
    fclose(f);
#undef PX
#undef PY
}

void ex_gather(float *dst, const float *src, int64_t dim, const int64_t *idx, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        memcpy(dst + k * dim, src + idx[k] * dim, (size_t)dim * sizeof(float));
}

void ex_argmax(lg_tensor *logits, int64_t *out)
{
    int64_t n = lg_tensor_shape(logits)[0], c = lg_tensor_shape(logits)[1];
    const float *v = lg_tensor_data(logits);
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < c; j++)
            if (v[i * c + j] > v[i * c + best])
                best = j;
        out[i] = best;
    }
}

double ex_accuracy(lg_ctx *ctx, ex_forward_fn fn, void *user, const float *images,
                   const uint8_t *labels, int64_t n, int64_t dim)
{
    int64_t correct = 0, pred[1000];
    bool training = lg_ctx_training(ctx);
    lg_ctx_set_training(ctx, false);
    lg_no_grad_begin(ctx);
    for (int64_t s = 0; s < n; s += 1000) {
        int64_t m = n - s < 1000 ? n - s : 1000;
        lg_tensor *x = lg_tensor_from(ctx, LG_F32, images + s * dim, 2, (int64_t[]){ m, dim });
        lg_tensor *logits = fn(ctx, x, user);
        ex_check(ctx, "evaluation");
        ex_argmax(logits, pred);
        for (int64_t i = 0; i < m; i++)
            correct += pred[i] == labels[s + i];
        lg_step_end(ctx);
    }
    lg_no_grad_end(ctx);
    lg_ctx_set_training(ctx, training);
    return (double)correct / (double)n;
}

void ex_curve_add(ex_curve *c, double x, double y)
{
    if (c->n < 256)
        c->x[c->n] = x, c->y[c->n++] = y;
}

void ex_plot_curves(const ex_args *a, const char *file, const char *title, const char *xlabel,
                    const char *ylabel, int n, const ex_curve *cs)
{
    ex_series s[10];
    for (int i = 0; i < n && i < 10; i++)
        s[i] = (ex_series){ cs[i].name, cs[i].n, cs[i].x, cs[i].y, false, NULL };
    ex_svg_plot(a, file, title, xlabel, ylabel, n < 10 ? n : 10, s);
}

lg_status ex_optim_step(lg_optim *opt)
{
    int64_t before = lg_optim_steps(opt);
    lg_status s = lg_optim_step(opt);
    if (s == LG_OK && lg_optim_steps(opt) > before)
        nsteps++;
    return s;
}

double ex_step(lg_ctx *ctx, lg_tensor *loss, lg_optim *opt)
{
    if (lg_backward(ctx, loss) != LG_OK)
        ex_check(ctx, "training");
    double v = lg_item(ctx, loss);
    ex_optim_step(opt);
    lg_zero_grad(ctx);
    lg_step_end(ctx);
    return v;
}
