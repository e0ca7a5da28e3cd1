// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/text.h"
#include "cells.h"
#include "heap.h"
#include "pystacks.h"
#include "site.h"

void cells__init(struct cells *c)
{
	memset(c, 0, sizeof(*c));
	c->current = c->peak_run = -1;
}

void cells__free(struct cells *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->runs[i].file);
		free(c->runs[i].head);
	}
	free(c->runs);
	cells__init(c);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A forked child carries its parent's runs: its blocks point at them. */
int cells__clone(struct cells *dst, const struct cells *src)
{
	size_t i;

	cells__init(dst);
	dst->runs = calloc(src->cap ? src->cap : 1, sizeof(*dst->runs));
	if (!dst->runs) {
		cells__free(dst);
		return -ENOMEM;
	}
	for (i = 0; i < src->n; i++) {
		dst->runs[i] = src->runs[i];
		dst->runs[i].file = dup_or_null(src->runs[i].file);
		dst->runs[i].head = dup_or_null(src->runs[i].head);
	}
	dst->n = src->n;
	dst->cap = src->cap ? src->cap : 1;
	dst->current = src->current;
	dst->peak_run = src->peak_run;
	return 0;
}

/*
 * ipykernel: <tmp>/ipykernel_<pid>/<murmur2 of the source>.py (a number);
 * terminal IPython: <ipython-input-N-<sha1 prefix>>.
 */
bool cells__is_cell_file(const char *file)
{
	const char *dir, *base, *p;

	if (!file)
		return false;
	if (strncmp(file, "<ipython-input-", 15) == 0)
		return true;
	dir = strstr(file, "/ipykernel_");
	base = strrchr(file, '/');
	if (!dir || !base || base <= dir || !text__ends_with(base, ".py"))
		return false;
	/* <digits>.py, nothing else */
	for (p = base + 1; p < file + strlen(file) - 3; p++)
		if (*p < '0' || *p > '9')
			return false;
	return p > base + 1;
}

/* A file some marked run announced: other front ends name cells freely. */
static bool marked_file(const struct cells *c, const char *file)
{
	size_t i;

	for (i = c->n; i-- > 0;)
		if (c->runs[i].marked && c->runs[i].file &&
		    strcmp(c->runs[i].file, file) == 0)
			return true;
	return false;
}

static struct cell_run *new_run(struct cells *c, const char *file, uint64_t now,
				uint64_t live)
{
	struct cell_run *r;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;

		r = realloc(c->runs, cap * sizeof(*r));
		if (!r)
			return NULL;
		c->runs = r;
		c->cap = cap;
	}
	r = &c->runs[c->n];
	memset(r, 0, sizeof(*r));
	r->file = dup_or_null(file);
	if (file && !r->file)
		return NULL;
	r->execution_count = -1;
	r->started_ns = now;
	r->start_live = r->max_live = live;
	c->n++;
	return r;
}

int32_t cells__before_run(struct cells *c, uint64_t now)
{
	struct cell_run *r;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->runs[i].before)
			return i;
	r = new_run(c, NULL, now, 0);
	if (!r)
		return CELL_OUTSIDE;
	r->before = true;
	r->finished_ns = now; /* it never runs: never current */
	snprintf(r->label, sizeof(r->label), "(before attach)");
	return c->n - 1;
}

/* Without markers a run is named by its hash filename. */
static void label_from_file(struct cell_run *r)
{
	snprintf(r->label, sizeof(r->label), "%s",
		 r->file ? text__base_name(r->file) : "?");
}

/*
 * Newest run of file, marked or not; open: only one still running (a
 * marked run between its start and end markers).
 */
static int64_t newest(const struct cells *c, const char *file, bool marked,
		      bool open)
{
	size_t i;

	for (i = c->n; i-- > 0;) {
		const struct cell_run *r = &c->runs[i];

		if (r->marked == marked && r->file &&
		    strcmp(r->file, file) == 0 && (!open || !r->finished_ns))
			return i;
	}
	return -1;
}

/* Tie a run to the <module> code just seen executing line in it. */
static int32_t claim(struct cells *c, int64_t i, const struct py_code *code,
		     int line)
{
	struct cell_run *r = &c->runs[i];

	r->code_id = code->id;
	r->code_addr = code->addr;
	r->last_line = line;
	/*
	 * IPython frees a statement's code once the next one is compiled:
	 * the unmarked run seen ending then was only between statements.
	 */
	if (!r->marked)
		r->finished_ns = 0;
	return i;
}

/*
 * Run of a <module> code of a cell file, first seen running line: the
 * open marked run of the file; else, without markers, the newest run of
 * the file if this statement comes after the last one seen (statements'
 * lines rise within one execution; a statement's code object says nothing
 * itself: co_firstlineno of a <module> is always 1); -1: a new run (the
 * same source executed again).
 */
static int64_t run_of_module(struct cells *c, const struct py_code *code,
			     int line)
{
	int64_t i = newest(c, code->file, true, true);

	if (i >= 0)
		return i;
	i = newest(c, code->file, false, false);
	if (i >= 0 && line > c->runs[i].last_line)
		return i;
	return -1;
}

/*
 * The run of a cell frame's code. A function defined in a cell and
 * reached without any cell <module> on the stack (a callback, a thread)
 * belongs to the newest run of its file.
 */
static int32_t run_of_code(struct cells *c, const struct py_code *code,
			   int line, uint64_t now, uint64_t live)
{
	bool module = code->name && strcmp(code->name, "<module>") == 0;
	struct cell_run *r;
	int64_t i;

	for (i = c->n; i-- > 0;)
		if (c->runs[i].code_id == code->id)
			return i;
	if (module) {
		i = run_of_module(c, code, line);
		if (i >= 0)
			return claim(c, i, code, line);
	} else {
		i = newest(c, code->file, true, false);
		if (i < 0)
			i = newest(c, code->file, false, false);
		if (i >= 0)
			return i;
	}
	r = new_run(c, code->file, now, live);
	if (!r)
		return CELL_OUTSIDE;
	label_from_file(r);
	return module ? claim(c, c->n - 1, code, line) : (int32_t)(c->n - 1);
}

/* The outermost cell frame of a stack decides its run. */
int32_t cells__run_of(struct cells *c, const struct pystacks *ps,
		      uint64_t stack_id, uint64_t now, uint64_t live)
{
	const struct py_stack *st = stack_id ? pystacks__stack(ps, stack_id)
					     : NULL;
	uint32_t i;

	if (!st)
		return CELL_OUTSIDE;
	/*
	 * A run without markers starts when its first stack was walked: the
	 * agent's clock is when it read the record, up to a poll later.
	 */
	if (st->seen_ns)
		now = st->seen_ns;
	for (i = st->depth; i-- > 0;) {
		const struct py_code *code =
			pystacks__code(ps, st->frames[i].code_id);

		if (code && code->file &&
		    (cells__is_cell_file(code->file) ||
		     marked_file(c, code->file)))
			return run_of_code(c, code,
					   pystacks__frame_line(ps,
								&st->frames[i]),
					   now, live);
	}
	return CELL_OUTSIDE;
}

static void set_head(struct cell_run *r, const char *head)
{
	if (r->head || !head || !*head)
		return;
	r->head = strdup(head);
}

static void start_marked(struct cells *c, const struct rec_cell *m,
			 uint64_t live)
{
	struct cell_run *r = new_run(c, m->file, m->ts_ns, live);

	if (!r)
		return;
	r->marked = true;
	r->execution_count = m->execution_count;
	snprintf(r->label, sizeof(r->label), "In [%lld]",
		 (long long)m->execution_count);
	set_head(r, m->head);
	c->current = c->n - 1;
}

/*
 * The end marker closes its run. If the start was missed (the agent
 * attached the markers mid-cell), the run seen from the stacks is adopted.
 */
static void end_marked(struct cells *c, const struct rec_cell *m, uint64_t live)
{
	int64_t i = newest(c, m->file, true, false);
	struct cell_run *r;

	if (i < 0 || c->runs[i].finished_ns ||
	    c->runs[i].execution_count != m->execution_count)
		i = newest(c, m->file, false, false);
	if (i < 0) {
		r = new_run(c, m->file, m->ts_ns, live);
		if (!r)
			return;
		i = c->n - 1;
	}
	r = &c->runs[i];
	r->marked = true;
	r->execution_count = m->execution_count;
	snprintf(r->label, sizeof(r->label), "In [%lld]",
		 (long long)m->execution_count);
	set_head(r, m->head);
	r->finished_ns = m->ts_ns > r->started_ns ? m->ts_ns : r->started_ns;
	r->success = m->success;
	if (c->current == i)
		c->current = -1;
}

void cells__marker(struct cells *c, const struct rec_cell *m, uint64_t live)
{
	if (!m->file[0])
		return;
	if (m->done)
		end_marked(c, m, live);
	else
		start_marked(c, m, live);
}

void cells__code_freed(struct cells *c, uint64_t code_addr, uint64_t now)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		struct cell_run *r = &c->runs[i];

		if (r->marked || r->finished_ns || r->code_addr != code_addr)
			continue;
		r->finished_ns = now > r->started_ns ? now : r->started_ns;
		if (c->current == (int64_t)i)
			c->current = -1;
	}
}

void cells__on_alloc(struct cells *c, int32_t run, uint64_t live, bool new_peak)
{
	struct cell_run *r;

	if (run >= 0) {
		r = &c->runs[run];
		/* Unmarked: the cell allocating now is the one running. */
		if (!r->marked && !r->finished_ns)
			c->current = run;
	}
	if (new_peak)
		c->peak_run = c->current;
	if (c->current < 0)
		return;
	r = &c->runs[c->current];
	if (live > r->max_live)
		r->max_live = live;
}

void cells__totals(const struct cells *c, const struct sites *s,
		   const struct heap *h, struct cell_totals *out)
{
	size_t i;

	memset(out, 0, (c->n + 1) * sizeof(*out));
	for (i = 0; i < h->nsites; i++) {
		int32_t run = s && i < s->n ? s->v[i].run : CELL_OUTSIDE;
		struct cell_totals *t = &out[run >= 0 ? (size_t)run : c->n];

		t->live_bytes += h->sites[i].live_bytes;
		t->live_count += h->sites[i].live_count;
		t->peak_bytes += h->sites[i].peak_bytes;
		t->peak_count += h->sites[i].peak_count;
		t->allocs += h->sites[i].allocs;
	}
}
