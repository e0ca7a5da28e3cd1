/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `memprof-bpf report FILE`: a saved snapshot read back (no BPF, no root)
 * and printed as tables at the peak (cells, stacks, files) or as folded
 * stacks for flamegraph.pl and speedscope. The frame-naming helpers are
 * shared with diff.c.
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
enum report_format { REPORT_TEXT, REPORT_FOLDED, REPORT_HTML };

struct report_opts {
	enum report_by by; /* ALL: the cell table, then the stacks */
	enum report_format format;
	int top; /* rows per table */
};

/* The subcommand: argv[0] is "report". Returns the exit code. */
int report__main(int argc, char **argv);
/* Text tables of a loaded snapshot. */
void report__text(FILE *out, json_t *doc, const struct report_opts *o);
/* One folded line per stack at the peak: "frame;frame;... bytes". */
void report__folded(FILE *out, json_t *doc);
/*
 * Load and validate a snapshot; NULL after one error line on stderr
 * (the file named, missing or damaged).
 */
json_t *report__load(const char *path);
/* The innermost Python frame of a stack, or NULL (native-only stack). */
json_t *report__leaf_python(json_t *stack);
/* Where a stack allocates: "file.py:12 function", else "function (lib)". */
void report__where(json_t *stack, char *buf, size_t size);
/* One frame as a flame graph box or folded frame names it. */
void report__frame_name(json_t *f, char *buf, size_t size);
/* {label: cell code file} of the peak's cell runs. Caller decrefs. */
json_t *report__cell_files(json_t *doc);
/* Index of the first frame in cell_file (0 when none): a cell's root. */
size_t report__cell_frame(json_t *frames, const char *cell_file);
/* A positive row count for --top, or -1 after an error line. */
int report__parse_top(const char *arg);

#endif
