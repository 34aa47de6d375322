/* lbfgs_search.c — torch.optim.LBFGS's strong-Wolfe line search (_strong_wolfe) and cubic interpolation
 * (_cubic_interpolate), transcribed step for step so that a run follows torch's trajectory: the same tests in the
 * same order, the same constants, and Python's min/max where torch uses them. It calls nothing but its callback. */
#include <math.h>

#include "nnrt_lbfgs.h"

enum { MAX_LS = 25 };            // torch's max_ls: objective evaluations in one search, at most
static const double C1 = 1e-4;   // sufficient decrease (Armijo)
static const double C2 = 0.9;    // curvature

/* Python's max(a, b) and min(a, b): the first argument unless the second compares greater (smaller), so a NaN
   first argument stays NaN, as in torch. */
static double py_max(double a, double b) { return b > a ? b : a; }
static double py_min(double a, double b) { return b < a ? b : a; }

double nnrt_cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2, const double *bounds) {
    double lo = bounds ? bounds[0] : x1 <= x2 ? x1 : x2;
    double hi = bounds ? bounds[1] : x1 <= x2 ? x2 : x1;
    double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
    double d2_square = d1 * d1 - g1 * g2;
    if (!(d2_square >= 0)) return (lo + hi) / 2;
    double d2 = sqrt(d2_square);
    double min_pos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                              : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return py_min(py_max(min_pos, lo), hi);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A spare buffer that holds none of the gradients still in use (at most two are). */
static float *fresh(const nnrt_line *ls, const float *busy0, const float *busy1) {
    for (int i = 0; i < 3; i++)
        if (ls->spare[i] != busy0 && ls->spare[i] != busy1) return ls->spare[i];
    return ls->spare[0];  // unreachable: three spares, two busy
}

/* The bracket: one or two step lengths with their losses, gradients and directional derivatives. */
typedef struct {
    int n;
    double t[2], f[2], gtd[2];
    const float *g[2];
} bracket;

static void bracket2(bracket *b, double t0, double f0, const float *g0, double gtd0, double t1, double f1,
                     const float *g1, double gtd1) {
    *b = (bracket){2, {t0, t1}, {f0, f1}, {gtd0, gtd1}, {g0, g1}};
}

/* The zoom phase: shrinks a two-point bracket around a step that satisfies both conditions until one does (*done),
   the bracket is shorter than tolerance_change along d, or the search has evaluated MAX_LS times. Returns the
   index of the bracket's low point (the smaller loss). */
static int zoom(const nnrt_line *ls, bracket *b, double f, double gtd, double d_norm, double tol_change,
                int *ls_iter, int64_t *evals, int done, double *f_bad) {
    int low = b->f[0] <= b->f[b->n - 1] ? 0 : 1, high = 1 - low;
    int insuf_progress = 0;
    while (!done && *ls_iter < MAX_LS) {
        if (fabs(b->t[1] - b->t[0]) * d_norm < tol_change) break;  // the bracket is too small
        double t = nnrt_cubic_interpolate(b->t[0], b->f[0], b->gtd[0], b->t[1], b->f[1], b->gtd[1], NULL);
        // Close to an end of the bracket twice in a row, or outside it: move to 0.1 of its length inside.
        double hi = py_max(b->t[0], b->t[1]), lo = py_min(b->t[0], b->t[1]), eps = 0.1 * (hi - lo);
        if (py_min(hi - t, t - lo) < eps) {
            if (insuf_progress || t >= hi || t <= lo) {
                t = fabs(t - hi) < fabs(t - lo) ? hi - eps : lo + eps;
                insuf_progress = 0;
            } else {
                insuf_progress = 1;
            }
        } else {
            insuf_progress = 0;
        }
        float *g_new = fresh(ls, b->g[0], b->g[1]);
        double f_new = ls->eval(ls->arg, t, g_new);
        ++*evals;
        ++*ls_iter;
        if (!isfinite(f_new)) { *f_bad = f_new; b->t[low] = t; return low; }
        double gtd_new = dot(g_new, ls->d, ls->n);
        if (f_new > f + C1 * t * gtd || f_new >= b->f[low]) {  // no sufficient decrease, or not below the low point
            b->t[high] = t, b->f[high] = f_new, b->g[high] = g_new, b->gtd[high] = gtd_new;
            low = b->f[0] <= b->f[1] ? 0 : 1;
            high = 1 - low;
            continue;
        }
        if (fabs(gtd_new) <= -C2 * gtd) done = 1;  // the strong Wolfe conditions hold
        else if (gtd_new * (b->t[high] - b->t[low]) >= 0) {  // the old high end becomes the low one
            b->t[high] = b->t[low], b->f[high] = b->f[low], b->g[high] = b->g[low], b->gtd[high] = b->gtd[low];
        }
        b->t[low] = t, b->f[low] = f_new, b->g[low] = g_new, b->gtd[low] = gtd_new;
    }
    return low;
}

nnrt_line_result nnrt_strong_wolfe(const nnrt_line *ls, double t, double f, const float *g, double gtd,
                                   double tolerance_change) {
    double d_norm = 0;
    for (size_t i = 0; i < ls->n; i++) d_norm = py_max(d_norm, fabs(ls->d[i]));
    float *g_new = ls->spare[0];
    double f_new = ls->eval(ls->arg, t, g_new);
    int64_t evals = 1;
    if (!isfinite(f_new)) return (nnrt_line_result){f_new, t, g_new, evals};
    double gtd_new = dot(g_new, ls->d, ls->n);
    // Bracket an interval that holds a step satisfying the strong Wolfe conditions, extrapolating by cubics.
    double t_prev = 0, f_prev = f, gtd_prev = gtd;
    const float *g_prev = g;
    int done = 0, ls_iter = 0;
    bracket b = {0};
    while (ls_iter < MAX_LS) {
        if (f_new > f + C1 * t * gtd || (ls_iter > 1 && f_new >= f_prev)) {
            bracket2(&b, t_prev, f_prev, g_prev, gtd_prev, t, f_new, g_new, gtd_new);
            break;
        }
        if (fabs(gtd_new) <= -C2 * gtd) {
            b = (bracket){1, {t, 0}, {f_new, 0}, {gtd_new, 0}, {g_new, NULL}};
            done = 1;
            break;
        }
        if (gtd_new >= 0) {
            bracket2(&b, t_prev, f_prev, g_prev, gtd_prev, t, f_new, g_new, gtd_new);
            break;
        }
        double bounds[2] = {t + 0.01 * (t - t_prev), t * 10};
        double tmp = t;
        t = nnrt_cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds);
        t_prev = tmp, f_prev = f_new, g_prev = g_new, gtd_prev = gtd_new;
        g_new = fresh(ls, g_prev, NULL);
        f_new = ls->eval(ls->arg, t, g_new);
        evals++;
        if (!isfinite(f_new)) return (nnrt_line_result){f_new, t, g_new, evals};
        gtd_new = dot(g_new, ls->d, ls->n);
        ls_iter++;
    }
    if (ls_iter == MAX_LS) bracket2(&b, 0, f, g, gtd, t, f_new, g_new, gtd_new);  // zoom does not run then
    double f_bad = 0;
    int low = zoom(ls, &b, f, gtd, d_norm, tolerance_change, &ls_iter, &evals, done, &f_bad);
    if (f_bad != 0) return (nnrt_line_result){f_bad, b.t[low], NULL, evals};
    return (nnrt_line_result){b.f[low], b.t[low], b.g[low], evals};
}
