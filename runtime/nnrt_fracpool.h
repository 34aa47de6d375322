/* nnrt_fracpool.h — fractional max pooling on NCHW tensors (fracpool.c): Graham 2014's pseudo-random regions,
 * as PyTorch's nn.FractionalMaxPool2d.
 *
 * The contract between the generated C (nncc's CodeGen emits these calls) and runtime/. Each (sample, channel)
 * plane has two samples u in [0, 1): u[2·plane] places the columns, u[2·plane + 1] the rows (PyTorch's order).
 * Along an axis of input size S, output size O and window k, with α = (S − k)/(O − 1), output i's window starts
 * at ⌊(i + u)·α⌋ − ⌊u·α⌋ for i < O − 1 and at S − k for the last (PyTorch's generate_intervals, here in double
 * precision for both float types, as nncc's interpreter). The compiler checks O ≤ S − k + 1.
 *
 * The forward takes each window's first maximum in row-major order (a NaN counts as the maximum); the backward
 * adds dy there (windows may overlap). Both overwrite their output. The float32 calls use both threads
 * (nnrt_par_chunks: whole planes per chunk), so they must be called from the main thread; the float64 twins
 * serve gradcheck. */
#ifndef NNRT_FRACPOOL_H
#define NNRT_FRACPOOL_H

typedef struct {
    int C, H, W;         /* input channels, height, width */
    int OH, OW;          /* output height, width */
    int kh, kw;          /* window size */
} nnrt_fracpool2d_geom;

/* y (n, C, OH, OW) = the maximum of each region of x (n, C, H, W) placed by u (n, C, 2). */
void nnrt_fracmaxpool2d_forward(const nnrt_fracpool2d_geom *g, int n, const float *x, const float *u, float *y);
/* dx (n, C, H, W) = dy (n, C, OH, OW) added at each region's maximum in x. */
void nnrt_fracmaxpool2d_backward(const nnrt_fracpool2d_geom *g, int n, const float *dy, const float *x,
                                 const float *u, float *dx);
void nnrt_fracmaxpool2d_forward_f64(const nnrt_fracpool2d_geom *g, int n, const double *x, const double *u,
                                    double *y);
void nnrt_fracmaxpool2d_backward_f64(const nnrt_fracpool2d_geom *g, int n, const double *dy, const double *x,
                                     const double *u, double *dx);

/* The first row (or column) of window i along an axis of input size `size`, `out` outputs and window k. */
int nnrt_fracpool_start(int i, int size, int out, int k, double u);

#endif
