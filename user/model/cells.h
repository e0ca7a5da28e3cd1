/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Notebook cell runs of one process. An allocation belongs to the cell
 * whose code is the outermost cell frame on its Python stack; a cell's
 * code is recognised by its filename (ipykernel's <tmp>/ipykernel_<pid>/
 * <hash>.py, IPython's <ipython-input-N-...>, or a file the python/
 * extension announced). IPython compiles each top-level statement of a
 * cell into its own <module> code object, one after the other, with line
 * numbers rising; every execution compiles anew (a code id includes its
 * birth). So a run is: with markers, everything under that file between
 * cell__start and cell__end; without, <module> codes of one file whose
 * first lines rise; a first line at or above the last one seen starts a
 * new run (a re-run of the same source). The markers add "In [N]", the
 * first source line and exact start/end times.
 *
 * Per event the cost is O(1): a site's run is decided once, when the site
 * is created, and kept in its description (model/site.h); live and
 * at-peak bytes per run are summed from the sites when a report or
 * snapshot is made.
 */
#ifndef MEMPROF_CELLS_H
#define MEMPROF_CELLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "memprof.h"

struct heap;
struct pystacks;
struct sites;
struct py_code;

#define CELL_OUTSIDE (-1) /* site run: no cell frame on its stack */

struct cell_run {
	char label[64]; /* "In [3]", or the hash filename without markers */
	int64_t execution_count; /* -1: unknown (no marker) */
	char *file; /* the cell code's co_filename */
	char *head; /* first source line (markers only), or NULL */
	uint64_t code_id; /* its latest <module> code, 0 until seen */
	uint64_t code_addr;
	int last_line; /* line that code ran when first seen: statements rise */
	uint64_t started_ns, finished_ns; /* CLOCK_MONOTONIC; 0: running */
	uint64_t start_live; /* process live bytes when it started */
	uint64_t max_live; /* highest process live bytes while it ran */
	bool marked; /* announced by the extension */
	bool success; /* marked runs: the cell raised nothing */
	bool before; /* the "(before attach)" row: what the census found */
};

struct cells {
	struct cell_run *runs;
	size_t n, cap;
	int64_t current; /* run executing now, -1 none */
	int64_t peak_run; /* run executing at the high-water mark, -1 none */
};

/* Live and at-peak bytes and blocks of one run (or of "outside"). */
struct cell_totals {
	int64_t live_bytes, live_count;
	int64_t peak_bytes, peak_count;
	uint64_t allocs; /* allocations ever made */
};

void cells__init(struct cells *c);
void cells__free(struct cells *c);
int cells__clone(struct cells *dst, const struct cells *src);

/* Is this a notebook cell's code filename (without any marker)? */
bool cells__is_cell_file(const char *file);

/*
 * Run of a new site with Python stack stack_id (0: none), created on first
 * sight at now with the process at live bytes (a run may start here). The
 * site's description keeps it: it is decided once.
 */
int32_t cells__run_of(struct cells *c, const struct pystacks *ps,
		      uint64_t stack_id, uint64_t now, uint64_t live);

/*
 * The "(before attach)" run (made once, at now): the census's sites are
 * in it, so every cells table has that row and it shrinks as the user
 * deletes old objects. Its index, or CELL_OUTSIDE on ENOMEM.
 */
int32_t cells__before_run(struct cells *c, uint64_t now);

/* memprof:cell__start / cell__end from the python/ extension. */
void cells__marker(struct cells *c, const struct rec_cell *r, uint64_t live);

/* A code object died: an unmarked run whose code it was has finished. */
void cells__code_freed(struct cells *c, uint64_t code_addr, uint64_t now);

/*
 * After an allocation at a site of run (process now at live bytes;
 * new_peak: this event raised the high-water mark): follows the running
 * cell's high level, and notes which run executes when the mark rises.
 */
void cells__on_alloc(struct cells *c, int32_t run, uint64_t live,
		     bool new_peak);

/*
 * Sum the heap's sites by their run (s): out[0..n) per run, out[n]
 * outside cells. Call after heap__settle_peak() for exact at-peak figures.
 */
void cells__totals(const struct cells *c, const struct sites *s,
		   const struct heap *h, struct cell_totals *out);

#endif
