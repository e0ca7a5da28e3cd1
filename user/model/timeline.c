// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>
#include "timeline.h"

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

void timeline__init(struct timeline *tl, uint64_t start_ns)
{
	tl->start_ns = start_ns;
	tl->width_ns = TIMELINE_WIDTH_NS;
	tl->last = 0;
	tl->n = 0;
}

uint32_t timeline__index(const struct timeline *tl, uint64_t at)
{
	uint64_t i = at > tl->start_ns ? (at - tl->start_ns) / tl->width_ns : 0;

	return i > UINT32_MAX ? UINT32_MAX : (uint32_t)i;
}

/* Halve the buckets, each pair's highest kept: the span covered doubles. */
static void fold(struct timeline *tl)
{
	uint32_t i;

	for (i = 0; 2 * i + 1 < tl->n; i++)
		tl->max[i] = max_u64(tl->max[2 * i], tl->max[2 * i + 1]);
	if (tl->n % 2)
		tl->max[i] = tl->max[tl->n - 1];
	tl->n = (tl->n + 1) / 2;
	tl->width_ns *= 2;
}

/*
 * The bucket for instant at, made if new: folding until it fits, and
 * the buckets skipped on the way (no sample came: a stalled agent) at
 * the last level seen.
 */
static uint64_t *bucket(struct timeline *tl, uint64_t at)
{
	uint32_t i;

	if (!tl->start_ns)
		tl->start_ns = at;
	while ((i = timeline__index(tl, at)) >= TIMELINE_CAP)
		fold(tl);
	for (; tl->n <= i; tl->n++)
		tl->max[tl->n] = tl->n < i ? tl->last : 0;
	return &tl->max[i];
}

void timeline__push(struct timeline *tl, uint64_t now, uint64_t max,
		    uint64_t live)
{
	uint64_t *b = bucket(tl, now);

	*b = max_u64(*b, max);
	tl->last = live;
}

void timeline__note(struct timeline *tl, uint64_t at, uint64_t bytes)
{
	uint64_t *b = bucket(tl, at);

	*b = max_u64(*b, bytes);
}
