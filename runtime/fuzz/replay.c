/* replay.c — a stand-in for libFuzzer's driver where clang has no -fsanitize=fuzzer: runs every file of the
 * corpus directories given, then random mutations of them (bit flips, byte sets, cuts, copies of a span, 4-byte
 * values such as 0xffffffff) until -max_total_time=S seconds or -runs=N inputs. It finds less than libFuzzer (no
 * coverage feedback); a crash is the sanitizer's report, a non-zero exit and the input saved, as with libFuzzer. Prints
 * "stat::number_of_executed_units: N" like libFuzzer's -print_final_stats=1. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sanitizer/common_interface_defs.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct { uint8_t *data; size_t size; } unit;

static unit *units;
static size_t n_units, cap_units;

static void add_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return;
    unit u = {malloc(1 << 20), 0};
    u.size = fread(u.data, 1, 1 << 20, f);
    fclose(f);
    if (n_units == cap_units) units = realloc(units, (cap_units = cap_units ? 2 * cap_units : 64) * sizeof *units);
    units[n_units++] = u;
}

/* The input being run, written to <artifact_prefix>crash-replay when a sanitizer ends the process. */
static const uint8_t *current;
static size_t current_size;
static char artifact[4096] = "./crash-replay";

static void save_current(void) {
    FILE *f = current ? fopen(artifact, "wb") : NULL;
    if (f) { fwrite(current, 1, current_size, f); fclose(f); fprintf(stderr, "replay: the input is in %s\n", artifact); }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

int main(int argc, char **argv) {
    double seconds = 10;
    long long runs = -1, done = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-max_total_time=", 16) == 0) seconds = atof(argv[i] + 16);
        else if (strncmp(argv[i], "-runs=", 6) == 0) runs = atoll(argv[i] + 6);
        else if (strncmp(argv[i], "-artifact_prefix=", 17) == 0) snprintf(artifact, sizeof artifact, "%scrash-replay", argv[i] + 17);
        else if (argv[i][0] == '-') continue;  // libFuzzer's other flags
        else {
            DIR *d = opendir(argv[i]);
            if (!d) { add_file(argv[i]); continue; }
            for (struct dirent *e; (e = readdir(d));) {
                if (e->d_name[0] == '.') continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                add_file(path);
            }
            closedir(d);
        }
    }
    for (size_t i = 0; i < n_units && (runs < 0 || done < runs); i++, done++) LLVMFuzzerTestOneInput(units[i].data, units[i].size);
    if (n_units == 0) add_file("/dev/null");
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint8_t *buf = malloc(1 << 20), *span = malloc(1 << 20);
    current = buf;
    __sanitizer_set_death_callback(save_current);
    for (;;) {
        if (runs >= 0 && done >= runs) break;
        if ((done & 63) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec) >= seconds) break;
        }
        const unit *u = &units[next() % n_units];
        size_t n = u->size;
        memcpy(buf, u->data, n);
        for (int k = 1 + (int)(next() % 4); k > 0 && n > 0; k--) {
            size_t at = next() % n;
            switch (next() % 5) {
            case 0: buf[at] ^= (uint8_t)(1u << (next() % 8)); break;
            case 1: buf[at] = (uint8_t)next(); break;
            case 2: n = at; break;
            case 3: {  // a copy of a span inserted at `at`
                size_t from = next() % n, len = next() % (n - from) + 1;
                if (n + len < (1u << 20)) {
                    memcpy(span, buf + from, len);
                    memmove(buf + at + len, buf + at, n - at);
                    memcpy(buf + at, span, len);
                    n += len;
                }
            } break;
            case 4: if (at + 4 <= n) memset(buf + at, next() & 1 ? 0xff : 0x7f, 4); break;
            }
        }
        current_size = n;
        LLVMFuzzerTestOneInput(buf, n);
        done++;
    }
    printf("stat::number_of_executed_units: %lld\n", done);
    return 0;
}
