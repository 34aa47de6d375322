/* softmax.c — the softmax of a classifier's outputs (predict, ensembles, and the exported inference library, which
 * copies this file: its probabilities equal predict's bit for bit). Calls nothing in the runtime. */
#include <math.h>

#include "nnrt_context.h"

void nnrt_softmax_rows(float *z, int64_t n, int c) {
    for (int64_t i = 0; i < n; i++) {
        float *row = z + i * c;  // (c)
        float mx = row[0];
        for (int j = 1; j < c; j++) mx = row[j] > mx ? row[j] : mx;
        double sum = 0;
        for (int j = 0; j < c; j++) { row[j] = expf(row[j] - mx); sum += row[j]; }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < c; j++) row[j] *= inv;
    }
}
