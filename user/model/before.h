/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What a process held before the agent attached: the census's blocks
 * (user/census/census.h), kept exact afterwards. The blocks stay in the
 * census's sorted array, 16 bytes each, apart from the heap's hash table
 * (10 M puts would take seconds): a free that misses the table finds its
 * block here by bisection and leaves a tombstone.
 *
 * While the census is read the process runs. From the moment its probes
 * are in until the census is merged, the "window" notes every free that
 * missed the table and every munmap: at the merge, a census block that
 * was allocated in the window (it is in the table) or freed in it (it is
 * noted) is dropped, whichever order the read and the events came in
 * (docs/design/census.md, section 5).
 */
#ifndef MEMPROF_BEFORE_H
#define MEMPROF_BEFORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "census/census.h"
#include "lib/u64map.h"
#include "regions.h"

struct before {
	struct census_block *v; /* sorted by address; freed: word ~0 */
	size_t n, cap; /* cap: the array's (census__free_blocks) */
	size_t live; /* entries not freed yet */
	uint32_t site[CENSUS_KINDS]; /* the "(before attach)" site of a kind */
	bool window; /* the census is being read: note what goes */
	struct u64map freed; /* unknown frees in the window: addr -> 1 */
	struct regions unmapped; /* munmaps in the window */
	uint64_t dropped; /* census entries the window proved gone */
};

/* Start noting frees and munmaps (the probes are in, the census starts). */
int before__open_window(struct before *b);
/* Stop noting; what was noted is forgotten. */
void before__close_window(struct before *b);
/* A free that missed the heap's table, or an munmap: noted in the window. */
void before__note_free(struct before *b, uint64_t addr);
void before__note_unmap(struct before *b, uint64_t lo, uint64_t hi);

/* Take over n sorted blocks of the census's array of capacity cap. */
void before__adopt(struct before *b, struct census_block *v, size_t n,
		   size_t cap);
/*
 * The live census block at addr, if any: tombstoned, its usable size and
 * kind returned. O(log n).
 */
bool before__take(struct before *b, uint64_t addr, uint64_t *size,
		  enum census_kind *kind);

/*
 * The live census block holding addr (anywhere in its usable bytes), or
 * NULL: what big_objs() asks of an old array's buffer. O(log n).
 */
const struct census_block *before__containing(const struct before *b,
					      uint64_t addr);

void before__free(struct before *b);
int before__clone(struct before *dst, const struct before *src);

#endif
