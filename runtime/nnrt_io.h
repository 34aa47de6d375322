/* nnrt_io.h — errors, memory, time and files (io.c): the layer everything else stands on. Calls nothing in the
 * runtime. */
#ifndef NNRT_IO_H
#define NNRT_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define NNRT_NORETURN __attribute__((noreturn))
#define NNRT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NNRT_NORETURN
#define NNRT_PRINTF(a, b)
#endif

enum { NNRT_EXIT_FAIL = 1, NNRT_EXIT_USAGE = 2 };

/* offsetof(S, field) as a constant expression that fails to compile unless the field has type T (a negative
   bit-field width): for tables that write fields through untyped offsets (cli.c's flags). */
#define NNRT_FIELD_OFFSET(S, field, T) \
    (offsetof(S, field) + 0 * sizeof(struct { int field_type_check : _Generic(((S *)0)->field, T: 1, default: -1); }))

/* Sets the name error lines start with (nnrt_main: the trainer's file name). */
void nnrt_set_program(const char *name);
/* Prints "<program>: error: <message>" on stderr, removes a pending atomic output, exits 1. */
NNRT_NORETURN void nnrt_die(const char *fmt, ...) NNRT_PRINTF(1, 2);
/* Same, for command-line mistakes: exits 2. */
NNRT_NORETURN void nnrt_usage_die(const char *fmt, ...) NNRT_PRINTF(1, 2);
/* Runs fn(arg); a fatal error (nnrt_die, nnrt_usage_die) inside it, on this thread, does not end the process but
   returns its exit status, with its message in msg. Meant for work on the worker thread whose error must be
   reported in order: what fn allocated or opened before the error is abandoned, so exit soon after
   (nnrt_exit_with prints the message as nnrt_die would have). Returns 0 when fn returned. */
int nnrt_try(void (*fn)(void *arg), void *arg, char *msg, size_t cap);
NNRT_NORETURN void nnrt_exit_with(int code, const char *msg);

void *nnrt_malloc(size_t bytes);                 /* dies on failure; never returns NULL */
void *nnrt_calloc(size_t count, size_t size);    /* zeroed, dies on failure or overflow */
void *nnrt_aligned_calloc(size_t bytes);         /* zeroed, 64-byte aligned, free() it */
size_t nnrt_mul_size(size_t a, size_t b, const char *what);  /* a*b, dies on overflow */
/* a*b for a file's dimensions (a, b >= 0): dies "<path>: dimensions overflow (<a> x <b>)" past INT64_MAX. */
int64_t nnrt_mul_dims(int64_t a, int64_t b, const char *path);
double nnrt_now(void);                           /* seconds on the monotonic clock */
int nnrt_file_exists(const char *path);
const char *nnrt_basename(const char *path);

/* A reader over a raw or gzip-compressed file (zlib reads raw files transparently). */
typedef struct nnrt_reader nnrt_reader;
nnrt_reader *nnrt_reader_open(const char *path);             /* dies naming the file if it can't */
size_t nnrt_reader_read(nnrt_reader *r, void *buf, size_t n); /* short only at end of file */
/* Reads exactly n bytes or dies: "<path>: truncated file (expected <what>)". */
void nnrt_reader_read_exact(nnrt_reader *r, void *buf, size_t n, const char *what);
void nnrt_reader_close(nnrt_reader *r);
const char *nnrt_reader_path(const nnrt_reader *r);
/* The n bytes a header claims come next, read into a new buffer (free it). A size is never trusted: a raw file
   must hold n more bytes before anything is allocated ("<path>: truncated file (expected <what>; the file has
   <k> bytes left)"); a compressed stream's buffer grows with what it actually decompresses. */
void *nnrt_reader_read_alloc(nnrt_reader *r, size_t n, const char *what);
/* Whole file (decompressed) into memory, NUL-terminated; *len excludes the NUL. */
char *nnrt_read_all(const char *path, size_t *len);

/* Atomic output: bytes go to a temp file in the destination's directory, which is fsync'ed and
   renamed over the destination on commit. Until then, the destination is untouched, and a fatal
   error or SIGINT/SIGTERM removes the temp file. One atomic output may be open at a time. */
typedef struct nnrt_atomic nnrt_atomic;
nnrt_atomic *nnrt_atomic_open(const char *path);
void nnrt_atomic_write(nnrt_atomic *a, const void *buf, size_t n);
void nnrt_atomic_commit(nnrt_atomic *a);
void nnrt_atomic_abort(nnrt_atomic *a);

#endif
