/* lossgrad-fixtures: the loss conformance runner (../shared/FIXTURES.md).
 *
 *   lossgrad-fixtures FILE...
 *
 * Reads every case of every file, evaluates it through the public API in
 * float64 and in float32, compares the output and every listed gradient
 * with PyTorch's float64 numbers, prints one line per failed case and ends
 * with "N passed, M failed". Exit status 1 if anything failed, 2 if a file
 * could not be read. Unknown losses, options and roles fail the case. */
#include <lossgrad.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    ftensor out, upstream;
    bool has_out, has_upstream, has_err;
    char err[32];
    char opt_key[MAX_OPTS][32], opt_val[MAX_OPTS][64];
    char problem[256]; /* a parse problem found while reading the case */
    int line;
} fcase;

static void tensor_free(ftensor *t)
{
    free(t->v);
    free(t->iv);
    memset(t, 0, sizeof *t);
}

static void case_free(fcase *c)
{
    for (int i = 0; i < c->nin; i++)
        tensor_free(&c->in[i]);
    for (int i = 0; i < c->ngrad; i++)
        tensor_free(&c->grad[i]);
    tensor_free(&c->out);
    tensor_free(&c->upstream);
    memset(c, 0, sizeof *c);
}

/* Parses "<dtype> <ndim> <dims...> : <values...>" (after the record word
 * and, for in/grad, the role). Returns false with c->problem set. */
static bool parse_tensor(char *s, ftensor *t, fcase *c)
{
    /* Every value is a token of at least one character plus a separator,
     * so a line of L characters holds at most L/2 + 1 values: a larger
     * element count is malformed, and checking it bounds the allocation. */
    const long long max_numel = (long long)strlen(s) / 2 + 1;
    char *save = NULL, *tok = strtok_r(s, " \t", &save);
    if (!tok || (strcmp(tok, "f64") && strcmp(tok, "i64"))) {
        snprintf(c->problem, sizeof c->problem, "line %d: bad dtype '%s'", c->line, tok ? tok : "");
        return false;
    }
    t->is_int = !strcmp(tok, "i64");
    tok = strtok_r(NULL, " \t", &save);
    char *end;
    long nd = tok ? strtol(tok, &end, 10) : -1;
    if (!tok || *end || nd < 0 || nd > LG_MAX_DIMS) {
        snprintf(c->problem, sizeof c->problem, "line %d: bad ndim", c->line);
        return false;
    }
    t->ndim = (int)nd;
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        tok = strtok_r(NULL, " \t", &save);
        long long v = tok ? strtoll(tok, &end, 10) : -1;
        if (!tok || *end || v < 0) {
            snprintf(c->problem, sizeof c->problem, "line %d: bad dim %d", c->line, d);
            return false;
        }
        t->shape[d] = v;
    }
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0)
            t->numel = 0;
    for (int d = 0; d < t->ndim && t->numel; d++) {
        if (t->numel > max_numel / t->shape[d]) {
            snprintf(c->problem, sizeof c->problem,
                     "line %d: the shape holds more values than the line can", c->line);
            return false;
        }
        t->numel *= t->shape[d];
    }
    tok = strtok_r(NULL, " \t", &save);
    if (!tok || strcmp(tok, ":")) {
        snprintf(c->problem, sizeof c->problem, "line %d: expected ':' after the dims", c->line);
        return false;
    }
    t->v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *t->v);
    t->iv = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *t->iv);
    if (!t->v || !t->iv) {
        snprintf(c->problem, sizeof c->problem, "line %d: out of memory", c->line);
        return false;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        tok = strtok_r(NULL, " \t", &save);
        if (!tok) {
            snprintf(c->problem, sizeof c->problem, "line %d: %lld values, expected %lld", c->line,
                     (long long)i, (long long)t->numel);
            return false;
        }
        if (t->is_int) {
            t->iv[i] = strtoll(tok, &end, 10);
            t->v[i] = (double)t->iv[i];
        } else {
            t->v[i] = strtod(tok, &end);
        }
        if (*end) {
            snprintf(c->problem, sizeof c->problem, "line %d: bad value '%s'", c->line, tok);
            return false;
        }
    }
    if (strtok_r(NULL, " \t", &save)) {
        snprintf(c->problem, sizeof c->problem, "line %d: more values than %lld", c->line,
                 (long long)t->numel);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                           */
/* ------------------------------------------------------------------ */

typedef struct eval {
    lg_ctx *ctx;
    lg_dtype dt;
    const fcase *c;
    lg_tensor *in[MAX_TENSORS];
    char why[256];
} eval;

static const ftensor *find_in(const fcase *c, const char *role)
{
    for (int i = 0; i < c->nin; i++)
        if (!strcmp(c->in[i].role, role))
            return &c->in[i];
    return NULL;
}

static lg_tensor *input_tensor(eval *e, const char *role)
{
    for (int i = 0; i < e->c->nin; i++)
        if (!strcmp(e->c->in[i].role, role))
            return e->in[i];
    return NULL;
}

static lg_tensor *make_tensor(eval *e, const ftensor *t)
{
    if (t->is_int)
        return lg_tensor_from(e->ctx, LG_I64, t->iv, t->ndim, t->shape);
    lg_tensor *x = lg_zeros(e->ctx, e->dt, t->ndim, t->shape);
    if (!x)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        if (e->dt == LG_F32)
            ((float *)lg_tensor_data(x))[i] = (float)t->v[i];
        else
            ((double *)lg_tensor_data(x))[i] = t->v[i];
    }
    return x;
}

/* Options: each loss lists the keys it takes. An option the case does not
 * give keeps the loss's default (its lg_*_opts_default()). */
typedef struct fopt {
    bool set;
    double value;
} fopt;
typedef struct opts {
    lg_reduction reduction;
    fopt beta, delta, margin, p, eps, alpha, gamma, smooth, temperature, log_input;
    bool ignore_set;
    int64_t ignore_index;
    double label_smoothing;
    int64_t blank;
    bool log_target, swap, zero_infinity, full, sigmoid, softmax, cross_view_only;
} opts;

/* The case's value where it gives one. */
static void setd(double *field, fopt o)
{
    if (o.set)
        *field = o.value;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1"))
        return *out = true, true;
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "0"))
        return *out = false, true;
    return false;
}

static bool parse_num(const char *v, double *out)
{
    char *end;
    *out = strtod(v, &end);
    return *v && !*end;
}

static bool parse_int(const char *v, int64_t *out)
{
    char *end;
    *out = strtoll(v, &end, 10);
    return *v && !*end;
}

static bool parse_opts(eval *e, const char *allowed, opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < e->c->nopt; i++) {
        const char *k = e->c->opt_key[i], *v = e->c->opt_val[i];
        char pat[40];
        snprintf(pat, sizeof pat, " %s ", k);
        if (!strstr(allowed, pat)) {
            snprintf(e->why, sizeof e->why, "unknown option '%s' for %s", k, e->c->loss);
            return false;
        }
        double d;
        bool ok = true;
        if (!strcmp(k, "reduction")) {
            if (!strcmp(v, "mean"))
                o->reduction = LG_REDUCTION_MEAN;
            else if (!strcmp(v, "sum"))
                o->reduction = LG_REDUCTION_SUM;
            else if (!strcmp(v, "none"))
                o->reduction = LG_REDUCTION_NONE;
            else if (!strcmp(v, "batchmean"))
                o->reduction = LG_REDUCTION_BATCHMEAN;
            else
                ok = false;
        } else if (!strcmp(k, "log_target")) {
            ok = parse_bool(v, &o->log_target);
        } else if (!strcmp(k, "swap")) {
            ok = parse_bool(v, &o->swap);
        } else if (!strcmp(k, "zero_infinity")) {
            ok = parse_bool(v, &o->zero_infinity);
        } else if (!strcmp(k, "full")) {
            ok = parse_bool(v, &o->full);
        } else if (!strcmp(k, "sigmoid")) {
            ok = parse_bool(v, &o->sigmoid);
        } else if (!strcmp(k, "softmax")) {
            ok = parse_bool(v, &o->softmax);
        } else if (!strcmp(k, "cross_view_only")) {
            ok = parse_bool(v, &o->cross_view_only);
        } else if (!strcmp(k, "log_input")) {
            bool bv = false;
            o->log_input.set = ok = parse_bool(v, &bv);
            o->log_input.value = bv;
        } else if (!strcmp(k, "ignore_index")) {
            o->ignore_set = ok = parse_int(v, &o->ignore_index);
        } else if (!strcmp(k, "blank")) {
            ok = parse_int(v, &o->blank);
        } else if ((ok = parse_num(v, &d))) {
            fopt set = { true, d };
            if (!strcmp(k, "beta"))
                o->beta = set;
            else if (!strcmp(k, "delta"))
                o->delta = set;
            else if (!strcmp(k, "margin"))
                o->margin = set;
            else if (!strcmp(k, "p"))
                o->p = set;
            else if (!strcmp(k, "eps"))
                o->eps = set;
            else if (!strcmp(k, "label_smoothing"))
                o->label_smoothing = d;
            else if (!strcmp(k, "alpha"))
                o->alpha = set;
            else if (!strcmp(k, "gamma"))
                o->gamma = set;
            else if (!strcmp(k, "smooth"))
                o->smooth = set;
            else if (!strcmp(k, "temperature"))
                o->temperature = set;
            else
                ok = false;
        }
        if (!ok) {
            snprintf(e->why, sizeof e->why, "bad value '%s' for option '%s'", v, k);
            return false;
        }
    }
    return true;
}

typedef struct loss_def {
    const char *name;
    const char *roles;   /* " input target weight " */
    const char *options; /* " reduction beta " */
} loss_def;

static const loss_def losses[] = {
    { "l1_loss", " input target ", " reduction " },
    { "mse_loss", " input target ", " reduction " },
    { "smooth_l1_loss", " input target ", " reduction beta " },
    { "huber_loss", " input target ", " reduction delta " },
    { "kl_div", " input target ", " reduction log_target " },
    { "nll_loss", " input target weight ", " reduction ignore_index " },
    { "binary_cross_entropy", " input target weight ", " reduction " },
    { "binary_cross_entropy_with_logits", " input target weight pos_weight ",
      " reduction label_smoothing " },
    { "cross_entropy", " input target weight ", " reduction ignore_index label_smoothing " },
    { "multilabel_soft_margin_loss", " input target weight ", " reduction " },
    { "hinge_embedding_loss", " input target ", " reduction margin " },
    { "triplet_margin_loss", " anchor positive negative ", " reduction margin p eps swap " },
    { "ctc_loss", " log_probs targets input_lengths target_lengths ",
      " reduction blank zero_infinity " },
    { "poisson_nll_loss", " input target ", " reduction log_input full eps " },
    { "gaussian_nll_loss", " input target var ", " reduction full eps " },
    { "margin_ranking_loss", " input1 input2 target ", " reduction margin " },
    { "multi_margin_loss", " input target weight ", " reduction p margin " },
    { "multilabel_margin_loss", " input target ", " reduction " },
    { "soft_margin_loss", " input target ", " reduction " },
    { "cosine_embedding_loss", " input1 input2 target ", " reduction margin " },
    { "triplet_margin_with_distance_loss", " anchor positive negative ",
      " reduction margin swap " },
    { "sigmoid_focal_loss", " input target ", " reduction alpha gamma " },
    { "dice_loss", " input target weight ", " reduction smooth sigmoid softmax " },
    { "contrastive_loss", " input1 input2 target ", " reduction margin eps " },
    { "nt_xent_loss", " input1 input2 ", " reduction temperature cross_view_only " },
};

/* p of multi_margin_loss: an integer option; anything else is passed on as
 * an invalid value for the library to reject. */
static int64_t int_opt(fopt d, int64_t dflt)
{
    if (!d.set)
        return dflt;
    return d.value == floor(d.value) && fabs(d.value) < 1e9 ? (int64_t)d.value : -1;
}

static lg_tensor *call_loss(eval *e, const loss_def *L, const opts *o)
{
    lg_ctx *ctx = e->ctx;
    lg_tensor *x = input_tensor(e, "input"), *y = input_tensor(e, "target");
    lg_tensor *w = input_tensor(e, "weight");
    const char *n = L->name;
    lg_loss_opts plain = lg_loss_opts_default();
    plain.reduction = o->reduction;
    if (!strcmp(n, "l1_loss"))
        return lg_l1_loss(ctx, x, y, &plain);
    if (!strcmp(n, "mse_loss"))
        return lg_mse_loss(ctx, x, y, &plain);
    if (!strcmp(n, "smooth_l1_loss")) {
        lg_smooth_l1_opts so = lg_smooth_l1_opts_default();
        so.reduction = o->reduction;
        setd(&so.beta, o->beta);
        return lg_smooth_l1_loss(ctx, x, y, &so);
    }
    if (!strcmp(n, "huber_loss")) {
        lg_huber_opts ho = lg_huber_opts_default();
        ho.reduction = o->reduction;
        setd(&ho.delta, o->delta);
        return lg_huber_loss(ctx, x, y, &ho);
    }
    if (!strcmp(n, "kl_div")) {
        lg_kl_div_opts ko = lg_kl_div_opts_default();
        ko.reduction = o->reduction;
        ko.log_target = o->log_target;
        return lg_kl_div(ctx, x, y, &ko);
    }
    if (!strcmp(n, "nll_loss")) {
        lg_nll_opts no = lg_nll_opts_default();
        no.reduction = o->reduction;
        no.weight = w;
        if (o->ignore_set)
            no.ignore_index = o->ignore_index;
        return lg_nll_loss(ctx, x, y, &no);
    }
    if (!strcmp(n, "binary_cross_entropy")) {
        lg_bce_opts bo = lg_bce_opts_default();
        bo.reduction = o->reduction;
        bo.weight = w;
        return lg_binary_cross_entropy(ctx, x, y, &bo);
    }
    if (!strcmp(n, "binary_cross_entropy_with_logits")) {
        lg_bce_logits_opts bo = lg_bce_logits_opts_default();
        bo.reduction = o->reduction;
        bo.weight = w;
        bo.pos_weight = input_tensor(e, "pos_weight");
        bo.label_smoothing = o->label_smoothing;
        return lg_binary_cross_entropy_with_logits(ctx, x, y, &bo);
    }
    if (!strcmp(n, "cross_entropy")) {
        lg_ce_opts co = lg_ce_opts_default();
        co.reduction = o->reduction;
        co.weight = w;
        if (o->ignore_set)
            co.ignore_index = o->ignore_index;
        co.label_smoothing = o->label_smoothing;
        return lg_cross_entropy(ctx, x, y, &co);
    }
    if (!strcmp(n, "multilabel_soft_margin_loss")) {
        lg_mlsm_opts mo = lg_mlsm_opts_default();
        mo.reduction = o->reduction;
        mo.weight = w;
        return lg_multilabel_soft_margin_loss(ctx, x, y, &mo);
    }
    if (!strcmp(n, "hinge_embedding_loss")) {
        lg_hinge_opts ho = lg_hinge_opts_default();
        ho.reduction = o->reduction;
        setd(&ho.margin, o->margin);
        return lg_hinge_embedding_loss(ctx, x, y, &ho);
    }
    if (!strcmp(n, "triplet_margin_loss")) {
        lg_triplet_opts to = lg_triplet_opts_default();
        to.reduction = o->reduction;
        setd(&to.margin, o->margin);
        setd(&to.p, o->p);
        setd(&to.eps, o->eps);
        to.swap = o->swap;
        return lg_triplet_margin_loss(ctx, input_tensor(e, "anchor"), input_tensor(e, "positive"),
                                      input_tensor(e, "negative"), &to);
    }
    lg_tensor *x1 = input_tensor(e, "input1"), *x2 = input_tensor(e, "input2");
    lg_margin_opts mo = lg_margin_opts_default(); /* margin_ranking, cosine_embedding */
    mo.reduction = o->reduction;
    setd(&mo.margin, o->margin);
    if (!strcmp(n, "poisson_nll_loss")) {
        lg_poisson_nll_opts po = lg_poisson_nll_opts_default();
        po.reduction = o->reduction;
        if (o->log_input.set)
            po.log_input = o->log_input.value != 0;
        po.full = o->full;
        setd(&po.eps, o->eps);
        return lg_poisson_nll_loss(ctx, x, y, &po);
    }
    if (!strcmp(n, "gaussian_nll_loss")) {
        lg_gaussian_nll_opts go = lg_gaussian_nll_opts_default();
        go.reduction = o->reduction;
        go.full = o->full;
        setd(&go.eps, o->eps);
        return lg_gaussian_nll_loss(ctx, x, y, input_tensor(e, "var"), &go);
    }
    if (!strcmp(n, "margin_ranking_loss"))
        return lg_margin_ranking_loss(ctx, x1, x2, y, &mo);
    if (!strcmp(n, "multi_margin_loss")) {
        lg_multi_margin_opts mmo = lg_multi_margin_opts_default();
        mmo.reduction = o->reduction;
        mmo.p = int_opt(o->p, mmo.p);
        setd(&mmo.margin, o->margin);
        mmo.weight = w;
        return lg_multi_margin_loss(ctx, x, y, &mmo);
    }
    if (!strcmp(n, "multilabel_margin_loss"))
        return lg_multilabel_margin_loss(ctx, x, y, &plain);
    if (!strcmp(n, "soft_margin_loss"))
        return lg_soft_margin_loss(ctx, x, y, &plain);
    if (!strcmp(n, "cosine_embedding_loss"))
        return lg_cosine_embedding_loss(ctx, x1, x2, y, &mo);
    if (!strcmp(n, "triplet_margin_with_distance_loss")) {
        lg_triplet_distance_opts to = lg_triplet_distance_opts_default();
        to.reduction = o->reduction;
        setd(&to.margin, o->margin);
        to.swap = o->swap;
        return lg_triplet_margin_with_distance_loss(ctx, input_tensor(e, "anchor"),
                                                    input_tensor(e, "positive"),
                                                    input_tensor(e, "negative"), &to);
    }
    if (!strcmp(n, "sigmoid_focal_loss")) {
        lg_focal_opts fo = lg_focal_opts_default();
        fo.reduction = o->reduction;
        setd(&fo.alpha, o->alpha);
        setd(&fo.gamma, o->gamma);
        return lg_sigmoid_focal_loss(ctx, x, y, &fo);
    }
    if (!strcmp(n, "dice_loss")) {
        if (o->sigmoid && o->softmax) {
            snprintf(e->why, sizeof e->why, "dice_loss: sigmoid and softmax both true");
            return NULL;
        }
        lg_dice_opts dopt = lg_dice_opts_default();
        dopt.reduction = o->reduction;
        dopt.activation =
            o->sigmoid ? LG_DICE_SIGMOID : (o->softmax ? LG_DICE_SOFTMAX : LG_DICE_PROBS);
        setd(&dopt.smooth, o->smooth);
        dopt.weight = w;
        return lg_dice_loss(ctx, x, y, &dopt);
    }
    if (!strcmp(n, "contrastive_loss")) {
        lg_contrastive_opts co = lg_contrastive_opts_default();
        co.reduction = o->reduction;
        setd(&co.margin, o->margin);
        setd(&co.eps, o->eps);
        return lg_contrastive_loss(ctx, x1, x2, y, &co);
    }
    if (!strcmp(n, "nt_xent_loss")) {
        lg_nt_xent_opts no = lg_nt_xent_opts_default();
        no.reduction = o->reduction;
        setd(&no.temperature, o->temperature);
        no.cross_view_only = o->cross_view_only;
        return lg_nt_xent_loss(ctx, x1, x2, &no);
    }
    lg_ctc_opts co = lg_ctc_opts_default();
    co.reduction = o->reduction;
    co.blank = o->blank;
    co.zero_infinity = o->zero_infinity;
    return lg_ctc_loss(ctx, input_tensor(e, "log_probs"), input_tensor(e, "targets"),
                       input_tensor(e, "input_lengths"), input_tensor(e, "target_lengths"), &co);
}

/* Compares a computed tensor with the fixture's float64 values. */
static bool compare(eval *e, lg_tensor *got, const ftensor *want, const char *what)
{
    if (lg_tensor_ndim(got) != want->ndim ||
        memcmp(lg_tensor_shape(got), want->shape, (size_t)want->ndim * sizeof(int64_t))) {
        snprintf(e->why, sizeof e->why, "%s: shape differs (ndim %d, expected %d)", what,
                 lg_tensor_ndim(got), want->ndim);
        return false;
    }
    double scale = 1;
    for (int64_t i = 0; i < want->numel; i++)
        if (isfinite(want->v[i]) && fabs(want->v[i]) > scale)
            scale = fabs(want->v[i]);
    for (int64_t i = 0; i < want->numel; i++) {
        double w = want->v[i];
        double g = e->dt == LG_F32 ? ((float *)lg_tensor_data(got))[i]
                                   : ((double *)lg_tensor_data(got))[i];
        bool ok;
        if (isnan(w))
            ok = isnan(g);
        else if (isinf(w))
            ok = g == w;
        else if (e->dt == LG_F64)
            ok = fabs(g - w) <= 1e-9 + 1e-7 * fabs(w);
        else
            ok = fabs(g - w) <= 1e-5 * scale + 1e-4 * fabs(w);
        if (!ok) {
            snprintf(e->why, sizeof e->why, "%s[%lld] = %.17g, expected %.17g", what, (long long)i,
                     g, w);
            return false;
        }
    }
    return true;
}

/* Runs one case in one precision; false with e->why set on failure. */
static bool run_case(const fcase *c, lg_dtype dt, char *why, size_t whyn)
{
    eval e = { .dt = dt, .c = c };
    bool ok = false;
    const loss_def *L = NULL;
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++)
        if (!strcmp(losses[i].name, c->loss))
            L = &losses[i];
    e.ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 1, .threads = 1 });
    if (!e.ctx) {
        snprintf(e.why, sizeof e.why, "out of memory");
        goto done;
    }
    if (!L) {
        snprintf(e.why, sizeof e.why, "unknown loss '%s'", c->loss);
        goto done;
    }
    opts o;
    if (!parse_opts(&e, L->options, &o))
        goto done;
    for (int i = 0; i < c->nin; i++) {
        char pat[40];
        snprintf(pat, sizeof pat, " %s ", c->in[i].role);
        if (!strstr(L->roles, pat)) {
            snprintf(e.why, sizeof e.why, "unknown role '%s' for %s", c->in[i].role, c->loss);
            goto done;
        }
        e.in[i] = make_tensor(&e, &c->in[i]);
        if (!e.in[i] && c->has_err && lg_ctx_status(e.ctx) == LG_ERR_SHAPE) {
            ok = true; /* the library rejects the input's shape itself ([0, 2^62, 4]) */
            goto done;
        }
        if (!e.in[i]) {
            snprintf(e.why, sizeof e.why, "cannot make input '%s': %s", c->in[i].role,
                     lg_ctx_errmsg(e.ctx));
            goto done;
        }
    }
    for (int i = 0; i < c->ngrad; i++) {
        const ftensor *in = find_in(c, c->grad[i].role);
        if (!in || in->is_int) {
            snprintf(e.why, sizeof e.why, "grad line for role '%s' that is %s", c->grad[i].role,
                     in ? "an integer input" : "not an input");
            goto done;
        }
        for (int k = 0; k < c->nin; k++)
            if (!strcmp(c->in[k].role, c->grad[i].role))
                lg_requires_grad(e.ctx, e.in[k], true);
    }
    lg_tensor *out = call_loss(&e, L, &o);
    if (c->has_err) {
        ok = !out && lg_ctx_status(e.ctx) != LG_OK && lg_ctx_errmsg(e.ctx)[0];
        if (!ok)
            snprintf(e.why, sizeof e.why, "expected an error (%s), the loss returned a value",
                     c->err);
        goto done;
    }
    if (!out) {
        snprintf(e.why, sizeof e.why, "error: %s", lg_ctx_errmsg(e.ctx));
        goto done;
    }
    if (!compare(&e, out, &c->out, "out"))
        goto done;
    if (c->ngrad > 0 && lg_tensor_requires_grad(out)) {
        lg_tensor *u = c->has_upstream
                           ? make_tensor(&e, &c->upstream)
                           : lg_ones(e.ctx, dt, lg_tensor_ndim(out), lg_tensor_shape(out));
        if (lg_backward_with(e.ctx, out, u) != LG_OK) {
            snprintf(e.why, sizeof e.why, "backward: %s", lg_ctx_errmsg(e.ctx));
            goto done;
        }
    }
    for (int i = 0; i < c->ngrad; i++) {
        lg_tensor *x = input_tensor(&e, c->grad[i].role);
        lg_tensor *g = lg_tensor_grad(x);
        if (!g) /* not reached by backward: the gradient is zero */
            g = lg_zeros(e.ctx, dt, lg_tensor_ndim(x), lg_tensor_shape(x));
        char what[48];
        snprintf(what, sizeof what, "grad %s", c->grad[i].role);
        if (!compare(&e, g, &c->grad[i], what))
            goto done;
    }
    ok = true;
done:
    if (!ok)
        snprintf(why, whyn, "%s", e.why);
    lg_ctx_free(e.ctx);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Reading files                                                        */
/* ------------------------------------------------------------------ */

typedef struct tally {
    long passed, failed;
} tally;

static void judge(fcase *c, tally *t)
{
    char why[256];
    bool ok = true;
    if (c->problem[0]) {
        printf("FAIL %s: malformed case: %s\n", c->id, c->problem);
        ok = false;
    } else if (!c->has_err && !c->has_out) {
        printf("FAIL %s: malformed case: no out and no err line\n", c->id);
        ok = false;
    } else {
        /* one line per failed case: the precisions that failed, the first reason */
        char why32[256];
        bool ok64 = run_case(c, LG_F64, why, sizeof why);
        bool ok32 = run_case(c, LG_F32, why32, sizeof why32);
        ok = ok64 && ok32;
        if (!ok)
            printf("FAIL %s [%s]: %s\n", c->id,
                   !ok64 && !ok32 ? "float64, float32" : (!ok64 ? "float64" : "float32"),
                   !ok64 ? why : why32);
    }
    if (ok)
        t->passed++;
    else
        t->failed++;
}

static int read_file(const char *path, tally *t)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("FAIL %s: cannot open the file\n", path);
        t->failed++;
        return 2;
    }
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    fcase *c = calloc(1, sizeof *c);
    bool header = false, open_case = false;
    int lineno = 0, rc = 0;
    if (!line || !c) {
        fclose(f);
        free(line);
        free(c);
        return 2;
    }
    while (true) {
        /* read one whole line, however long */
        size_t len = 0;
        int ch;
        while ((ch = fgetc(f)) != EOF && ch != '\n') {
            if (len + 1 >= cap) {
                char *bigger = realloc(line, cap * 2);
                if (!bigger)
                    break;
                line = bigger, cap *= 2;
            }
            line[len++] = (char)ch;
        }
        if (ch == EOF && len == 0)
            break;
        line[len] = '\0';
        lineno++;
        while (len && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        if (!header) {
            if (strcmp(s, "lossgrad-fixture 1")) {
                printf("FAIL %s: line %d: expected 'lossgrad-fixture 1'\n", path, lineno);
                t->failed++;
                rc = 2;
                break;
            }
            header = true;
            continue;
        }
        char *save = NULL, *word = strtok_r(s, " \t", &save), *rest = strtok_r(NULL, "", &save);
        if (!rest)
            rest = "";
        while (isspace((unsigned char)*rest))
            rest++;
        if (!strcmp(word, "case")) {
            if (open_case) {
                snprintf(c->problem, sizeof c->problem, "no 'end' before line %d", lineno);
                judge(c, t);
                case_free(c);
            }
            open_case = true;
            snprintf(c->id, sizeof c->id, "%s", *rest ? rest : "(no id)");
            c->line = lineno;
            continue;
        }
        if (!open_case) {
            printf("FAIL %s: line %d: '%s' outside a case\n", path, lineno, word);
            t->failed++;
            continue;
        }
        c->line = lineno;
        if (c->problem[0] && strcmp(word, "end"))
            continue;
        if (!strcmp(word, "end")) {
            judge(c, t);
            case_free(c);
            open_case = false;
        } else if (!strcmp(word, "loss")) {
            snprintf(c->loss, sizeof c->loss, "%s", rest);
        } else if (!strcmp(word, "opt")) {
            char *s2 = NULL, *k = strtok_r(rest, " \t", &s2), *v = strtok_r(NULL, " \t", &s2);
            if (!k || !v || c->nopt == MAX_OPTS)
                snprintf(c->problem, sizeof c->problem, "line %d: bad opt line", lineno);
            else {
                snprintf(c->opt_key[c->nopt], sizeof c->opt_key[0], "%s", k);
                snprintf(c->opt_val[c->nopt++], sizeof c->opt_val[0], "%s", v);
            }
        } else if (!strcmp(word, "in") || !strcmp(word, "grad")) {
            bool is_in = !strcmp(word, "in");
            int *n = is_in ? &c->nin : &c->ngrad;
            char *s2 = NULL, *role = strtok_r(rest, " \t", &s2), *tail = strtok_r(NULL, "", &s2);
            if (!role || !tail || *n == MAX_TENSORS) {
                snprintf(c->problem, sizeof c->problem, "line %d: bad %s line", lineno, word);
                continue;
            }
            ftensor *ft = is_in ? &c->in[*n] : &c->grad[*n];
            (*n)++;
            snprintf(ft->role, sizeof ft->role, "%s", role);
            parse_tensor(tail, ft, c);
        } else if (!strcmp(word, "out") || !strcmp(word, "upstream")) {
            bool is_out = !strcmp(word, "out");
            ftensor *ft = is_out ? &c->out : &c->upstream;
            if (ft->v) /* a repeated line: a malformed case, not a leak */
                snprintf(c->problem, sizeof c->problem, "line %d: a second '%s' line", lineno,
                         word);
            else if (is_out)
                c->has_out = parse_tensor(rest, ft, c);
            else
                c->has_upstream = parse_tensor(rest, ft, c);
        } else if (!strcmp(word, "err")) {
            c->has_err = true;
            snprintf(c->err, sizeof c->err, "%s", rest);
        } else {
            snprintf(c->problem, sizeof c->problem, "line %d: unknown record '%s'", lineno, word);
        }
    }
    if (open_case) {
        snprintf(c->problem, sizeof c->problem, "the file ends inside the case");
        judge(c, t);
        case_free(c);
    }
    if (!header && rc == 0) {
        printf("FAIL %s: no 'lossgrad-fixture 1' header\n", path);
        t->failed++;
    }
    fclose(f);
    free(line);
    free(c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_FILE...\n", argv[0]);
        return 2;
    }
    tally t = { 0, 0 };
    int rc = 0;
    for (int i = 1; i < argc; i++)
        if (read_file(argv[i], &t) != 0)
            rc = 2;
    printf("%ld passed, %ld failed\n", t.passed, t.failed);
    return rc ? rc : (t.failed > 0);
}
