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
	if (heap__init(&t->heap)) {
		free(t);
		return NULL;
	}
	t->pid = pid;
	t->primary = primary;
	symbolizer__init(&t->sym, pid);
	pystacks__init(&t->py);
	cells__init(&t->cells);
	tracee__read_identity(t);
	return t;
}

void tracee__delete(struct tracee *t)
{
	if (!t)
		return;
	reaper__put(t->links, t->nlinks);
	tracee__forget_sites(t);
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
	n = procs__read_cmdline(t->pid, buf, sizeof(buf));
	if (n <= 0)
		return;
	procs__cmdline_text(buf, n);
	free(t->cmdline);
	t->cmdline = strdup(buf);
}

void tracee__resolve_sites(struct tracee *t)
{
	struct frame *f;
	size_t n = t->heap.nsites;

	if (n <= t->nframes)
		return;
	f = realloc(t->frames, n * sizeof(*f));
	if (!f)
		return;
	t->frames = f;
	for (; t->nframes < n; t->nframes++)
		symbolizer__resolve(&t->sym,
				    t->nframes < t->nsite_info
					    ? t->site_ip[t->nframes]
					    : t->heap.sites[t->nframes].key,
				    &t->frames[t->nframes]);
}

static int grow_site_info(struct tracee *t, size_t n)
{
	size_t cap = t->site_info_cap ? t->site_info_cap : 64;
	uint64_t *ip, *st;

	while (cap < n)
		cap *= 2;
	if (cap == t->site_info_cap)
		return 0;
	char **im;

	ip = realloc(t->site_ip, cap * sizeof(*ip));
	if (ip)
		t->site_ip = ip;
	st = realloc(t->site_stack, cap * sizeof(*st));
	if (st)
		t->site_stack = st;
	im = realloc(t->site_import, cap * sizeof(*im));
	if (im)
		t->site_import = im;
	if (!ip || !st || !im)
		return -1;
	t->site_info_cap = cap;
	return 0;
}

int tracee__note_site(struct tracee *t, size_t site, uint64_t ip,
		      uint64_t stack, const char *import)
{
	if (site != t->nsite_info || grow_site_info(t, site + 1))
		return site < t->nsite_info ? 0 : -1;
	t->site_ip[site] = ip;
	t->site_stack[site] = stack;
	t->site_import[site] = import ? strdup(import) : NULL;
	t->nsite_info = site + 1;
	return 0;
}

int tracee__inherit(struct tracee *c, const struct tracee *p)
{
	if (grow_site_info(c, p->nsite_info))
		return -1;
	if (p->nsite_info) {
		memcpy(c->site_ip, p->site_ip,
		       p->nsite_info * sizeof(uint64_t));
		memcpy(c->site_stack, p->site_stack,
		       p->nsite_info * sizeof(uint64_t));
	}
	for (size_t i = 0; i < p->nsite_info; i++)
		c->site_import[i] =
			p->site_import[i] ? strdup(p->site_import[i]) : NULL;
	c->nsite_info = p->nsite_info;
	pystacks__free(&c->py);
	cells__free(&c->cells);
	if (cells__clone(&c->cells, &p->cells))
		return -1;
	return pystacks__clone(&c->py, &p->py);
}

void tracee__forget_sites(struct tracee *t)
{
	size_t i;

	for (i = 0; i < t->nframes; i++)
		frame__free(&t->frames[i]);
	for (i = 0; i < t->nsite_info; i++)
		free(t->site_import[i]);
	free(t->site_import);
	t->site_import = NULL;
	free(t->frames);
	free(t->site_ip);
	free(t->site_stack);
	t->frames = NULL;
	t->site_ip = t->site_stack = NULL;
	t->nframes = t->nsite_info = t->site_info_cap = 0;
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
