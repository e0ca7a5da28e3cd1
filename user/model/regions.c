// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "regions.h"

void regions__free(struct regions *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

int regions__copy(struct regions *dst, const struct regions *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src->len)
		return 0;
	dst->v = malloc(src->len * sizeof(*src->v));
	if (!dst->v)
		return -ENOMEM;
	memcpy(dst->v, src->v, src->len * sizeof(*src->v));
	dst->len = dst->cap = src->len;
	return 0;
}

/* Index of the first region whose end is above addr. */
static size_t first_above(const struct regions *r, uint64_t addr)
{
	size_t lo = 0, hi = r->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->v[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int insert_at(struct regions *r, size_t i, struct region reg)
{
	if (r->len == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct region *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	memmove(&r->v[i + 1], &r->v[i], (r->len - i) * sizeof(*r->v));
	r->v[i] = reg;
	r->len++;
	return 0;
}

static void remove_at(struct regions *r, size_t i)
{
	memmove(&r->v[i], &r->v[i + 1], (r->len - i - 1) * sizeof(*r->v));
	r->len--;
}

int regions__cut(struct regions *r, uint64_t start, uint64_t end,
		 region_cut_fn cut, void *ctx)
{
	size_t i = first_above(r, start);

	while (i < r->len && r->v[i].start < end) {
		struct region *g = &r->v[i];
		uint64_t lo = g->start > start ? g->start : start;
		uint64_t hi = g->end < end ? g->end : end;

		if (g->start < lo && g->end > hi) {
			/* A hole in the middle: split in two, one region more. */
			struct region tail = { hi, g->end, g->site };

			cut(ctx, g->site, hi - lo, -1);
			g->end = lo;
			return insert_at(r, i + 1, tail);
		}
		cut(ctx, g->site, hi - lo, g->start == lo && g->end == hi);
		if (g->start < lo) {
			g->end = lo;
			i++;
		} else if (g->end > hi) {
			g->start = hi;
			i++;
		} else {
			remove_at(r, i);
		}
	}
	return 0;
}

int regions__add(struct regions *r, uint64_t start, uint64_t end, uint32_t site)
{
	struct region reg = { start, end, site };

	return insert_at(r, first_above(r, start), reg);
}

int64_t regions__site_at(const struct regions *r, uint64_t addr)
{
	size_t i = first_above(r, addr);

	if (i < r->len && r->v[i].start <= addr)
		return r->v[i].site;
	return -1;
}

uint64_t regions__total(const struct regions *r)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < r->len; i++)
		sum += r->v[i].end - r->v[i].start;
	return sum;
}

void regions__uncovered(const struct regions *r, uint64_t lo, uint64_t hi,
			void (*fn)(void *ctx, uint64_t lo, uint64_t hi),
			void *ctx)
{
	size_t i;

	for (i = first_above(r, lo); i < r->len && lo < hi; i++) {
		if (r->v[i].start >= hi)
			break;
		if (r->v[i].start > lo)
			fn(ctx, lo, r->v[i].start);
		lo = r->v[i].end;
	}
	if (lo < hi)
		fn(ctx, lo, hi);
}

int regions__merge(struct regions *r, const struct region *v, size_t n)
{
	struct region *out;
	size_t i = 0, j = 0, k = 0;

	if (!n)
		return 0;
	out = malloc((r->len + n) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	while (i < r->len || j < n)
		out[k++] = j == n || (i < r->len && r->v[i].start < v[j].start)
				   ? r->v[i++]
				   : v[j++];
	free(r->v);
	r->v = out;
	r->len = r->cap = k;
	return 0;
}
