/* nnrt_main.c — the entry point every generated trainer calls: set up OpenBLAS, the GEMM, the floating-point
 * mode and the worker thread, parse the command line, build the model's context and run the command. Nothing in
 * the runtime calls back into this file. */
#include <stdio.h>
#include <stdlib.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_compute.h"
#include "nnrt_context.h"
#include "nnrt_dist.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

/* Under mpirun (a trainer built with --mpi): rank 0 alone writes files; the others train the same weights. With
   NNRT_DIST_SAVE_EVERY_RANK=1 (the tests), rank r also saves its own weights to W.rank<r>. Only train runs. */
static void dist_options(nnrt_options *o) {
    if (nnrt_dist_size() == 1) return;
    if (o->cmd != NNRT_CMD_TRAIN)
        nnrt_usage_die("under mpirun (%d ranks) only train runs; run this command as one process", nnrt_dist_size());
    if (o->threads == 0) o->threads = 1;  // a rank per core: mpirun binds each to one
    if (nnrt_dist_rank() == 0) return;
    static char own[4096];
    const char *every = getenv("NNRT_DIST_SAVE_EVERY_RANK");
    if (o->save && every && every[0] == '1') snprintf(own, sizeof own, "%s.rank%d", o->save, nnrt_dist_rank());
    o->save = own[0] ? own : NULL;
    o->log = o->checkpoint = o->save_ema = NULL;
    o->quiet = 1;
}

int nnrt_main(const nnrt_model *m, int argc, char **argv) {
    nnrt_blas_setup(argv);  // may re-execute this process: must come first
    nnrt_dist_init(&argc, &argv);  // MPI (a trainer built with --mpi), after the re-execution
    nnrt_set_program(nnrt_basename(argc > 0 ? argv[0] : m->name));
    nnrt_check_model(m);
    nnrt_options o;
    nnrt_parse_args(m, argc, argv, &o);
    dist_options(&o);
    nnrt_gemm_own_kernels();  // decides now, so that a bad NNRT_GEMM stops the trainer before it loads anything
    if (!o.keep_denormals) nnrt_flush_denormals();
    nnrt_parallel_init((int)o.threads, !o.keep_denormals);
    nnrt_ctx ctx;
    nnrt_ctx_init(&ctx, m, o.hp, o.seed);
    int status = 0;
    switch (o.cmd) {
    case NNRT_CMD_TRAIN: status = nnrt_cmd_train(&ctx, &o); break;
    case NNRT_CMD_EVAL: status = nnrt_cmd_eval(&ctx, &o); break;
    case NNRT_CMD_PREDICT: status = nnrt_cmd_predict(&ctx, &o); break;
    case NNRT_CMD_GRADCHECK: status = nnrt_cmd_gradcheck(&ctx, &o); break;
    case NNRT_CMD_SEARCH: status = nnrt_cmd_search(&ctx, &o); break;
    case NNRT_CMD_FILTERS: status = nnrt_cmd_filters(&ctx, &o); break;
    case NNRT_CMD_SHOW_BATCH: status = nnrt_cmd_show_batch(&ctx, &o); break;
    case NNRT_CMD_DOCTOR: status = nnrt_cmd_doctor(&ctx, &o); break;
    case NNRT_CMD_REPORT: status = nnrt_cmd_report(&ctx, &o); break;
    case NNRT_CMD_SALIENCY: status = nnrt_cmd_saliency(&ctx, &o); break;
    case NNRT_CMD_MAXIMIZE: status = nnrt_cmd_maximize(&ctx, &o); break;
    }
    nnrt_ctx_free(&ctx);
    nnrt_options_free(&o);
    if (fflush(stdout) != 0) return nnrt_dist_finish(NNRT_EXIT_FAIL);
    return nnrt_dist_finish(status);
}
