#include "helpers.h"
Test(matmul, placeholder) { lg_ctx *c = test_ctx(1); cr_assert_not_null(c); lg_ctx_free(c); }
