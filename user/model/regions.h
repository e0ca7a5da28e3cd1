/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Anonymous mappings a process made itself: disjoint [start, end) ranges,
 * each owned by a site, kept sorted so munmap/mremap of any sub-range
 * (partial unmaps split a region in two) finds its overlaps by bisection.
 */
#ifndef MEMPROF_REGIONS_H
#define MEMPROF_REGIONS_H

#include <stddef.h>
#include <stdint.h>

struct region {
	uint64_t start, end;
	uint32_t site;
};

struct regions {
	struct region *v;
	size_t len, cap;
};

/*
 * Called for each piece removed from a region: its site, its length, and
 * whole: 1 when the whole region went away (the allocation count drops),
 * -1 when a hole split it in two (one region more), 0 when trimmed.
 */
typedef void (*region_cut_fn)(void *ctx, uint32_t site, uint64_t bytes,
			      int whole);

void regions__free(struct regions *r);
int regions__copy(struct regions *dst, const struct regions *src);
/* Remove [start, end) from every region, reporting what was cut. */
int regions__cut(struct regions *r, uint64_t start, uint64_t end,
		 region_cut_fn cut, void *ctx);
/* Add [start, end); the caller cuts the range first (MAP_FIXED). */
int regions__add(struct regions *r, uint64_t start, uint64_t end,
		 uint32_t site);
/*
 * Add n sorted regions that overlap none already there, in one merge
 * (a census adds thousands at once). 0 or -ENOMEM.
 */
int regions__merge(struct regions *r, const struct region *v, size_t n);
/* Call fn for each piece of [lo, hi) that no region covers, in order. */
void regions__uncovered(const struct regions *r, uint64_t lo, uint64_t hi,
			void (*fn)(void *ctx, uint64_t lo, uint64_t hi),
			void *ctx);
/* The site of the region holding addr, or -1. */
int64_t regions__site_at(const struct regions *r, uint64_t addr);
uint64_t regions__total(const struct regions *r);

#endif
