/* options.c: the options structs of the losses, from their LGL_OPTS rows
 * in losses.def, expanded three times: each struct's defaults (tagged, so
 * lgC_opts takes them as written) with its public <type>_default(), its
 * table of fields with non-zero defaults, and its descriptor lgL_desc_<type>
 * (declared in loss.h from the same rows). */
#include "loss.h"

/* clang-format off */
#define LGL_OPT(T, field, value) .field = value,
#define LGL_OPTS(T, ...) static const T dflt_##T = { .defaults_tag = LG_OPTS_TAG, __VA_ARGS__ }; T T##_default(void) { return dflt_##T; }
#include "losses.def"

/* a { NULL } ends each table, so that a struct without a field is legal C */
#define LGL_OPT(T, field, value) LGC_FIELD(T, field, #value),
#define LGL_OPTS(T, ...) static const lgC_optfield fields_##T[] = { __VA_ARGS__ { NULL, 0, 0, NULL } };
#include "losses.def"

#define LGL_OPT(T, field, value)
#define LGL_OPTS(T, ...) const lgC_opts_desc lgL_desc_##T = { #T, #T "_default()", sizeof(T), &dflt_##T, fields_##T, LGC_NELEM(fields_##T) - 1 };
#include "losses.def"
/* clang-format on */
