/* opts.c: resolving a user's options struct into the values a call uses.
 *
 * The rule (lossgrad.h's overview): NULL and an all-zero struct mean the
 * defaults; a struct that starts from its lg_*_default() function carries
 * a tag, and then every field means exactly what it holds; a struct
 * written by hand (no tag) means what it holds too, except that a field
 * whose default is not zero may not be left at 0 there, because 0 could be
 * the value meant or a field never written. That case is an error naming
 * the field, never a silent choice.
 */
#include "core.h"

#include <string.h>

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

bool lgC_opts_zero_field(const void *user, const lgC_optfield *f)
{
    return all_zero((const unsigned char *)user + f->offset, f->size);
}

lgC_opts_kind lgC_opts_classify(lg_ctx *ctx, const char *who, const lgC_opts_desc *d,
                                const void *user, uint32_t *kind)
{
    if (!user)
        return LGC_OPTS_DEFAULT;
    uint32_t tag;
    memcpy(&tag, user, sizeof tag);
    if (tag != 0) {
        if ((tag & ~LGC_OPTS_KIND_MASK) != LG_OPTS_TAG) {
            lgC_error(ctx, LG_ERR_VALUE,
                      "%s: the %s struct's defaults_tag is %#x, which no lossgrad call writes "
                      "(uninitialised memory, or a positional initialiser?): start from %s "
                      "or write the fields by name",
                      who, d->type, (unsigned)tag, d->defaults_fn);
            return LGC_OPTS_BAD;
        }
        *kind = tag & LGC_OPTS_KIND_MASK;
        return LGC_OPTS_TAGGED;
    }
    if (all_zero((const unsigned char *)user, d->size))
        return LGC_OPTS_DEFAULT;
    return LGC_OPTS_HAND;
}

bool lgC_opts_check_hand(lg_ctx *ctx, const char *who, const lgC_opts_desc *d, const void *user,
                         const lgC_optfield *fields, int nfields)
{
    for (int i = 0; i < nfields; i++) {
        if (!lgC_opts_zero_field(user, &fields[i]))
            continue;
        lgC_error(ctx, LG_ERR_VALUE,
                  "%s: %s.%s is 0 in a struct not made by %s, where 0 could be a value or a "
                  "field not written (its default is %s): start from %s and set it, or write it",
                  who, d->type, fields[i].name, d->defaults_fn, fields[i].dflt, d->defaults_fn);
        return false;
    }
    return true;
}

bool lgC_opts(lg_ctx *ctx, const char *who, const lgC_opts_desc *d, const void *user, void *out)
{
    uint32_t kind = 0;
    switch (lgC_opts_classify(ctx, who, d, user, &kind)) {
    case LGC_OPTS_DEFAULT: memcpy(out, d->defaults, d->size); return true;
    case LGC_OPTS_TAGGED:
        if (kind != 0) /* another struct's kind byte: not what this struct's default writes */
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: the %s struct's defaults_tag is %#x, which %s does not write", who,
                            d->type, (unsigned)(LG_OPTS_TAG | kind), d->defaults_fn);
        memcpy(out, user, d->size);
        return true;
    case LGC_OPTS_HAND:
        if (!lgC_opts_check_hand(ctx, who, d, user, d->fields, d->nfields))
            return false;
        memcpy(out, user, d->size);
        return true;
    default: return false;
    }
}

bool lgC_opts_kinded(lg_ctx *ctx, const char *who, const lgC_kdesc *k, const void *user,
                     unsigned kind)
{
    uint32_t tag_kind = 0;
    lgC_opts_kind c = lgC_opts_classify(ctx, who, &k->d, user, &tag_kind);
    if (c == LGC_OPTS_BAD)
        return false;
    if (kind >= k->nkinds)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: kind %u is not %s", who, kind, k->what);
    const char *name = k->kind_names[kind];
    if (c == LGC_OPTS_TAGGED && tag_kind != kind)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: the struct was made by %.*s(%s) but kind is %s; defaults differ by "
                        "kind: start from %.*s(%s)",
                        who, (int)strcspn(k->d.defaults_fn, "("), k->d.defaults_fn,
                        tag_kind < k->nkinds ? k->kind_names[tag_kind] : "?", name,
                        (int)strcspn(k->d.defaults_fn, "("), k->d.defaults_fn, name);
    for (int i = 0; i < k->nfields; i++) {
        const lgC_kfield *f = &k->fields[i];
        bool zero = lgC_opts_zero_field(user, &f->f);
        if (!(f->kinds >> kind & 1) && !zero)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: %s is not an option of %s (it must stay 0)",
                            who, f->f.name, name);
        if (c != LGC_OPTS_TAGGED && (f->nonzero >> kind & 1) && zero &&
            !lgC_opts_check_hand(ctx, who, &k->d, user, &f->f, 1))
            return false;
    }
    return true;
}
