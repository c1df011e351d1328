/* fuzz_ops: bytes drive a random sequence of public calls (creation with
 * odd shapes and dtypes, every family of op with random axes and options,
 * losses, backward, step ends) on a small pool of tensors that may hold
 * NULL, int64 or stale tensors. Only clean errors are allowed: no crash,
 * no sanitizer report, no leak. */
#include <lossgrad.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

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

/* One of the losses beyond the guide's thirteen, on whatever the pool holds. */
static lg_tensor *other_loss(lg_ctx *ctx, reader *r, lg_tensor *x, lg_tensor *y, lg_tensor *z)
{
    lg_reduction red = (lg_reduction)(next(r) % 4);
    double v = (double)next(r) / 64 - 1;
    switch (next(r) % 13) {
    case 0: {
        lg_poisson_nll_opts o = lg_poisson_nll_opts_default();
        o.reduction = red;
        o.log_input = next(r) & 1;
        o.full = next(r) & 1;
        return lg_poisson_nll_loss(ctx, x, y, &o);
    }
    case 1: {
        lg_gaussian_nll_opts o = lg_gaussian_nll_opts_default();
        o.reduction = red;
        o.full = true;
        return lg_gaussian_nll_loss(ctx, x, y, z, &o);
    }
    case 2:
        return lg_margin_ranking_loss(ctx, x, y, z,
                                      &(lg_margin_opts){ .reduction = red, .margin = v });
    case 3: {
        lg_multi_margin_opts o = lg_multi_margin_opts_default();
        o.reduction = red;
        o.p = next(r) % 4;
        o.margin = v;
        o.weight = z;
        return lg_multi_margin_loss(ctx, x, y, &o);
    }
    case 4: return lg_multilabel_margin_loss(ctx, x, y, &(lg_loss_opts){ .reduction = red });
    case 5: return lg_soft_margin_loss(ctx, x, y, &(lg_loss_opts){ .reduction = red });
    case 6:
        return lg_cosine_embedding_loss(ctx, x, y, z,
                                        &(lg_margin_opts){ .reduction = red, .margin = v });
    case 7: {
        lg_triplet_distance_opts o = lg_triplet_distance_opts_default();
        o.reduction = red;
        o.swap = next(r) & 1;
        return lg_triplet_margin_with_distance_loss(ctx, x, y, z, &o);
    }
    case 8: {
        lg_focal_opts o = lg_focal_opts_default();
        o.reduction = red;
        o.alpha = v;
        o.gamma = v + 1;
        return lg_sigmoid_focal_loss(ctx, x, y, &o);
    }
    case 9: {
        lg_dice_opts o = lg_dice_opts_default();
        o.reduction = red;
        o.activation = (lg_dice_activation)(next(r) % 4);
        o.smooth = v;
        o.weight = z;
        return lg_dice_loss(ctx, x, y, &o);
    }
    case 10: {
        lg_contrastive_opts o = lg_contrastive_opts_default();
        o.reduction = red;
        o.margin = v;
        return lg_contrastive_loss(ctx, x, y, z, &o);
    }
    case 11: {
        lg_nt_xent_opts o = lg_nt_xent_opts_default();
        o.reduction = red;
        o.temperature = v;
        o.cross_view_only = next(r) & 1;
        return lg_nt_xent_loss(ctx, x, y, &o);
    }
    default:
        return lg_binary_cross_entropy_with_logits(
            ctx, x, y,
            &(lg_bce_logits_opts){
                .reduction = red, .weight = z, .pos_weight = NULL, .label_smoothing = v });
    }
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
        int op = next(&r) % 25, a = next(&r) % 8, b = next(&r) % 8, dst = next(&r) % 8;
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
            out = lg_cross_entropy(
                ctx, x, y,
                &(lg_ce_opts){ .ignore_index = -100, .label_smoothing = next(&r) / 200.0 });
            break;
        case 18:
            out = lg_mse_loss(ctx, x, y,
                              &(lg_loss_opts){ .reduction = (lg_reduction)(next(&r) % 5) });
            break;
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
        case 23: out = other_loss(ctx, &r, x, y, pool[dst]); break;
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
