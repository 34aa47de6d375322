/* blas.c — making OpenBLAS use the right kernels and thread count.
 *
 * Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know Sapphire Rapids and falls back to its
 * "Prescott" SSE3 kernels, 5–10× slower than the machine allows (it does recognise AMD Zen 2, which gets the
 * same "Zen" from the choice below). It honours OPENBLAS_CORETYPE, but
 * reads it in the library's load-time constructor, before main runs: a setenv in main is too late
 * (checked: openblas_get_corename() still says Prescott). So nnrt_main starts by choosing the core from
 * the CPU's features and, when it changed the environment, re-executes /proc/self/exe with the same
 * argv once (the NNRT_BLAS_CHOSEN marker prevents a loop and records why the core was chosen).
 *
 * Threads: at batch 128 on 2 cores, OpenBLAS's own threading makes these GEMMs slower (BENCHMARKS.md:
 * 1.03 s vs 0.55 s per epoch), so OPENBLAS_NUM_THREADS defaults to 1. Users may set either variable; set to
 * the empty string, either counts as unset (`OPENBLAS_CORETYPE= ./trainer` is how a shell clears it, and
 * OpenBLAS itself ignores an empty core name: "Core not found: ", then its own detection).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnrt_compute.h"

/* OpenBLAS extensions (declared in its cblas.h, repeated here to keep this file independent of it). */
char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int n);

static const char *MARKER = "NNRT_BLAS_CHOSEN";  // "<core>;<features>" set before the re-exec

/* The variable's value, or NULL when it is unset or empty. */
static const char *env_set(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

// ----------------------------------------------------------------------------
// choosing

const char *nnrt_blas_pick_core(char *why, size_t cap) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
        snprintf(why, cap, "avx512f avx512bw avx512dq avx512vl");
        return "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        int amd = __builtin_cpu_is("amd");  // Zen: Haswell's kernels with Zen's cache blocking
        snprintf(why, cap, "%savx2 fma", amd ? "AMD, " : "");
        return amd ? "Zen" : "Haswell";
    }
    snprintf(why, cap, "no avx2");
    return NULL;  // leave it to OpenBLAS's own detection
}

void nnrt_blas_setup(char **argv) {
    if (getenv(MARKER)) return;  // we are the re-executed process (or a child of one)
    int changed = 0;
    if (!env_set("OPENBLAS_NUM_THREADS")) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        openblas_set_num_threads(1);  // enough on its own when no re-exec follows
    }
    if (!env_set("OPENBLAS_CORETYPE")) {
        char why[128], marker[192];
        const char *core = nnrt_blas_pick_core(why, sizeof why);
        if (core) {
            setenv("OPENBLAS_CORETYPE", core, 1);
            snprintf(marker, sizeof marker, "%s;%s", core, why);
            setenv(MARKER, marker, 1);
            changed = 1;
        }
    }
    if (!changed) return;
    fflush(stdout);
    fflush(stderr);
    execv("/proc/self/exe", argv);
    // exec failed (no /proc?): carry on with OpenBLAS's own choice; --verbose will show it.
    unsetenv(MARKER);
    unsetenv("OPENBLAS_CORETYPE");
}

// ----------------------------------------------------------------------------
// reporting

void nnrt_blas_describe(FILE *f) {
    char version[64] = "OpenBLAS";
    const char *config = openblas_get_config();
    if (config) {  // "OpenBLAS 0.3.21 DYNAMIC_ARCH …": keep the first two words
        const char *sp = strchr(config, ' ');
        sp = sp ? strchr(sp + 1, ' ') : NULL;
        snprintf(version, sizeof version, "%.*s", sp ? (int)(sp - config) : (int)strlen(config), config);
    }
    const char *env = env_set("OPENBLAS_CORETYPE"), *marker = getenv(MARKER);
    char how[256];
    if (env && marker && strncmp(marker, env, strlen(env)) == 0 && marker[strlen(env)] == ';')
        snprintf(how, sizeof how, "OPENBLAS_CORETYPE=%s, chosen from CPU features %s", env, marker + strlen(env) + 1);
    else if (env)
        snprintf(how, sizeof how, "OPENBLAS_CORETYPE=%s, set by the user", env);
    else
        snprintf(how, sizeof how, "OPENBLAS_CORETYPE unset, OpenBLAS's own detection");
    int threads = openblas_get_num_threads();
    fprintf(f, "blas: %s core %s (%s), %d thread%s\n", version, openblas_get_corename(), how, threads,
            threads == 1 ? "" : "s");
    fprintf(f, "gemm: %s\n", nnrt_gemm_describe());
    fprintf(f, "threads: %d for the kernels (large GEMMs and their loops split by rows or columns)\n",
            nnrt_parallel_threads());
}
