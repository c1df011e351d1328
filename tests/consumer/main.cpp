// Placeholder for the C++ consumer (the header's training loop in the
// documented C++ idiom comes later): the header compiles as C++17 with
// -Wall -Wextra -pedantic -Werror, and a program links and runs against the
// installed library, static or shared.
#include <lossgrad.h>

int main()
{
    const char *version = lg_version();
    lg_ctx *ctx = lg_ctx_new(NULL);
    lg_ctx_free(ctx);
    (void)version;
    return 0;
}
