// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "events.h"
#include "lib/log.h"
#include "memprof.h"
#include "recorder/recording.h"
#include "pylines.h"

/*
 * ---- record handlers ----------------------------------------------------
 * One per record type, all of one shape (agent, its process or NULL, the
 * record at its type's minimum size) so that one table dispatches them.
 */

/* Allocations by a thread inside `import X` are X's. */
static int64_t site_of(struct agent *a, struct tracee *t, uint64_t ip,
		       uint64_t stack, pid_t tid)
{
	const char *import = tid ? tracee__importing(t, tid) : NULL;

	return tracee__site(t, ip, stack, import, a->now_ns);
}

/* The cells follow the heap: told whether this event set a new peak. */
static void after_alloc(struct tracee *t, int64_t site, uint64_t peak)
{
	cells__on_alloc(&t->cells, t->sites.v[site].run, t->heap.live_bytes,
			t->heap.peak_bytes > peak);
}

/* malloc, calloc, memalign...: a block at the site of its caller. */
static void on_alloc(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_alloc *r = rec;
	int64_t site = site_of(a, t, r->site, r->stack, r->tid);
	uint64_t peak = t->heap.peak_bytes;

	if (site < 0)
		return;
	heap__alloc(&t->heap, r->addr, r->size, site, a->now_ns);
	after_alloc(t, site, peak);
}

/* realloc: the new block belongs to the realloc's caller. */
static void on_realloc(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_realloc *r = rec;
	int64_t site = site_of(a, t, r->site, r->stack, r->tid);
	uint64_t peak = t->heap.peak_bytes;

	if (site < 0)
		return;
	heap__realloc(&t->heap, r->old_addr, r->new_addr, r->size, site,
		      r->flags & REALLOC_REMAPPED, a->now_ns);
	after_alloc(t, site, peak);
}

/* An anonymous mapping is memory the process asked for, like a block. */
static void on_mmap(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_mmap *r = rec;
	int64_t site = site_of(a, t, r->site, r->stack, 0);
	uint64_t peak = t->heap.peak_bytes;

	if (site < 0)
		return;
	heap__mmap(&t->heap, r->addr, r->len, site, a->now_ns);
	after_alloc(t, site, peak);
}

/* Frees made while a collection runs are what the collection released. */
static void on_free(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_free *r = rec;
	uint64_t bytes = heap__release(&t->heap, r->addr);

	(void)a;
	if (t->gc.running)
		t->gc.bytes_freed += bytes;
}

/* Partial unmaps split a tracked mapping: the heap cuts it. */
static void on_munmap(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_munmap *r = rec;

	(void)a;
	heap__munmap(&t->heap, r->addr, r->len);
}

/* A resized or moved mapping keeps its site. */
static void on_mremap(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_mremap *r = rec;

	heap__mremap(&t->heap, r->old_addr, r->old_len, r->new_addr, r->new_len,
		     a->now_ns);
}

/* gc__start / gc__done: time in collections, objects they freed. */
static void on_gc(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_gc *r = rec;
	struct gc_stats *g = &t->gc;

	(void)a;
	if (!r->done) {
		g->running = true;
		g->started_ns = r->ts_ns;
		return;
	}
	if (g->running && r->ts_ns >= g->started_ns)
		g->total_ns += r->ts_ns - g->started_ns;
	g->running = false;
	g->collections++;
	if (r->value > 0)
		g->objects += r->value;
}

/* import__find__load start/done: which module a thread is importing. */
static void on_import(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_import *r = rec;

	(void)a;
	tracee__import(t, r->tid, r->done, r->module);
}

/* A stack is sent once; sites refer to it by id. */
static void on_pystack(struct agent *a, struct tracee *t, const void *rec)
{
	(void)a;
	pystacks__add_stack(&t->py, rec);
}

/* The line table as BPF copied it; too long, it is read from the process. */
static int pycode_table(const struct tracee *t, const struct rec_pycode *r,
			uint8_t **table, size_t *len)
{
	if (r->table_len > PY_TABLE_LEN)
		return pylines__read_table(t->pid, r->code, t->pylayout, table,
					   len);
	*table = malloc(r->table_len + 1);
	if (!*table)
		return -ENOMEM;
	memcpy(*table, r->table, r->table_len);
	*len = r->table_len;
	return 0;
}

/* Names now, line table too while the code object is surely alive. */
static void on_pycode(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_pycode *r = rec;
	uint8_t *table;
	size_t len;

	(void)a;
	if (pystacks__add_code(&t->py, r) || !t->pylayout)
		return;
	if (!pycode_table(t, r, &table, &len))
		pystacks__set_table(&t->py, r->code_id, table, len);
}

/* The extension's cell markers: exact starts, ends and labels. */
static void on_cell(struct agent *a, struct tracee *t, const void *rec)
{
	(void)a;
	cells__marker(&t->cells, rec, t->heap.live_bytes);
}

/* A dead <module> code ends an unmarked run. */
static void on_code_free(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_code_free *r = rec;

	(void)a;
	cells__code_freed(&t->cells, r->code, r->ts_ns);
}

/* ld.so changed the mappings: the next unknown address re-reads them. */
static void on_dso(struct agent *a, struct tracee *t, const void *rec)
{
	(void)a, (void)rec;
	symbolizer__refresh(&t->sym);
}

int events__oom_cgroup(const struct rec_oom *r, char *buf, size_t size)
{
	size_t len = 0;
	int i, n;

	if (r->depth > MEMCG_DEPTH || size < 2)
		return -ENOENT;
	snprintf(buf, size, "/"); /* the root: depth 0 */
	for (i = (int)r->depth - 1; i >= 0; i--) {
		n = snprintf(buf + len, size - len, "/%.*s", MEMCG_NAME_LEN,
			     r->names[i]);
		if (n < 0 || (size_t)n >= size - len)
			return -ENOENT; /* cut short: not a path to trust */
		len += n;
	}
	return 0;
}

/* The OOM killer chose a traced process: said with its cgroup. */
static void on_oom(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_oom *r = rec;
	char path[sizeof(((struct tracee *)0)->memcg.path)];
	bool known = events__oom_cgroup(r, path, sizeof(path)) == 0;

	(void)t;
	session__on_oom(a, r->hdr.pid, known ? path : NULL,
			r->from == OOM_AT_EXIT);
}

/* The recorder began an image: the agent knows it by now (recording.c). */
static void on_image(struct agent *a, struct tracee *t, const void *rec)
{
	(void)a;
	t->image = ((const struct rec_image *)rec)->image;
}

/* Process records need no heap: the session follows them. */
static void on_fork(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_proc *p = rec;

	(void)t;
	session__on_fork(a, p->hdr.pid, p->child);
}

static void on_exec(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_proc *p = rec;

	(void)t;
	session__on_exec(a, p->hdr.pid, p->comm, p->image);
}

static void on_proc_exit(struct agent *a, struct tracee *t, const void *rec)
{
	const struct rec_proc *p = rec;

	(void)t;
	session__on_exit(a, p->hdr.pid, p->exit_code);
}

/*
 * ---- dispatch -----------------------------------------------------------
 * Each record type: the size below which it is damaged (dropped), its
 * handler, and whether it is about a traced process's heap (dropped when
 * the process is gone: it raced with its exit or detach).
 */
struct record_kind {
	size_t min_size;
	void (*handle)(struct agent *a, struct tracee *t, const void *rec);
	bool needs_tracee;
};

static const struct record_kind kinds[REC_TYPE_MAX] = {
	[REC_ALLOC] = { sizeof(struct rec_alloc), on_alloc, true },
	[REC_FREE] = { sizeof(struct rec_free), on_free, true },
	[REC_REALLOC] = { sizeof(struct rec_realloc), on_realloc, true },
	[REC_MMAP] = { sizeof(struct rec_mmap), on_mmap, true },
	[REC_MUNMAP] = { sizeof(struct rec_munmap), on_munmap, true },
	[REC_MREMAP] = { sizeof(struct rec_mremap), on_mremap, true },
	[REC_PYSTACK] = { sizeof(struct rec_pystack), on_pystack, true },
	[REC_PYCODE] = { sizeof(struct rec_pycode), on_pycode, true },
	[REC_GC] = { sizeof(struct rec_gc), on_gc, true },
	[REC_IMPORT] = { sizeof(struct rec_import), on_import, true },
	[REC_CELL] = { sizeof(struct rec_cell), on_cell, true },
	[REC_CODE_FREE] = { sizeof(struct rec_code_free), on_code_free, true },
	[REC_DSO] = { sizeof(struct rec_hdr), on_dso, true },
	[REC_FORK] = { sizeof(struct rec_proc), on_fork, false },
	[REC_EXEC] = { sizeof(struct rec_proc), on_exec, false },
	[REC_EXIT] = { sizeof(struct rec_proc), on_proc_exit, false },
	[REC_OOM] = { sizeof(struct rec_oom), on_oom, false },
	[REC_IMAGE] = { sizeof(struct rec_image), on_image, true },
};

/* A marker's cut in its process's recorder ring (memprof.h), or 0. */
static uint64_t marker_cut(const struct rec_hdr *h)
{
	switch (h->type) {
	case REC_GC:
		return ((const struct rec_gc *)h)->cut;
	case REC_IMPORT:
		return ((const struct rec_import *)h)->cut;
	case REC_CELL:
		return ((const struct rec_cell *)h)->cut;
	default:
		return 0;
	}
}

/* Unknown types are said once: the agent and its probes are out of step. */
int events__handle(void *ctx, void *data, size_t size)
{
	const struct rec_hdr *h = data;
	const struct record_kind *k;
	struct tracee *t = NULL;
	struct agent *a = ctx;

	a->records++;
	if (size < sizeof(*h))
		return 0;
	k = h->type < REC_TYPE_MAX ? &kinds[h->type] : NULL;
	if (!k || !k->handle) {
		if (!a->unknown_records++)
			log_warn("unknown record type %u (agent and probes out "
				 "of step?)",
				 h->type);
		return 0;
	}
	if (size < k->min_size)
		return 0;
	/* A fork, exec or exit: what the recorder wrote before it first. */
	if (h->type == REC_FORK || h->type == REC_EXEC || h->type == REC_EXIT)
		recording__drain(a);
	recording__drain_to(a, h->pid, marker_cut(h));
	if (k->needs_tracee && !(t = tracees__find(&a->procs, h->pid)))
		return 0; /* raced with its exit/detach */
	k->handle(a, t, data);
	return 0;
}
