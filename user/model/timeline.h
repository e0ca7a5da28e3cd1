/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One process's live bytes over time, in bounded memory for runs of
 * hours: TIMELINE_CAP buckets of width_ns each, a bucket the highest live
 * bytes seen in its span (what decides whether a job fits is the top,
 * not the average). When the buckets run out, adjacent pairs merge (the
 * larger stays) and the width doubles, so the peak is never lost: one
 * hour at 100 ms starts is 1024 buckets of 6.4 s.
 *
 * The event path pays one comparison: the heap keeps the highest live
 * bytes since it was last sampled (heap__take_window_max), and the
 * agent's tick pushes that here (tracee__sample).
 */
#ifndef MEMPROF_TIMELINE_H
#define MEMPROF_TIMELINE_H

#include <stdint.h>

#define TIMELINE_CAP 1024
#define TIMELINE_WIDTH_NS 100000000ULL /* the agent's tick */

struct timeline {
	uint64_t start_ns; /* CLOCK_MONOTONIC where bucket 0 starts; 0: unset */
	uint64_t width_ns; /* each bucket's span */
	uint64_t last; /* live bytes at the last push: fills skipped buckets */
	uint32_t n; /* buckets in use */
	uint64_t max[TIMELINE_CAP]; /* highest live bytes in each */
};

/* Empty, starting at start_ns (0: at the first push), TIMELINE_WIDTH_NS. */
void timeline__init(struct timeline *tl, uint64_t start_ns);
/*
 * A sample at now: max is the highest live bytes since the previous one,
 * live what the process holds now.
 */
void timeline__push(struct timeline *tl, uint64_t now, uint64_t max,
		    uint64_t live);
/* The process held bytes at instant at (its peak): its bucket says so. */
void timeline__note(struct timeline *tl, uint64_t at, uint64_t bytes);
/* Bucket index of an instant (clamped to 0 before the start). */
uint32_t timeline__index(const struct timeline *tl, uint64_t at);

#endif
