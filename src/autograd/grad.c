/* grad.c: gradients as tensors (lg_grad), to any order, and the products
 * built from them (lg_hvp, lg_jvp).
 *
 * lg_grad walks the tape from its tail as lg_backward does, but through
 * each op's taped backward (taped.def): the gradients it computes are made
 * with public ops, so under create_graph they are recorded like any other
 * result and can be differentiated again. Gradients travel in each
 * tensor's tgrad field, never in .grad: a parameter's accumulated gradient
 * is untouched unless accumulate is asked for.
 *
 * Only ops on a path to an input asked for are walked: a forward pass over
 * the tape first marks each result that leads to one (tensor->leads).
 * Under create_graph the ops of the gradient are appended to the tape
 * while it is walked; the walk starts from the tail as it was, so it never
 * visits them. Both fields are cleared before returning.
 *
 * Double-vjp: the Jacobian-vector product J v of y = f(x) is the gradient
 * with respect to u of (J^T u) . v, for any u (J^T u is linear in u).
 */
#include "autograd.h"

#include <string.h>

static const lgA_taped_fn taped_fns[LGA_NOPS] = {
#define LG_TAPED(name) [LGA_OP_##name] = lgA_tbw_##name,
#include "taped.def"
#undef LG_TAPED
/* every fused loss: its composite, rebuilt (fused.c) */
#define LG_FUSED_OP(name) [LGA_OP_##name] = lgA_tbw_fused,
#include "../loss/ops.def"
#undef LG_FUSED_OP
};

bool lg_op_twice_differentiable(int i)
{
    return i >= 0 && i < LGA_NOPS && taped_fns[i] != NULL;
}

lg_tensor *lgA_const(lg_ctx *ctx, const lg_tensor *t, double v)
{
    return lg_scalar(ctx, (lg_dtype)t->dtype, v);
}

lg_tensor *lgA_tsum_to(lg_ctx *ctx, lg_tensor *g, const lg_tensor *x)
{
    if (!g || lgT_same_shape(g, x))
        return g;
    int axes[LG_MAX_DIMS], n = 0, lead = g->ndim - x->ndim;
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (x->shape[d - lead] == 1 && g->shape[d] != 1))
            axes[n++] = d;
    lg_tensor *s = n ? lg_sum(ctx, g, n, axes, true) : g;
    return lg_reshape(ctx, s, x->ndim, x->shape);
}

lg_status lgA_taccum(lg_ctx *ctx, lg_tensor *x, lg_tensor *g)
{
    if (!g)
        return ctx->status != LG_OK ? ctx->status : LG_ERR_STATE;
    if (!lgA_tleads(x))
        return LG_OK;
    if (x->consumed) /* its graph is gone: going on would drop that path silently */
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "lg_grad: the graph through a %s op was already used by an earlier "
                          "backward that did not keep it (retain_graph)",
                          lg_op_name(x->op));
    g = lgA_tsum_to(ctx, g, x);
    if (g && x->tgrad)
        g = lg_add(ctx, x->tgrad, g);
    if (!g)
        return ctx->status;
    x->tgrad = g;
    return LG_OK;
}

/* ------------------------------------------------------------------ */
/* Taped backward by rebuilding                                         */
/* ------------------------------------------------------------------ */

/* The walk's state of y's inputs, kept aside while a rebuilt subgraph is
 * walked on its own. */
typedef struct saved_marks {
    lg_tensor *tgrad[8];
    bool leads[8];
} saved_marks;

/* Walks the ops recorded after `tail` (oldest first in ops[0..n)) from
 * out with upstream g, into the tgrad of the tensors marked leads. */
static lg_status walk_new(lg_ctx *ctx, lg_tensor **ops, int64_t n, lg_tensor *out, lg_tensor *g)
{
    for (int64_t k = 0; k < n; k++) {
        lg_tensor *y = ops[k];
        for (int i = 0; i < y->nin && !y->leads; i++)
            y->leads = y->in[i] && lgA_tleads(y->in[i]);
    }
    if (!out->leads)
        return LG_OK;
    out->tgrad = g;
    for (int64_t k = n - 1; k >= 0; k--) {
        lg_tensor *y = ops[k];
        if (!y->tgrad || !y->leads)
            continue;
        lgA_taped_fn fn = taped_fns[y->op];
        if (!fn)
            return lgC_errorf(ctx, LG_ERR_STATE,
                              "lg_grad: the %s op has no taped backward yet, so gradients "
                              "through it cannot be taken with lg_grad (lg_backward can)",
                              lg_op_name(y->op));
        if (fn(ctx, y, y->tgrad) != LG_OK || ctx->status != LG_OK)
            return ctx->status != LG_OK ? ctx->status : LG_ERR_STATE;
    }
    return LG_OK;
}

lg_status lgA_taped_by_rebuild(lg_ctx *ctx, lg_tensor *y, lg_tensor *g, lgA_rebuild_fn rebuild,
                               void *arg)
{
    int n = y->nin;
    if (n > 8)
        return lgC_errorf(ctx, LG_ERR_STATE, "lg_grad: the %s op has %d inputs, at most 8 rebuild",
                          lg_op_name(y->op), n);
    bool need[8], any = false;
    for (int i = 0; i < n; i++)
        any |= need[i] = lgA_tneeds(y, i);
    if (!any)
        return LG_OK;
    /* the outer walk runs under no-grad unless it creates a graph */
    bool create = ctx->no_grad == 0;
    int no_grad = ctx->no_grad;
    bool composite = ctx->composite;
    lg_tensor *tail = ctx->tape_tail;
    saved_marks sm;
    for (int i = 0; i < n; i++) {
        sm.tgrad[i] = y->in[i]->tgrad, sm.leads[i] = y->in[i]->leads;
        y->in[i]->tgrad = NULL, y->in[i]->leads = false;
    }
    ctx->no_grad = 0, ctx->composite = true; /* nested losses as composites too */
    lg_tensor *out = rebuild(ctx, y, arg);
    ctx->composite = composite;
    lg_tensor *grads[8] = { NULL };
    lg_status st = out ? LG_OK : (ctx->status != LG_OK ? ctx->status : LG_ERR_STATE);
    int64_t nops = 0;
    for (lg_tensor *t = ctx->tape_tail; t && t != tail; t = t->tape_prev)
        nops++;
    lg_tensor **ops = st == LG_OK ? lgC_salloc(ctx, (size_t)(nops ? nops : 1) * sizeof *ops,
                                               "lg_grad")
                                  : NULL;
    if (st == LG_OK && !ops)
        st = ctx->status;
    if (st == LG_OK && !lgT_same_shape(out, g))
        st = lgC_errorf(ctx, LG_ERR_STATE, "lg_grad: the %s op's rebuilt form has another shape",
                        lg_op_name(y->op));
    if (st == LG_OK) {
        int64_t k = nops;
        for (lg_tensor *t = ctx->tape_tail; t != tail; t = t->tape_prev)
            ops[--k] = t;
        for (int i = 0; i < n; i++)
            y->in[i]->leads = need[i];
        ctx->no_grad = create ? 0 : 1;
        st = walk_new(ctx, ops, nops, out, g);
        for (int i = 0; i < n; i++)
            grads[i] = need[i] ? y->in[i]->tgrad : NULL;
    }
    for (int64_t k = 0; ops && k < nops; k++) /* the rebuilt subgraph's marks */
        ops[k]->tgrad = NULL, ops[k]->leads = false;
    for (int i = 0; i < n; i++)
        y->in[i]->tgrad = sm.tgrad[i], y->in[i]->leads = sm.leads[i];
    if (!create) /* only the values were wanted: the record goes */
        ctx->tape_tail = tail;
    ctx->no_grad = no_grad;
    for (int i = 0; st == LG_OK && i < n; i++)
        if (need[i] && grads[i]) /* NULL: the rebuilt form does not reach it */
            st = lgA_taccum(ctx, y->in[i], grads[i]);
    return st;
}

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

static const lg_grad_opts grad_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc grad_desc = LGC_DESC0(lg_grad_opts, grad_defaults);

lg_grad_opts lg_grad_opts_default(void)
{
    return grad_defaults;
}

static bool retain_ok(lg_ctx *ctx, const char *who, lg_retain r)
{
    if ((unsigned)r <= LG_RETAIN_NO)
        return true;
    lgC_errorf(ctx, LG_ERR_VALUE,
               "%s: retain_graph = %d, expected LG_RETAIN_DEFAULT, LG_RETAIN_YES or LG_RETAIN_NO",
               who, (int)r);
    return false;
}

/* ------------------------------------------------------------------ */
/* The walk                                                             */
/* ------------------------------------------------------------------ */

typedef struct walk {
    lg_tensor **ops; /* the tape's entries, oldest first */
    int64_t nops;
} walk;

/* The tape as an array, oldest first, in the step arena. */
static bool tape_array(lg_ctx *ctx, const char *who, walk *w)
{
    int64_t n = 0;
    for (lg_tensor *y = ctx->tape_tail; y; y = y->tape_prev)
        n++;
    w->nops = n;
    w->ops = lgC_salloc(ctx, (size_t)(n ? n : 1) * sizeof *w->ops, who);
    if (!w->ops)
        return false;
    for (lg_tensor *y = ctx->tape_tail; y; y = y->tape_prev)
        w->ops[--n] = y;
    return true;
}

/* Clears what the walk wrote in every tensor it may have touched. */
static void clear_marks(const walk *w, int nout, lg_tensor *const *outs, int nin,
                        lg_tensor *const *ins)
{
    for (int64_t k = 0; k < w->nops; k++) {
        lg_tensor *y = w->ops[k];
        y->tgrad = NULL, y->leads = false;
        for (int i = 0; i < y->nin; i++)
            if (y->in[i])
                y->in[i]->tgrad = NULL, y->in[i]->leads = false;
    }
    for (int i = 0; i < nout; i++)
        outs[i]->tgrad = NULL, outs[i]->leads = false;
    for (int i = 0; i < nin; i++)
        ins[i]->tgrad = NULL, ins[i]->leads = false;
}

static lg_status check_args(lg_ctx *ctx, const char *who, int nout, lg_tensor *const *outputs,
                            lg_tensor *const *grad_outputs, int nin, lg_tensor *const *inputs,
                            lg_tensor **grads)
{
    if (!outputs || !inputs || !grads)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: %s is NULL", who,
                          !outputs ? "outputs" : (!inputs ? "inputs" : "grads"));
    if (nout < 1 || nin < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: nout = %d, nin = %d, expected at least 1 each",
                          who, nout, nin);
    for (int i = 0; i < nout; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "outputs[%d]", i);
        if (!lgT_ok_float(ctx, outputs[i], who, arg))
            return ctx->status;
        if (!outputs[i]->requires_grad)
            return lgC_errorf(ctx, LG_ERR_STATE,
                              "%s: outputs[%d] does not require grad (no input marked with "
                              "lg_requires_grad reaches it)",
                              who, i);
        if (outputs[i]->consumed)
            return lgC_errorf(ctx, LG_ERR_STATE,
                              "%s: outputs[%d]'s graph was already walked by a backward that "
                              "did not keep it (retain_graph)",
                              who, i);
        const lg_tensor *u = grad_outputs ? grad_outputs[i] : NULL;
        if (!u) {
            if (outputs[i]->numel != 1) {
                char sh[160];
                lgT_shape_str(outputs[i], sh, sizeof sh);
                return lgC_errorf(ctx, LG_ERR_NULL,
                                  "%s: grad_outputs[%d] is NULL and outputs[%d] has shape %s; "
                                  "only a one-element output takes gradient 1 implicitly",
                                  who, i, i, sh);
            }
            continue;
        }
        snprintf(arg, sizeof arg, "grad_outputs[%d]", i);
        if (!lgT_ok_float(ctx, u, who, arg))
            return ctx->status;
        if (!lgT_same_shape(u, outputs[i]) || u->dtype != outputs[i]->dtype) {
            char a[160], b[160];
            lgT_shape_str(u, a, sizeof a);
            lgT_shape_str(outputs[i], b, sizeof b);
            return lgC_errorf(ctx, LG_ERR_SHAPE,
                              "%s: grad_outputs[%d] is %s %s, expected outputs[%d]'s %s %s", who,
                              i, lgT_dtype_name((lg_dtype)u->dtype), a, i,
                              lgT_dtype_name((lg_dtype)outputs[i]->dtype), b);
        }
    }
    for (int i = 0; i < nin; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "inputs[%d]", i);
        if (!lgT_ok_float(ctx, inputs[i], who, arg))
            return ctx->status;
        if (!inputs[i]->requires_grad)
            return lgC_errorf(ctx, LG_ERR_STATE,
                              "%s: inputs[%d] does not require grad (mark it with "
                              "lg_requires_grad, or compute it from one that does)",
                              who, i);
    }
    return LG_OK;
}

/* Seeds, walks and collects; the caller clears the marks. */
static lg_status run(lg_ctx *ctx, const char *who, const walk *w, int nout,
                     lg_tensor *const *outputs, lg_tensor *const *grad_outputs, int nin,
                     lg_tensor *const *inputs, lg_tensor **grads, const lg_grad_opts *o,
                     bool retain)
{
    /* which results lead to an input: forward over the tape */
    for (int i = 0; i < nin; i++)
        inputs[i]->leads = true;
    for (int64_t k = 0; k < w->nops; k++) {
        lg_tensor *y = w->ops[k];
        for (int i = 0; i < y->nin && !y->leads; i++)
            y->leads = y->in[i] && lgA_tleads(y->in[i]);
    }
    for (int i = 0; i < nout; i++) {
        lg_tensor *u = grad_outputs ? grad_outputs[i] : NULL;
        if (!u) {
            u = lgT_new_like(ctx, outputs[i], who);
            if (!u)
                return ctx->status;
            lgT_fill(u, 1.0);
        }
        if (!outputs[i]->leads)
            continue;
        outputs[i]->tgrad = outputs[i]->tgrad ? lg_add(ctx, outputs[i]->tgrad, u) : u;
        if (!outputs[i]->tgrad)
            return ctx->status;
    }
    for (int64_t k = w->nops - 1; k >= 0; k--) {
        lg_tensor *y = w->ops[k];
        if (!y->tgrad || !y->leads)
            continue;
        lgA_taped_fn fn = taped_fns[y->op];
        if (!fn)
            return lgC_errorf(ctx, LG_ERR_STATE,
                              "%s: the %s op has no taped backward yet, so gradients through it "
                              "cannot be taken with lg_grad (lg_backward can)",
                              who, lg_op_name(y->op));
        lg_tensor *g = y->tgrad;
        if (fn(ctx, y, g) != LG_OK)
            return ctx->status != LG_OK ? ctx->status : LG_ERR_STATE;
        if (ctx->status != LG_OK)
            return ctx->status;
        if (!retain)
            y->consumed = true;
    }
    for (int i = 0; i < nin; i++) {
        grads[i] = inputs[i]->tgrad;
        if (!grads[i] && !o->allow_unused)
            return lgC_errorf(ctx, LG_ERR_STATE,
                              "%s: inputs[%d] is not reached from the outputs (allow_unused "
                              "gives NULL for it)",
                              who, i);
        /* an input that is an output, or reached only by a view, gets its
         * own tensor: the caller may keep it past later walks */
    }
    if (o->accumulate)
        for (int i = 0; i < nin; i++) {
            if (!grads[i])
                continue;
            lg_tensor *dst = lgA_grad_buffer(ctx, inputs[i]);
            if (!dst)
                return ctx->status;
            lgT_sum_to(ctx, dst, grads[i]);
        }
    return LG_OK;
}

/* Drops the consumed entries from the tape (a walk that did not retain). */
static void prune_tape(lg_ctx *ctx)
{
    lg_tensor **keep = &ctx->tape_tail;
    for (lg_tensor *y = ctx->tape_tail, *next; y; y = next) {
        next = y->tape_prev;
        if (!y->consumed) {
            *keep = y;
            keep = &y->tape_prev;
        }
    }
    *keep = NULL;
}

lg_status lg_grad(lg_ctx *ctx, int nout, lg_tensor *const *outputs,
                  lg_tensor *const *grad_outputs, int nin, lg_tensor *const *inputs,
                  lg_tensor **grads, const lg_grad_opts *opts)
{
    static const char who[] = "lg_grad";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_grad_opts o;
    if (!lgC_opts(ctx, who, &grad_desc, opts, &o))
        return ctx->status;
    if (!retain_ok(ctx, who, o.retain_graph))
        return ctx->status;
    for (int i = 0; grads && i < nin; i++)
        grads[i] = NULL;
    lg_status st = check_args(ctx, who, nout, outputs, grad_outputs, nin, inputs, grads);
    if (st != LG_OK)
        return st;
    bool retain = o.retain_graph == LG_RETAIN_DEFAULT ? o.create_graph
                                                       : o.retain_graph == LG_RETAIN_YES;
    walk w;
    if (!tape_array(ctx, who, &w))
        return ctx->status;
    if (!o.create_graph)
        ctx->no_grad++;
    st = run(ctx, who, &w, nout, outputs, grad_outputs, nin, inputs, grads, &o, retain);
    if (!o.create_graph)
        ctx->no_grad--;
    clear_marks(&w, nout, outputs, nin, inputs);
    if (!retain)
        prune_tape(ctx);
    if (st != LG_OK)
        for (int i = 0; i < nin; i++)
            grads[i] = NULL;
    else
        ctx->backwards++;
    return st;
}

/* ------------------------------------------------------------------ */
/* lg_backward with create_graph or retain_graph                        */
/* ------------------------------------------------------------------ */

static const lg_backward_opts backward_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc backward_desc = LGC_DESC0(lg_backward_opts, backward_defaults);

lg_backward_opts lg_backward_opts_default(void)
{
    return backward_defaults;
}

/* The leaves that require grad among the tape's inputs, once each, into a
 * step array; *n their count. */
static lg_tensor **tape_leaves(lg_ctx *ctx, const char *who, int *n)
{
    walk w;
    if (!tape_array(ctx, who, &w))
        return NULL;
    int64_t count = 0;
    for (int64_t k = 0; k < w.nops; k++)
        for (int i = 0; i < w.ops[k]->nin; i++) {
            lg_tensor *x = w.ops[k]->in[i];
            if (x && x->op == LGT_LEAF && x->requires_grad && !x->leads)
                x->leads = true, w.ops[count++] = x; /* ops[0..k) are no longer read */
        }
    for (int64_t k = 0; k < count; k++)
        w.ops[k]->leads = false;
    if (count > INT32_MAX)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: more than 2^31 leaves", who);
    *n = (int)count;
    return w.ops;
}

lg_status lg_backward_ex(lg_ctx *ctx, lg_tensor *out, lg_tensor *upstream,
                         const lg_backward_opts *opts)
{
    static const char who[] = "lg_backward_ex";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_backward_opts o;
    if (!lgC_opts(ctx, who, &backward_desc, opts, &o))
        return ctx->status;
    if (!retain_ok(ctx, who, o.retain_graph))
        return ctx->status;
    if (!o.create_graph && o.retain_graph != LG_RETAIN_YES)
        return upstream ? lg_backward_with(ctx, out, upstream) : lg_backward(ctx, out);
    int n = 0;
    lg_tensor **leaves = tape_leaves(ctx, who, &n);
    if (!leaves)
        return ctx->status;
    if (n == 0)
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "%s: out does not require grad (no leaf marked with lg_requires_grad "
                          "reaches it)",
                          who);
    lg_tensor **g = lgC_salloc(ctx, (size_t)n * sizeof *g, who);
    if (!g)
        return ctx->status;
    lg_grad_opts go = lg_grad_opts_default();
    go.create_graph = o.create_graph;
    go.retain_graph = o.retain_graph;
    go.allow_unused = true;
    if (lg_grad(ctx, 1, &out, upstream ? &upstream : NULL, n, leaves, g, &go) != LG_OK)
        return ctx->status;
    for (int i = 0; i < n; i++) {
        lg_tensor *x = leaves[i];
        if (!g[i])
            continue;
        if (x->persistent) { /* values into the parameter's own gradient */
            lg_tensor *dst = lgA_grad_buffer(ctx, x);
            if (!dst)
                return ctx->status;
            lgT_sum_to(ctx, dst, g[i]);
        } else if (!(x->grad = x->grad ? lg_add(ctx, x->grad, g[i]) : g[i])) {
            return ctx->status;
        }
    }
    return LG_OK;
}

/* ------------------------------------------------------------------ */
/* Products                                                             */
/* ------------------------------------------------------------------ */

/* The arguments of a product: y (one element for the Hessian), the inputs
 * float tensors, v[i] of inputs[i]'s shape and dtype. */
static lg_status check_product(lg_ctx *ctx, const char *who, const char *yname, lg_tensor *y,
                               bool scalar, int n, lg_tensor *const *inputs, lg_tensor *const *v)
{
    if (!inputs || !v)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: %s is NULL", who, !inputs ? "inputs" : "v");
    if (n < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: n = %d, expected at least 1", who, n);
    if (!lgT_ok_float(ctx, y, who, yname))
        return ctx->status;
    if (scalar && y->numel != 1) {
        char sh[160];
        lgT_shape_str(y, sh, sizeof sh);
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: %s has shape %s, expected one element", who,
                          yname, sh);
    }
    for (int i = 0; i < n; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "inputs[%d]", i);
        if (!lgT_ok_float(ctx, inputs[i], who, arg))
            return ctx->status;
        snprintf(arg, sizeof arg, "v[%d]", i);
        if (!lgT_ok_float(ctx, v[i], who, arg))
            return ctx->status;
        if (!lgT_same_shape(v[i], inputs[i]) || v[i]->dtype != inputs[i]->dtype) {
            char a[160], b[160];
            lgT_shape_str(v[i], a, sizeof a);
            lgT_shape_str(inputs[i], b, sizeof b);
            return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: v[%d] is %s %s, expected inputs[%d]'s %s %s",
                              who, i, lgT_dtype_name((lg_dtype)v[i]->dtype), a, i,
                              lgT_dtype_name((lg_dtype)inputs[i]->dtype), b);
        }
    }
    return LG_OK;
}

/* Both products are two reverse walks: g = J^T u (upstream u, NULL: 1)
 * with its graph, y's graph kept; then the gradient of g . v with respect
 * to wrt[0..nwrt) into out (zeros where g . v does not reach, or when g
 * does not depend on anything: a linear y). */
static lg_status double_walk(lg_ctx *ctx, const char *who, lg_tensor *y, lg_tensor *u, int n,
                             lg_tensor *const *inputs, lg_tensor *const *v, int nwrt,
                             lg_tensor *const *wrt, lg_tensor **out, bool create_graph)
{
    lg_tensor *g[64], **gp = n <= 64 ? g : lgC_salloc(ctx, (size_t)n * sizeof *gp, who);
    if (!gp)
        return ctx->status;
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = true;
    o.retain_graph = LG_RETAIN_YES;
    o.allow_unused = true;
    if (lg_grad(ctx, 1, &y, u ? &u : NULL, n, inputs, gp, &o) != LG_OK)
        return ctx->status;
    lg_tensor *s = NULL; /* sum_i g_i . v_i over the g_i that depend on something */
    for (int i = 0; i < n; i++)
        if (gp[i] && gp[i]->requires_grad) {
            lg_tensor *t = lg_sum(ctx, lg_mul(ctx, gp[i], v[i]), 0, NULL, false);
            if (!(s = s ? lg_add(ctx, s, t) : t))
                return ctx->status;
        }
    o.create_graph = create_graph;
    if (s && lg_grad(ctx, 1, &s, NULL, nwrt, wrt, out, &o) != LG_OK)
        return ctx->status;
    for (int i = 0; i < nwrt; i++)
        if (!s || !out[i])
            if (!(out[i] = lgT_zeros_like(ctx, wrt[i], who)))
                return ctx->status;
    return LG_OK;
}

lg_status lg_hvp(lg_ctx *ctx, lg_tensor *f, int n, lg_tensor *const *inputs, lg_tensor *const *v,
                 lg_tensor **out, bool create_graph)
{
    static const char who[] = "lg_hvp";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    if (!out)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: out is NULL", who);
    for (int i = 0; i < n; i++)
        out[i] = NULL;
    if (check_product(ctx, who, "f", f, true, n, inputs, v) != LG_OK)
        return ctx->status;
    return double_walk(ctx, who, f, NULL, n, inputs, v, n, inputs, out, create_graph);
}

lg_status lg_jvp(lg_ctx *ctx, lg_tensor *y, int n, lg_tensor *const *inputs, lg_tensor *const *v,
                 lg_tensor **out, bool create_graph)
{
    static const char who[] = "lg_jvp";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    if (!out)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: out is NULL", who);
    *out = NULL;
    if (check_product(ctx, who, "y", y, false, n, inputs, v) != LG_OK)
        return ctx->status;
    /* u: any value (J^T u is linear in u); zeros, a leaf of this walk */
    lg_tensor *u = lgT_zeros_like(ctx, y, who);
    if (!u)
        return ctx->status;
    u->requires_grad = true;
    return double_walk(ctx, who, y, u, n, inputs, v, 1, &u, out, create_graph);
}
