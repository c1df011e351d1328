/* bench_allreduce: the cost of one blocking MPI_Allreduce (MPI_FLOAT,
 * MPI_SUM, on MPI_COMM_WORLD) by message size, to fit the latency and
 * bandwidth of the alpha-beta model of docs/distributed.md ("Scaling on
 * paper: ring allreduce"). No lossgrad: MPI only.
 *
 *     mpirun -np 2 build/bench/bench_allreduce [--reps N] [--warmup W]
 *            [--min BYTES] [--max BYTES]
 *
 * Sizes go from --min (4096) to --max (64 MiB) by powers of 4. For each
 * size: --warmup (5) untimed calls, then --reps (51) timed calls, each
 * after a barrier, the time of a call being the longest over the ranks
 * (MPI_MAX of each rank's own time). Rank 0 prints one line per size:
 *
 *     RESULT bench=allreduce ranks=N bytes=... median_us=... min_us=...
 *       busbw_gbs=...
 *
 * busbw_gbs is the bytes each rank must send in a ring allreduce,
 * 2 (N - 1) / N * bytes, over the median time (in 1e9 bytes/s). */
#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int reps = 51, warmup = 5;
    long long lo = 4096, hi = 64ll << 20;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--reps") && a + 1 < argc)
            reps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--warmup") && a + 1 < argc)
            warmup = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--min") && a + 1 < argc)
            lo = atoll(argv[++a]);
        else if (!strcmp(argv[a], "--max") && a + 1 < argc)
            hi = atoll(argv[++a]);
        else {
            if (rank == 0)
                fprintf(stderr, "usage: bench_allreduce [--reps N] [--warmup W] [--min BYTES] "
                                "[--max BYTES]   (under mpirun)\n");
            MPI_Finalize();
            return 2;
        }
    }
    if (reps < 1 || reps > 100000 || warmup < 0 || lo < 4 || hi < lo || hi > (1ll << 30)) {
        if (rank == 0)
            fprintf(stderr, "bench_allreduce: --reps 1..100000, --warmup >= 0, "
                            "4 <= --min <= --max <= 1 GiB\n");
        MPI_Finalize();
        return 2;
    }
    size_t nmax = (size_t)hi / sizeof(float);
    float *in = malloc(nmax * sizeof *in), *out = malloc(nmax * sizeof *out);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!in || !out || !t) {
        fprintf(stderr, "bench_allreduce (rank %d): out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (size_t i = 0; i < nmax; i++)
        in[i] = (float)(rank + 1) * 0.5f + (float)(i % 7), out[i] = 0;
    for (long long bytes = lo; bytes <= hi; bytes *= 4) {
        int n = (int)(bytes / (long long)sizeof(float));
        for (int w = 0; w < warmup; w++)
            MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (int r = 0; r < reps; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double mine = MPI_Wtime() - t0;
            MPI_Allreduce(&mine, &t[r], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        }
        /* the sum of the ranks' values: a wrong result is not a timing */
        float want = 0;
        for (int q = 0; q < size; q++)
            want += (float)(q + 1) * 0.5f + (float)((n - 1) % 7);
        if (out[n - 1] != want) {
            fprintf(stderr, "bench_allreduce (rank %d): wrong sum at %lld bytes\n", rank, bytes);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        double med = median(t, reps), mn = t[0];
        if (rank == 0)
            printf("RESULT bench=allreduce ranks=%d bytes=%lld median_us=%.2f min_us=%.2f "
                   "busbw_gbs=%.3f\n",
                   size, bytes, 1e6 * med, 1e6 * mn,
                   2.0 * (size - 1) / size * (double)bytes / med / 1e9);
        fflush(stdout);
    }
    free(in);
    free(out);
    free(t);
    MPI_Finalize();
    return 0;
}
