/* unit_monitor.c — unit tests of monitor.c's activation statistics (closed forms on small made-up batches: dead
 * units, saturation, the histogram's buckets and edges) and of report_chart.c's text building (HTML escaping, base64
 * against RFC 4648's test vectors). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

void test_act_stats(void) {
    // a ReLU output (n 3, 4 units): unit 1 and unit 3 are 0 on every sample, so half the units are dead
    const float relu[12] = {1, 0, 2, 0, 0, 0, 3, 0, 4, 0, 0, 0};
    nnrt_act_stats s;
    nnrt_act_stats_compute(&s, "relu", relu, 3, 4);
    CHECK("relu num", s.num == 12 && s.units == 4);
    CHECK("relu mean", fabs(s.mean - 10.0 / 12) < 1e-12);
    CHECK("relu std", fabs(s.std - sqrt(30.0 / 12 - (10.0 / 12) * (10.0 / 12))) < 1e-12);
    CHECK("relu zero fraction", fabs(s.frac_zero - 8.0 / 12) < 1e-12);
    CHECK("relu dead units", fabs(s.frac_dead - 0.5) < 1e-12 && s.frac_saturated == 0);
    // 30 buckets from 0 to 4, width 4/30: 0 is in the first (from min, inclusive), 1 in ceil(7.5) − 1 = 7, 2 in 14,
    // 3 in 22 (ceil(22.5) − 1), 4 (the max) in the last
    double want[NNRT_MONITOR_BINS] = {0};
    want[0] = 8, want[7] = 1, want[14] = 1, want[22] = 1, want[29] = 1;
    int same = s.bins == NNRT_MONITOR_BINS && s.limit[29] == 4 && fabs(s.limit[0] - 4.0 / 30) < 1e-15;
    for (int b = 0; b < NNRT_MONITOR_BINS; b++) same &= s.count[b] == want[b];
    CHECK("relu histogram", same);
    // tanh: |v| ≥ 0.99 saturated; sigmoid: ≤ 0.01 or ≥ 0.99
    const float th[4] = {0.995f, -0.999f, 0.5f, -0.2f}, sg[4] = {0.005f, 0.5f, 0.995f, 0.98f};
    nnrt_act_stats_compute(&s, "tanh", th, 2, 2);
    CHECK("tanh saturated", fabs(s.frac_saturated - 0.5) < 1e-12 && s.frac_dead == 0);
    nnrt_act_stats_compute(&s, "sigmoid", sg, 1, 4);
    CHECK("sigmoid saturated", fabs(s.frac_saturated - 0.5) < 1e-12);
    // a constant activation: one bucket holding every value
    const float k[3] = {0, 0, 0};
    nnrt_act_stats_compute(&s, "relu", k, 3, 1);
    CHECK("constant: one bucket", s.bins == 1 && s.count[0] == 3 && s.limit[0] == 0 && s.frac_dead == 1 && s.std == 0);
}

void test_report_text(void) {
    nnrt_text t = {0};
    nnrt_text_html(&t, "a<b & \"c\">");
    CHECK("html escape", strcmp(t.s, "a&lt;b &amp; &quot;c&quot;&gt;") == 0);
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        t.len = 0;
        nnrt_text_printf(&t, "%s", "");
        nnrt_text_base64(&t, (const uint8_t *)in[i], strlen(in[i]));
        CHECK("base64 RFC 4648 vector", strcmp(t.s, out[i]) == 0);
    }
    free(t.s);
}
