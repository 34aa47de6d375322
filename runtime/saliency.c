/* saliency.c — the saliency command (Simonyan et al. 2013): the gradient of one class score (the logit, before the
 * softmax) with respect to one input sample, from the model's input-gradient entry point in eval mode. The gradient
 * is with respect to the input as the model sees it, after the weights' scaling and normalization. F.png draws the
 * sample (scaled, before --normalize) beside a heat map of |gradient| (the largest over the channels at each pixel);
 * F.npy holds the gradient itself, (1, input_dim). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_data.h"
#include "nnrt_image.h"
#include "nnrt_inputgrad.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_safetensors.h"
#include "nnrt_train.h"

/* The unit whose gradient is taken: --unit, --class, else the predicted class (the one output of a regressor). */
static nnrt_unit chosen_unit(nnrt_ctx *ctx, const nnrt_options *o, const float *x, int *predicted) {
    const nnrt_model *m = ctx->model;
    *predicted = -1;
    if (m->target_kind == NNRT_TARGET_CLASS) {
        float *out = nnrt_calloc((size_t)m->output_dim, sizeof(float));  // (1, output_dim)
        ctx->training = 0;
        m->predict(ctx, 1, x, out);
        *predicted = nnrt_argmax(out, m->output_dim);
        free(out);
    }
    if (o->unit) return nnrt_unit_parse(m, o->unit);
    if (nnrt_flag_given(o, "class")) return nnrt_unit_output(m, o->klass, "--class");
    if (*predicted < 0 && m->output_dim > 1)
        nnrt_usage_die("saliency: model '%s' is not a classifier: give --class K, the output to differentiate (0 to %d)",
                       m->name, m->output_dim - 1);
    return nnrt_unit_output(m, *predicted < 0 ? 0 : *predicted, "--class");
}

/* The sample as a picture and its gradient as a heat map, side by side; its size into size[2]. */
static void write_picture(const nnrt_options *o, const int s[3], const float *shown, const float *dx, int size[2]) {
    size_t plane = (size_t)s[1] * (size_t)s[2];
    float *heat = nnrt_calloc(plane, sizeof(float));  // (H, W): max over channels of |dx|
    for (int c = 0; c < s[0]; c++)
        for (size_t i = 0; i < plane; i++) heat[i] = fmaxf(heat[i], fabsf(dx[(size_t)c * plane + i]));
    nnrt_picture p = nnrt_picture_new(s[0], s[1], s[2], 1, 1);
    nnrt_picture_image(&p, shown);
    nnrt_picture_heat(&p, heat);
    nnrt_png_write(o->output, p.width, p.height, p.channels, p.pixels);
    size[0] = p.width, size[1] = p.height;
    nnrt_picture_free(&p);
    free(heat);
}

int nnrt_cmd_saliency(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    int s[3], png = !nnrt_is_npy(o->output);
    if (png && !nnrt_input_image(m, s))
        nnrt_usage_die("saliency: model '%s' takes %d features, not an image: there is no picture to draw (--output F.npy "
                       "writes the gradient)", m->name, m->input_dim);
    if (o->unit) nnrt_unit_parse(m, o->unit);   // a bad --unit is reported before anything is loaded
    nnrt_data_info info;
    nnrt_load_weights(o->weights, m, ctx->params, &info);
    nnrt_data_opts opts = nnrt_data_options(o, &info.classes, 0);
    nnrt_array x = nnrt_load_x_with(o->input, m, &opts);
    if (o->index >= x.n)
        nnrt_usage_die("--index %lld: out of range: %s has %lld samples (0 to %lld)", (long long)o->index, o->input,
                       (long long)x.n, (long long)x.n - 1);
    nnrt_prep shown_prep = info.prep;   // the picture shows the scaled input, before --normalize
    shown_prep.norm = NNRT_NORM_NONE;
    float *xs = nnrt_calloc((size_t)m->input_dim, sizeof(float));     // (input_dim) the model's input
    float *shown = nnrt_calloc((size_t)m->input_dim, sizeof(float));  // (input_dim) the same, not normalized
    float *dx = nnrt_calloc((size_t)m->input_dim, sizeof(float));     // (input_dim)
    int64_t row = o->index;
    x.prep = info.has_prep ? &shown_prep : NULL;
    nnrt_gather_x(&x, &row, 1, shown);
    if (info.has_prep) {
        x.prep = &info.prep;
        nnrt_prep_check_range(&info.prep, &x);
    }
    nnrt_gather_x(&x, &row, 1, xs);

    int predicted;
    nnrt_unit u = chosen_unit(ctx, o, xs, &predicted);
    nnrt_input_grad g;
    nnrt_input_grad_init(&g, m, &u);
    float score = nnrt_input_grad_run(&g, ctx, xs, dx);
    int size[2] = {0, 0};
    if (png) write_picture(o, s, shown, dx, size);
    else nnrt_write_row_npy(o->output, dx, m->input_dim);
    if (!o->quiet) {
        char what[160], pred[96] = "";
        nnrt_unit_describe(m, &u, what, sizeof what);
        if (predicted >= 0 && info.classes.n > predicted)
            snprintf(pred, sizeof pred, "; predicted class %d, '%s'", predicted, info.classes.names[predicted]);
        else if (predicted >= 0) snprintf(pred, sizeof pred, "; predicted class %d", predicted);
        printf("saliency of %s at sample %lld of %s: score %.6g%s\nwrote %s", what, (long long)o->index, o->input, score, pred,
               o->output);
        if (png) printf(" (the input and |gradient|, %d x %d pixels)\n", size[0], size[1]);
        else printf(" (1, %d) float32\n", m->input_dim);
    }
    nnrt_input_grad_free(&g);
    free(xs), free(shown), free(dx);
    nnrt_array_free(&x);
    nnrt_data_info_free(&info);
    return 0;
}
