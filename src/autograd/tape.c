/* tape.c: recording ops and running backward.
 *
 * The tape is a list linked backwards through tensor->tape_prev, in
 * recording order (a topological order). Backward walks it from the tail,
 * calling each op's backward through the registry, then marks the walked
 * ops consumed: one backward per recorded graph, as in PyTorch. Gradients
 * of step tensors live in the arena; of parameters, in persistent memory.
 */
#include "autograd.h"

#include <string.h>

static const char *const op_names[] = {
#define LG_OP(name) #name,
#define LG_FUSED_OP(name) #name,
#include "ops.def"
#undef LG_FUSED_OP
#undef LG_OP
};

static const lgA_backward_fn backward_fns[] = {
#define LG_OP(name) lgA_bw_##name,
#define LG_FUSED_OP(name) lgA_bw_fused,
#include "ops.def"
#undef LG_FUSED_OP
#undef LG_OP
};

int lg_op_count(void)
{
    return LGA_NOPS;
}

const char *lg_op_name(int i)
{
    return (i >= 0 && i < LGA_NOPS) ? op_names[i] : NULL;
}

const char *lg_tensor_op_name(const lg_tensor *t)
{
    if (!lgT_live(t)) /* NULL, or a stale handle: nothing to read */
        return NULL;
    return t->op == LGT_LEAF ? "leaf" : op_names[t->op];
}

void lg_ctx_check_numerics(lg_ctx *ctx, bool on)
{
    if (ctx)
        ctx->check_numerics = on;
}

const char *lg_ctx_numerics_report(const lg_ctx *ctx)
{
    return (ctx && ctx->numerics[0]) ? ctx->numerics : NULL;
}

static int64_t first_nonfinite(const lg_tensor *t)
{
    if (!lgT_is_float((lg_dtype)t->dtype))
        return -1;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = lgT_get(t, i);
        if (v != v || v - v != 0)
            return i;
    }
    return -1;
}

/* The numerics check: remembers the first op turning finite inputs into a
 * non-finite result. */
static void check_numerics(lg_ctx *ctx, int op, const lg_tensor *y, int n, lg_tensor *const *ins)
{
    int64_t at = first_nonfinite(y);
    if (at < 0)
        return;
    for (int i = 0; i < n; i++)
        if (first_nonfinite(ins[i]) >= 0)
            return; /* it came in from an input */
    char from[160] = "no tensor inputs";
    if (n > 0) {
        char shape[96];
        lgT_shape_str(ins[0], shape, sizeof shape);
        snprintf(from, sizeof from, "input %s (%s)%s", shape,
                 ins[0]->name ? ins[0]->name : lg_tensor_op_name(ins[0]),
                 n > 1 ? " and others" : "");
    }
    double v = lgT_get(y, at);
    snprintf(ctx->numerics, sizeof ctx->numerics, "%s produced %s at element %lld from %s",
             op_names[op], v != v ? "NaN" : (v > 0 ? "inf" : "-inf"), (long long)at, from);
}

lg_tensor *lgA_record(lg_ctx *ctx, int op, lg_tensor *y, int n, lg_tensor *const *ins)
{
    if (!y)
        return NULL;
    y->op = op;
    if (ctx->check_numerics && !ctx->numerics[0])
        check_numerics(ctx, op, y, n, ins);
    bool needs = false;
    for (int i = 0; i < n; i++)
        needs |= ins[i]->requires_grad;
    if (!needs || ctx->no_grad > 0) {
        y->nin = 0;
        return y;
    }
    if (n > 3) {
        y->in = lgC_salloc(ctx, (size_t)n * sizeof *y->in, op_names[op]);
        if (!y->in)
            return NULL;
    }
    memcpy(y->in, ins, (size_t)n * sizeof *ins);
    y->nin = n;
    y->requires_grad = true;
    y->tape_prev = ctx->tape_tail;
    ctx->tape_tail = y;
    return y;
}

static lg_tensor *grad_of(lg_ctx *ctx, lg_tensor *x)
{
    if (x->grad)
        return x->grad;
    if (x->persistent) {
        lg_tensor *g = lgC_palloc(ctx, sizeof *g, "lg_backward");
        void *data = g ? lgC_palloc(ctx, (size_t)x->numel * lgT_dtype_size((lg_dtype)x->dtype),
                                    "lg_backward")
                       : NULL;
        if (!data) {
            lgC_pfree(ctx, g);
            return NULL;
        }
        *g = *x;
        g->self = g;
        g->requires_grad = false;
        g->name = NULL;
        g->data = data;
        g->in = g->in_inline;
        x->grad = g;
    } else {
        x->grad = lgT_zeros_like(ctx, x, "lg_backward");
    }
    return x->grad;
}

/* Under gradcheck's fence only the tensors made inside it take gradients:
 * the caller's tensors and parameters that fn uses are left as they were. */
static bool fenced(lg_ctx *ctx, const lg_tensor *x)
{
    return ctx->fence_on &&
           (x->persistent || !lgC_arena_after(lgC_header_pool(ctx), ctx->fence, x));
}

static lg_status accum(lg_ctx *ctx, lg_tensor *x, lg_tensor *g, bool fresh)
{
    if (fenced(ctx, x))
        return LG_OK;
    if (x->consumed)
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "lg_backward: the graph through a %s op was already used by an earlier "
                          "backward (one backward per recorded graph; recompute it)",
                          op_names[x->op]);
    if (!x->grad && !x->persistent && lgT_same_shape(x, g)) {
        if (fresh) {
            x->grad = g; /* adopt the temporary: no zero fill, no copy */
            return LG_OK;
        }
        lg_tensor *c = lgT_new_like(ctx, x, "lg_backward"); /* a copy, not zeros + g */
        if (!c)
            return ctx->status;
        memcpy(c->data, g->data, (size_t)g->numel * lgT_dtype_size((lg_dtype)g->dtype));
        x->grad = c;
        return LG_OK;
    }
    lg_tensor *dst = grad_of(ctx, x);
    if (!dst)
        return ctx->status;
    lgT_sum_to(ctx, dst, g);
    return ctx->status == LG_ERR_OOM ? LG_ERR_OOM : LG_OK;
}

lg_tensor *lgA_grad_buffer(lg_ctx *ctx, lg_tensor *x)
{
    if (fenced(ctx, x)) /* somewhere to write a gradient that is dropped */
        return lgT_zeros_like(ctx, x, "lg_backward");
    if (x->consumed) {
        lgC_errorf(ctx, LG_ERR_STATE,
                   "lg_backward: the graph through a %s op was already used by an earlier "
                   "backward (one backward per recorded graph; recompute it)",
                   op_names[x->op]);
        return NULL;
    }
    return grad_of(ctx, x);
}

lg_tensor *lgA_grad_dest(lg_ctx *ctx, lg_tensor *x, bool *direct)
{
    *direct = x->grad || x->persistent;
    return *direct ? lgA_grad_buffer(ctx, x) : lgT_new_like(ctx, x, "lg_backward");
}

lg_status lgA_accum(lg_ctx *ctx, lg_tensor *x, lg_tensor *g)
{
    return accum(ctx, x, g, true);
}

lg_status lgA_accum_shared(lg_ctx *ctx, lg_tensor *x, const lg_tensor *g)
{
    return accum(ctx, x, (lg_tensor *)g, false);
}

/* x's index in ctx->params if it is a parameter that wants a gradient, else -1. */
static int param_of(const lg_ctx *ctx, const lg_tensor *x)
{
    if (!x->persistent || x->is_buffer || !x->requires_grad)
        return -1;
    int p = x->param_index;
    return p >= 0 && p < ctx->nparams && ctx->params[p] == x ? p : -1;
}

/* The grad-ready hook's schedule: for each parameter, the op of the tape
 * after which the walk meets no other op using it (the earliest recorded
 * user; NULL if none). Step memory, or NULL on OOM (status set). */
static lg_tensor **last_users(lg_ctx *ctx)
{
    lg_tensor **last =
        lgC_salloc(ctx, (size_t)(ctx->nparams ? ctx->nparams : 1) * sizeof *last, "lg_backward");
    if (!last)
        return NULL;
    memset(last, 0, (size_t)ctx->nparams * sizeof *last);
    for (lg_tensor *y = ctx->tape_tail; y; y = y->tape_prev)
        for (int i = 0; i < y->nin; i++) {
            int p = param_of(ctx, y->in[i]);
            if (p >= 0)
                last[p] = y; /* an earlier op overwrites: the last one walked stays */
        }
    return last;
}

/* y was run (it had a gradient): its parameters received theirs from it.
 * reached[p] is set for them. */
static void mark_reached(lg_ctx *ctx, bool *reached, const lg_tensor *y)
{
    for (int i = 0; i < y->nin; i++) {
        int p = param_of(ctx, y->in[i]);
        if (p >= 0)
            reached[p] = true;
    }
}

/* Reports the parameters whose last user y was, if this backward reached
 * them (an op of another output's graph, left on the tape, uses a
 * parameter without giving it a gradient). */
static void report_ready(lg_ctx *ctx, lg_tensor **last, const bool *reached, const lg_tensor *y)
{
    for (int i = 0; i < y->nin; i++) {
        int p = param_of(ctx, y->in[i]);
        if (p >= 0 && last[p] == y && reached[p]) {
            last[p] = NULL; /* once, if y uses it twice */
            ctx->grad_ready(ctx, ctx->params[p], ctx->grad_ready_user);
        }
    }
}

lg_status lg_backward_with(lg_ctx *ctx, lg_tensor *out, const lg_tensor *upstream)
{
    static const char who[] = "lg_backward";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    if (!lgT_ok_float(ctx, out, who, "out") || !lgT_ok_float(ctx, upstream, who, "upstream"))
        return ctx->status;
    if (!lgT_same_shape(out, upstream) || out->dtype != upstream->dtype) {
        char a[160], b[160];
        lgT_shape_str(out, a, sizeof a);
        lgT_shape_str(upstream, b, sizeof b);
        return lgC_errorf(
            ctx, LG_ERR_SHAPE, "%s: upstream is %s %s, expected out's shape and dtype %s %s", who,
            lgT_dtype_name((lg_dtype)upstream->dtype), b, lgT_dtype_name((lg_dtype)out->dtype), a);
    }
    if (!out->requires_grad)
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "%s: out does not require grad (no parameter or input marked with "
                          "lg_requires_grad reaches it)",
                          who);
    if (out->consumed)
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "%s: out was already backpropagated (one backward per recorded graph)",
                          who);
    /* the hook's schedule first: failing, it leaves out's gradient as it was */
    lg_tensor **last = NULL;
    bool *reached = NULL;
    if (ctx->grad_ready && !ctx->fence_on) {
        if (!(last = last_users(ctx)) ||
            !(reached = lgC_salloc(ctx, (size_t)(ctx->nparams ? ctx->nparams : 1), who)))
            return ctx->status;
        memset(reached, 0, (size_t)ctx->nparams);
    }
    if (lgA_accum_shared(ctx, out, upstream) != LG_OK)
        return ctx->status;
    /* Ops that received a gradient are run and consumed; the others (not
     * on this output's graph) stay on the tape for a later backward. */
    lg_status st = LG_OK;
    ctx->backwards++;
    lg_tensor **keep = &ctx->tape_tail, *next;
    for (lg_tensor *y = ctx->tape_tail; y; y = next) {
        next = y->tape_prev;
        if (!y->grad) {
            *keep = y;
            keep = &y->tape_prev;
        } else {
            if (st == LG_OK) {
                st = backward_fns[y->op](ctx, y);
                if (st == LG_OK && ctx->status == LG_ERR_OOM)
                    st = LG_ERR_OOM;
            }
            y->consumed = true;
            if (last)
                mark_reached(ctx, reached, y);
        }
        if (last && st == LG_OK)
            report_ready(ctx, last, reached, y);
    }
    *keep = NULL;
    return st;
}

lg_status lg_backward(lg_ctx *ctx, lg_tensor *loss)
{
    static const char who[] = "lg_backward";
    if (!ctx)
        return LG_ERR_NULL;
    if (!lgT_ok_float(ctx, loss, who, "loss"))
        return ctx->status;
    if (loss->numel != 1) {
        char a[160];
        lgT_shape_str(loss, a, sizeof a);
        return lgC_errorf(ctx, LG_ERR_STATE,
                          "%s: loss has shape %s (%lld elements), expected one element; use "
                          "lg_backward_with to give an upstream gradient",
                          who, a, (long long)loss->numel);
    }
    lg_tensor *one = lgT_new_like(ctx, loss, who);
    if (!one)
        return ctx->status;
    lgT_fill(one, 1.0);
    return lg_backward_with(ctx, loss, one);
}

lg_tensor *lg_detach(lg_ctx *ctx, lg_tensor *x)
{
    if (!ctx || !lgT_ok(ctx, x, "lg_detach", "x"))
        return NULL;
    return lgT_view(ctx, x, x->ndim, x->shape, "lg_detach");
}
