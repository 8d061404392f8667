/*
 * allreduce_time.c - times MPI_Allreduce (f32 sum, in place) over
 * MPI_COMM_WORLD for the gradient sizes of docs/mpi.md, to set beside
 * the ring model's prediction there.  Not a test: run it by hand,
 *
 *   mpirun -np N build/tests/mpi/allreduce_time [-n] BYTES...
 *
 * -n: MPI_Iallreduce completed by polling MPI_Test, as rt_mpi.c waits,
 * instead of the blocking call.
 * Per size: 3 calls of warm-up, then calls for about 0.3 s; the ranks
 * meet at a barrier before the timed calls, and rank 0 prints the mean
 * time of one call (each call ends no earlier than the last rank's data
 * arrives, so rank 0's time is the collective's).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static void allreduce(float *buffer, int count, int nonblocking) {
    if (!nonblocking) {
        MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        return;
    }
    MPI_Request request;
    int done = 0;
    MPI_Iallreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
    while (!done)
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
}

static double time_one(float *buffer, int count, int nonblocking) {
    for (int i = 0; i < 3; i++)
        allreduce(buffer, count, nonblocking);
    int calls = 0, go = 1;
    MPI_Barrier(MPI_COMM_WORLD);
    double start = MPI_Wtime();
    while (go) {
        allreduce(buffer, count, nonblocking);
        calls++;
        go = MPI_Wtime() - start < 0.3; /* rank 0 decides for all: the same number of calls */
        MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
    }
    return (MPI_Wtime() - start) / calls;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    int nonblocking = argc > 1 && argv[1][0] == '-' && argv[1][1] == 'n';
    if (argc < 2 + nonblocking) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -np N allreduce_time [-n] BYTES...\n");
        MPI_Finalize();
        return 2;
    }
    if (rank == 0)
        printf("%d ranks, %s\n%12s %12s\n", ranks, nonblocking ? "MPI_Iallreduce + MPI_Test" : "MPI_Allreduce",
               "bytes", "us_per_call");
    for (int i = 1 + nonblocking; i < argc; i++) {
        int count = atoi(argv[i]) / 4;
        count = count < 1 ? 1 : count;
        float *buffer = calloc((size_t)count, sizeof *buffer);
        double t = time_one(buffer, count, nonblocking);
        if (rank == 0)
            printf("%12lld %12.1f\n", 4LL * count, 1e6 * t);
        free(buffer);
    }
    MPI_Finalize();
    return 0;
}
