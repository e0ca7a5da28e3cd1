// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include "model/heap.h"
#include "model/timeline.h"
#include "unit.h"

#define MS 1000000ULL
#define T0 (5000 * MS) /* an agent's monotonic clock is never at 0 */

/* The struct holds 8 KiB of buckets: on the heap, as in a tracee. */
static struct timeline *fresh(uint64_t start)
{
	struct timeline *tl = calloc(1, sizeof(*tl));

	cr_assert_not_null(tl);
	timeline__init(tl, start);
	return tl;
}

Test(timeline, pushes_fill_buckets_by_time)
{
	struct timeline *tl = fresh(T0);

	timeline__push(tl, T0 + 100 * MS, 700, 500);
	timeline__push(tl, T0 + 150 * MS, 900, 900); /* same bucket: max */
	timeline__push(tl, T0 + 210 * MS, 600, 300);
	cr_assert_eq(tl->n, 3);
	cr_assert_eq(tl->width_ns, 100 * MS);
	cr_assert_eq(tl->max[0], 0); /* nothing pushed before 100 ms */
	cr_assert_eq(tl->max[1], 900);
	cr_assert_eq(tl->max[2], 600);
	cr_assert_eq(tl->last, 300);
	free(tl);
}

Test(timeline, starts_at_the_first_push_when_unset)
{
	struct timeline *tl = fresh(0);

	timeline__push(tl, T0, 42, 42);
	cr_assert_eq(tl->start_ns, T0);
	cr_assert_eq(tl->n, 1);
	cr_assert_eq(tl->max[0], 42);
	free(tl);
}

/* A stalled agent skipped buckets: they hold what was live meanwhile. */
Test(timeline, skipped_buckets_hold_the_last_level)
{
	struct timeline *tl = fresh(T0);

	timeline__push(tl, T0, 800, 250);
	timeline__push(tl, T0 + 450 * MS, 1000, 1000);
	cr_assert_eq(tl->n, 5);
	cr_assert_eq(tl->max[0], 800);
	cr_assert_eq(tl->max[1], 250);
	cr_assert_eq(tl->max[2], 250);
	cr_assert_eq(tl->max[3], 250);
	cr_assert_eq(tl->max[4], 1000);
	free(tl);
}

/*
 * Full: pairs merge, the larger kept, the width doubles, and the sample
 * that did not fit lands in the halved array. Bucket i held i + 1, and
 * 10,000 at bucket 700: after the fold bucket 350 is 10,000.
 */
Test(timeline, folds_pairs_when_full_keeping_maxima)
{
	struct timeline *tl = fresh(T0);
	uint32_t i;

	for (i = 0; i < TIMELINE_CAP; i++)
		timeline__push(tl, T0 + i * 100 * MS, i == 700 ? 10000 : i + 1,
			       i + 1);
	cr_assert_eq(tl->n, TIMELINE_CAP);
	timeline__push(tl, T0 + TIMELINE_CAP * 100 * MS, 7, 7);
	cr_assert_eq(tl->width_ns, 200 * MS);
	cr_assert_eq(tl->n, TIMELINE_CAP / 2 + 1);
	cr_assert_eq(tl->max[0], 2);
	cr_assert_eq(tl->max[1], 4);
	cr_assert_eq(tl->max[350], 10000);
	cr_assert_eq(tl->max[511], 1024);
	cr_assert_eq(tl->max[512], 7);
	free(tl);
}

/* An hour of 100 ms ticks: still 1024 buckets at most, the peak kept. */
Test(timeline, an_hour_stays_bounded_and_keeps_its_peak)
{
	struct timeline *tl = fresh(T0);
	uint64_t i, top = 0;

	for (i = 1; i <= 36000; i++)
		timeline__push(tl, T0 + i * 100 * MS, i == 20000 ? 1 << 30 : i,
			       i);
	cr_assert_leq(tl->n, TIMELINE_CAP);
	cr_assert_eq(tl->width_ns, 6400 * MS);
	cr_assert_eq(tl->n, 36000 * 100 / 6400 + 1);
	for (i = 0; i < tl->n; i++)
		top = tl->max[i] > top ? tl->max[i] : top;
	cr_assert_eq(top, 1 << 30);
	cr_assert_eq(tl->max[timeline__index(tl, T0 + 20000 * 100 * MS)],
		     1 << 30);
	free(tl);
}

/* The peak noted after the fact raises its own bucket, not the latest. */
Test(timeline, note_raises_the_bucket_of_the_instant)
{
	struct timeline *tl = fresh(T0);

	timeline__push(tl, T0 + 100 * MS, 10, 10);
	timeline__push(tl, T0 + 300 * MS, 10, 10);
	timeline__note(tl, T0 + 120 * MS, 5000);
	timeline__note(tl, T0 - 50 * MS, 20); /* before the start: bucket 0 */
	cr_assert_eq(tl->max[1], 5000);
	cr_assert_eq(tl->max[3], 10);
	cr_assert_eq(tl->max[0], 20);
	free(tl);
}

/* The heap's side: one window's highest live bytes, then a fresh one. */
Test(timeline, heap_window_max_is_taken_and_restarts)
{
	struct sites sites;
	struct heap h;
	int64_t s;

	cr_assert_eq(sites__init(&sites), 0);
	cr_assert_eq(heap__init(&h), 0);
	s = unit_site(&sites, &h, 0x401000, 0);
	heap__alloc(&h, 0x1000, 300, s, 1);
	heap__alloc(&h, 0x2000, 500, s, 2);
	heap__release(&h, 0x2000);
	cr_assert_eq(heap__take_window_max(&h), 800);
	cr_assert_eq(heap__take_window_max(&h), 300); /* what is live */
	heap__release(&h, 0x1000);
	cr_assert_eq(heap__take_window_max(&h), 300); /* it was, this window */
	cr_assert_eq(heap__take_window_max(&h), 0);
	heap__free(&h);
	sites__free(&sites);
}
