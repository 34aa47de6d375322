/* nnrt_dist.h — data-parallel training over MPI (dist.c): one trainer per rank, each training its shard of every
 * global batch, the gradients averaged with MPI_Iallreduce in buckets of the parameter arena while backward still
 * runs. A trainer built with `nncc compile --mpi` compiles dist.c with NNRT_MPI and links libmpi; every other
 * trainer gets dist.c's one-process build, in which each function below is a no-op for a world of one rank, so the
 * train loop's hooks cost nothing and change nothing. See docs/distributed.md. */
#ifndef NNRT_DIST_H
#define NNRT_DIST_H

#include <stdint.h>

#include "nnrt_model.h"

/* MPI_Init_thread (funneled: only the main thread calls MPI) when built with NNRT_MPI; after nnrt_blas_setup, which
   may re-execute the process. Ranks other than 0 send their stdout to /dev/null (rank 0 alone prints). */
void nnrt_dist_init(int *argc, char ***argv);
/* MPI_Finalize; returns status. Any other exit (nnrt_die on one rank) ends the job through mpirun. */
int nnrt_dist_finish(int status);
int nnrt_dist_rank(void);
int nnrt_dist_size(void);
/* 1 when the trainer was built with --mpi (whatever the number of ranks). */
int nnrt_dist_built(void);

/* This rank's contiguous slice [*lo, *lo + *count) of a global batch of n samples: rank r gets samples
   ⌊r·n/P⌋ up to ⌊(r+1)·n/P⌋. A rank whose slice is empty (n < P) trains sample 0 with weight 0, so that every rank
   runs the same step and the same collectives. */
void nnrt_dist_shard(int64_t n, int64_t *lo, int *count);
/* Before train_step on this rank's slice of a global batch of n samples (count from nnrt_dist_shard): this
   rank's gradients are scaled by its share count/n (0 for an empty slice) before they are summed. */
void nnrt_dist_step_begin(nnrt_ctx *ctx, int64_t n);
/* After train_step: the global batch's loss, Σ_r share_r · loss_r, the same on every rank. */
float nnrt_dist_step_end(float loss);
/* At an epoch's start: rank 0's dropout generator (ctx->rng) goes to every rank, and rank r > 0 derives its own
   stream from it, so a resumed run (rank 0's state is the checkpoint's) draws what an unbroken run draws. */
void nnrt_dist_epoch_begin(nnrt_ctx *ctx);
/* At an epoch's end, before evaluation: the buffers (BatchNorm's running statistics) of rank 0 go to every rank,
   as PyTorch DDP's broadcast_buffers, so that every rank evaluates and saves the same weights. */
void nnrt_dist_epoch_end(nnrt_ctx *ctx);
/* After training: stops with an internal error when the ranks' parameters differ in any bit (a hash of the arena,
   allreduced as min and max). Returns the hash (0 in the one-rank build, which hashes nothing). */
uint64_t nnrt_dist_check_same(const nnrt_ctx *ctx);

#endif
