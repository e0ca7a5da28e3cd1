// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "procs.h"
#include "reaper.h"
#include "tracee.h"

struct tracee *tracee__new(pid_t pid, bool primary)
{
	struct tracee *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	if (heap__init(&t->heap) || sites__init(&t->sites)) {
		heap__free(&t->heap);
		sites__free(&t->sites);
		free(t);
		return NULL;
	}
	t->pid = pid;
	t->primary = primary;
	symbolizer__init(&t->sym, pid);
	pystacks__init(&t->py);
	cells__init(&t->cells);
	timeline__init(&t->timeline, 0);
	tracee__read_identity(t);
	return t;
}

void tracee__sample(struct tracee *t, uint64_t now)
{
	struct heap *h = &t->heap;

	timeline__push(&t->timeline, now, heap__take_window_max(h),
		       h->live_bytes);
	if (h->peak_bytes)
		timeline__note(&t->timeline, h->peak_at_ns, h->peak_bytes);
}

void tracee__delete(struct tracee *t)
{
	if (!t)
		return;
	reaper__put(t->links, t->nlinks);
	tracee__forget_sites(t);
	sites__free(&t->sites);
	free(t->cmdline);
	symbolizer__free(&t->sym);
	heap__free(&t->heap);
	free(t);
}

void tracee__read_identity(struct tracee *t)
{
	char buf[4096];
	ssize_t n;

	procs__read_comm(t->pid, t->comm, sizeof(t->comm));
	t->image = procs__image(t->pid);
	n = procs__read_cmdline(t->pid, buf, sizeof(buf));
	if (n <= 0)
		return;
	procs__cmdline_text(buf, n);
	free(t->cmdline);
	t->cmdline = strdup(buf);
}

/* While alive: the symbolizer reads this process's maps. */
void tracee__resolve_sites(struct tracee *t)
{
	sites__resolve(&t->sites, &t->sym);
}

/*
 * Counters first (a failure leaves the site new: tried again at its next
 * event), then the run from its stack and the name from its ip.
 */
int tracee__new_site(struct tracee *t, uint32_t site, uint64_t now)
{
	struct site_desc *d = &t->sites.v[site];

	if (heap__grow_sites(&t->heap, (size_t)site + 1))
		return -ENOMEM;
	d->run = cells__run_of(&t->cells, &t->py, d->stack, now,
			       t->heap.live_bytes);
	tracee__resolve_sites(t);
	return 0;
}

int tracee__before_sites(struct tracee *t, uint64_t now)
{
	int32_t run = cells__before_run(&t->cells, now);
	int k;

	for (k = 0; k < CENSUS_KINDS; k++) {
		int64_t site = sites__add_before(&t->sites, k);

		if (site < 0 || heap__grow_sites(&t->heap, (size_t)site + 1))
			return -ENOMEM;
		t->sites.v[site].run = run;
		t->heap.before.site[k] = site;
	}
	return 0;
}

/* The heap is cloned apart (session.c): blocks before descriptions. */
int tracee__inherit(struct tracee *c, const struct tracee *p)
{
	sites__free(&c->sites);
	pystacks__free(&c->py);
	cells__free(&c->cells);
	if (sites__clone(&c->sites, &p->sites) ||
	    cells__clone(&c->cells, &p->cells) ||
	    symbolizer__clone(&c->sym, &p->sym))
		return -1;
	return pystacks__clone(&c->py, &p->py);
}

void tracee__forget_sites(struct tracee *t)
{
	sites__reset(&t->sites);
	pystacks__free(&t->py);
	cells__free(&t->cells);
}

/* ---- table ------------------------------------------------------------ */

int tracees__add(struct tracees *ts, struct tracee *t)
{
	if (ts->len == ts->cap) {
		size_t cap = ts->cap ? ts->cap * 2 : 16;
		struct tracee **v = realloc(ts->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ts->v = v;
		ts->cap = cap;
	}
	ts->v[ts->len++] = t;
	return 0;
}

struct tracee *tracees__find(struct tracees *ts, pid_t pid)
{
	size_t i;

	if (ts->last && ts->last->pid == pid)
		return ts->last;
	for (i = 0; i < ts->len; i++)
		if (ts->v[i]->pid == pid)
			return ts->last = ts->v[i];
	return NULL;
}

void tracees__remove(struct tracees *ts, pid_t pid)
{
	size_t i;

	for (i = 0; i < ts->len; i++) {
		if (ts->v[i]->pid != pid)
			continue;
		if (ts->last == ts->v[i])
			ts->last = NULL;
		tracee__delete(ts->v[i]);
		ts->v[i] = ts->v[--ts->len];
		return;
	}
}

void tracees__free(struct tracees *ts)
{
	size_t i;

	for (i = 0; i < ts->len; i++)
		tracee__delete(ts->v[i]);
	free(ts->v);
	memset(ts, 0, sizeof(*ts));
}

/* Imports nest (numpy imports numpy.core): the outermost one names it. */
void tracee__import(struct tracee *t, pid_t tid, bool done, const char *module)
{
	struct import_state *free_slot = NULL, *s;
	int i;

	for (i = 0; i < TRACEE_IMPORT_THREADS; i++) {
		s = &t->imports[i];
		if (s->depth && s->tid == tid) {
			if (done)
				s->depth--;
			else
				s->depth++;
			return;
		}
		if (!s->depth && !free_slot)
			free_slot = s;
	}
	if (done || !free_slot)
		return;
	free_slot->tid = tid;
	free_slot->depth = 1;
	snprintf(free_slot->module, sizeof(free_slot->module), "%s", module);
}

const char *tracee__importing(const struct tracee *t, pid_t tid)
{
	int i;

	for (i = 0; i < TRACEE_IMPORT_THREADS; i++)
		if (t->imports[i].depth && t->imports[i].tid == tid)
			return t->imports[i].module;
	return NULL;
}
