// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "anon.h"
#include "census.h"
#include "glibc.h"
#include "lib/clock.h"
#include "pymalloc.h"
#include "vmem.h"

#define BLOCKS_MIN_CAP (1UL << 16) /* 1 MiB of blocks */

/*
 * The block array is mmap'd, not malloc'd: it grows by mremap (no copy
 * at 10 M blocks) and takes huge pages, which saved first-touch faults
 * in the measured census (docs/design/census.md section 4).
 */
struct census_block *census__alloc_blocks(size_t cap)
{
	void *p = mmap(NULL, cap * sizeof(struct census_block),
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, cap * sizeof(struct census_block), MADV_HUGEPAGE);
	return p;
}

void census__free_blocks(struct census_block *b, size_t cap)
{
	if (b)
		munmap(b, cap * sizeof(*b));
}

/* Double the block array in place (mremap moves page tables, not data). */
static int blocks_grow(struct census *c)
{
	size_t cap = c->blocks_cap ? c->blocks_cap * 2 : BLOCKS_MIN_CAP;
	void *p;

	if (!c->blocks) {
		c->blocks = census__alloc_blocks(cap);
		if (!c->blocks)
			return -ENOMEM;
		c->blocks_cap = cap;
		return 0;
	}
	p = mremap(c->blocks, c->blocks_cap * sizeof(*c->blocks),
		   cap * sizeof(*c->blocks), MREMAP_MAYMOVE);
	if (p == MAP_FAILED)
		return -ENOMEM;
	madvise(p, cap * sizeof(*c->blocks), MADV_HUGEPAGE);
	c->blocks = p;
	c->blocks_cap = cap;
	return 0;
}

int census__reserve_blocks(struct census *c, size_t n)
{
	while (c->blocks_cap - c->nblocks < n)
		if (blocks_grow(c))
			return -ENOMEM;
	return 0;
}

int census__add_block(struct census *c, uint64_t addr, uint64_t size,
		      enum census_kind kind)
{
	if (c->nblocks == c->blocks_cap && blocks_grow(c))
		return -ENOMEM;
	c->blocks[c->nblocks].addr = addr;
	c->blocks[c->nblocks].word = (size & CENSUS_SIZE_MASK) |
				     ((uint64_t)kind << CENSUS_KIND_SHIFT);
	c->nblocks++;
	c->bytes[kind] += size;
	c->count[kind]++;
	return 0;
}

/* Room for one more element of a malloc'd array (doubling, amortised). */
static int reserve(void **v, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	p = realloc(*v, ncap * elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = ncap;
	return 0;
}

int census__add_region(struct census *c, uint64_t lo, uint64_t hi,
		       enum census_kind kind)
{
	if (reserve((void **)&c->regions, &c->regions_cap, c->nregions,
		    sizeof(*c->regions)))
		return -ENOMEM;
	c->regions[c->nregions++] =
		(struct census_region){ .lo = lo, .hi = hi, .kind = kind };
	c->bytes[kind] += hi - lo;
	c->count[kind]++;
	return 0;
}

int census__claim(struct census *c, uint64_t lo, uint64_t hi)
{
	if (reserve((void **)&c->claimed, &c->claimed_cap, c->nclaimed,
		    sizeof(*c->claimed)))
		return -ENOMEM;
	c->claimed[c->nclaimed++] = (struct census_range){ .lo = lo, .hi = hi };
	return 0;
}

void census__warn(struct census *c, const char *fmt, ...)
{
	va_list ap;

	if (c->warning[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->warning, sizeof(c->warning), fmt, ap);
	va_end(ap);
}

static int range_cmp(const void *a, const void *b)
{
	const struct census_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void census__sort_claimed(struct census *c)
{
	size_t i, n = 0;

	if (!c->nclaimed)
		return;
	qsort(c->claimed, c->nclaimed, sizeof(*c->claimed), range_cmp);
	for (i = 1; i < c->nclaimed; i++) {
		if (c->claimed[i].lo <= c->claimed[n].hi) {
			if (c->claimed[i].hi > c->claimed[n].hi)
				c->claimed[n].hi = c->claimed[i].hi;
		} else {
			c->claimed[++n] = c->claimed[i];
		}
	}
	c->nclaimed = n + 1;
}

/* The first claimed range that ends after addr (binary search). */
static size_t claimed_after(const struct census *c, uint64_t addr)
{
	size_t lo = 0, hi = c->nclaimed;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->claimed[mid].hi <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool census__next_unclaimed(const struct census *c, uint64_t *lo, uint64_t hi,
			    uint64_t *piece_hi)
{
	size_t i = claimed_after(c, *lo);

	/* Ranges are merged, so one step past a claimed one is free. */
	if (i < c->nclaimed && c->claimed[i].lo <= *lo) {
		*lo = c->claimed[i].hi;
		i++;
	}
	if (*lo >= hi)
		return false;
	*piece_hi = i < c->nclaimed && c->claimed[i].lo < hi ? c->claimed[i].lo
							     : hi;
	return true;
}

/* An ascending run of blocks, as one walker appended it. */
struct run {
	uint64_t first;
	size_t start, len;
};

static int run_cmp(const void *a, const void *b)
{
	const struct run *x = a, *y = b;

	/* Equal first addresses: in the order they were appended. */
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int block_cmp(const void *a, const void *b)
{
	const struct census_block *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Where the address order breaks: the runs the walkers appended. */
static struct run *find_runs(const struct census *c, size_t *nruns)
{
	size_t i, n = 1, cap = 64;
	struct run *r = malloc(cap * sizeof(*r)), *p;

	if (!r)
		return NULL;
	r[0] = (struct run){ .first = c->blocks[0].addr };
	for (i = 1; i < c->nblocks; i++) {
		if (c->blocks[i].addr > c->blocks[i - 1].addr)
			continue;
		r[n - 1].len = i - r[n - 1].start;
		if (n == cap) {
			p = realloc(r, 2 * cap * sizeof(*r));
			if (!p) {
				free(r);
				return NULL;
			}
			r = p;
			cap *= 2;
		}
		r[n++] = (struct run){ .first = c->blocks[i].addr, .start = i };
	}
	r[n - 1].len = c->nblocks - r[n - 1].start;
	*nruns = n;
	return r;
}

/*
 * Copy the runs into a new array in the order of their first address,
 * sized to the blocks (the old one may be up to twice as big).
 */
static int permute_runs(struct census *c, struct run *r, size_t nruns)
{
	struct census_block *b = census__alloc_blocks(c->nblocks);
	size_t i, at = 0;

	if (!b)
		return -ENOMEM;
	qsort(r, nruns, sizeof(*r), run_cmp);
	for (i = 0; i < nruns; i++) {
		memcpy(b + at, c->blocks + r[i].start, r[i].len * sizeof(*b));
		at += r[i].len;
	}
	census__free_blocks(c->blocks, c->blocks_cap);
	c->blocks = b;
	c->blocks_cap = c->nblocks;
	return 0;
}

/*
 * Keep the first of equal addresses (a block two walkers found, or a
 * torn read met twice), taking the others out of the totals.
 */
static void drop_duplicates(struct census *c)
{
	size_t i = 1, n;

	while (i < c->nblocks && c->blocks[i].addr != c->blocks[i - 1].addr)
		i++; /* none before i: nothing to move */
	for (n = i; i < c->nblocks; i++) {
		const struct census_block *b = &c->blocks[i];

		if (b->addr == c->blocks[n - 1].addr) {
			c->bytes[census_block__kind(b)] -=
				census_block__size(b);
			c->count[census_block__kind(b)]--;
			continue;
		}
		c->blocks[n++] = *b;
	}
	c->nblocks = n;
}

/* True when the blocks ascend (equal neighbours allowed). */
static bool ascending(const struct census *c)
{
	size_t i;

	for (i = 1; i < c->nblocks; i++)
		if (c->blocks[i].addr < c->blocks[i - 1].addr)
			return false;
	return true;
}

int census__order_blocks(struct census *c)
{
	struct run *r;
	size_t nruns;
	int err = 0;

	if (c->nblocks < 2)
		return 0;
	r = find_runs(c, &nruns);
	if (!r)
		return -ENOMEM;
	if (nruns > 1)
		err = permute_runs(c, r, nruns);
	free(r);
	/* One run ascends strictly: nothing to sort, no duplicate. */
	if (err || nruns == 1)
		return err;
	/* Heaps are disjoint, so runs never interleave; if one did (a torn
	 * walk), a full sort still gives the promised order. */
	if (!ascending(c))
		qsort(c->blocks, c->nblocks, sizeof(*c->blocks), block_cmp);
	drop_duplicates(c);
	return 0;
}

static int region_cmp(const void *a, const void *b)
{
	const struct census_region *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The walkers in order: each later one skips what an earlier claimed. */
static int walk(struct vmem *m, struct census *c)
{
	int err = glibc__census(m, c);

	if (!err)
		err = pymalloc__census(m, c);
	if (!err)
		err = anon__census(m, c);
	return err;
}

int census__take(pid_t pid, struct census *c)
{
	struct vmem m = { 0 };
	int err;

	c->started_ns = now_monotonic_ns();
	err = vmem__open(&m, pid);
	if (err)
		return err;
	err = walk(&m, c);
	c->read_bytes = m.read_bytes;
	c->read_calls = m.reads;
	vmem__close(&m);
	if (!err)
		err = census__order_blocks(c);
	if (err) {
		census__free(c);
		return err;
	}
	qsort(c->regions, c->nregions, sizeof(*c->regions), region_cmp);
	c->took_ns = now_monotonic_ns() - c->started_ns;
	if (!c->took_ns)
		c->took_ns = 1;
	return 0;
}

void census__free(struct census *c)
{
	census__free_blocks(c->blocks, c->blocks_cap);
	free(c->regions);
	free(c->claimed);
	memset(c, 0, sizeof(*c));
}
