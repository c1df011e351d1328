/*
 * lossgrad: a small, exact autograd engine in C11.
 *
 * Overview
 * --------
 * Everything lives in a context (lg_ctx). Tensors are dense, row-major, up
 * to 8 dimensions, of dtype float32, float64 or int64. There are two kinds:
 *
 *   - parameters (lg_param_new): persistent, live until the ctx is freed,
 *     require gradients, and their gradients accumulate (+=) over backward
 *     calls until lg_zero_grad;
 *   - step tensors (everything else): allocated in the ctx's step arena and
 *     freed all at once by lg_step_end. Using one after its step ended is an
 *     LG_ERR_STALE error.
 *
 * Every differentiable op records itself on the ctx's tape; lg_backward
 * walks the tape in reverse from a scalar loss. Errors never abort: a
 * failing call records a status and a message on the ctx and returns NULL
 * (or the status). The first error sticks, and an op given a NULL input
 * returns NULL without overwriting it, so a whole step can be written and
 * checked once. The library prints nothing unless asked (lg_tensor_print).
 *
 * A complete training loop (this exact program is extracted by CMake,
 * compiled and run as the test header_example): fit y = 3x - 1 with a
 * linear layer, mean squared error and SGD.
 *
 *   #include <lossgrad.h>
 *   #include <stdio.h>
 *
 *   int main(void) {
 *       lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 7, .threads = 1 });
 *       if (!ctx) return 1;
 *       lg_linear *fc = lg_linear_new(ctx, "fc", 1, 1, &(lg_linear_opts){ .dtype = LG_F64 });
 *       lg_optim *opt = lg_optim_new(ctx, &(lg_optim_opts){ .kind = LG_SGD, .lr = 0.1 });
 *       double loss_value = 0;
 *       for (int step = 0; step < 200; step++) {
 *           lg_tensor *x = lg_randn(ctx, LG_F64, 2, (int64_t[]){32, 1});
 *           lg_tensor *y = lg_add_scalar(ctx, lg_mul_scalar(ctx, x, 3.0), -1.0);
 *           lg_tensor *loss = lg_mse_loss(ctx, lg_linear_forward(ctx, fc, x), y, NULL);
 *           if (lg_backward(ctx, loss) != LG_OK) {   // one check for the whole step
 *               fprintf(stderr, "%s\n", lg_ctx_errmsg(ctx));
 *               return 1;
 *           }
 *           loss_value = lg_item(ctx, loss);
 *           lg_optim_step(opt);
 *           lg_zero_grad(ctx);
 *           lg_step_end(ctx);                        // frees x, y, loss and the tape
 *       }
 *       printf("final loss %.3g, w = %.4f\n", loss_value, *(double *)lg_tensor_data(fc->weight));
 *       lg_ctx_free(ctx);
 *       return loss_value < 1e-6 ? 0 : 1;
 *   }
 *
 * Conventions: ctx first in every call; shapes and sizes are int64_t; axes
 * are int and may be negative (counted from the end); every tensor-returning
 * call may return NULL. Unless said otherwise a returned tensor lives until
 * the step ends. Binary ops broadcast NumPy/PyTorch style and need both
 * operands of the same float dtype (no implicit promotion).
 *
 * Options: one rule for every options struct (lg_ctx_params, the loss
 * options, lg_linear_opts, lg_rnn_opts, lg_optim_opts, lg_sched_opts,
 * lg_gradcheck_opts, ...), in C and in C++:
 *
 *   - NULL means PyTorch's defaults (lossgrad's own where PyTorch has none);
 *     lg_optim_new and lg_sched_new, whose defaults depend on a kind, need a
 *     struct (NULL is LG_ERR_NULL).
 *   - lg_<struct>_default() returns the defaults; a field written after it
 *     means exactly the value written, 0 included:
 *
 *         lg_ce_opts o = lg_ce_opts_default();
 *         o.ignore_index = 0;                      // class 0 is ignored
 *         lg_tensor *loss = lg_cross_entropy(ctx, logits, labels, &o);
 *
 *         lg_optim_opts a = lg_optim_opts_default(LG_ADAM);
 *         a.beta2 = 0.98;                          // beta1, eps: PyTorch's
 *
 *   - A struct that is all zero (= {0} in C, {} in C++, memset, a static)
 *     means the defaults too.
 *   - In C, a struct may also be written by hand, e.g.
 *     &(lg_ce_opts){ .ignore_index = -1, .label_smoothing = 0.1 }: it then
 *     means what it holds, and a field it does not write holds 0. For the
 *     fields marked "(non-zero default)" 0 cannot tell "not written" from
 *     "0 meant", so there such a field left at 0 is an LG_ERR_VALUE error
 *     naming it (write it, or start from the _default() function). Every
 *     other field's default is 0 (or false, NULL, the first enum value).
 *
 * So no option ever silently takes a value other than the one written.
 * The first member, defaults_tag, is how the library tells a struct from
 * its _default() function; it is written by that function only (a value
 * no lossgrad call writes there, e.g. from an uninitialised struct, is an
 * LG_ERR_VALUE error too). C++ has no designated initialisers before
 * C++20: start from the _default() function, or from {} for all defaults.
 */
#ifndef LOSSGRAD_H
#define LOSSGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what this header declares
 * is its whole exported interface. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define LG_VERSION_MAJOR 0
#define LG_VERSION_MINOR 1
#define LG_VERSION_PATCH 0
#define LG_MAX_DIMS 8
/* The value lg_*_default() functions put in an options struct's
 * defaults_tag (the low byte holds a kind, for lg_optim_opts and
 * lg_sched_opts). */
#define LG_OPTS_TAG 0x6c670100u

/* ------------------------------------------------------------------ */
/* Status, dtypes, context                                             */
/* ------------------------------------------------------------------ */

typedef enum lg_status {
    LG_OK = 0,
    LG_ERR_NULL,  /* a required argument is NULL */
    LG_ERR_SHAPE, /* shapes do not fit the op's rule */
    LG_ERR_DTYPE, /* a dtype the op does not take, or operands that differ */
    LG_ERR_AXIS,  /* an axis out of range or repeated */
    LG_ERR_INDEX, /* an index or class id out of range */
    LG_ERR_VALUE, /* an option or scalar argument out of its domain */
    LG_ERR_OOM,   /* the allocator returned NULL */
    LG_ERR_STALE, /* a step tensor used after lg_step_end */
    LG_ERR_STATE, /* a call out of order: second backward, non-scalar loss, ... */
    LG_ERR_IO     /* reading or writing a file failed */
} lg_status;

typedef enum lg_dtype { LG_F32 = 0, LG_F64 = 1, LG_I64 = 2 } lg_dtype;

typedef struct lg_ctx lg_ctx;
typedef struct lg_tensor lg_tensor;

/* One allocator hook, Lua style: new_size == 0 frees ptr (returns NULL);
 * otherwise (re)allocates ptr from old_size to new_size bytes, returning
 * NULL on failure. Every byte the library holds comes through it. */
typedef void *(*lg_alloc_fn)(void *user, void *ptr, size_t old_size, size_t new_size);

/* The most kernel threads a ctx takes (lg_ctx_params.threads, lg_ctx_set_threads). */
#define LG_MAX_THREADS 1024

typedef struct lg_ctx_params {
    uint32_t defaults_tag; /* written by the _default() function only (see Options) */
    uint64_t seed;      /* RNG seed (0 is seed 0: runs are reproducible) */
    int threads;        /* kernel threads (matrix products included), 1..LG_MAX_THREADS;
                         * 0 is the default, one thread */
    lg_alloc_fn alloc;  /* NULL: the C library's malloc/realloc/free */
    void *alloc_user;   /* passed to alloc */
    size_t arena_chunk; /* step arena growth in bytes; 0 is the default, 1 MiB */
    size_t step_limit;  /* 0: none; else as lg_ctx_set_step_limit */
} lg_ctx_params;
lg_ctx_params lg_ctx_params_default(void);

/* A new context, or NULL if its own allocation failed. params may be NULL.
 * Invalid params (threads outside 0..LG_MAX_THREADS, a struct that breaks
 * the Options rule) still give a ctx, holding that error (LG_ERR_VALUE,
 * "lg_ctx_new: ...") for lg_ctx_status / lg_ctx_errmsg, which
 * lg_ctx_clear_error does not clear; every call on it then fails until it
 * is freed, so a program that checks its first step sees the reason. */
lg_ctx *lg_ctx_new(const lg_ctx_params *params);
/* Frees the ctx and every tensor, parameter and gradient it owns. NULL is a no-op. */
void lg_ctx_free(lg_ctx *ctx);

/* The first error recorded since the last clear (LG_OK if none), its message. */
lg_status lg_ctx_status(const lg_ctx *ctx);
const char *lg_ctx_errmsg(const lg_ctx *ctx);
void lg_ctx_clear_error(lg_ctx *ctx);
const char *lg_status_name(lg_status s);

/* For code built on lossgrad (modules such as lossgrad/dist.h, callbacks):
 * records an error on ctx as the library's own calls do (the first error
 * sticks; the message should start with the function the user called) and
 * returns s. s = LG_OK or a NULL fmt records nothing. */
lg_status lg_ctx_set_error(lg_ctx *ctx, lg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* A hook lg_backward and lg_backward_with call for each parameter whose
 * gradient the backward has finished: no op still to be walked uses it
 * (parameters this backward does not reach are not reported: unused ones,
 * and those only ops of another output's graph, left on the tape, use). The order is
 * backward's, the parameters used last in the forward first, which is
 * when a data-parallel module can start sending them while backward goes
 * on (lossgrad/dist.h does). fn must not record ops or change parameters;
 * it may read the gradient. One hook per ctx; fn NULL removes it. Not
 * called by lg_grad, lg_hvp or gradcheck's passes. */
typedef void (*lg_grad_ready_fn)(lg_ctx *ctx, lg_tensor *param, void *user);
lg_status lg_ctx_set_grad_ready_hook(lg_ctx *ctx, lg_grad_ready_fn fn, void *user);
/* The hook set (NULL if none), and its user pointer into *user (may be NULL). */
lg_grad_ready_fn lg_ctx_grad_ready_hook(const lg_ctx *ctx, void **user);
/* Persistent memory of ctx for such code: n bytes, zeroed, through the
 * ctx's allocator, counted in lg_ctx_mem_stats and freed with the ctx (or
 * by lg_ctx_mem_free); NULL with LG_ERR_OOM naming who on failure. */
void *lg_ctx_mem_alloc(lg_ctx *ctx, size_t n, const char *who);
void lg_ctx_mem_free(lg_ctx *ctx, void *p); /* NULL is a no-op */

/* Kernel threads, matrix products included (lossgrad splits them; each
 * OpenBLAS call runs on one thread): n in 1..LG_MAX_THREADS, else
 * LG_ERR_VALUE. */
lg_status lg_ctx_set_threads(lg_ctx *ctx, int n);
int lg_ctx_threads(const lg_ctx *ctx);
/* True if results in dt are the same bits at every thread count, 1
 * included: the default. Every kernel splits its work so that the bits do
 * not depend on the threads; a large matrix product is cut into panels of
 * rows that depend on its shape only, each one BLAS call, at 1 thread as
 * at 2 (no BLAS kernel promises that one call gives the bits of its
 * parts: Debian 12's OpenBLAS on SkylakeX does not). False after
 * lg_ctx_set_bitwise_threads(ctx, false), for a NULL ctx and for int64. */
bool lg_threads_bitwise(lg_ctx *ctx, lg_dtype dt);
/* on (the default): the above. off: 1 thread makes each product one BLAS
 * call (up to about 9 % faster on products of a few hundred rows), whose
 * last bits may differ from the panels of 2 threads and more (which still
 * agree with each other). */
lg_status lg_ctx_set_bitwise_threads(lg_ctx *ctx, bool on);

/* Ends the step: frees every step tensor, the tape and intermediate
 * gradients at once (and closes any open scope); the arena keeps its
 * capacity for the next step. A step tensor used afterwards is an
 * LG_ERR_STALE error: always within the next 151 step ends, and after
 * that unless its header's memory was given to a tensor of a later step
 * at the same address (handles are pointers, and memory is reused). */
void lg_step_end(lg_ctx *ctx);

/* An opt-in guard against a forgotten lg_step_end: once the step's memory
 * (data and tensor headers) would pass bytes, the allocation fails with
 * LG_ERR_STATE naming the limit. 0 (the default) means no limit. */
lg_status lg_ctx_set_step_limit(lg_ctx *ctx, size_t bytes);

/* Scopes inside a step, for work in bounded memory (inference over many
 * batches, evaluation between training steps): every step tensor made
 * after lg_scope_begin is freed by the matching lg_scope_end, data and
 * header, except the n tensors in keep (n <= 64), which stay usable as
 * detached leaves (no gradient flows back through them), their data moved
 * down into the freed space. A kept tensor made inside the scope gets a new
 * handle, written into keep[i] (the old one is then stale, as every freed
 * tensor's: LG_ERR_STALE, for at least the next 36 scopes opened at the
 * same place and until the step ends otherwise). Tensors made before the
 * scope are untouched; a gradient made inside the scope for one of them (a
 * backward in the scope) is dropped unless kept (one that existed before
 * keeps what the backward added to it). Scopes nest (64 deep);
 * lg_step_end closes them all. */
lg_status lg_scope_begin(lg_ctx *ctx);
lg_status lg_scope_end(lg_ctx *ctx, int n, lg_tensor **keep);

/* Memory accounting: step memory in use now (data arena plus this step's
 * tensor headers), its high-water mark since the ctx was made, the step
 * arenas' total capacity, persistent bytes, and allocator calls so far. */
typedef struct lg_mem_stats {
    size_t arena_used, arena_high_water, arena_capacity;
    size_t persistent_bytes;
    uint64_t alloc_calls; /* calls to the hook that allocate or reallocate */
    uint64_t free_calls;
} lg_mem_stats;
lg_mem_stats lg_ctx_mem_stats(const lg_ctx *ctx);

/* Opt-in numerics check (off by default; it scans every result): the
 * first op whose float result holds a NaN or an Inf while none of its
 * inputs does is remembered, e.g. "log produced -inf at element 3 from
 * input [4] (leaf)". NaN and Inf still flow through as in PyTorch; nothing
 * is an error. The report is NULL until such an op runs. */
void lg_ctx_check_numerics(lg_ctx *ctx, bool on);
const char *lg_ctx_numerics_report(const lg_ctx *ctx);

/* Fused losses on (the default) or off. A loss with a fused kernel (one
 * pass forward, one backward) also has its composite form, a chain of
 * public primitives, which is the oracle the kernel is tested against;
 * off, every loss runs as its composite (same values to rounding, slower,
 * and every intermediate on the tape). A loss without a fused kernel is a
 * composite either way. */
void lg_ctx_set_fused(lg_ctx *ctx, bool on);

/* No-grad regions nest; ops inside record nothing on the tape. An end
 * without an open begin is LG_ERR_STATE. */
lg_status lg_no_grad_begin(lg_ctx *ctx);
lg_status lg_no_grad_end(lg_ctx *ctx);

/* ------------------------------------------------------------------ */
/* RNG: xoshiro256** seeded through splitmix64; normals by Box-Muller   */
/* ------------------------------------------------------------------ */

/* Reseeds the ctx RNG: the same seed reproduces every later draw. */
void lg_seed(lg_ctx *ctx, uint64_t seed);
/* One uniform double in [0, 1) (53 random bits). */
double lg_rand_uniform(lg_ctx *ctx);
/* One standard normal double (Box-Muller, both values of a pair used). */
double lg_rand_normal(lg_ctx *ctx);
/* One uniform integer in [0, n); n must be > 0 (returns 0 otherwise). */
uint64_t lg_rand_below(lg_ctx *ctx, uint64_t n);

/* ------------------------------------------------------------------ */
/* Tensors: creation (step tensors) and queries                        */
/* ------------------------------------------------------------------ */

/* Each returns a new step tensor of the given shape. LG_ERR_SHAPE for
 * ndim outside 0..8, a negative size, or sizes other than 0 whose product
 * passes 2^60 - 1 (an empty tensor included: PyTorch accepts [0, 2^62, 4],
 * lossgrad does not); LG_ERR_DTYPE where a dtype makes no sense (rand/randn
 * need a float dtype). */
lg_tensor *lg_zeros(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape);
lg_tensor *lg_ones(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape);
lg_tensor *lg_full(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape, double value);
lg_tensor *lg_scalar(lg_ctx *ctx, lg_dtype dt, double value); /* 0-d tensor */
/* [start, start+step, ...) below stop (above, for negative step). 1-D. */
lg_tensor *lg_arange(lg_ctx *ctx, lg_dtype dt, double start, double stop, double step);
/* Copies numel elements of type dt from data (float, double or int64_t). */
lg_tensor *lg_tensor_from(lg_ctx *ctx, lg_dtype dt, const void *data, int ndim,
                          const int64_t *shape);
/* Uniform in [low, high) and normal(mean, std) from the ctx RNG. */
lg_tensor *lg_rand(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape, double low,
                   double high);
lg_tensor *lg_randn(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape);

/* Persistent tensors: parameters live until lg_ctx_free, require grad and
 * start at zero; their data, and their gradients', start on a 64-byte
 * boundary. name may be NULL (it is copied); a name another parameter
 * has is LG_ERR_VALUE (checkpoints save by name). */
lg_tensor *lg_param_new(lg_ctx *ctx, const char *name, lg_dtype dt, int ndim, const int64_t *shape);
int lg_param_count(const lg_ctx *ctx);
lg_tensor *lg_param_at(lg_ctx *ctx, int i);     /* NULL if i is out of range */
/* Buffers: persistent state that is not trained (batch norm's running
 * statistics), as PyTorch's register_buffer: they live until lg_ctx_free,
 * start at zero, never require grad (lg_requires_grad refuses), are not
 * parameters (optimizers, clipping and lg_zero_grad never see them) and are
 * saved and loaded by checkpoints under their names, which share the
 * parameters' namespace. dtype float32, float64 or int64. */
lg_tensor *lg_buffer_new(lg_ctx *ctx, const char *name, lg_dtype dt, int ndim,
                         const int64_t *shape);
int lg_buffer_count(const lg_ctx *ctx);
lg_tensor *lg_buffer_at(lg_ctx *ctx, int i); /* NULL if i is out of range */
const char *lg_tensor_name(const lg_tensor *t); /* NULL for unnamed tensors */
/* Zeroes every parameter's gradient. */
void lg_zero_grad(lg_ctx *ctx);

/* Queries. These are plain accessors: a NULL or stale tensor gives 0 / NULL. */
int lg_tensor_ndim(const lg_tensor *t);
const int64_t *lg_tensor_shape(const lg_tensor *t);
int64_t lg_tensor_dim(const lg_tensor *t, int axis); /* negative axes allowed; -1 if bad */
int64_t lg_tensor_numel(const lg_tensor *t);
lg_dtype lg_tensor_dtype(const lg_tensor *t);
void *lg_tensor_data(lg_tensor *t); /* contiguous row-major; NULL for a stale tensor */
bool lg_tensor_requires_grad(const lg_tensor *t);
/* The accumulated gradient (same shape and dtype), or NULL if none yet. */
lg_tensor *lg_tensor_grad(lg_tensor *t);
/* The value of a one-element tensor as double; NaN and an error otherwise. */
double lg_item(lg_ctx *ctx, lg_tensor *t);
/* Checks that t is usable in ctx now: LG_ERR_STALE (recorded) if not. */
lg_status lg_tensor_check(lg_ctx *ctx, const lg_tensor *t);
/* Switches a leaf's gradient on or off: a step leaf tensor (for inputs you
 * differentiate), or a parameter (off freezes it, as PyTorch's
 * requires_grad_(False): backward gives it no gradient and optimizers skip
 * it, keeping its gradient so far and its state). An op's result is
 * LG_ERR_STATE. */
lg_status lg_requires_grad(lg_ctx *ctx, lg_tensor *t, bool on);
/* Name of the op that made t ("leaf" for leaves). */
const char *lg_tensor_op_name(const lg_tensor *t);

/* Writes t to f: dtype, shape and up to max_elems values (0: all). */
lg_status lg_tensor_print(lg_ctx *ctx, const lg_tensor *t, FILE *f, int64_t max_elems);
/* Copies src's values into dst (same shape, any dtypes; no gradient flows).
 * The usual way to write a parameter from step data. */
lg_status lg_copy_into(lg_ctx *ctx, lg_tensor *dst, const lg_tensor *src);

/* ------------------------------------------------------------------ */
/* Autograd                                                            */
/* ------------------------------------------------------------------ */

/* Backpropagates from a one-element float tensor (gradient 1). Accumulates
 * into parameters and step leaves that require grad. Once per graph: a
 * second backward through the same recorded ops is LG_ERR_STATE. */
lg_status lg_backward(lg_ctx *ctx, lg_tensor *loss);
/* Same, from any tensor with an explicit upstream gradient of its shape. */
lg_status lg_backward_with(lg_ctx *ctx, lg_tensor *out, const lg_tensor *upstream);
/* A step tensor sharing nothing with the tape: same values, no gradient. */
lg_tensor *lg_detach(lg_ctx *ctx, lg_tensor *x);

/* Gradcheck: float64 central differences against the analytic gradient.
 * fn builds the output from n inputs (copies of `inputs`, made requiring
 * grad). A random upstream gradient u gives the scalar sum(u * fn(x)); each
 * input element is perturbed by +-eps. The user's inputs are not changed.
 * Every input must be float64, and so must fn's result, a tensor of this
 * ctx made in the step (fn must not call lg_step_end: LG_ERR_STATE).
 * Prints nothing. */
typedef lg_tensor *(*lg_gradcheck_fn)(lg_ctx *ctx, lg_tensor *const *inputs, void *user);
typedef struct lg_gradcheck_opts {
    uint32_t defaults_tag; /* written by the _default() function only (see Options) */
    double eps;        /* (non-zero default) 1e-6; finite, > 0 */
    double atol, rtol; /* pass if |a-n| <= atol + rtol*|n|; (non-zero defaults) 1e-6 and
                        * 1e-5, lossgrad's own (stricter than torch's 1e-5, 1e-3); >= 0 */
} lg_gradcheck_opts;
lg_gradcheck_opts lg_gradcheck_opts_default(void);
typedef struct lg_gradcheck_report {
    bool ok;
    double max_abs_err, max_rel_err;
    int worst_input;     /* input index of the worst element, -1 if none */
    int64_t worst_index; /* flat index in that input */
    double worst_analytic, worst_numeric;
    int64_t checked; /* elements compared */
} lg_gradcheck_report;
lg_status lg_gradcheck(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n, lg_tensor *const *inputs,
                       const lg_gradcheck_opts *opts, lg_gradcheck_report *report);

/* Gradients as tensors, to any order (torch.autograd.grad).
 *
 * lg_grad computes the gradients of outputs[0..nout) with respect to
 * inputs[0..nin) (each an op result or a leaf that requires grad), with
 * upstream grad_outputs[i] (NULL, or a NULL element, for a one-element
 * output: gradient 1), and writes them to grads[0..nin). It does not touch
 * any tensor's .grad unless accumulate is set. Under create_graph the
 * gradients are on the tape themselves: lg_grad or lg_backward of anything
 * computed from them gives second derivatives (gradient penalties,
 * Hessian-vector products, MAML), and so on to any order. Without it the
 * gradients are plain step tensors.
 *
 * Every op with a taped backward can be walked (lg_op_twice_differentiable
 * tells which); another op on a path from an output to an input is
 * LG_ERR_STATE naming it. Only ops on such a path are walked.
 *
 * retain_graph keeps the walked graph for another lg_grad or lg_backward;
 * LG_RETAIN_DEFAULT means "as create_graph" (PyTorch's rule). Without it
 * the walked ops are consumed as by lg_backward. allow_unused gives NULL
 * for an input the outputs do not reach (else LG_ERR_STATE).
 *
 * A worked example (extracted by CMake, compiled and run as the test
 * higher_order_example): f(x) = sum(x^3) has gradient 3x^2 and Hessian
 * diag(6x), through a gradient of the gradient and through lg_hvp.
 *
 *   #include <lossgrad.h> // higher order
 *   #include <stdio.h>
 *
 *   int main(void) {
 *       lg_ctx *ctx = lg_ctx_new(NULL);
 *       double xv[2] = { 1.0, -2.0 }, vv[2] = { 1.0, 0.5 };
 *       lg_tensor *x = lg_tensor_from(ctx, LG_F64, xv, 1, (int64_t[]){ 2 });
 *       lg_tensor *v = lg_tensor_from(ctx, LG_F64, vv, 1, (int64_t[]){ 2 });
 *       lg_requires_grad(ctx, x, true);
 *       lg_tensor *f = lg_sum(ctx, lg_pow_scalar(ctx, x, 3), 0, NULL, false);
 *       lg_tensor *hv, *g, *h;
 *       lg_hvp(ctx, f, 1, &x, &v, &hv, false);          // H v = 6 x v; f's graph is kept
 *       lg_grad_opts o = lg_grad_opts_default();
 *       o.create_graph = true;                          // g = 3 x^2, itself on the tape
 *       lg_grad(ctx, 1, &f, NULL, 1, &x, &g, &o);
 *       lg_tensor *s = lg_sum(ctx, g, 0, NULL, false);
 *       if (lg_grad(ctx, 1, &s, NULL, 1, &x, &h, NULL) != LG_OK) {  // d sum(g) / dx = 6 x
 *           fprintf(stderr, "%s\n", lg_ctx_errmsg(ctx));
 *           return 1;
 *       }
 *       const double *hd = lg_tensor_data(h), *hvd = lg_tensor_data(hv);
 *       printf("6x = %g %g, H v = %g %g\n", hd[0], hd[1], hvd[0], hvd[1]);
 *       int ok = hd[0] == 6 && hd[1] == -12 && hvd[0] == 6 && hvd[1] == -6;
 *       lg_ctx_free(ctx);
 *       return ok ? 0 : 1;
 *   }
 */
typedef enum lg_retain {
    LG_RETAIN_DEFAULT = 0, /* retain if create_graph */
    LG_RETAIN_YES,
    LG_RETAIN_NO
} lg_retain;
typedef struct lg_grad_opts {
    uint32_t defaults_tag; /* written by the _default() function only (see Options) */
    bool create_graph;     /* record the gradients' ops: they can be differentiated */
    lg_retain retain_graph;
    bool allow_unused;
    bool accumulate; /* also add each gradient's values into its input's .grad */
} lg_grad_opts;
lg_grad_opts lg_grad_opts_default(void);
lg_status lg_grad(lg_ctx *ctx, int nout, lg_tensor *const *outputs,
                  lg_tensor *const *grad_outputs, int nin, lg_tensor *const *inputs,
                  lg_tensor **grads, const lg_grad_opts *opts);
/* lg_backward with PyTorch's create_graph and retain_graph: the gradients
 * of out (upstream: out's shape, or NULL for a one-element out: 1) are
 * added into the .grad of every leaf that requires grad and that out
 * reaches. Under create_graph a step leaf's .grad is itself on the tape
 * (lg_tensor_grad(x) can be differentiated again), as in PyTorch; a
 * parameter's .grad is persistent storage and receives the values only
 * (take a parameter's differentiable gradient with lg_grad). retain_graph
 * as lg_grad's (DEFAULT: as create_graph). Neither set: lg_backward_with
 * (or lg_backward). Runs through the taped backwards when either is set. */
typedef struct lg_backward_opts {
    uint32_t defaults_tag; /* written by the _default() function only (see Options) */
    bool create_graph;
    lg_retain retain_graph;
} lg_backward_opts;
lg_backward_opts lg_backward_opts_default(void);
lg_status lg_backward_ex(lg_ctx *ctx, lg_tensor *out, lg_tensor *upstream,
                         const lg_backward_opts *opts);
/* Hessian-vector product of a one-element f: out[i] = sum_j (d^2 f / dx_i
 * dx_j) v[j], v[j] of inputs[j]'s shape and dtype. Two reverse walks (the
 * gradient with create_graph, then the gradient of its dot product with
 * v); f's graph is kept, so calls may repeat with other v (power
 * iteration, Lanczos). An input f does not reach twice gets zeros.
 * create_graph: out is on the tape (third derivatives). */
lg_status lg_hvp(lg_ctx *ctx, lg_tensor *f, int n, lg_tensor *const *inputs, lg_tensor *const *v,
                 lg_tensor **out, bool create_graph);
/* Jacobian-vector product (forward-mode directional derivative) of y with
 * respect to inputs along v: *out = sum_j (dy / dx_j) v[j], of y's shape.
 * Computed by the double-vjp construction (the gradient with respect to u
 * of (J^T u) . v), so it costs two reverse walks and needs every op on the
 * path to be twice differentiable; y's graph is kept. */
lg_status lg_jvp(lg_ctx *ctx, lg_tensor *y, int n, lg_tensor *const *inputs, lg_tensor *const *v,
                 lg_tensor **out, bool create_graph);
/* Gradgradcheck: lg_gradcheck of the first gradient. With a fixed random
 * upstream u, the checked function is x -> J(x)^T u (lg_grad with
 * create_graph, every input's gradient flattened and joined), so its
 * analytic gradient is the second derivative through the taped backwards
 * and its numeric one central differences of first gradients. Same rules,
 * options and report as lg_gradcheck (worst_index counts over the joined
 * gradients). */
lg_status lg_gradgradcheck(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n,
                           lg_tensor *const *inputs, const lg_gradcheck_opts *opts,
                           lg_gradcheck_report *report);
/* Does op i of the registry have a taped backward (can lg_grad walk it)? */
bool lg_op_twice_differentiable(int i);

/* ------------------------------------------------------------------ */
/* Differentiable primitives. Float inputs unless noted.               */
/* ------------------------------------------------------------------ */

/* Elementwise, broadcasting: c = a op b. Same float dtype. */
lg_tensor *lg_add(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_sub(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_mul(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_div(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
/* a^b; grad wrt b uses log(a) and is 0 where a == 0 and b > 0 (as PyTorch). */
lg_tensor *lg_pow(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
/* Elementwise max/min; at ties the gradient is split in half (as PyTorch). */
lg_tensor *lg_maximum(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_minimum(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);

/* xlogy(x, y) = x log y, and 0 where x == 0 (unless y is NaN). Gradients as
 * PyTorch: dx = log y (0 where x == 0 and y <= 0), dy = x / y. Broadcasts. */
lg_tensor *lg_xlogy(lg_ctx *ctx, lg_tensor *x, lg_tensor *y);

/* Elementwise unary. */
lg_tensor *lg_neg(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_exp(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_log(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_log1p(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_expm1(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_abs(lg_ctx *ctx, lg_tensor *x);  /* grad sign(x), 0 at 0 */
lg_tensor *lg_sign(lg_ctx *ctx, lg_tensor *x); /* grad 0 */
lg_tensor *lg_sqrt(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_square(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_relu(lg_ctx *ctx, lg_tensor *x); /* grad 0 at 0 */
lg_tensor *lg_sigmoid(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_log_sigmoid(lg_ctx *ctx, lg_tensor *x); /* min(x,0) - log1p(exp(-|x|)) */
lg_tensor *lg_tanh(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_erf(lg_ctx *ctx, lg_tensor *x); /* grad 2/sqrt(pi) exp(-x^2) */
/* log1p(exp(beta x))/beta, or x where beta x > threshold (PyTorch's default
 * is beta 1, threshold 20). */
lg_tensor *lg_softplus(lg_ctx *ctx, lg_tensor *x, double beta, double threshold);
lg_tensor *lg_pow_scalar(lg_ctx *ctx, lg_tensor *x, double p); /* x^p */
lg_tensor *lg_mul_scalar(lg_ctx *ctx, lg_tensor *x, double s); /* s x */
lg_tensor *lg_add_scalar(lg_ctx *ctx, lg_tensor *x, double s); /* x + s */
/* min(max(x, lo), hi); either bound may be -INFINITY/INFINITY (absent).
 * Gradient passes where lo <= x <= hi, bounds included (as PyTorch). A NaN
 * bound gives NaN everywhere, with gradient 0 (as torch.clamp). */
lg_tensor *lg_clamp(lg_ctx *ctx, lg_tensor *x, double lo, double hi);

/* Activations, with PyTorch's formulas and its gradients at the kinks. */
typedef enum lg_gelu_approximate { LG_GELU_NONE = 0, LG_GELU_TANH } lg_gelu_approximate;
/* x Phi(x) (NONE: erf), or 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (TANH) */
lg_tensor *lg_gelu(lg_ctx *ctx, lg_tensor *x, lg_gelu_approximate approximate);
lg_tensor *lg_silu(lg_ctx *ctx, lg_tensor *x); /* x sigmoid(x) */
lg_tensor *lg_mish(lg_ctx *ctx, lg_tensor *x); /* x tanh(softplus(x)) */
/* x > 0 ? x : negative_slope x (PyTorch's default slope is 0.01); gradient
 * at 0: the slope. negative_slope finite. */
lg_tensor *lg_leaky_relu(lg_ctx *ctx, lg_tensor *x, double negative_slope);
/* x > 0 ? x : alpha (exp(x) - 1) (default alpha 1); gradient at 0: alpha. */
lg_tensor *lg_elu(lg_ctx *ctx, lg_tensor *x, double alpha);
/* x > 0 ? x : alpha (exp(x / alpha) - 1); alpha finite, not 0 (default 1). */
lg_tensor *lg_celu(lg_ctx *ctx, lg_tensor *x, double alpha);
/* scale elu(x, alpha), scale 1.0507009873554805, alpha 1.6732632423543772 */
lg_tensor *lg_selu(lg_ctx *ctx, lg_tensor *x);
/* clamp to [min_val, max_val] (PyTorch's default -1, 1), gradient 0 at and
 * beyond the bounds (unlike lg_clamp); min_val <= max_val. relu6 is [0, 6]. */
lg_tensor *lg_hardtanh(lg_ctx *ctx, lg_tensor *x, double min_val, double max_val);
lg_tensor *lg_relu6(lg_ctx *ctx, lg_tensor *x);
/* x relu6(x + 3) / 6: gradient 0 below -3, x/3 + 1/2 on [-3, 3], 1 above */
lg_tensor *lg_hardswish(lg_ctx *ctx, lg_tensor *x);
/* relu6(x + 3) / 6: gradient 1/6 on (-3, 3), 0 elsewhere */
lg_tensor *lg_hardsigmoid(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_softsign(lg_ctx *ctx, lg_tensor *x); /* x / (1 + |x|) */

/* Comparisons (broadcasting) give a mask of a's dtype holding 0 or 1; no
 * gradient flows through them. */
lg_tensor *lg_eq(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_ne(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_lt(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_le(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_gt(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_ge(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
/* mask != 0 ? a : b, broadcasting all three. mask: any dtype, no gradient. */
lg_tensor *lg_where(lg_ctx *ctx, lg_tensor *mask, lg_tensor *a, lg_tensor *b);

/* Reductions over axes[0..naxes) (naxes 0 and axes NULL: every axis).
 * keepdim keeps reduced axes as size 1. Sums of float32 accumulate in
 * double. */
lg_tensor *lg_sum(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim);
lg_tensor *lg_mean(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim);
/* max/min: if indices is not NULL it receives an int64 step tensor of the
 * position of the first extreme within the flattened reduced axes (the
 * index along the axis when naxes is 1). The gradient flows to that
 * element. */
lg_tensor *lg_max(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim,
                  lg_tensor **indices);
lg_tensor *lg_min(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim,
                  lg_tensor **indices);
/* log(sum(exp(x))) over axes, shifted by the max (finite for large x). */
lg_tensor *lg_logsumexp(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim);
/* Along one axis, max-shifted. */
lg_tensor *lg_softmax(lg_ctx *ctx, lg_tensor *x, int axis);
lg_tensor *lg_log_softmax(lg_ctx *ctx, lg_tensor *x, int axis);
/* p-norm over axes: (sum |x|^p)^(1/p) for any p but 0 and NaN (negative p
 * too), max |x| for INFINITY, min |x| for -INFINITY, the count of non-zeros
 * for p = 0 (no gradient). The gradient at a zero norm is 0. */
lg_tensor *lg_norm(lg_ctx *ctx, lg_tensor *x, double p, int naxes, const int *axes, bool keepdim);
/* ||x1 - x2 + eps||_p over the last axis, as torch pairwise_distance. */
lg_tensor *lg_pairwise_distance(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, double p, double eps,
                                bool keepdim);

/* Matrix products through BLAS. a:[...,M,K] b:[...,K,N] -> [...,M,N]
 * (with trans_a, a is [...,K,M]; with trans_b, b is [...,N,K]). b may be
 * 2-D and shared by every batch of a; otherwise batch shapes must be equal.
 * Backward uses transpose flags and never copies a transpose. */
lg_tensor *lg_matmul(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_matmul_t(lg_ctx *ctx, lg_tensor *a, lg_tensor *b, bool trans_a, bool trans_b);
/* op(a) op(b) + bias, bias [N] added to every row (PyTorch's addmm and
 * linear): one op, so a linear layer neither walks its output twice nor
 * copies its gradient for the sum. bias NULL: lg_matmul_t. */
lg_tensor *lg_matmul_bias(lg_ctx *ctx, lg_tensor *a, lg_tensor *b, lg_tensor *bias, bool trans_a,
                          bool trans_b);

/* Shape ops. reshape shares storage (one -1 size is inferred). */
lg_tensor *lg_reshape(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape);
lg_tensor *lg_transpose(lg_ctx *ctx, lg_tensor *x, int axis0, int axis1);
lg_tensor *lg_permute(lg_ctx *ctx, lg_tensor *x, const int *perm); /* perm: ndim axes */
/* Elements start, start+step, ... below stop along axis; start/stop may be
 * negative (from the end) and are clipped as Python slices; step >= 1. */
lg_tensor *lg_slice(lg_ctx *ctx, lg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step);
lg_tensor *lg_narrow(lg_ctx *ctx, lg_tensor *x, int axis, int64_t start, int64_t length);
/* Joins n tensors (same dtype, equal shapes but along axis) / stacks them on a new axis. */
lg_tensor *lg_concat(lg_ctx *ctx, int n, lg_tensor *const *xs, int axis);
lg_tensor *lg_stack(lg_ctx *ctx, int n, lg_tensor *const *xs, int axis);
/* Picks slices along axis by a 1-D int64 index: out.shape[axis] = numel(index). */
lg_tensor *lg_index_select(lg_ctx *ctx, lg_tensor *x, int axis, lg_tensor *index);
/* out[i][j][k] = x[i][index[i][j][k]][k] (axis 1), as torch.gather: index is
 * int64 with x's ndim, and no larger than x on the other axes. */
lg_tensor *lg_gather(lg_ctx *ctx, lg_tensor *x, int axis, lg_tensor *index);
/* int64 labels -> [..., num_classes] of dtype dt (no gradient); a label
 * outside [0, num_classes) is LG_ERR_INDEX. */
lg_tensor *lg_one_hot(lg_ctx *ctx, lg_tensor *labels, int64_t num_classes, lg_dtype dt);
/* Cast between float dtypes (gradient is cast back); int64 -> float too
 * (no gradient). Returns a copy even for the same dtype. */
lg_tensor *lg_cast(lg_ctx *ctx, lg_tensor *x, lg_dtype dt);
/* A differentiable copy of x (gradient passes unchanged). */
lg_tensor *lg_clone(lg_ctx *ctx, lg_tensor *x);
/* x broadcast to shape (NumPy rules: x's axes line up with the last ones;
 * each is 1 or equal), a copy; the gradient is summed back. */
lg_tensor *lg_expand(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape);

/* ------------------------------------------------------------------ */
/* Introspection and BLAS                                              */
/* ------------------------------------------------------------------ */

/* The op registry: every differentiable primitive by name. */
int lg_op_count(void);
const char *lg_op_name(int i);

/* OpenBLAS's chosen core (e.g. "SkylakeX", "Prescott") and build config.
 * Debian 12's OpenBLAS 0.3.21 does not recognise some recent CPUs and
 * falls back to the slow generic "Prescott" kernel; set the environment
 * variable OPENBLAS_CORETYPE (e.g. SkylakeX, Haswell) to choose one. */
const char *lg_blas_corename(void);
const char *lg_blas_config(void);

const char *lg_version(void);

#include "lossgrad/loss.h"
#include "lossgrad/nnops.h"
#include "lossgrad/nn.h"
#include "lossgrad/curvature.h"

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* LOSSGRAD_H */
