/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The live top view's model: what each screen line says, built from the
 * agent's aggregates with no terminal in sight (user/view/topview.c draws it).
 * Rows are self-contained copies (labels, figures, frame text), so the
 * view can redraw, scroll and pause from them while events keep flowing,
 * and sorting, labels, units and truncation are unit-tested
 * (tests/unit/test_topmodel.c).
 */
#ifndef MEMPROF_TOPMODEL_H
#define MEMPROF_TOPMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "model/cells.h"
#include "model/heap.h"
#include "model/pystacks.h"
#include "model/site.h"
#include "procs/tracee.h"

#define TOP_HISTORY 600 /* live-bytes samples kept per process */
#define TOP_TEXT 192 /* one frame or source line, before fitting */
#define TOP_ANY_RUN INT32_MIN /* stacks of every cell run */

enum top_view { TOP_CELLS, TOP_STACKS, TOP_PROCS };

/* Sort keys; each view names them its own way (topmodel__sort_name). */
enum top_sort {
	TOP_SORT_BYTES, /* live now (or at the high-water mark) */
	TOP_SORT_HIGH, /* cells: peak during; stacks: blocks; procs: HWM */
	TOP_SORT_ALLOCS, /* allocations (procs: per second) */
	TOP_SORT_ORDER, /* cells: run order; stacks: first seen; procs: pid */
	TOP_NSORT,
};

/* Ring of live-bytes samples, one per interval: the sparkline's data. */
struct top_history {
	uint64_t v[TOP_HISTORY];
	size_t n, head; /* head: where the next sample goes */
};

/* What the model keeps per traced process between intervals. */
struct top_proc {
	pid_t pid;
	struct top_history live;
	uint64_t rss;
	uint64_t allocs_prev;
	double alloc_rate;
};

struct top_model {
	struct top_proc *procs;
	size_t n, cap;
};

/* The agent's own figures for the header line. */
struct top_stats {
	time_t now; /* wall clock */
	size_t nprocs;
	double events_per_s;
	uint64_t dropped; /* BPF ring-buffer drops, all processes */
	double cpu_percent; /* agent CPU over the last interval */
	bool paused;
};

struct top_proc_row {
	pid_t pid;
	char name[64]; /* kernel-1a2b3c4d, train.py, or comm */
	char comm[16];
	uint64_t live, peak, rss; /* rss 0: unknown (exited) */
	uint64_t peak_at_ns; /* CLOCK_MONOTONIC, 0: no peak yet */
	char peak_cell[64]; /* run executing at the high-water mark, or "" */
	double alloc_rate;
	uint64_t dropped;
	size_t nruns;
	const char *state; /* "attaching", "attach failed", "exited", "" */
};

struct top_cell_row {
	int32_t run; /* index in cells.runs, CELL_OUTSIDE for the rest */
	char label[64];
	char source[TOP_TEXT]; /* first source line, or the code's file name */
	uint64_t bytes; /* live now, or at the high-water mark */
	uint64_t high; /* process high while it ran (outside: 0) */
	double share; /* its bytes at the high-water mark / that mark */
	uint64_t allocs;
	bool running, current, failed, drove_peak;
};

struct top_frame_line {
	char text[TOP_TEXT]; /* "file.py:12 function", or a marker */
	bool native; /* the native leaf: the allocator's caller */
};

struct top_stack_row {
	uint32_t site;
	int64_t bytes, count;
	uint64_t allocs;
	char cell[64]; /* the run the bytes belong to, or "" outside */
	struct top_frame_line *frames; /* root first, native leaf last */
	size_t nframes;
};

/* The owners a stack row is made from: one struct tracee's (tests too). */
struct top_sites {
	struct heap *heap; /* bytes per site id */
	const struct sites *sites; /* what each id is */
	const struct cells *cells;
	const struct pystacks *py;
};

void topmodel__init(struct top_model *m);
void topmodel__free(struct top_model *m);
/* The model's state for pid, created on first sight; NULL on ENOMEM. */
struct top_proc *topmodel__proc(struct top_model *m, pid_t pid);
/*
 * One interval: every traced process gets a live-bytes sample, its RSS
 * (from rss(), injectable for tests) and allocation rate; processes no
 * longer traced are forgotten.
 */
void topmodel__sample(struct top_model *m, const struct tracees *ts,
		      double elapsed, uint64_t (*rss)(pid_t));

void top_history__push(struct top_history *h, uint64_t v);
/* Sample i, oldest first (i < h->n). */
uint64_t top_history__at(const struct top_history *h, size_t i);
/*
 * The last samples as at most width glyphs (U+2581..U+2588, or ASCII
 * "_.,-=+*#" without UTF-8), scaled from 0 to the highest shown; when
 * there are more samples than columns, each glyph is the highest of its
 * group. Returns the number of glyphs.
 */
int topmodel__sparkline(const struct top_history *h, int width, bool utf8,
			char *buf, size_t size);

/*
 * Short name of a process from its command line: a Jupyter kernel's
 * `-f .../kernel-<uuid>.json` gives "kernel-<first 8 of uuid>" (another
 * connection file: "kernel:<its name>"), a Python
 * script its base name, `-m mod` the module; else the program's base
 * name, or comm when there is no command line.
 */
void topmodel__proc_name(const char *cmdline, const char *comm, char *buf,
			 size_t size);

/*
 * s cut to at most width columns (one per UTF-8 code point), ending in
 * "…" (or "~" without UTF-8) when cut. Returns the columns used.
 */
int topmodel__fit(const char *s, int width, bool utf8, char *buf, size_t size);

const char *topmodel__sort_name(enum top_view view, enum top_sort sort);

/* A process row; p: the model's state for it, or NULL. */
void topmodel__proc_row(const struct tracee *t, const struct top_proc *p,
			struct top_proc_row *row);
/* Rows for every traced process, sorted; count, or -1 (ENOMEM). */
ssize_t topmodel__procs(const struct tracees *ts, struct top_model *m,
			enum top_sort sort, struct top_proc_row **out);

/*
 * One row per cell run and one for "(outside cells)" (none without runs),
 * bytes live now or at the high-water mark (at_peak), sorted; count or
 * -1. Settles the heap's peak breakdown first.
 */
ssize_t topmodel__cells(struct heap *h, const struct sites *s,
			const struct cells *c, bool at_peak, enum top_sort sort,
			struct top_cell_row **out);

/*
 * The max sites with the most bytes (now, or at the high-water mark),
 * of one cell run (run; CELL_OUTSIDE: outside cells; TOP_ANY_RUN: all),
 * sorted, with their frames: the import being run, the Python stack root
 * first (as the snapshot has it) and the native leaf. Sites holding no
 * bytes are left out. Count, or -1 (ENOMEM).
 */
ssize_t topmodel__stacks(const struct top_sites *s, bool at_peak, int32_t run,
			 enum top_sort sort, size_t max,
			 struct top_stack_row **out);
void topmodel__free_stacks(struct top_stack_row *rows, size_t n);
/* The sites of t as topmodel__stacks wants them. */
void topmodel__sites_of(struct tracee *t, struct top_sites *s);

/* ---- lines, fitted to width columns ------------------------------------ */

/* Header; *hot: byte offset where the dropped-events part starts. */
void topmodel__header(const struct top_stats *st, int width, bool utf8,
		      char *buf, size_t size, size_t *hot);
/*
 * The selected process in two lines: identity and memory; high-water mark
 * and the live-bytes sparkline (*spark: its byte offset in line2).
 * mono_to_real: CLOCK_REALTIME - CLOCK_MONOTONIC, for the mark's time.
 */
void topmodel__proc_bar(const struct top_proc_row *r,
			const struct top_history *hist, double interval,
			int64_t mono_to_real, int width, bool utf8, char *line1,
			char *line2, size_t size, size_t *spark);
void topmodel__cells_head(bool at_peak, int width, bool utf8, char *buf,
			  size_t size);
void topmodel__cell_line(const struct top_cell_row *r, int width, bool utf8,
			 char *buf, size_t size);
void topmodel__stacks_head(bool at_peak, int width, bool utf8, char *buf,
			   size_t size);
/* A stack's summary line: bytes, blocks, cell, innermost Python frame. */
void topmodel__stack_line(const struct top_stack_row *r, int width, bool utf8,
			  char *buf, size_t size);
/* Frame i of a stack, indented by depth (capped). */
void topmodel__frame_line(const struct top_stack_row *r, size_t i, size_t depth,
			  int width, bool utf8, char *buf, size_t size);
/*
 * Index of the stack's own cell frame ("In [7]:1 <module>"): what is
 * above it is the kernel's machinery. 0 when the stack has no cell.
 */
size_t topmodel__cell_frame(const struct top_stack_row *r);
void topmodel__procs_head(int width, bool utf8, char *buf, size_t size);
void topmodel__proc_line(const struct top_proc_row *r, int width, bool utf8,
			 char *buf, size_t size);

#endif
