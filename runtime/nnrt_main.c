/* nnrt_main.c — the entry point every generated trainer calls: set up OpenBLAS, the GEMM, the floating-point
 * mode and the worker thread, parse the command line, build the model's context and run the command. Nothing in
 * the runtime calls back into this file. */
#include <stdio.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_compute.h"
#include "nnrt_context.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

int nnrt_main(const nnrt_model *m, int argc, char **argv) {
    nnrt_blas_setup(argv);  // may re-execute this process: must come first
    nnrt_set_program(nnrt_basename(argc > 0 ? argv[0] : m->name));
    nnrt_check_model(m);
    nnrt_options o;
    nnrt_parse_args(m, argc, argv, &o);
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
    case NNRT_CMD_SALIENCY: status = nnrt_cmd_saliency(&ctx, &o); break;
    case NNRT_CMD_MAXIMIZE: status = nnrt_cmd_maximize(&ctx, &o); break;
    }
    nnrt_ctx_free(&ctx);
    nnrt_options_free(&o);
    if (fflush(stdout) != 0) return NNRT_EXIT_FAIL;
    return status;
}
