/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One process's heap as the agent sees it: live blocks, anonymous mappings,
 * live bytes per site, and the high-water mark with the exact per-site
 * breakdown at that moment. Sites are ids that model/site.h hands out;
 * the heap only counts bytes per id.
 *
 * The peak breakdown is taken lazily and incrementally: reaching a new peak
 * only sets a flag; the first decrease after it copies live -> peak for the
 * sites changed since the previous copy (the dirty list). Each event costs
 * O(1) amortised, never O(sites).
 */
#ifndef MEMPROF_HEAP_H
#define MEMPROF_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "before.h"
#include "lib/u64map.h"
#include "regions.h"

/* The counters of one site id (what the site is: model/site.h). */
struct site {
	int64_t live_bytes, live_count;
	int64_t peak_bytes, peak_count; /* at the high-water mark */
	uint64_t allocs; /* allocations ever made here */
	bool dirty; /* changed since the last peak copy */
};

struct heap {
	struct u64map blocks; /* address -> size (val), site (tag) */
	struct regions maps;
	struct before before; /* blocks from before attach (the census) */
	struct site *sites; /* by site id */
	size_t nsites, sites_cap;
	uint32_t *dirty;
	size_t ndirty;
	uint64_t live_bytes, live_count;
	uint64_t peak_bytes, peak_count, peak_at_ns;
	bool peak_pending; /* new peak reached, breakdown not copied yet */
	uint64_t allocs, frees, unknown_frees;
	uint64_t window_max; /* highest live bytes since the last sample */
};

int heap__init(struct heap *h);
void heap__free(struct heap *h);
/* Deep copy: a forked child starts with its parent's blocks. */
int heap__clone(struct heap *dst, const struct heap *src);
/* Forget blocks and peak (exec replaced the address space). */
int heap__reset(struct heap *h);

/* Counters (zero) for site ids up to n - 1; 0 or -ENOMEM. */
int heap__grow_sites(struct heap *h, size_t n);

int heap__alloc(struct heap *h, uint64_t addr, uint64_t size, uint32_t site,
		uint64_t now);
/* Bytes the free released (0: a block allocated before we attached). */
uint64_t heap__release(struct heap *h, uint64_t addr);
/* remapped: the block moved by mremap (no malloc-copy-free transient). */
int heap__realloc(struct heap *h, uint64_t old, uint64_t addr, uint64_t size,
		  uint32_t site, bool remapped, uint64_t now);
int heap__mmap(struct heap *h, uint64_t addr, uint64_t len, uint32_t site,
	       uint64_t now);
int heap__munmap(struct heap *h, uint64_t addr, uint64_t len);
int heap__mremap(struct heap *h, uint64_t old, uint64_t old_len, uint64_t addr,
		 uint64_t len, uint64_t now);

/*
 * Count the census (taken while the process ran) under the sites set in
 * h->before.site: its blocks, less those the window proves allocated or
 * freed meanwhile; its regions, less what is tracked or was unmapped
 * since. Takes the blocks array (malloc'd) from c and closes the window.
 * 0 or -ENOMEM.
 */
int heap__adopt_census(struct heap *h, struct census *c, uint64_t now);

/*
 * The highest live bytes since the last call (the timeline's sample,
 * model/timeline.h); the next window starts at what is live now.
 */
uint64_t heap__take_window_max(struct heap *h);

/* Make every site's peak_bytes/peak_count describe the high-water mark. */
void heap__settle_peak(struct heap *h);

#endif
