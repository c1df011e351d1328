/* fuzz_file.h: the fuzzers of file readers write their input to a
 * temporary file, hand its path to the reader, and remove it. */
#ifndef LG_FUZZ_FILE_H
#define LG_FUZZ_FILE_H

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static inline void fuzz_with_file(const uint8_t *data, size_t size,
                                  void (*fn)(const char *path, void *user), void *user)
{
    char path[] = "/tmp/lg_fuzz_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return;
    ssize_t written = write(fd, data, size);
    close(fd);
    if (written == (ssize_t)size)
        fn(path, user);
    unlink(path);
}

#endif
