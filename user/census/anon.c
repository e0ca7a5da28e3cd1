// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include "anon.h"

/* At most this many runs: past it the census warns and counts no more. */
#define MAX_RUNS 100000
/* Pages whose pagemap bits are read at a time (64 MiB of 4 KiB pages). */
#define WINDOW_PAGES 16384

bool anon__private_rw(const struct vma *v)
{
	if (strcmp(v->perms, "rw-p") || v->inode)
		return false;
	return !v->path[0] || !strcmp(v->path, "[heap]") ||
	       !strncmp(v->path, "[anon:", 6);
}

/* A thread's stack sits right above its PROT_NONE guard (pthread). */
static bool thread_stack(const struct vmem *m, size_t i)
{
	const struct vma *g = i ? &m->v[i - 1] : NULL;

	return g && g->hi == m->v[i].lo && !strcmp(g->perms, "---p") &&
	       !g->inode && !g->path[0];
}

/*
 * A .bss tail: the kernel maps what follows a file's data segment as
 * anonymous memory right after it. It holds the object's statics.
 */
static bool bss_tail(const struct vmem *m, size_t i)
{
	const struct vma *d = i ? &m->v[i - 1] : NULL;

	return d && d->hi == m->v[i].lo && d->inode &&
	       !strcmp(d->perms, "rw-p") && !m->v[i].path[0];
}

/* The run of present pages being followed, across pagemap windows. */
struct runs {
	uint64_t lo; /* 0: none open */
	size_t n;
};

/* Close the open run at hi as a region, within the cap. */
static int close_run(struct census *c, struct runs *r, uint64_t hi)
{
	int err;

	if (!r->lo)
		return 0;
	if (r->n == MAX_RUNS) {
		census__warn(c,
			     "over %d runs of other anonymous memory, "
			     "the rest not counted",
			     MAX_RUNS);
		r->lo = 0;
		return 0;
	}
	err = census__add_region(c, r->lo, hi, CENSUS_ANON);
	r->lo = 0;
	r->n++;
	return err;
}

/* Follow runs of present pages through one window of pagemap bits. */
static int window_runs(struct census *c, struct runs *r, uint64_t lo,
		       uint64_t npages, uint64_t ps, const uint64_t *bits)
{
	uint64_t i, step;
	int err;

	for (i = 0; i < npages; i += step) {
		bool have = bits[i / 64] >> (i % 64) & 1;

		/* A whole word alike is 64 pages at once. */
		step = i % 64 == 0 && i + 64 <= npages &&
				       bits[i / 64] == (have ? ~0ULL : 0)
			       ? 64
			       : 1;
		if (have && !r->lo)
			r->lo = lo + i * ps;
		else if (!have && (err = close_run(c, r, lo + i * ps)))
			return err;
	}
	return 0;
}

/* One unclaimed piece (page-aligned), in windows of pagemap bits. */
static int count_piece(struct vmem *m, struct census *c, struct runs *r,
		       uint64_t lo, uint64_t hi)
{
	uint64_t bits[WINDOW_PAGES / 64], ps = m->page_size, w;
	int err;

	for (w = lo; w < hi; w += WINDOW_PAGES * ps) {
		uint64_t end =
			hi - w > WINDOW_PAGES * ps ? w + WINDOW_PAGES * ps : hi;

		err = vmem__present(m, w, end, bits);
		if (!err)
			err = window_runs(c, r, w, (end - w) / ps, ps, bits);
		if (err)
			return err;
	}
	return close_run(c, r, hi);
}

/* A mapping's pieces that no walker claimed, whole pages only. */
static int count_vma(struct vmem *m, struct census *c, struct runs *r,
		     const struct vma *v)
{
	uint64_t ps = m->page_size, lo = v->lo, piece_hi;
	int err;

	while (census__next_unclaimed(c, &lo, v->hi, &piece_hi)) {
		uint64_t a = (lo + ps - 1) / ps * ps, b = piece_hi / ps * ps;

		if (a < b && (err = count_piece(m, c, r, a, b)))
			return err;
		lo = piece_hi;
	}
	return 0;
}

int anon__census(struct vmem *m, struct census *c)
{
	struct runs r = { 0 };
	size_t i;
	int err;

	census__sort_claimed(c);
	for (i = 0; i < m->n; i++) {
		if (!anon__private_rw(&m->v[i]) || thread_stack(m, i) ||
		    bss_tail(m, i))
			continue;
		err = count_vma(m, c, &r, &m->v[i]);
		if (err == -ESRCH)
			return err;
		if (err) {
			census__warn(c, "other anonymous memory: %s",
				     strerror(-err));
			return 0;
		}
	}
	return 0;
}
