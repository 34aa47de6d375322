/* hparams.c — the model's hyperparameters by name: the flag that spells each (weight_decay is --weight-decay) and
 * the values each takes (PyTorch's checks), which the command line, checkpoints and search all apply. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nnrt_context.h"
#include "nnrt_model.h"

int nnrt_range_contains(const nnrt_range *r, double x) {
    return (r->lo_open ? x > r->lo : x >= r->lo) && (r->hi_open ? x < r->hi : x <= r->hi);
}

void nnrt_range_str(const nnrt_range *r, char *buf, size_t cap) {
    snprintf(buf, cap, "%c%.10g, %.10g%c", r->lo_open ? '(' : '[', r->lo, r->hi, r->hi_open ? ')' : ']');
}

void nnrt_flag_spelling(const char *name, char *out, size_t cap) {
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++) out[i] = name[i] == '_' ? '-' : name[i];
    out[i] = 0;
}

int nnrt_find_hparam(const nnrt_model *m, const char *name) {
    for (int i = 0; i < m->n_hparams; i++) {
        char h[64];
        nnrt_flag_spelling(m->hparams[i].name, h, sizeof h);
        if (strcmp(h, name) == 0) return i;
    }
    return -1;
}

/* The values a hyperparameter takes, by its name (the compiler's names, PyTorch's checks): a negative learning
   rate or weight decay, or a β of 1, trains without complaint into nonsense, so each is refused when parsed.
   A name not listed takes any finite number. */
static const struct { const char *name; nnrt_range range; } hparam_ranges[] = {
    {"lr", {0, INFINITY, 0, 1, NULL}},           {"max_lr", {0, INFINITY, 0, 1, NULL}},
    {"eta_min", {0, INFINITY, 0, 1, NULL}},      {"weight_decay", {0, INFINITY, 0, 1, NULL}},
    {"momentum", {0, INFINITY, 0, 1, NULL}},     {"alpha", {0, INFINITY, 0, 1, NULL}},
    {"beta1", {0, 1, 0, 1, NULL}},               {"beta2", {0, 1, 0, 1, NULL}},
    {"eps", {0, INFINITY, 0, 1, NULL}},          {"lr_decay", {0, INFINITY, 0, 1, NULL}},
    {"initial_accumulator_value", {0, INFINITY, 0, 1, NULL}},
    {"l1", {0, INFINITY, 0, 1, NULL}},           {"l2", {0, INFINITY, 0, 1, NULL}},
    {"label_smoothing", {0, 1, 0, 0, NULL}},     {"gamma", {0, INFINITY, 0, 1, NULL}},
    {"decay_rate", {0, INFINITY, 0, 1, NULL}},   {"power", {0, INFINITY, 0, 1, NULL}},
    {"pct_start", {0, 1, 0, 0, NULL}},           {"div_factor", {0, INFINITY, 1, 1, NULL}},
    {"final_div_factor", {0, INFINITY, 1, 1, NULL}},
    {"step_size", {0, INFINITY, 1, 1, NULL}},    {"step_size_up", {0, INFINITY, 1, 1, NULL}},
    {"t_max", {0, INFINITY, 1, 1, NULL}},        {"t_0", {0, INFINITY, 1, 1, NULL}},
    {"t_mult", {1, INFINITY, 0, 1, NULL}},       {"total_iters", {0, INFINITY, 0, 1, NULL}},
    {"total_steps", {0, INFINITY, 1, 1, NULL}},  {"warmup", {0, INFINITY, 0, 1, NULL}},
    // lengths in epochs (.cosine(epochs:), …): fractions of an epoch are fine
    {"step_size_epochs", {0, INFINITY, 1, 1, NULL}}, {"t_max_epochs", {0, INFINITY, 1, 1, NULL}},
    {"t_0_epochs", {0, INFINITY, 1, 1, NULL}},       {"total_iters_epochs", {0, INFINITY, 1, 1, NULL}},
    {"total_steps_epochs", {0, INFINITY, 1, 1, NULL}}, {"warmup_epochs", {0, INFINITY, 0, 1, NULL}},
    // L-BFGS (lbfgs.c also wants the counts whole; max_eval 0 is torch's default, max_iter·5/4)
    {"max_iter", {1, INFINITY, 0, 1, NULL}},         {"max_eval", {0, INFINITY, 0, 1, NULL}},
    {"history_size", {1, INFINITY, 0, 1, NULL}},     {"tolerance_grad", {0, INFINITY, 0, 1, NULL}},
    {"tolerance_change", {0, INFINITY, 0, 1, NULL}},
    // drop probabilities (a 1 would scale by 1/0)
    {"dropout", {0, 1, 0, 1, NULL}},             {"drop_connect", {0, 1, 0, 1, NULL}},
    {"stochastic_depth", {0, 1, 0, 1, NULL}},
};

static const nnrt_range *hparam_range(const char *name) {
    for (size_t i = 0; i < sizeof hparam_ranges / sizeof *hparam_ranges; i++)
        if (strcmp(hparam_ranges[i].name, name) == 0) return &hparam_ranges[i].range;
    return NULL;
}

int nnrt_hparam_in_range(const nnrt_model *m, int i, double x, char *range, size_t cap) {
    const nnrt_range *r = hparam_range(m->hparams[i].name);
    if (range && cap) snprintf(range, cap, "(-inf, inf)");
    if (!r) return isfinite(x);
    if (range && cap) nnrt_range_str(r, range, cap);
    return isfinite(x) && nnrt_range_contains(r, x);
}
