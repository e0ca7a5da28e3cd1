// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <bpf/libbpf.h>
#include <errno.h>
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
	tracee__read_identity(t);
	return t;
}

void tracee__delete(struct tracee *t)
{
	size_t i;

	if (!t)
		return;
	reaper__put(t->links, t->nlinks);
	for (i = 0; i < t->nframes; i++)
		frame__free(&t->frames[i]);
	free(t->frames);
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
		symbolizer__resolve(&t->sym, t->heap.sites[t->nframes].key,
				    &t->frames[t->nframes]);
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
