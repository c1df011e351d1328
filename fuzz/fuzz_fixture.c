/* fuzz_fixture: arbitrary bytes as a fixture file for the conformance
 * runner's reader (tests/fixture_runner.c, compiled in with its main()
 * renamed); it must report, never crash. */
#define _POSIX_C_SOURCE 200809L
#define main lossgrad_fixtures_main
#include "../tests/fixture_runner.c"
#undef main

#include "fuzz_file.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (!freopen("/dev/null", "w", stdout)) /* the runner's report is not needed */
        return 0;
    return 0;
}

static void read_fixture(const char *path, void *user)
{
    (void)user;
    tally t = { 0, 0 };
    read_file(path, &t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_with_file(data, size, read_fixture, NULL);
    return 0;
}
