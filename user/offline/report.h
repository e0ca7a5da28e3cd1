/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `memprof-bpf report FILE`: a saved snapshot read back (no BPF, no root)
 * and printed as tables at the peak (cells, stacks, files), as folded
 * stacks for flamegraph.pl and speedscope, or as pprof's profile. The
 * frame-naming helpers are shared with diff.c.
 */
#ifndef MEMPROF_REPORT_H
#define MEMPROF_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

enum report_by {
	REPORT_BY_ALL,
	REPORT_BY_CELL,
	REPORT_BY_STACK,
	REPORT_BY_FILE
};
enum report_format {
	REPORT_TEXT,
	REPORT_FOLDED,
	REPORT_HTML,
	REPORT_JSON,
	REPORT_SNAPSHOT,
	REPORT_PPROF,
};

struct report_opts {
	enum report_by by; /* ALL: the cell table, then the stacks */
	enum report_format format;
	int top; /* rows per table */
};

/* The subcommand: argv[0] is "report". Returns the exit code. */
int report__main(int argc, char **argv);
/* Text tables of a loaded snapshot. */
void report__text(FILE *out, json_t *doc, const struct report_opts *o);
/* The timeline as a text sparkline, under the header (none: nothing). */
void report__timeline(FILE *out, json_t *doc);
/* A positive row count for --top, or -1 after an error line. */
int report__parse_top(const char *arg);

#endif
