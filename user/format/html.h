/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The HTML export: one self-contained page (user/output/flamegraph.html, built
 * into the binary) with a snapshot's peak embedded as JSON. It draws a
 * zoomable, searchable icicle flame graph (stacks under their cell) and
 * the per-cell table, offline, with no third-party script.
 */
#ifndef MEMPROF_HTML_H
#define MEMPROF_HTML_H

#include <jansson.h>
#include <stdio.h>

/* Write the page for a loaded snapshot. Returns 0 or -errno. */
int html__write(FILE *out, json_t *doc);
/* The data the page draws (exposed for tests). Caller decrefs. */
json_t *html__data(json_t *doc);

#endif
