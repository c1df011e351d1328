/* fuzz_idx: arbitrary bytes (gzipped or not) as an IDX file for the
 * examples' reader: it must return the data or a message, never crash. */
#define _POSIX_C_SOURCE 200809L
#include "../examples/common/common.h"

#include "fuzz_file.h"

#include <stdlib.h>

static void read_both(const char *path, void *user)
{
    (void)user;
    int64_t dims[3];
    uint8_t *out;
    char err[256];
    for (int nd = 1; nd <= 3; nd += 2)
        if (ex_idx_read(path, nd, dims, &out, err, sizeof err) == 0)
            free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_with_file(data, size, read_both, NULL);
    return 0;
}
