/* fuzz_idx: arbitrary bytes (gzipped or not) as an IDX file for the
 * examples' reader: it must return the data or a message, never crash. */
#define _POSIX_C_SOURCE 200809L
#include "../examples/common/common.h"

#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/lg_fuzz_idx_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        int64_t dims[3];
        uint8_t *out;
        char err[256];
        for (int nd = 1; nd <= 3; nd += 2)
            if (ex_idx_read(path, nd, dims, &out, err, sizeof err) == 0)
                free(out);
    }
    close(fd);
    unlink(path);
    return 0;
}
