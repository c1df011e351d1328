/* loss_table.h: src/loss/losses.def expanded once for the test programs
 * (fixture runner, API fuzzer, coverage test): per loss its call wrapper,
 * options defaults, input roles and options as field offsets with a kind.
 * Everything here is generated from the .def rows; nothing names a loss. */
#ifndef LG_LOSS_TABLE_H
#define LG_LOSS_TABLE_H

#include <lossgrad.h>

#include <stddef.h>

enum { LT_MAX_IN = 8 };

/* Calls the loss with its tensor arguments in call order and an options
 * struct of its type. */
typedef lg_tensor *(*lt_call_fn)(lg_ctx *ctx, lg_tensor *const *in, const void *opts);

/* How an option is written: by the field's type, or by its row kind. */
typedef enum lt_kind {
    LT_DOUBLE,
    LT_INT, /* int64_t */
    LT_BOOL,
    LT_REDUCTION, /* lg_reduction */
    LT_TENSOR,    /* lg_tensor *: an optional tensor (weight), given as an input */
    LT_WHOLE,     /* int64_t from a number: whole, or -1 (LG_LOSS_OPT_WHOLE) */
    LT_FLAG       /* bool that, true, sets an enum field (LG_LOSS_FLAG) */
} lt_kind;

typedef struct lt_opt {
    const char *loss, *key;
    lt_kind kind;
    size_t offset;             /* of the field in the loss's options struct */
    void (*set_flag)(void *o); /* LT_FLAG: writes the row's value into the field */
} lt_opt;

typedef struct lt_loss {
    const char *name, *fn_name, *opts_name;
    int nin; /* tensor arguments; its LG_LOSS_IN rows should number as many */
    size_t opts_size;
    void (*defaults)(void *o); /* writes lg_<struct>_default() */
    lt_call_fn call;
} lt_loss;

/* Storage for any loss's options struct. */
typedef union lt_any_opts {
#define LG_LOSS(name, fn, opts_type, defaults_fn, nin) opts_type name;
#include "../src/loss/losses.def"
} lt_any_opts;

/* Every loss, in the .def's order. */
int lt_count(void);
const lt_loss *lt_at(int i);
/* The loss of that PyTorch name, or NULL. */
const lt_loss *lt_find(const char *name);
/* The loss's option rows (LG_LOSS_OPT, _WHOLE, _FLAG), in the .def's order:
 * the i-th, or NULL past the last. */
const lt_opt *lt_opt_at(const lt_loss *L, int i);
/* The option row of that key, or NULL. */
const lt_opt *lt_find_opt(const lt_loss *L, const char *key);
/* The i-th LG_LOSS_IN row's role (call position i), or NULL past the last. */
const char *lt_role(const lt_loss *L, int i);
/* The call position of an input role, or -1. */
int lt_role_index(const lt_loss *L, const char *role);

/* Writes an option into an options struct of L's type. */
void lt_set_double(void *opts, const lt_opt *o, double v);
void lt_set_int(void *opts, const lt_opt *o, int64_t v); /* LT_INT, LT_WHOLE */
void lt_set_bool(void *opts, const lt_opt *o, bool v);   /* LT_BOOL */
void lt_set_reduction(void *opts, const lt_opt *o, lg_reduction v);
void lt_set_tensor(void *opts, const lt_opt *o, lg_tensor *v);

/* A value as the fixture format writes it: true|True|1, false|False|0. */
bool lt_parse_bool(const char *v, bool *out);
/* Parses the text v as row r's kind (reduction none|mean|sum|batchmean,
 * bools as lt_parse_bool, LT_INT as a base-10 integer, LT_DOUBLE and
 * LT_WHOLE as numbers) and writes it; false if it does not parse, or for
 * LT_TENSOR. LT_FLAG is only parsed: lt_apply_flags sets flags. */
bool lt_set_text(void *opts, const lt_opt *r, const char *v);
/* Sets the enum fields chosen by L's flags given true among the n options
 * keys[i] = vals[i] (the last of a key wins). Two true flags of one field:
 * false, with them in clash[0], clash[1] (in row order). */
bool lt_apply_flags(const lt_loss *L, void *opts, int n, const char (*keys)[32],
                    const char (*vals)[64], const lt_opt *clash[2]);

#endif
