// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "events.h"
#include "lib/log.h"
#include "memprof.h"
#include "pylines.h"

/* Allocations by a thread inside `import X` are X's. */
static int64_t site_of(struct tracee *t, uint64_t ip, uint64_t stack, pid_t tid,
		       uint64_t now)
{
	const char *import = tid ? tracee__importing(t, tid) : NULL;

	return tracee__site(t, ip, stack, import, now);
}

static void on_alloc(struct agent *a, struct tracee *t,
		     const struct rec_alloc *r)
{
	int64_t site = site_of(t, r->site, r->stack, r->tid, a->now_ns);
	uint64_t peak;

	if (site < 0)
		return;
	peak = t->heap.peak_bytes;
	heap__alloc(&t->heap, r->addr, r->size, site, a->now_ns);
	cells__on_alloc(&t->cells, t->sites.v[site].run, t->heap.live_bytes,
			t->heap.peak_bytes > peak);
}

static void on_realloc(struct agent *a, struct tracee *t,
		       const struct rec_realloc *r)
{
	int64_t site = site_of(t, r->site, r->stack, r->tid, a->now_ns);
	uint64_t peak;

	if (site < 0)
		return;
	peak = t->heap.peak_bytes;
	heap__realloc(&t->heap, r->old_addr, r->new_addr, r->size, site,
		      r->flags & REALLOC_REMAPPED, a->now_ns);
	cells__on_alloc(&t->cells, t->sites.v[site].run, t->heap.live_bytes,
			t->heap.peak_bytes > peak);
}

static void on_mmap(struct agent *a, struct tracee *t, const struct rec_mmap *r)
{
	int64_t site = site_of(t, r->site, r->stack, 0, a->now_ns);
	uint64_t peak;

	if (site < 0)
		return;
	peak = t->heap.peak_bytes;
	heap__mmap(&t->heap, r->addr, r->len, site, a->now_ns);
	cells__on_alloc(&t->cells, t->sites.v[site].run, t->heap.live_bytes,
			t->heap.peak_bytes > peak);
}

/* Frees made while a collection runs are what the collection released. */
static void on_free(struct tracee *t, const struct rec_free *r)
{
	uint64_t bytes = heap__release(&t->heap, r->addr);

	if (t->gc.running)
		t->gc.bytes_freed += bytes;
}

static void on_gc(struct tracee *t, const struct rec_gc *r)
{
	struct gc_stats *g = &t->gc;

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
static void on_pycode(struct tracee *t, const struct rec_pycode *r)
{
	uint8_t *table;
	size_t len;

	if (pystacks__add_code(&t->py, r) || !t->pylayout)
		return;
	if (!pycode_table(t, r, &table, &len))
		pystacks__set_table(&t->py, r->code_id, table, len);
}

/* Records about allocations: the process must be in the table. */
static int on_heap_record(struct agent *a, const struct rec_hdr *h, size_t size)
{
	struct tracee *t = tracees__find(&a->procs, h->pid);

	if (!t)
		return 0; /* raced with its exit/detach */
	switch (h->type) {
	case REC_ALLOC:
		if (size >= sizeof(struct rec_alloc))
			on_alloc(a, t, (const void *)h);
		break;
	case REC_FREE:
		if (size >= sizeof(struct rec_free))
			on_free(t, (const void *)h);
		break;
	case REC_GC:
		if (size >= sizeof(struct rec_gc))
			on_gc(t, (const void *)h);
		break;
	case REC_IMPORT: {
		const struct rec_import *r = (const void *)h;

		if (size >= sizeof(*r))
			tracee__import(t, r->tid, r->done, r->module);
		break;
	}
	case REC_REALLOC:
		if (size >= sizeof(struct rec_realloc))
			on_realloc(a, t, (const void *)h);
		break;
	case REC_MMAP:
		if (size >= sizeof(struct rec_mmap))
			on_mmap(a, t, (const void *)h);
		break;
	case REC_MUNMAP: {
		const struct rec_munmap *r = (const void *)h;

		if (size >= sizeof(*r))
			heap__munmap(&t->heap, r->addr, r->len);
		break;
	}
	case REC_PYSTACK:
		if (size >= sizeof(struct rec_pystack))
			pystacks__add_stack(&t->py, (const void *)h);
		break;
	case REC_PYCODE:
		if (size >= sizeof(struct rec_pycode))
			on_pycode(t, (const void *)h);
		break;
	case REC_MREMAP: {
		const struct rec_mremap *r = (const void *)h;

		if (size >= sizeof(*r))
			heap__mremap(&t->heap, r->old_addr, r->old_len,
				     r->new_addr, r->new_len, a->now_ns);
		break;
	}
	case REC_CELL:
		if (size >= sizeof(struct rec_cell))
			cells__marker(&t->cells, (const void *)h,
				      t->heap.live_bytes);
		break;
	case REC_DSO:
		symbolizer__refresh(&t->sym);
		break;
	case REC_CODE_FREE: {
		const struct rec_code_free *r = (const void *)h;

		if (size >= sizeof(*r))
			cells__code_freed(&t->cells, r->code, r->ts_ns);
		break;
	}
	}
	return 0;
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

static void on_oom(struct agent *a, const struct rec_oom *r)
{
	char path[sizeof(((struct tracee *)0)->memcg.path)];
	bool known = events__oom_cgroup(r, path, sizeof(path)) == 0;

	session__on_oom(a, r->hdr.pid, known ? path : NULL,
			r->from == OOM_AT_EXIT);
}

int events__handle(void *ctx, void *data, size_t size)
{
	const struct rec_hdr *h = data;
	const struct rec_proc *p = data;
	struct agent *a = ctx;

	a->records++;
	if (size < sizeof(*h))
		return 0;
	switch (h->type) {
	case REC_ALLOC:
	case REC_FREE:
	case REC_REALLOC:
	case REC_MMAP:
	case REC_MUNMAP:
	case REC_MREMAP:
	case REC_PYSTACK:
	case REC_PYCODE:
	case REC_GC:
	case REC_IMPORT:
	case REC_CELL:
	case REC_CODE_FREE:
	case REC_DSO:
		return on_heap_record(a, h, size);
	case REC_FORK:
		if (size >= sizeof(*p))
			session__on_fork(a, h->pid, p->child);
		return 0;
	case REC_EXEC:
		if (size >= sizeof(*p))
			session__on_exec(a, h->pid, p->comm);
		return 0;
	case REC_OOM:
		if (size >= sizeof(struct rec_oom))
			on_oom(a, data);
		return 0;
	case REC_EXIT:
		if (size >= sizeof(*p))
			session__on_exit(a, h->pid, p->exit_code);
		return 0;
	default:
		if (!a->unknown_records++)
			log_warn("unknown record type %u (agent and probes out "
				 "of step?)",
				 h->type);
		return 0;
	}
}
