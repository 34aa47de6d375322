/* mpi_allreduce.c — the allreduce alone: milliseconds per MPI_Allreduce (float sum, in place) of N floats, the
 * mean of ITERS after a barrier, on rank 0. Tells the communication of a data-parallel step apart from its compute
 * (docs/distributed.md): N = 235146 is the Fashion-MNIST MLP's gradient, 421642 the CNN's.
 *
 *     mpicc -O2 bench/mpi_allreduce.c -o /tmp/mpi_allreduce
 *     mpirun -np 2 --bind-to core /tmp/mpi_allreduce 235146 50
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int n = argc > 1 ? atoi(argv[1]) : 235146, iters = argc > 2 ? atoi(argv[2]) : 50;
    float *x = calloc((size_t)n, sizeof(float));  // (n) zeros: the sums stay finite
    if (!x || n < 1 || iters < 1) MPI_Abort(MPI_COMM_WORLD, 2);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < iters; i++) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double t = MPI_Wtime() - t0;
    if (rank == 0) printf("%d floats (%.0f KB): %.3f ms per allreduce, mean of %d\n", n, n * 4 / 1024.0, 1e3 * t / iters, iters);
    free(x);
    MPI_Finalize();
    return 0;
}
