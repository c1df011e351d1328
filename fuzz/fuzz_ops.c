/* fuzz_ops: bytes drive a random sequence of public calls (creation with
 * odd shapes and dtypes, every family of op with random axes and options,
 * every loss of src/loss/losses.def with random options, the layer
 * primitives of lossgrad/nnops.h with random sizes and options, backward,
 * step ends) on a small pool of tensors that may hold
 * NULL, int64 or stale tensors. Only clean errors are allowed: no crash,
 * no sanitizer report, no leak. */
#include "../tests/loss_table.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static int next(reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static int64_t dim(reader *r)
{
    return next(r) % 5; /* 0..4, empty dims included */
}

/* A random option value of the row's kind: in and out of its domain. */
static void fuzz_opt(reader *r, void *o, const lt_opt *row, lg_tensor **pool)
{
    static const double specials[] = { 0, -1, 1e-12, 1e300, NAN, INFINITY };
    double v = next(r) & 1 ? specials[next(r) % 6] : (double)next(r) / 64 - 1;
    switch (row->kind) {
    case LT_DOUBLE: lt_set_double(o, row, v); break;
    case LT_INT:
    case LT_WHOLE: lt_set_int(o, row, (int64_t)next(r) - 128); break;
    case LT_BOOL: lt_set_bool(o, row, next(r) & 1); break;
    case LT_REDUCTION: lt_set_reduction(o, row, (lg_reduction)(next(r) % 5)); break;
    case LT_TENSOR: lt_set_tensor(o, row, next(r) & 1 ? pool[next(r) % 8] : NULL); break;
    case LT_FLAG: row->set_flag(o); break;
    }
}

/* Any loss of the registry (src/loss/losses.def) on pool tensors, with
 * options from its _default(), all zero (the by-hand rule) or NULL, and
 * random values for some of its option rows. */
static lg_tensor *registry_loss(lg_ctx *ctx, reader *r, lg_tensor **pool)
{
    const lt_loss *L = lt_at(next(r) % lt_count());
    lg_tensor *in[LT_MAX_IN] = { 0 };
    lt_any_opts o;
    const lt_opt *row;
    for (int i = 0; i < L->nin && i < LT_MAX_IN; i++)
        in[i] = pool[next(r) % 8];
    int how = next(r) % 8;
    if (how == 0)
        return L->call(ctx, in, NULL);
    if (how == 1)
        memset(&o, 0, sizeof o);
    else
        L->defaults(&o);
    for (int i = 0; (row = lt_opt_at(L, i)); i++)
        if (next(r) & 1)
            fuzz_opt(r, &o, row, pool);
    return L->call(ctx, in, &o);
}

/* The layer primitives (lossgrad/nnops.h) with random sizes and options,
 * in and out of their domains. */
static lg_tensor *layer_op(lg_ctx *ctx, reader *r, lg_tensor *x, lg_tensor *y, lg_tensor *z)
{
    int kind = next(r) % 10;
    int64_t small = (int64_t)(next(r) % 5) - 1; /* -1..3 */
    switch (kind) {
    case 0: {
        lg_conv_opts o = next(r) & 1 ? lg_conv_opts_default() : (lg_conv_opts){ 0 };
        o.stride = next(r) % 4, o.padding = small, o.dilation = next(r) % 3, o.groups = next(r) % 3,
        o.padding_kind = (lg_padding_kind)(next(r) % 4);
        o.output_padding = next(r) % 3;
        if (next(r) & 1)
            o.stride_hw[0] = next(r) % 3, o.padding_hw[1] = small;
        switch (next(r) % 4) {
        case 0: return lg_conv1d(ctx, x, y, next(r) & 1 ? z : NULL, &o);
        case 1: return lg_conv2d(ctx, x, y, next(r) & 1 ? z : NULL, &o);
        case 2: return lg_conv_transpose1d(ctx, x, y, next(r) & 1 ? z : NULL, &o);
        default: return lg_conv_transpose2d(ctx, x, y, next(r) & 1 ? z : NULL, &o);
        }
    }
    case 1: {
        lg_max_pool_opts o = lg_max_pool_opts_default();
        o.stride = small, o.padding = next(r) % 3, o.dilation = next(r) % 3,
        o.ceil_mode = next(r) & 1;
        lg_tensor *idx = NULL;
        return next(r) & 1 ? lg_max_pool2d(ctx, x, small + 1, next(r) % 4, &o, &idx)
                           : lg_max_pool1d(ctx, x, small + 1, &o, NULL);
    }
    case 2: {
        lg_avg_pool_opts o = lg_avg_pool_opts_default();
        o.stride = small, o.padding = next(r) % 3, o.ceil_mode = next(r) & 1;
        o.count_include_pad = next(r) & 1, o.divisor_override = small;
        return next(r) & 1 ? lg_avg_pool2d(ctx, x, small + 1, next(r) % 4, &o)
                           : lg_avg_pool1d(ctx, x, small + 1, &o);
    }
    case 3:
        return next(r) & 1 ? lg_adaptive_avg_pool2d(ctx, x, small, next(r) % 4)
                           : lg_adaptive_avg_pool1d(ctx, x, small);
    case 4: {
        lg_interpolate_opts o = lg_interpolate_opts_default();
        o.mode = (lg_interp_mode)(next(r) % 3), o.align_corners = next(r) & 1;
        if (next(r) & 1)
            o.size = small;
        else
            o.scale_factor_hw[0] = (double)next(r) / 64, o.scale_factor_hw[1] = 0.5;
        return lg_interpolate(ctx, x, &o);
    }
    case 5:
        return lg_batch_norm(ctx, x, next(r) & 1 ? y : NULL, next(r) & 1 ? z : NULL,
                             next(r) & 1 ? y : NULL, NULL, next(r) & 1, (double)next(r) / 128,
                             next(r) & 1 ? 1e-5 : -1);
    case 6: {
        int64_t ns[2] = { small, (int64_t)(next(r) % 5) };
        return next(r) & 1 ? lg_layer_norm(ctx, x, (int)(next(r) % 4) - 1, ns, y, z, 1e-5)
                           : lg_group_norm(ctx, x, small, y, z, 1e-5);
    }
    case 7: {
        int axis = (int)(next(r) % 7) - 3;
        switch (next(r) % 4) {
        case 0: return lg_var(ctx, x, 1, &axis, next(r) & 1, next(r) & 1);
        case 1: return lg_std(ctx, x, next(r) % 2, &axis, next(r) & 1, next(r) & 1);
        case 2: return lg_cosine_similarity(ctx, x, y, axis, 1e-8);
        default: return lg_normalize(ctx, x, (double)small, axis, 1e-12);
        }
    }
    case 8: {
        lg_sdpa_opts o = lg_sdpa_opts_default();
        o.is_causal = next(r) & 1, o.attn_mask = next(r) & 1 ? z : NULL;
        o.dropout_p = (double)(next(r) % 3) / 2;
        return lg_scaled_dot_product_attention(ctx, x, y, z, &o);
    }
    default:
        switch (next(r) % 7) {
        case 6: return lg_multinomial(ctx, x, small, next(r) & 1);
        case 0: return lg_gelu(ctx, x, (lg_gelu_approximate)(next(r) % 3));
        case 1: return lg_leaky_relu(ctx, x, (double)small);
        case 2: return lg_celu(ctx, x, (double)small);
        case 3: return lg_hardtanh(ctx, x, (double)small, 1);
        case 4: return lg_mish(ctx, x);
        default: return lg_hardswish(ctx, x);
        }
    }
}

/* lg_grad with random options, from x (upstream y or NULL) to w and the
 * parameter; its first gradient back, or NULL. */
static lg_tensor *grad_op(lg_ctx *ctx, reader *r, lg_tensor *x, lg_tensor *y, lg_tensor *w,
                          lg_tensor *param)
{
    uint8_t bits = next(r);
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = bits & 1;
    o.retain_graph = (lg_retain)((bits >> 1) % 4); /* 3 is out of range: an error */
    o.allow_unused = bits & 8;
    o.accumulate = bits & 16;
    lg_tensor *g[2] = { NULL, NULL };
    lg_grad(ctx, 1, &x, (bits & 32) ? &y : NULL, (bits & 64) ? 2 : 1,
            (lg_tensor *[]){ param, w }, g, &o);
    return g[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = { data, size };
    lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 3, .arena_chunk = 4096 });
    lg_tensor *pool[8] = { 0 };
    int age[8] = { 0 }; /* step ends each tensor has lived through */
    lg_tensor *param = lg_param_new(ctx, "p", LG_F64, 2, (int64_t[]){ 3, 4 });
    pool[0] = param;
    int steps = 0;
    while (r.n && steps++ < 64) {
        int op = next(&r) % 31, a = next(&r) % 8, b = next(&r) % 8, dst = next(&r) % 8;
        lg_tensor *x = pool[a], *y = pool[b], *out = NULL;
        int axis = (int)(next(&r) % 7) - 3;
        lg_dtype dt = (lg_dtype)(next(&r) % 3);
        int nd = next(&r) % 4;
        int64_t shape[3] = { dim(&r), dim(&r), dim(&r) };
        switch (op) {
        case 0: out = lg_randn(ctx, dt, nd, shape); break;
        case 1: out = lg_full(ctx, dt, nd, shape, (double)next(&r) - 128); break;
        case 2: out = lg_add(ctx, x, y); break;
        case 3: out = lg_mul(ctx, x, y); break;
        case 4: out = lg_div(ctx, x, y); break;
        case 5: out = lg_log(ctx, x); break;
        case 6: out = lg_sum(ctx, x, 1, &axis, next(&r) & 1); break;
        case 7: out = lg_max(ctx, x, 1, &axis, next(&r) & 1, NULL); break;
        case 8: out = lg_log_softmax(ctx, x, axis); break;
        case 9: out = lg_matmul_t(ctx, x, y, next(&r) & 1, next(&r) & 1); break;
        case 10: out = lg_reshape(ctx, x, nd, shape); break;
        case 11: out = lg_transpose(ctx, x, axis, (int)(next(&r) % 5) - 2); break;
        case 12:
            out = lg_slice(ctx, x, axis, (int64_t)(next(&r) % 9) - 4, (int64_t)(next(&r) % 9) - 2,
                           next(&r) % 3);
            break;
        case 13: out = lg_concat(ctx, 2, (lg_tensor *[]){ x, y }, axis); break;
        case 14: out = lg_gather(ctx, x, axis, y); break;
        case 15: out = lg_index_select(ctx, x, axis, y); break;
        case 16: out = lg_arange(ctx, dt, 0, (double)(next(&r) % 6), 1); break;
        case 17:
        case 18:
        case 23: out = registry_loss(ctx, &r, pool); break;
        case 19: out = lg_norm(ctx, x, (double)(next(&r) % 5) - 1, 1, &axis, false); break;
        case 20: lg_backward(ctx, x); break;
        case 21: /* pool tensors become stale: using one in the next step must be a
                  * clean error; older handles are dropped, as a correct program
                  * would (their headers are recycled, ASan-poisoned here) */
            lg_step_end(ctx);
            for (int k = 1; k < 8; k++)
                if (++age[k] >= 2)
                    pool[k] = NULL;
            break;
        case 22: lg_ctx_clear_error(ctx); break;
        case 24: /* 4-D tensors, for the 2-d layer ops */
            out = lg_randn(ctx, dt, 4, (int64_t[]){ dim(&r), dim(&r), dim(&r) + 1, dim(&r) + 1 });
            break;
        case 25:
        case 26: out = layer_op(ctx, &r, x, y, pool[next(&r) % 8]); break;
        case 28: out = grad_op(ctx, &r, x, y, pool[next(&r) % 8], param); break;
        case 29: {
            lg_tensor *hv = NULL;
            lg_hvp(ctx, x, 1, &param, &y, &hv, next(&r) & 1);
            out = hv;
            break;
        }
        case 30: lg_requires_grad(ctx, x, next(&r) & 1); break;
        default: out = lg_clamp(ctx, x, -1, next(&r) / 50.0); break;
        }
        if (out && dst != 0)
            pool[dst] = out, age[dst] = 0;
        if (lg_ctx_status(ctx) != LG_OK && !lg_ctx_errmsg(ctx)[0])
            abort(); /* every error has a message */
    }
    lg_ctx_free(ctx);
    return 0;
}
