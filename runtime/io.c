/* io.c — fatal errors, checked allocation, the monotonic clock, file reading (raw or gzip) and
 * atomic file output (temp file in the same directory, fsync, rename). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "nnrt_io.h"

// ----------------------------------------------------------------------------
// fatal errors

/* The temp file of the atomic output in progress, removed on any fatal exit. A fixed buffer, so the
   signal handler can use it without touching the heap. */
static char pending_tmp[4096];

static void remove_pending(void) {
    if (pending_tmp[0]) { unlink(pending_tmp); pending_tmp[0] = 0; }
}

/* Set while this thread runs inside nnrt_try: a fatal error is kept for the caller instead of ending the process. */
static _Thread_local struct {
    jmp_buf *back;
    char *msg;
    size_t cap;
    int code;
} deferred;

/* The program's name, which every error line starts with, as nncc's do ("trainer: error: …"). */
static char program[64];

void nnrt_set_program(const char *name) { snprintf(program, sizeof program, "%s", name ? name : ""); }

static void error_prefix(void) {
    if (program[0]) fprintf(stderr, "%s: ", program);
    fputs("error: ", stderr);
}

static NNRT_NORETURN void vdie(int code, const char *fmt, va_list ap) {
    if (deferred.back) {
        vsnprintf(deferred.msg, deferred.cap, fmt, ap);
        deferred.code = code;
        longjmp(*deferred.back, 1);
    }
    fflush(stdout);
    error_prefix();
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    remove_pending();
    exit(code);
}

void nnrt_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vdie(NNRT_EXIT_FAIL, fmt, ap);
}

void nnrt_usage_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vdie(NNRT_EXIT_USAGE, fmt, ap);
}

int nnrt_try(void (*fn)(void *arg), void *arg, char *msg, size_t cap) {
    jmp_buf back;
    if (setjmp(back)) {
        deferred.back = NULL;
        return deferred.code;
    }
    deferred.back = &back;
    deferred.msg = msg;
    deferred.cap = cap;
    fn(arg);
    deferred.back = NULL;
    return 0;
}

void nnrt_exit_with(int code, const char *msg) {
    fflush(stdout);
    error_prefix();
    fprintf(stderr, "%s\n", msg);
    remove_pending();
    exit(code);
}

// ----------------------------------------------------------------------------
// memory, time, paths

void *nnrt_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) nnrt_die("out of memory (allocating %zu bytes)", bytes);
    return p;
}

size_t nnrt_mul_size(size_t a, size_t b, const char *what) {
    if (b && a > SIZE_MAX / b) nnrt_die("%s: size overflow (%zu x %zu)", what, a, b);
    return a * b;
}

int64_t nnrt_mul_dims(int64_t a, int64_t b, const char *path) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        nnrt_die("%s: dimensions overflow (%lld x %lld)", path, (long long)a, (long long)b);
    return r;
}

void *nnrt_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) nnrt_die("out of memory (allocating %zu x %zu bytes)", count, size);
    return p;
}

void *nnrt_aligned_calloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) nnrt_die("out of memory (allocating %zu bytes)", bytes);
    memset(p, 0, rounded);
    return p;
}

double nnrt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int nnrt_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const char *nnrt_basename(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

// ----------------------------------------------------------------------------
// reading (gzip or raw, transparently)

#ifndef NNRT_GZ_BUFFER
#define NNRT_GZ_BUFFER (1 << 17)  // zlib's buffer; the fuzz build makes it small (its inputs are), for speed
#endif

struct nnrt_reader {
    gzFile gz;
    const char *path;
    off_t size;  // of the file on disk
};

nnrt_reader *nnrt_reader_open(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) nnrt_die("%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) nnrt_die("%s: is a directory, expected a file", path);
    gzFile gz = gzopen(path, "rb");
    if (!gz) nnrt_die("%s: cannot open (%s)", path, strerror(errno));
    gzbuffer(gz, NNRT_GZ_BUFFER);
    nnrt_reader *r = nnrt_malloc(sizeof *r);
    r->gz = gz;
    r->path = path;
    r->size = st.st_size;
    return r;
}

size_t nnrt_reader_read(nnrt_reader *r, void *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;  // gzread takes an unsigned
        int got = gzread(r->gz, (char *)buf + done, (unsigned)chunk);
        if (got < 0) {
            int err;
            const char *msg = gzerror(r->gz, &err);
            nnrt_die("%s: read error (%s)", r->path, msg);
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    return done;
}

void nnrt_reader_read_exact(nnrt_reader *r, void *buf, size_t n, const char *what) {
    size_t got = nnrt_reader_read(r, buf, n);
    if (got != n) nnrt_die("%s: truncated file (expected %s)", r->path, what);
}

void nnrt_reader_close(nnrt_reader *r) {
    gzclose(r->gz);
    free(r);
}

const char *nnrt_reader_path(const nnrt_reader *r) { return r->path; }

void *nnrt_reader_read_alloc(nnrt_reader *r, size_t n, const char *what) {
    // gzdirect is 1 for a file zlib reads as is (known once something was read): its bytes left are on disk.
    if (gzdirect(r->gz)) {
        off_t at = gztell(r->gz);
        size_t left = at >= 0 && at <= r->size ? (size_t)(r->size - at) : 0;
        if (n > left) nnrt_die("%s: truncated file (expected %s; the file has %zu bytes left)", r->path, what, left);
        char *buf = nnrt_malloc(n);
        nnrt_reader_read_exact(r, buf, n, what);
        return buf;
    }
    size_t cap = n < ((size_t)1 << 24) ? n : (size_t)1 << 24, done = 0;
    char *buf = nnrt_malloc(cap);
    for (;;) {
        done += nnrt_reader_read(r, buf + done, cap - done);
        if (done == n) return buf;
        if (done < cap) { free(buf); nnrt_die("%s: truncated file (expected %s; the stream ends after %zu)", r->path, what, done); }
        cap = cap > n / 2 ? n : 2 * cap;
        char *grown = realloc(buf, cap);
        if (!grown) { free(buf); nnrt_die("%s: out of memory reading %zu bytes", r->path, cap); }
        buf = grown;
    }
}

char *nnrt_read_all(const char *path, size_t *len) {
    nnrt_reader *r = nnrt_reader_open(path);
    size_t cap = 1 << 16, n = 0;
    char *buf = nnrt_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap = nnrt_mul_size(cap, 2, path);
            char *grown = realloc(buf, cap);
            if (!grown) { free(buf); nnrt_die("%s: out of memory reading the file", path); }
            buf = grown;
        }
        size_t got = nnrt_reader_read(r, buf + n, cap - 1 - n);
        if (got == 0) break;
        n += got;
    }
    nnrt_reader_close(r);
    buf[n] = 0;
    *len = n;
    return buf;
}

// ----------------------------------------------------------------------------
// atomic output

struct nnrt_atomic {
    FILE *f;
    char *path;
    char tmp[sizeof pending_tmp];
};

static void on_signal(int sig) {
    if (pending_tmp[0]) unlink(pending_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Temp files ".<base>.tmp.<pid>.XXXXXX" in dir whose process is gone: left by a run killed with SIGKILL (or a
   power cut), which no handler can clean up. A live process's temp file (another run writing there) is kept. */
static void remove_stale_temps(const char *path, int dirlen, const char *base) {
    char dir[sizeof pending_tmp], prefix[1024], stale[sizeof pending_tmp];
    snprintf(dir, sizeof dir, "%.*s", dirlen ? dirlen : 1, dirlen ? path : ".");
    int plen = snprintf(prefix, sizeof prefix, ".%s.tmp.", base);
    if (plen < 0 || (size_t)plen >= sizeof prefix) return;
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, (size_t)plen) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + plen, &end, 10);
        if (end == e->d_name + plen || *end != '.' || pid <= 0 || (pid_t)pid == getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to signal): keep it
        snprintf(stale, sizeof stale, "%.*s%s", dirlen, path, e->d_name);
        if (unlink(stale) == 0) fprintf(stderr, "note: removed %s, left by an interrupted run (process %ld)\n", stale, pid);
    }
    closedir(d);
}

nnrt_atomic *nnrt_atomic_open(const char *path) {
    if (pending_tmp[0]) nnrt_die("internal: two atomic outputs at once (%s)", path);
    nnrt_atomic *a = nnrt_calloc(1, sizeof *a);
    const char *base = nnrt_basename(path);
    int dirlen = (int)(base - path);
    remove_stale_temps(path, dirlen, base);
    int len = snprintf(a->tmp, sizeof a->tmp, "%.*s.%s.tmp.%ld.XXXXXX", dirlen, path, base, (long)getpid());
    if (len < 0 || (size_t)len >= sizeof a->tmp) nnrt_die("%s: path too long", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0) nnrt_die("%s: cannot create a file in that directory (%s)", path, strerror(errno));
    fchmod(fd, 0644);  // mkstemp makes 0600; a weights file is an ordinary file
    a->f = fdopen(fd, "wb");
    if (!a->f) nnrt_die("%s: %s", path, strerror(errno));
    a->path = strdup(path);
    memcpy(pending_tmp, a->tmp, sizeof pending_tmp);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    return a;
}

void nnrt_atomic_write(nnrt_atomic *a, const void *buf, size_t n) {
    if (n && fwrite(buf, 1, n, a->f) != n) nnrt_die("%s: write failed (%s)", a->path, strerror(errno));
}

static void atomic_release(nnrt_atomic *a) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pending_tmp[0] = 0;
    free(a->path);
    free(a);
}

void nnrt_atomic_commit(nnrt_atomic *a) {
    if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)
        nnrt_die("%s: write failed (%s)", a->path, strerror(errno));
    if (fclose(a->f) != 0) { a->f = NULL; nnrt_die("%s: write failed (%s)", a->path, strerror(errno)); }
    if (rename(a->tmp, a->path) != 0) nnrt_die("%s: cannot rename the temp file (%s)", a->path, strerror(errno));
    // fsync the directory too, so the rename itself survives a crash.
    char dir[sizeof pending_tmp];
    int dirlen = (int)(nnrt_basename(a->path) - a->path);
    snprintf(dir, sizeof dir, "%.*s", dirlen ? dirlen : 1, dirlen ? a->path : ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    atomic_release(a);
}

void nnrt_atomic_abort(nnrt_atomic *a) {
    fclose(a->f);
    unlink(a->tmp);
    atomic_release(a);
}
