/* nnrt_report.h — the report command's pieces (report.c: the page; report_chart.c: text building, inline SVG
 * charts, base64). Everything is written into one growing buffer, then to the file atomically. */
#ifndef NNRT_REPORT_H
#define NNRT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "nnrt_io.h"

typedef struct { char *s; size_t len, cap; } nnrt_text;

void nnrt_text_printf(nnrt_text *t, const char *fmt, ...) NNRT_PRINTF(2, 3);
/* s with &, <, >, " escaped for HTML text and attributes. */
void nnrt_text_html(nnrt_text *t, const char *s);
/* The bytes as base64 (RFC 4648, padded). */
void nnrt_text_base64(nnrt_text *t, const uint8_t *bytes, size_t n);

/* One curve of a chart: n points (x[i], y[i]); a non-finite y is a gap. */
typedef struct {
    char name[96];
    double *x, *y;
    int n, cap;
} nnrt_series;

void nnrt_series_add(nnrt_series *s, double x, double y);
/* An inline <svg> line chart of the series that have a point to draw (one color each, a legend when more than
   one; at most 64); logy: a log10 y axis (only positive values drawn). Nothing when none has. */
void nnrt_chart(nnrt_text *t, const char *title, const char *xlabel, const char *ylabel, const nnrt_series *s, int n, int logy);

#endif
