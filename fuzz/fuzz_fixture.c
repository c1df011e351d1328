/* fuzz_fixture: arbitrary bytes as a fixture file for the conformance
 * runner's reader (tests/fixture_runner.c, compiled in with its main()
 * renamed); it must report, never crash. */
#define _POSIX_C_SOURCE 200809L
#define main lossgrad_fixtures_main
#include "../tests/fixture_runner.c"
#undef main

#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (!freopen("/dev/null", "w", stdout)) /* the runner's report is not needed */
        return 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/lg_fuzz_fixture_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        tally t = { 0, 0 };
        read_file(path, &t);
    }
    close(fd);
    unlink(path);
    return 0;
}
