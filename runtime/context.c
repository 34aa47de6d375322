/* context.c — the model's context: the params/grads/state arenas and the activation arena, allocated once,
 * 64-byte aligned and zeroed, so that nothing is allocated inside the step loop; parameter init; the checks of a
 * model's tables. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_context.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_rng.h"

void nnrt_ctx_init(nnrt_ctx *ctx, const nnrt_model *m, const double *hp, uint64_t seed) {
    memset(ctx, 0, sizeof *ctx);
    ctx->model = m;
    ctx->params = nnrt_aligned_calloc(nnrt_mul_size(m->params_numel, sizeof(float), "params"));  // (params_numel)
    ctx->grads = nnrt_aligned_calloc(nnrt_mul_size(m->params_numel, sizeof(float), "grads"));    // (params_numel)
    ctx->state = nnrt_aligned_calloc(nnrt_mul_size(m->state_numel, sizeof(float), "state"));     // (state_numel)
    ctx->arena = nnrt_aligned_calloc(m->arena_bytes);                                             // arena_bytes
    ctx->hp = nnrt_calloc((size_t)m->n_hparams + 1, sizeof(double));                              // (n_hparams)
    for (int i = 0; i < m->n_hparams; i++) ctx->hp[i] = hp ? hp[i] : m->hparams[i].value;
    ctx->lr_hparam = -1;
    for (int i = 0; i < m->n_hparams; i++)  // the learning rate, looked up here once; ctx->lr until train_step reports the scheduled value
        if (strcmp(m->hparams[i].name, "lr") == 0) ctx->lr = ctx->hp[ctx->lr_hparam = i];
    nnrt_rng_seed(ctx->rng, seed, NNRT_STREAM_MODEL);
    if (m->n_train_kernels > 0) ctx->kprof = nnrt_calloc((size_t)m->n_train_kernels, sizeof(double));
}

void nnrt_ctx_free(nnrt_ctx *ctx) {
    free(ctx->params);
    free(ctx->grads);
    free(ctx->state);
    free(ctx->arena);
    free(ctx->hp);
    free(ctx->kprof);
    memset(ctx, 0, sizeof *ctx);
}

void nnrt_init_params(const nnrt_model *m, float *params, uint64_t seed) {
    uint64_t rng[4];
    nnrt_rng_seed(rng, seed, NNRT_STREAM_INIT);
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        float *w = params + p->offset;  // (numel), p->shape in PyTorch layout
        for (size_t k = 0; k < p->numel; k++) {
            switch (p->init) {
            case NNRT_INIT_ZEROS: w[k] = 0.0f; break;
            case NNRT_INIT_CONST: w[k] = (float)p->init_a; break;
            case NNRT_INIT_UNIFORM: w[k] = (float)(p->init_a + (p->init_b - p->init_a) * nnrt_rng_uniform(rng)); break;
            case NNRT_INIT_NORMAL: w[k] = (float)(p->init_a + p->init_b * nnrt_rng_normal(rng)); break;
            default: nnrt_die("%s: parameter '%s' has an unknown init kind %d", m->name, p->name, (int)p->init);
            }
        }
    }
}

/* Checks the parts of the contract a miscompiled model could get wrong, before trusting its tables. */
void nnrt_check_model(const nnrt_model *m) {
    if (m->input_dim <= 0 || m->output_dim <= 0 || m->max_batch <= 0 || m->target_dim <= 0)
        nnrt_die("%s: invalid model (input_dim %d, output_dim %d, target_dim %d, max_batch %d)", m->name,
                 m->input_dim, m->output_dim, m->target_dim, m->max_batch);
    if (m->n_state_slots < 0 || (m->n_state_slots > 0 && ((size_t)m->n_state_slots * m->params_numel != m->state_numel || !m->state_slots)))
        nnrt_die("%s: invalid model: %d optimizer state slots for %zu state floats and %zu parameters", m->name,
                 m->n_state_slots, m->state_numel, m->params_numel);
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        size_t numel = 1;
        for (int d = 0; d < p->ndim; d++) numel *= (size_t)p->shape[d];
        if (numel != p->numel || p->offset + p->numel > m->params_numel || p->ndim < 0 || p->ndim > 4)
            nnrt_die("%s: invalid model: parameter '%s' does not fit its shape or the params arena", m->name, p->name);
    }
}
