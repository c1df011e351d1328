#include "helpers.h"
Test(errors, placeholder) { lg_ctx *c = test_ctx(1); cr_assert_not_null(c); lg_ctx_free(c); }
