/* checkpoint.h: what the checkpoint files share (internal). checkpoint.c
 * saves, checkpoint_load.c validates and loads (checkpoint_meta.c the
 * metadata, checkpoint_load.h what the two share), checkpoint_file.c does the
 * filesystem's part of both (atomic replace, removal of crashed saves'
 * files, opening only regular files) and words the messages about a file.
 * Rules and reasons: docs/checkpoints.md.
 *
 * File: 8-byte little-endian header length n, n bytes of JSON (cJSON)
 *   { "<name>": {"dtype": "F32"|"F64"|"I64", "shape": [...],
 *                "data_offsets": [begin, end]}, ...,
 *     "__metadata__": {"format": "lossgrad", ...strings...} }
 * padded with spaces to a multiple of 8, then the little-endian data: the
 * tensors back to back, and nothing after them. Optimizer state:
 * "__optim__.<param>.<slot>" (the parameter's dtype and shape) and
 * "__optim__.<param>.step" (I64, 0-d); LBFGS's flat state under its first
 * parameter (LGN_LBFGS_ENTRIES); the optimizer kind, lr and the RNG state
 * go in the metadata (strings).
 */
#ifndef LG_CHECKPOINT_H
#define LG_CHECKPOINT_H

#include "optim.h"

#include <locale.h>
#include <string.h>

/* Optimizer state: "__optim__.<param>.<slot>" (the first optimizer),
 * "__optim__#k.<param>.<slot>" (optimizer k >= 1 of a file of several);
 * parameter names may not begin with LGN_OPT_BASE. */
#define LGN_OPT_BASE "__optim__"
#define LGN_OPT_PREFIX "__optim__."
#define LGN_MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB of JSON is not a checkpoint */

/* What a loaded tensor is for. */
typedef enum lgN_role {
    LGN_SKIP,
    LGN_PARAM,
    LGN_SLOT,
    LGN_STEP,
    LGN_SCALAR,
    LGN_LBFGS /* LBFGS's state: slot is which (lgN_lbfgs_entry_name) */
} lgN_role;

/* One tensor of a file. */
typedef struct lgN_entry {
    const char *name; /* saving: built in scratch; loading: the key in the header */
    lg_dtype dt;
    int ndim;
    int64_t shape[LG_MAX_DIMS];
    uint64_t begin, end; /* data_offsets */
    const void *src;     /* saving: the bytes to write */
    lgN_role role;       /* loading: */
    lg_tensor *param;
    int which;           /* SLOT, STEP, SCALAR: the optimizer (0, or k of "__optim__#k.") */
    int opt_index, slot; /* SLOT, STEP, SCALAR: the parameter's index in it; SLOT, SCALAR:
                          * which */
    uint8_t *staged;     /* the file's bytes, read before anything is written */
    void *dst;
    bool fresh; /* dst is a slot allocated by this load */
} lgN_entry;

static inline const char *lgN_kind_name(int kind)
{
    static const char *const names[LGN_KINDS] = { "sgd",     "adam",     "adamw",  "rmsprop",
                                                  "adagrad", "adadelta", "adamax", "radam",
                                                  "rprop",   "nadam",    "asgd",   "lbfgs" };
    return names[kind];
}

/* LBFGS's state in a file: "__optim__.<first param>.<name>" for these
 * names (PyTorch's state keys), F64 but n_iter and func_evals (0-d I64);
 * d and prev_flat_grad [P], old_dirs and old_stps [nold, P], ro [nold], t
 * and H_diag 0-d (optim.h: lgN_lbfgs_saved). */
#define LGN_LBFGS_ENTRIES 9
static inline const char *lgN_lbfgs_entry_name(int j)
{
    static const char *const names[LGN_LBFGS_ENTRIES] = {
        "d", "prev_flat_grad", "old_dirs", "old_stps", "ro", "t", "H_diag", "n_iter", "func_evals"
    };
    return names[j];
}

static inline size_t lgN_dt_size(lg_dtype dt)
{
    return dt == LG_F32 ? 4 : 8;
}

static inline const char *lgN_dt_tag(lg_dtype dt)
{
    return dt == LG_F32 ? "F32" : (dt == LG_F64 ? "F64" : "I64");
}

static inline bool lgN_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* dtype size times the shape (overflow is checked where shapes are read). */
static inline uint64_t lgN_entry_bytes(const lgN_entry *e)
{
    uint64_t n = lgN_dt_size(e->dt);
    for (int d = 0; d < e->ndim; d++)
        n *= (uint64_t)e->shape[d];
    return n;
}

/* Scratch memory of one save or load: a private arena (chunks of 64 KiB,
 * a big request gets its own), freed before the call returns, so the ctx
 * keeps nothing of a file's size. */
static inline lgC_arena lgN_scratch(void)
{
    return (lgC_arena){ .chunk_size = (size_t)64 << 10 };
}

/* Metadata numbers are written and read in the C locale whatever the
 * program's LC_NUMERIC says (a decimal comma would make files another
 * locale misreads). uselocale is per thread: other threads are untouched. */
typedef struct lgN_c_numeric {
    locale_t c, old;
} lgN_c_numeric;

static inline bool lgN_c_numeric_begin(lgN_c_numeric *l)
{
    l->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (l->c == (locale_t)0)
        return false;
    l->old = uselocale(l->c);
    return true;
}

static inline void lgN_c_numeric_end(lgN_c_numeric *l)
{
    uselocale(l->old);
    freelocale(l->c);
}

/* checkpoint_file.c */

/* The checks of a save's or load's call: path, nopts >= 0, opts[0..nopts)
 * not NULL, of ctx, no optimizer twice; messages name opts[k] when many,
 * else opt. */
LG_HIDDEN lg_status lgN_check_call(lg_ctx *ctx, const char *who, const char *path,
                                   lg_optim *const *opts, int nopts, bool many);

/* "<who>: path '<path>': <rule>", the form of every message about a file
 * (a long path is shortened in the middle so the rule fits). */
LG_HIDDEN lg_status lgN_file_error(lg_ctx *ctx, lg_status st, const char *who, const char *path,
                                   const char *fmt, ...) LG_PRINTF(5, 6);
/* "<who>: <what> path '<path>': <strerror(errno)>", LG_ERR_IO. */
LG_HIDDEN lg_status lgN_io_error(lg_ctx *ctx, const char *who, const char *what, const char *path);
/* Opens path for reading only if it is a regular file, never blocking (a
 * FIFO without a writer would wait forever, a device might never end).
 * The fd, or -1 with the ctx error set; *size is the file's size. */
LG_HIDDEN int lgN_open_regular(lg_ctx *ctx, const char *who, const char *path, uint64_t *size);
/* Reads n bytes at off: 1 done, 0 the file ended first, -1 error (errno). */
LG_HIDDEN int lgN_read_at(int fd, void *buf, uint64_t n, uint64_t off);
/* Writes all n bytes (false with errno set). */
LG_HIDDEN bool lgN_write_all(int fd, const void *data, size_t n);
/* Writes a new file's content to fd; false with errno set on failure. */
typedef bool (*lgN_writer)(int fd, void *user);
/* Replaces path by what write puts in a temporary file next to it,
 * fsync'ed and renamed over path (or over the target of the symbolic link
 * path is). A path naming a FIFO, device or directory is an LG_ERR_IO
 * error that leaves it untouched. */
LG_HIDDEN lg_status lgN_replace_file(lg_ctx *ctx, const char *who, const char *path,
                                     lgN_writer write, void *user);

#endif
